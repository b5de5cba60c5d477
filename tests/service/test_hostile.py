"""Hostile and malformed input: always a 4xx JSON answer, never a 500, and nothing written.

Covers non-JSON numbers (NaN, Infinity, 1e999), absurd integers, deep nesting, odd unicode,
path-traversal strings, code in expression tasks, wrong types, oversized bodies and hostile ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CYCLIC = '{"task": {"group": "cyclic", "order": %s}}'
PWNED = Path("/tmp/li2_service_test_pwned")

RAW_BODIES = {
    "nan": CYCLIC % "NaN",
    "infinity": CYCLIC % "Infinity",
    "minus_infinity": CYCLIC % "-Infinity",
    "overflowing_float": CYCLIC % "1e999",
    "absurd_int": CYCLIC % ("9" * 5000),
    "big_int": CYCLIC % ("9" * 300),
    "negative": CYCLIC % "-11",
    "float_order": CYCLIC % "11.5",
    "string_order": CYCLIC % '"11"',
    "deep_lists": "[" * 200_000 + "]" * 200_000,
    "deep_objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "deep_in_spec": '{"task": ' + '{"x":' * 30_000 + "1" + "}" * 30_000 + "}",
    "truncated": '{"task": {"group": "cyclic", "order": 11}',
    "trailing_garbage": '{"task": {"group": "cyclic", "order": 11}} x',
    "empty": "",
    "whitespace": "   ",
    "list": "[1, 2, 3]",
    "string": '"hello"',
    "null": "null",
    "invalid_utf8": b'{"task": {"group": "cyc\xff\xfe"}}',
    "nul_in_group": '{"task": {"group": "cyclic\\u0000", "order": 11}}',
    "unicode_group": '{"task": {"group": "\U0001d520yclic", "order": 11}}',
    "rtl_and_emoji_key": '{"task": {"group": "cyclic", "order": 11, "\u202e\U0001f4a5": 1}}',
    "traversal_group": '{"task": {"group": "../../../../etc/passwd"}}',
    "traversal_table": '{"task": {"group": "table", "table": "/etc/passwd"}}',
    "url_in_field": '{"task": {"group": "file:///etc/passwd"}}',
    "expression_import": json.dumps(
        {"task": {"group": "expression", "modulus": 7, "expression": f"__import__('os').system('touch {PWNED}')"}}
    ),
    "expression_dunder": json.dumps(
        {"task": {"group": "expression", "modulus": 7, "expression": "x.__class__.__mro__[1].__subclasses__()"}}
    ),
    "expression_lambda": json.dumps(
        {"task": {"group": "expression", "modulus": 7, "expression": "(lambda: open('/etc/passwd').read())()"}}
    ),
    "expression_huge_power": json.dumps({"task": {"group": "expression", "modulus": 7, "expression": "x**9**9**9"}}),
    "unknown_top_field": '{"task": {"group": "cyclic", "order": 11}, "shell": "rm -rf /"}',
    "force_not_bool": '{"spec": {"task": {"group": "cyclic", "order": 11}}, "force": "yes"}',
    "spec_not_object": '{"spec": "cyclic 11"}',
    "huge_hidden": '{"task": {"group": "cyclic", "order": 11}, "model": {"hidden": 100000000}}',
    "huge_epochs": '{"task": {"group": "cyclic", "order": 11}, "training": {"epochs": 1000000000}}',
    "huge_order": '{"task": {"group": "cyclic", "order": 100000000}}',
    "many_operands": '{"task": {"group": "cyclic", "order": 97, "operands": 4}}',
    "long_string": json.dumps({"task": {"group": "x" * 500_000}}),
}


@pytest.fixture(autouse=True)
def no_pwned_file():
    PWNED.unlink(missing_ok=True)
    yield
    assert not PWNED.exists(), "an expression executed code"


def _assert_refused(svc, r, label):
    assert 400 <= r.status_code < 500 and r.status_code != 404, (label, r.status_code, r.data[:300])
    body = r.json
    assert body["code"] == r.status_code and body["message"], label


def test_hostile_experiment_bodies_are_refused_and_change_nothing(svc):
    before = svc.counts()
    for label, raw in RAW_BODIES.items():
        r = svc.client.post(
            "/api/v1/experiments",
            data=raw.encode() if isinstance(raw, str) else raw,
            headers={**svc.auth(), "Content-Type": "application/json"},
        )
        _assert_refused(svc, r, label)
    assert svc.counts() == before and svc.enqueued == []


def test_hostile_sweep_bodies_are_refused(sqlite_svc):
    svc = sqlite_svc
    before = svc.counts()
    base = {"task": {"group": "cyclic", "order": 11}}
    for label, body in {
        "grid_not_object": {"base": base, "grid": [1, 2]},
        "grid_values_not_list": {"base": base, "grid": {"seed": 3}},
        "grid_path_traversal": {"base": base, "grid": {"../../etc": [1]}},
        "grid_dunder_path": {"base": base, "grid": {"__class__.__init__": [1]}},
        "grid_huge": {"base": base, "grid": {"seed": list(range(2000))}},
        "grid_expression_code": {
            "base": {"task": {"group": "expression", "modulus": 7, "expression": "x+y"}},
            "grid": {"task.expression": [f"__import__('os').system('touch {PWNED}')"]},
        },
        "grid_nested_values": {"base": base, "grid": {"seed": [[[[1]]]]}},
    }.items():
        r = svc.client.post("/api/v1/sweeps", json=body, headers=svc.auth())
        _assert_refused(svc, r, label)
    for raw in (RAW_BODIES["nan"], RAW_BODIES["deep_lists"], ""):
        r = svc.client.post("/api/v1/sweeps", data=raw, headers={**svc.auth(), "Content-Type": "application/json"})
        _assert_refused(svc, r, raw[:20])
    assert svc.counts() == before and svc.enqueued == []


def test_field_messages_name_the_field_and_the_allowed_values(sqlite_svc):
    svc = sqlite_svc
    r = svc.client.post("/api/v1/experiments", json={"task": {"group": "rings", "order": 11}}, headers=svc.auth())
    assert r.status_code == 422
    assert "cyclic" in " ".join(r.json["errors"]["task.group"])
    r = svc.client.post(
        "/api/v1/experiments", json={"spec": {"task": {"group": "cyclic", "order": 11}}, "force": 1}, headers=svc.auth()
    )
    assert r.status_code == 422 and list(r.json["errors"]) == ["force"]


def test_non_json_content_types_are_415(sqlite_svc):
    svc = sqlite_svc
    body = json.dumps({"task": {"group": "cyclic", "order": 11}})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", None):
        headers = {**svc.auth(), **({"Content-Type": content_type} if content_type else {})}
        r = svc.client.post("/api/v1/experiments", data=body, headers=headers)
        assert r.status_code == 415 and "Content-Type" in r.json["errors"], content_type
    ok = svc.client.post(
        "/api/v1/experiments", data=body, headers={**svc.auth(), "Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 202
    assert svc.counts()["experiments"] == 1


def test_oversized_body_is_413_before_parsing(sqlite_svc):
    svc = sqlite_svc
    big = json.dumps({"task": {"group": "cyclic", "order": 11}, "pad": "x" * (2 << 20)})
    r = svc.client.post("/api/v1/experiments", data=big, headers={**svc.auth(), "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json["code"] == 413
    assert svc.counts()["experiments"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/experiments/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/experiments/%2e%2e",
        "/api/v1/experiments/0' OR '1'='1",
        "/api/v1/experiments/" + "a" * 5000,
        "/api/v1/experiments/%00",
        "/api/v1/sweeps/..%252F..%252Fetc/runs",
        "/api/v1/experiments/abc/checkpoints/..%2F1",
        "/api/v1/experiments/abc/checkpoints/-1",
        "/api/v1/experiments/abc/checkpoints/99999999999999999999999",
    ],
)
def test_hostile_ids_are_404(sqlite_svc, path):
    r = sqlite_svc.client.get(path, headers=sqlite_svc.auth())
    assert r.status_code == 404 and r.json["code"] == 404


def test_idempotency_key_is_bounded(sqlite_svc):
    svc = sqlite_svc
    r = svc.client.post(
        "/api/v1/experiments",
        json={"task": {"group": "cyclic", "order": 11}},
        headers={**svc.auth(), "Idempotency-Key": "k" * 1000},
    )
    assert r.status_code == 422 and "Idempotency-Key" in r.json["errors"]
    assert svc.counts()["experiments"] == 0


def test_wrong_method_is_405_json(sqlite_svc):
    r = sqlite_svc.client.delete("/api/v1/experiments", headers=sqlite_svc.auth())
    assert r.status_code == 405 and r.json["code"] == 405 and "GET" in r.headers["Allow"]
