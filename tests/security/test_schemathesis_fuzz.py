"""Schemathesis fuzzes every operation of the OpenAPI document against the real WSGI app.

For each operation, Hypothesis generates up to MAX_EXAMPLES requests from the document (bodies,
query strings, path ids, headers) and sends them with a valid token; path ids are tried both as
generated and pinned to real objects of the caller (so handlers past the 404 get fuzzed too).
Checks on every response: no 5xx, and the body matches the schema the document declares for that
status code and content type. All failures are collected and reported together.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def fuzz_operation(operation, headers: dict, path_parameters: dict | None) -> str | None:
    """Run the bounded fuzz of one operation; the failure text, or None when every case passed."""
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
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.label}{' (real ids)' if path_parameters else ''}: {str(exc)[:1500]}"
    return None


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
        if names & set(real_ids):
            failures.append(fuzz_operation(op, headers, {k: v for k, v in real_ids.items() if k in names}))
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
