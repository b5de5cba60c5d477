"""The OpenAPI document is one other tools can rely on: it validates, names every operation, links
the ids a create returns to the operations that take them, documents each status it answers with
one error format, and its bounds are the bounds the server enforces."""

from __future__ import annotations

import copy
import math

import pytest
from openapi_spec_validator import validate

from li2.errors import SpecError
from li2.spec import validate_spec

DOC = "/api/v1/openapi.json"
PROBLEM = "application/problem+json"
SECTIONS = {"Task": "task", "Data": "data", "Model": "model", "Training": "training", "ExperimentSpec": ""}


@pytest.fixture
def doc(service_factory, tmp_path):
    svc = service_factory(f"sqlite:///{tmp_path / 'doc.sqlite'}")
    return svc.client.get(DOC).json


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def test_the_document_validates_and_names_every_operation(doc):
    validate(doc)  # openapi-spec-validator: raises on any violation of OpenAPI 3.0
    ids = [op.get("operationId") for _, _, op in operations(doc)]
    assert all(ids) and len(ids) == len(set(ids)), ids
    for path, method, op in operations(doc):
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes) and "default" in codes, (path, method, codes)
        if "{" in path:
            assert "404" in codes, (path, method)
        if op.get("security") != []:
            assert "401" in codes, (path, method)


def test_every_answer_has_a_schema_or_is_binary(doc):
    """Each documented success answer says what it holds (generated clients parse it)."""
    for path, method, op in operations(doc):
        for code, answer in op["responses"].items():
            if "$ref" in answer:
                answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
            assert answer.get("description"), (path, method, code)
            if code in ("204", "304"):  # no body by definition
                continue
            assert answer.get("content"), (path, method, code)
            for media, body in answer["content"].items():
                assert body.get("schema"), (path, method, code, media)
                if not code.startswith("2") and (path, code) != ("/readyz", "503"):  # readyz: its checks
                    assert media == PROBLEM and body["schema"] == {"$ref": "#/components/schemas/Problem"}
    checkpoint = doc["paths"]["/api/v1/experiments/{exp_id}/checkpoints/{epoch}"]["get"]["responses"]["200"]
    assert checkpoint["content"]["application/octet-stream"]["schema"]["format"] == "binary"
    for analysis in ("timeline", "features", "predictions"):
        ok = doc["paths"][f"/api/v1/experiments/{{exp_id}}/{analysis}"]["get"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith(analysis.capitalize())
    law = doc["paths"]["/api/v1/sweeps/{sweep_id}/scaling-law"]["get"]["responses"]["200"]
    assert law["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ScalingLaw"}


def test_the_experiment_answer_refers_to_the_named_spec(doc):
    spec = doc["components"]["schemas"]["Experiment"]["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/ExperimentSpec"}], spec


def test_the_task_is_documented_as_its_kinds(doc):
    """Each group's task requires exactly its own fields: what TaskSchema's kind check enforces."""
    from li2.spec.schema import GROUP_FIELDS

    schemas = doc["components"]["schemas"]
    mapping = schemas["Task"]["discriminator"]["mapping"]
    assert set(mapping) == set(GROUP_FIELDS)
    for group, ref in mapping.items():
        kind = schemas[ref.rsplit("/", 1)[-1]]
        assert kind["properties"]["group"]["enum"] == [group]
        assert set(kind["required"]) == {"group", *GROUP_FIELDS[group]}
        assert set(kind["properties"]) == {"group", "operands", *GROUP_FIELDS[group]}
        assert kind["additionalProperties"] is False


@pytest.mark.parametrize(
    "create,param", [("experiments_submit", "exp_id"), ("sweeps_submit", "sweep_id"), ("searches_submit", "search_id")]
)
def test_create_operations_link_to_every_operation_taking_their_id(doc, create, param):
    by_id = {op["operationId"]: (path, op) for path, _, op in operations(doc)}
    takers = {op_id for op_id, (path, _) in by_id.items() if "{" + param + "}" in path}
    assert takers
    links = by_id[create][1]["responses"]["202"]["links"]
    assert set(links) == takers, (create, set(links) ^ takers)
    for link in links.values():
        assert link["operationId"] in by_id and link["parameters"] == {param: "$response.body#/id"}


# ---------------------------------------------------------------------------------- bounds
#
# One row per bounded field of the spec: the dotted path ("[]" = each item of a list), the spec
# changes that make its bound reachable (so only the bound decides), and optionally `fit`, the
# value nearest the bound that the field's other rules allow. Every numeric minimum/maximum and
# every maxItems the document shows must have a row (the test says which is missing).

BASE = {"task": {"group": "cyclic", "order": 11}, "data": {"train_fraction": 0.5}}
BIG = {"task": {"group": "cyclic", "order": 1024}}  # M = 1024, M^2 = 2^20 samples: every size fits


def _largest_prime_at_most(n: int) -> int:
    return next(p for p in range(n, 2, -1) if all(p % d for d in range(2, math.isqrt(p) + 1)))


TABLE: dict[str, dict] = {
    "task.operands": {"context": {"task": {"group": "cyclic", "order": 5}}},  # 5^4 ≤ 2^20
    "task.order": {"context": {}},
    "task.factors[]": {"context": {"task": {"group": "product", "factors": [2]}}},
    "task.factors": {"context": {"task": {"group": "product", "factors": [2]}}, "item": 2},
    "task.n": {"context": {"task": {"group": "dihedral", "n": 2}}},
    "task.prime": {"context": {"task": {"group": "multiplicative", "prime": 3}}, "fit": _largest_prime_at_most},
    "task.modulus": {"context": {"task": {"group": "expression", "expression": "x+y", "modulus": 5}}},
    "task.table": {"context": {}, "cayley": True},
    "task.table[]": {"context": {}, "cayley": True},
    "data.train_fraction": {"context": BIG},
    "data.train_size": {"context": {**BIG, "data": {"train_size": 1}}},
    # n = round(multiple · c·M·ln M) must be ≥ 1 sample: just above 0, probe with 0.01 (n = 3 at M = 32).
    "data.critical_multiple": {
        "context": {"task": {"group": "cyclic", "order": 32, "operands": 4}, "data": {"critical_multiple": 1.0}},
        "inside_min": 0.01,
    },
    "model.hidden": {"context": {}},
    "model.extra_layers": {"context": {}},
    "model.top_init_scale": {"context": {}},
    "model.output_scale": {"context": {}},
    "model.ridge_top": {"context": {}},
    "training.lr": {"context": {}},
    "training.weight_decay": {"context": {}},
    "training.epochs": {"context": {}},
    "training.step_size": {"context": {}},
    "training.gamma": {"context": {}},
    "training.milestones[]": {"context": {}},
    "training.milestones": {"context": {}, "item": "ascending"},
    "training.momentum": {"context": {}},
    "training.eval_every": {"context": {}},
    "training.dense_until": {"context": {}},
    "training.checkpoint_epochs[]": {"context": {"training": {"epochs": 100_000}}},
    "training.checkpoint_epochs": {"context": {"training": {"epochs": 100_000}}, "item": "ascending"},
    "training.diagnostics_every": {"context": {}},
    "training.success_threshold": {"context": {}},
    "training.success_window": {"context": {}},
    "seed": {"context": {}},
}


def documented_bounds(doc) -> dict[str, dict]:
    """{dotted field: {minimum, maximum, exclusiveMinimum, exclusiveMaximum, maxItems}} from the document."""
    out: dict[str, dict] = {}
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxItems")
    schemas = doc["components"]["schemas"]
    for name, section in SECTIONS.items():
        kinds = [schemas[k["$ref"].rsplit("/", 1)[-1]] for k in schemas[name].get("oneOf", [])]
        properties = {f: p for kind in kinds or [schemas[name]] for f, p in kind["properties"].items()}
        for field, prop in properties.items():
            path = f"{section}.{field}" if section else field
            for sub, node in ((path, prop), (path + "[]", prop.get("items") or {})):
                found = {k: node[k] for k in keys if k in node}
                if "minimum" in found or "maximum" in found or "maxItems" in found:
                    out[sub] = found
    return out


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, val in over.items():
        out[key] = (
            _merge(out.get(key, {}), val)
            if isinstance(val, dict) and key not in ("task", "data")
            else copy.deepcopy(val)
        )
    return out


def _set(spec: dict, path: str, value) -> dict:
    spec = copy.deepcopy(spec)
    *parents, last = path.split(".")
    node = spec
    for p in parents:
        node = node.setdefault(p, {})
    if last == "train_fraction" or last in ("train_size", "critical_multiple"):
        node.clear()  # exactly one of the three
    node[last] = value
    return spec


def rejects(spec: dict, field: str) -> list[str]:
    """The messages validate_spec (what POST /experiments runs) gives `field` or its items."""
    field = field.removesuffix("[]")
    try:
        validate_spec(spec)
    except SpecError as exc:
        return [m for k, msgs in exc.errors.items() if k == field or k.startswith(field + "[") for m in msgs]
    return []


def _cayley(n: int) -> list[list[int]]:
    return [[(i + j) % n for j in range(n)] for i in range(n)]


def _probe(row: dict, field: str, value) -> dict:
    """The spec that puts `value` in `field` (for "[]" rows: as the only item of the list)."""
    spec = _merge(BASE, row["context"])
    if row.get("cayley"):
        return _set(spec, "task", {"group": "table", "table": _cayley(value)})
    if field.endswith("[]"):
        return _set(spec, field[:-2], [value])
    return _set(spec, field, value)


def _list_of(row: dict, n: int) -> list:
    if row.get("item") == "ascending":
        return list(range(1, n + 1))
    return [row["item"]] * n


def test_every_bounded_field_has_a_row(doc):
    assert set(documented_bounds(doc)) == set(TABLE), set(documented_bounds(doc)) ^ set(TABLE)


@pytest.mark.parametrize("field", sorted(TABLE))
def test_documented_bounds_are_the_enforced_bounds(doc, field):
    """At each documented bound the field is accepted (or, if exclusive, rejected) and just past it
    rejected, with a message; the spec around it is chosen so nothing else decides."""
    bounds, row = documented_bounds(doc)[field], TABLE[field]
    if "maxItems" in bounds:
        n = bounds["maxItems"]
        if row.get("cayley"):
            at, past = _probe(row, field, n), _probe(row, field, n + 1)
            if field.endswith("[]"):  # one row too long: the rows of an n-table, one with an extra entry
                past = _set(_merge(BASE, row["context"]), "task", {"group": "table", "table": _cayley(n)})
                past["task"]["table"][0] = [*past["task"]["table"][0], 0]
                field_key = "task.table"
            else:
                field_key = field
            assert not rejects(at, "task.table"), at["task"]["table"][:1]
            assert rejects(past, field_key)
        else:
            base = _merge(BASE, row["context"])
            assert not rejects(_set(base, field, _list_of(row, n)), field)
            assert rejects(_set(base, field, _list_of(row, n + 1)), field)
        if "maximum" not in bounds and "minimum" not in bounds:
            return
    if row.get("cayley"):
        return
    integer = isinstance(bounds.get("maximum", bounds.get("minimum")), int)
    step = (lambda v: 1) if integer else (lambda v: max(abs(v), 1.0) * 1e-6)
    if "maximum" in bounds:
        hi = bounds["maximum"]
        fit = row.get("fit", lambda v: v)
        if bounds.get("exclusiveMaximum"):
            assert rejects(_probe(row, field, hi), field), (field, hi)
            assert not rejects(_probe(row, field, hi - step(hi)), field), (field, hi)
        else:
            assert not rejects(_probe(row, field, fit(hi)), field), (field, fit(hi))
        assert rejects(_probe(row, field, hi + step(hi)), field), (field, hi)
    if "minimum" in bounds:
        lo = bounds["minimum"]
        if bounds.get("exclusiveMinimum"):
            assert rejects(_probe(row, field, lo), field), (field, lo)
            inside = row.get("inside_min", lo + step(lo))
            assert not rejects(_probe(row, field, inside), field), (field, inside)
        else:
            assert not rejects(_probe(row, field, lo), field), (field, lo)
            assert rejects(_probe(row, field, lo - step(lo)), field), (field, lo)


def test_a_changed_limit_changes_the_document_and_the_check_alike(monkeypatch, service_factory, tmp_path):
    monkeypatch.setenv("LI2_MAX_HIDDEN", "100")
    svc = service_factory(f"sqlite:///{tmp_path / 'env.sqlite'}")
    hidden = svc.client.get(DOC).json["components"]["schemas"]["Model"]["properties"]["hidden"]
    assert (hidden["minimum"], hidden["maximum"]) == (1, 100)
    r = svc.client.post("/api/v1/experiments", json=_set(BASE, "model.hidden", 101), headers=svc.auth())
    assert r.status_code == 422 and r.json["errors"]["model.hidden"] == ["must be between 1 and 100 (LI2_MAX_HIDDEN)"]
    assert not rejects(_set(BASE, "model.hidden", 100), "model.hidden")


# ---------------------------------------------------------------------------------- errors, headers


def test_every_error_is_a_problem_document_naming_the_field(svc):
    post = svc.client.post
    cases = {
        "spec": post("/api/v1/experiments", json=_set(BASE, "model.hidden", 0), headers=svc.auth()),
        "query": svc.client.get("/api/v1/experiments?page=0", headers=svc.auth()),
        "content type": post("/api/v1/experiments", data="x", content_type="text/plain", headers=svc.auth()),
        "unknown id": svc.client.get("/api/v1/experiments/" + "0" * 32, headers=svc.auth()),
        "no token": svc.client.get("/api/v1/experiments"),
        "method": svc.client.delete("/api/v1/sweeps"),
    }
    for label, r in cases.items():
        body = r.json
        assert r.mimetype == PROBLEM, (label, r.mimetype)
        assert body["status"] == body["code"] == r.status_code and body["detail"] == body["message"], label
        assert body["type"] == "about:blank" and body["title"], label
    assert cases["spec"].json["errors"] == {"model.hidden": ["must be between 1 and 8192 (LI2_MAX_HIDDEN)"]}
    assert "page" in cases["query"].json["errors"] and "Content-Type" in cases["content type"].json["errors"]


def test_202_answers_carry_location(svc):
    exp = svc.client.post("/api/v1/experiments", json=BASE, headers=svc.auth())
    assert exp.status_code == 202 and exp.headers["Location"] == f"/api/v1/experiments/{exp.json['id']}"
    assert svc.client.get(exp.headers["Location"], headers=svc.auth()).json["id"] == exp.json["id"]
    cancel = svc.client.post(f"/api/v1/experiments/{exp.json['id']}/cancel", headers=svc.auth())
    assert cancel.status_code == 202 and cancel.headers["Location"] == exp.headers["Location"]
    sweep = svc.client.post("/api/v1/sweeps", json={"base": BASE, "grid": {"seed": [1, 2]}}, headers=svc.auth())
    assert sweep.status_code == 202 and sweep.headers["Location"] == f"/api/v1/sweeps/{sweep.json['id']}"
    stop = svc.client.post(f"/api/v1/sweeps/{sweep.json['id']}/cancel", headers=svc.auth())
    assert stop.status_code == 202 and stop.headers["Location"] == sweep.headers["Location"]


def test_metrics_honour_accept_text_csv_and_format_wins(svc):
    exp_id = svc.client.post("/api/v1/experiments", json=BASE, headers=svc.auth()).json["id"]
    url = f"/api/v1/experiments/{exp_id}/metrics"
    as_csv = svc.client.get(url, headers={**svc.auth(), "Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    as_json = svc.client.get(url + "?format=json", headers={**svc.auth(), "Accept": "text/csv"})
    assert as_json.mimetype == "application/json" and "columns" in as_json.json
    plain = svc.client.get(url, headers={**svc.auth(), "Accept": "*/*"})
    assert plain.mimetype == "application/json"
    preferred = svc.client.get(url, headers={**svc.auth(), "Accept": "application/json;q=0.5, text/csv"})
    assert preferred.mimetype == "text/csv"
