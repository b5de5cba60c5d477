"""Schemathesis fuzzes every operation of the OpenAPI document against the real WSGI app.

Two runs. The link run follows the document's own links: each create operation is called with
its schema's example, and every operation its 2xx answer links to is fuzzed with positive data and
the ids the link names (`$response.body#/id`; a checkpoint listing links on to the download of a
listed epoch); each must be reached (answered other than 404/422, so its handler used the id), and
every operation that takes an id must be linked to. The broad run: for each operation, Hypothesis
generates up to MAX_EXAMPLES requests from the document (bodies, query strings, path ids, headers)
and sends them with a valid token; path ids are tried both as generated and pinned to real
objects of the caller. Checks on every response: no 5xx, and the body matches the schema the
document declares for that status code and content type. All failures are reported together.
The whole file takes about 35 s on one core."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def fuzz_operation(operation, headers: dict, path_parameters: dict | None, seen: list[int] | None = None) -> str | None:
    """Run the bounded fuzz of one operation; the failure text, or None when every case passed.
    `seen` collects the status of every answer."""
    strategy = operation.as_strategy(path_parameters=path_parameters) if path_parameters else operation.as_strategy()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=strategy)
    def run(case):
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        if seen is not None:
            seen.append(response.status_code)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.label}{' (real ids)' if path_parameters else ''}: {str(exc)[:1500]}"
    return None


@pytest.mark.slow
def test_fuzz_every_operation_from_the_openapi_document(app, world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    headers = {"Authorization": f"Bearer {world.alice}"}
    real_ids = {"exp_id": world.experiment_id, "sweep_id": world.sweep_id}
    failures = []
    for op in operations:
        names = {p.name for p in op.path_parameters}
        failures.append(fuzz_operation(op, headers, None))
        if names & set(real_ids) and op.method.upper() != "DELETE":  # the world's objects must stay
            failures.append(fuzz_operation(op, headers, {k: v for k, v in real_ids.items() if k in names}))
    failures = [f for f in failures if f]
    assert not failures, "\n\n".join(failures)


def _resolve(expression: str, body, path_parameters: dict):
    """A link's runtime expression: `$response.body#/a/0/b` in the JSON answer, or `$request.path.NAME`."""
    if expression.startswith("$request.path."):
        return path_parameters[expression.removeprefix("$request.path.")]
    assert expression.startswith("$response.body#/"), expression
    for part in expression.removeprefix("$response.body#/").split("/"):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


def _follow(links: dict, body, path_parameters: dict, by_id: dict, by_label: dict, headers: dict, out: dict):
    """Fuzz every operation `links` names with the parameters they give; record failures and reach."""
    # Operations that remove the object go last, so every other one still finds it.
    for link in sorted(links.values(), key=lambda link: by_id[link["operationId"]].startswith("DELETE ")):
        target = by_id[link["operationId"]]
        params = {name: _resolve(expr, body, path_parameters) for name, expr in link["parameters"].items()}
        seen: list[int] = []
        out["failures"].append(fuzz_operation(by_label[target], headers, params, seen))
        out["linked"].add(target)
        if any(code not in (404, 422) for code in seen):
            out["reached"].add(target)


@pytest.mark.slow
def test_links_take_every_create_to_every_operation_that_takes_its_id(app, world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    by_id = {
        op["operationId"]: f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }
    by_label = {op.label: op for op in operations}
    headers = {"Authorization": f"Bearer {world.bob}"}  # bob's own quota: the broad run fills alice's
    examples = {
        "experiments_submit": "Submit",
        "sweeps_submit": "SweepSubmit",
        "searches_submit": "SearchSubmit",
    }
    out: dict = {"failures": [], "reached": set(), "linked": set()}
    for create, component in examples.items():
        op = by_label[by_id[create]]
        example = doc["components"]["schemas"][component]["example"]
        response = op.Case(body=example, media_type="application/json").call_and_validate(
            headers=headers, checks=CHECKS
        )
        assert response.status_code == 202, (create, response.status_code, response.text[:500])
        links = doc["paths"][op.path]["post"]["responses"]["202"]["links"]
        _follow(links, response.json(), {}, by_id, by_label, headers, out)
    # A listing links on to what it lists: alice's finished run has stored checkpoints.
    alice = {"Authorization": f"Bearer {world.alice}"}
    listing = by_label[by_id["experiments_list_checkpoints"]]
    path = {"exp_id": world.experiment_id}
    response = listing.Case(path_parameters=path).call_and_validate(headers=alice, checks=CHECKS)
    links = doc["paths"][listing.path]["get"]["responses"]["200"]["links"]
    _follow(links, response.json(), path, by_id, by_label, alice, out)
    failures, reached, linked = out["failures"], out["reached"], out["linked"]
    with_ids = {
        op.label for op in operations if op.path_parameters and "epoch" not in {p.name for p in op.path_parameters}
    }
    assert with_ids <= linked, with_ids - linked  # every operation taking an id is linked to
    assert linked == reached, linked - reached
    failures = [f for f in failures if f]
    assert not failures, "\n\n".join(failures)


def test_the_fuzz_harness_reports_a_broken_operation():
    """The harness can fail: an operation that answers 500, or breaks its schema, is reported."""
    from flask import Flask

    app = Flask("broken")
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/boom": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/liar": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["id"],
                                        "properties": {"id": {"type": "string"}},
                                    }
                                }
                            },
                        }
                    }
                }
            },
        },
    }
    app.get("/openapi.json", endpoint="doc")(lambda: doc)
    app.get("/boom", endpoint="boom")(lambda: ("no", 500))
    app.get("/liar", endpoint="liar")(lambda: {"id": 5})
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    found = {op.label: fuzz_operation(op, {}, None) for op in (r.ok() for r in schema.get_all_operations())}
    assert found["GET /boom"] and "Server error" in found["GET /boom"], found
    assert found["GET /liar"] and "schema" in found["GET /liar"].lower(), found
