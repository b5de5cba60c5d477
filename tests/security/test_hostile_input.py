"""A corpus of hostile inputs: each gets a 4xx JSON error and changes nothing in the database.

Bodies (POST /experiments and POST /sweeps), query strings, path ids and headers. Cases cover
huge numbers, NaN/Infinity literals, deep nesting, oversized bodies, odd unicode, path traversal,
expression injection, wrong content types and non-JSON. For every case the row count of every
table is compared before and after, and no process side effect (a file the payload would create)
may appear. A positive control (a valid spec is accepted) shows the requests are well-formed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from security_specs import VALID_SPEC as VALID

CANARY = Path("/tmp/li2-hostile-canary")  # what an executed payload would create


def spec_with(path: str, value) -> dict:
    """A copy of VALID with one dotted field set to `value`."""
    spec = json.loads(json.dumps(VALID))
    *head, last = path.split(".")
    node = spec
    for key in head:
        node = node.setdefault(key, {})
    node[last] = value
    return spec


def raw(text: str) -> bytes:
    return text.encode("utf-8")


INJECTIONS = [
    f"__import__('os').system('touch {CANARY}')",
    "x.__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1",
    f"open('{CANARY}', 'w')",
    "x if x else y",
    "[x for x in y]",
    "x; import os",
    "exec('1')",
    "x + y\n__import__('os')",
    "{x: y}",
]
TRAVERSAL = [
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "....//....//etc/passwd",
    "%2e%2e%2f%2e%2e%2f",
    "file:///etc/passwd",
    "\x00../etc/passwd",
]
UNICODE = ["ｃｙｃｌｉｃ", "cyclic\u0000", "cyc\u200blic", "\u202ecilcyc", "cyclic\U0001f600", "ＣＹＣＬＩＣ", "\ud800"]

# name -> (body bytes, content type). Every one must be answered 4xx by POST /experiments.
EXPERIMENT_BODIES: dict[str, tuple[bytes, str]] = {
    "empty body": (b"", "application/json"),
    "whitespace": (b"   \n", "application/json"),
    "not json": (b"hello", "application/json"),
    "truncated json": (b'{"task": {"group": "cyclic"', "application/json"),
    "json null": (b"null", "application/json"),
    "json array": (b"[]", "application/json"),
    "json number": (b"123", "application/json"),
    "json string": (b'"spec"', "application/json"),
    "invalid utf-8": (b'{"task": {"group": "\xff\xfe"}}', "application/json"),
    "NaN literal": (
        raw(json.dumps(VALID).replace('"train_fraction": 0.5', '"train_fraction": NaN')),
        "application/json",
    ),
    "Infinity literal": (raw(json.dumps(VALID).replace('"epochs": 20', '"epochs": Infinity')), "application/json"),
    "-Infinity lr": (
        raw(json.dumps(spec_with("training.lr", 1)).replace('"lr": 1', '"lr": -Infinity')),
        "application/json",
    ),
    "float overflow 1e999": (
        raw(json.dumps(VALID).replace('"train_fraction": 0.5', '"train_fraction": 1e999')),
        "application/json",
    ),
    "huge int order": (raw(json.dumps(VALID).replace('"order": 11', '"order": ' + "9" * 400)), "application/json"),
    "huge int epochs": (raw(json.dumps(spec_with("training.epochs", 10**30))), "application/json"),
    "huge hidden": (raw(json.dumps(spec_with("model.hidden", 2**63))), "application/json"),
    "negative order": (raw(json.dumps(spec_with("task.order", -7))), "application/json"),
    "float order": (raw(json.dumps(spec_with("task.order", 11.5))), "application/json"),
    "bool order": (raw(json.dumps(spec_with("task.order", True))), "application/json"),
    "string order": (raw(json.dumps(spec_with("task.order", "11"))), "application/json"),
    "order over limit": (raw(json.dumps(spec_with("task.order", 10**6))), "application/json"),
    "seed 2**64": (raw(json.dumps(spec_with("seed", 2**64))), "application/json"),
    "deep nested arrays": (b"[" * 10_000 + b"]" * 10_000, "application/json"),
    "deep nested objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    "deep nesting inside spec": (
        raw('{"task": ' + '{"group":' * 5000 + '"cyclic"' + "}" * 5000 + "}"),
        "application/json",
    ),
    "oversized body": (
        raw(json.dumps(spec_with("seed", 1))[:-1] + ', "pad": "' + "x" * (2 << 20) + '"}'),
        "application/json",
    ),
    "unknown top-level field": (raw(json.dumps({**VALID, "__class__": "x"})), "application/json"),
    "unknown nested field": (raw(json.dumps(spec_with("model.__init__", 1))), "application/json"),
    "wrong content type text/plain": (raw(json.dumps(VALID)), "text/plain"),
    "wrong content type form": (b"task=cyclic&order=11", "application/x-www-form-urlencoded"),
    "wrong content type xml": (b"<spec><task>cyclic</task></spec>", "application/xml"),
    "multipart": (
        b"--b\r\nContent-Disposition: form-data; name=spec\r\n\r\n{}\r\n--b--\r\n",
        "multipart/form-data; boundary=b",
    ),
    "spec not an object": (raw(json.dumps({"spec": "cyclic", "force": False})), "application/json"),
    "spec null": (raw(json.dumps({"spec": None})), "application/json"),
    "force not bool": (raw(json.dumps({"spec": VALID, "force": "yes"})), "application/json"),
    "group table 10k rows": (
        raw(json.dumps(spec_with("task", {"group": "table", "table": [[0]] * 10_000}))),
        "application/json",
    ),
    "table not a group": (
        raw(json.dumps(spec_with("task", {"group": "table", "table": [[0, 1], [0, 1]]}))),
        "application/json",
    ),
}
for i, text in enumerate(INJECTIONS):
    EXPERIMENT_BODIES[f"expression injection {i}: {text[:30]}"] = (
        raw(json.dumps(spec_with("task", {"group": "expression", "expression": text, "modulus": 7}))),
        "application/json",
    )
for i, text in enumerate(INJECTIONS + TRAVERSAL):
    EXPERIMENT_BODIES[f"string in enum field {i}: {text[:30]}"] = (
        raw(json.dumps(spec_with("training.optimizer", text))),
        "application/json",
    )
for i, text in enumerate(TRAVERSAL):
    EXPERIMENT_BODIES[f"traversal as group {i}"] = (raw(json.dumps(spec_with("task.group", text))), "application/json")
for i, text in enumerate(UNICODE):
    EXPERIMENT_BODIES[f"unicode group {i}"] = (raw(json.dumps(spec_with("task.group", text))), "application/json")
    EXPERIMENT_BODIES[f"unicode key {i}"] = (raw(json.dumps({**VALID, text: 1})), "application/json")

SWEEP_BODIES: dict[str, tuple[bytes, str]] = {
    "not json": (b"{grid", "application/json"),
    "deep nesting": (b"[" * 10_000 + b"]" * 10_000, "application/json"),
    "grid not an object": (raw(json.dumps({"base": VALID, "grid": [1, 2]})), "application/json"),
    "grid path traversal": (raw(json.dumps({"base": VALID, "grid": {"../../etc/passwd": [1]}})), "application/json"),
    "grid dunder path": (raw(json.dumps({"base": VALID, "grid": {"task.__class__": [1]}})), "application/json"),
    "grid injection path": (raw(json.dumps({"base": VALID, "grid": {"__import__('os')": [1]}})), "application/json"),
    "grid huge product": (
        raw(json.dumps({"base": VALID, "grid": {"seed": list(range(4000)), "training.lr": [0.01, 0.02, 0.03]}})),
        "application/json",
    ),
    "grid values NaN": (
        raw(f'{{"base": {json.dumps(VALID)}, "grid": {{"training.lr": [NaN]}}}}'),
        "application/json",
    ),
    "grid values bad": (raw(json.dumps({"base": VALID, "grid": {"task.order": [11, "x"]}})), "application/json"),
    "grid empty values": (raw(json.dumps({"base": VALID, "grid": {"seed": []}})), "application/json"),
    "base injection": (
        raw(
            json.dumps(
                {
                    "base": spec_with("task", {"group": "expression", "expression": INJECTIONS[0], "modulus": 7}),
                    "grid": {"seed": [1]},
                }
            )
        ),
        "application/json",
    ),
    "base missing": (raw(json.dumps({"grid": {"seed": [1]}})), "application/json"),
    "text/plain": (raw(json.dumps({"base": VALID, "grid": {"seed": [1, 2]}})), "text/plain"),
}


def assert_rejected(response, case: str) -> None:
    assert 400 <= response.status_code < 500, f"{case}: {response.status_code} {response.get_data()[:300]!r}"
    if response.status_code != 405:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and body.get("code") == response.status_code and body.get("message"), (
            f"{case}: error body is not our JSON error: {response.get_data()[:300]!r}"
        )


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_positive_control(client, world, counts):
    """The same request shape with a valid body is accepted, so the rejections below are real."""
    before = counts()
    r = client.post(
        "/api/v1/experiments",
        data=json.dumps({**VALID, "seed": 99}),
        content_type="application/json",
        headers=auth(world.bob),
    )
    assert r.status_code == 202, r.get_json()
    assert counts()["experiments"] == before["experiments"] + 1


@pytest.mark.parametrize("case", sorted(EXPERIMENT_BODIES))
def test_hostile_experiment_bodies(case, client, world, counts):
    body, content_type = EXPERIMENT_BODIES[case]
    before = counts()
    r = client.post("/api/v1/experiments", data=body, content_type=content_type, headers=auth(world.bob))
    assert_rejected(r, case)
    assert counts() == before, f"{case} changed the database"
    assert not CANARY.exists(), f"{case}: the payload was executed"


@pytest.mark.parametrize("case", sorted(SWEEP_BODIES))
def test_hostile_sweep_bodies(case, client, world, counts):
    body, content_type = SWEEP_BODIES[case]
    before = counts()
    r = client.post("/api/v1/sweeps", data=body, content_type=content_type, headers=auth(world.bob))
    assert_rejected(r, case)
    assert counts() == before, f"{case} changed the database"
    assert not CANARY.exists()


def test_field_errors_name_the_field(client, world):
    """Bad input is explained: the error names the field and what is allowed."""
    r = client.post(
        "/api/v1/experiments", json={**VALID, "training": {"optimizer": "__import__('os')"}}, headers=auth(world.bob)
    )
    assert r.status_code == 422
    errors = r.get_json()["errors"]
    assert "training.optimizer" in errors and "adam" in " ".join(errors["training.optimizer"])


HOSTILE_IDS = [
    "..",
    "../..",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252F..%252Fetc",
    "%00",
    "x%00y",
    "' OR '1'='1",
    "1;DROP TABLE experiments",
    "{exp}%2F..%2F{exp}",
    "a" * 10_000,
    "%F0%9F%98%80",
    "%ff%fe",
    "__class__",
    "{exp}..",
]
ID_ROUTES = [
    "/api/v1/experiments/{id}",
    "/api/v1/experiments/{id}/metrics",
    "/api/v1/experiments/{id}/checkpoints",
    "/api/v1/experiments/{id}/checkpoints/10",
    "/api/v1/sweeps/{id}",
    "/api/v1/sweeps/{id}/runs",
    "/api/v1/sweeps/{id}/scaling-law",
    "/api/v1/searches/{id}",
    "/api/v1/searches/{id}/runs",
    "/api/v1/searches/{id}/scaling-law",
]


@pytest.mark.parametrize("route", ID_ROUTES)
def test_hostile_ids_in_paths(route, client, world, counts):
    """Path ids are looked up, never used as paths: traversal, NUL, SQL and huge ids all answer 4xx."""
    before = counts()
    for hostile in HOSTILE_IDS:
        url = route.format(id=hostile.format(exp=world.experiment_id))
        for token in (world.alice, world.bob):
            r = client.get(url, headers=auth(token))
            assert_rejected(r, url[:120])
            assert r.status_code in (404, 405, 400), url[:120]
        r = client.post(
            route.format(id=hostile.format(exp=world.experiment_id)).split("/metrics")[0].split("/checkpoints")[0]
            + "/cancel",
            headers=auth(world.alice),
        )
        assert_rejected(r, "cancel " + hostile[:40])
    assert counts() == before


@pytest.mark.parametrize("epoch", ["-1", "99999999999999999999999", "1.5", "..%2F..", "0x10", "%00", "1e3"])
def test_hostile_checkpoint_epochs(epoch, client, world):
    r = client.get(f"/api/v1/experiments/{world.experiment_id}/checkpoints/{epoch}", headers=auth(world.alice))
    assert_rejected(r, epoch)


HOSTILE_QUERIES = [
    "page=-1",
    "page=0",
    "page=" + "9" * 40,
    "page_size=100000000",
    "page_size=abc",
    "page=NaN",
    "page=Infinity",
    "status=<script>",
    "status=queued'--",
    "sweep_id=' OR 1=1 --",
    "sweep_id=../../etc",
    "unknown=1",
    "__class__=1",
    "format=pickle",
    "format=../../x",
    "partial=maybe",
    "status=" + "x" * 10_000,
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:40])
def test_hostile_query_strings(query, client, world, counts):
    before = counts()
    routes = ["/api/v1/experiments", "/api/v1/sweeps", f"/api/v1/sweeps/{world.sweep_id}/runs"]
    if query.startswith(("format=", "partial=")):
        routes = [f"/api/v1/experiments/{world.experiment_id}/metrics", f"/api/v1/sweeps/{world.sweep_id}/scaling-law"]
    for route in routes:
        r = client.get(f"{route}?{query}", headers=auth(world.alice))
        name = f"{route}?{query[:60]}"
        if (query.startswith("partial=") and "metrics" not in route) or (
            query.startswith("format=") and "scaling" in route
        ):
            assert r.status_code < 500, name
            continue
        assert_rejected(r, name)
    assert counts() == before


def test_hostile_headers(client, world, counts):
    before = counts()
    r = client.post(
        "/api/v1/experiments", json={**VALID, "seed": 7}, headers={**auth(world.bob), "Idempotency-Key": "k" * 10_000}
    )
    assert_rejected(r, "10k Idempotency-Key")
    r = client.get("/api/v1/experiments", headers={"Authorization": "Bearer " + "\u0000" * 100})
    assert r.status_code == 401
    r = client.get("/api/v1/experiments", headers={"Authorization": "Bearer ' OR '1'='1"})
    assert r.status_code == 401
    assert counts() == before
