"""Every route × every HTTP method has an explicit authorization decision, and the app enforces it.

Modelled on MLflow's authorization-coverage guard: the table
DECISIONS below is the single list of what may be called without a token. A route added to the app
(or to the OpenAPI document) without an entry here fails `test_every_route_has_a_decision`, so a
new endpoint cannot ship unreviewed. The other tests send real requests for every entry: with no
token, a malformed header, a wrong token, and a valid one.
"""

from __future__ import annotations

import re

import pytest

PUBLIC = "public"  # answers without a token (health, readiness, API docs)
USER = "user"  # needs a valid bearer token; objects are scoped to their owner (admins: all)

# (werkzeug rule, method) -> decision. HEAD and OPTIONS are derived by Flask from GET / any route.
DECISIONS: dict[tuple[str, str], str] = {
    ("/healthz", "GET"): PUBLIC,
    ("/readyz", "GET"): PUBLIC,
    ("/openapi.json", "GET"): PUBLIC,
    ("/api/v1/openapi.json", "GET"): PUBLIC,
    ("/api/v1/docs", "GET"): PUBLIC,
    ("/api/v1/redoc", "GET"): PUBLIC,
    ("/static/<path:filename>", "GET"): PUBLIC,
    # The dashboard's pages are shells without data (their scripts call the API with the user's
    # token) and the vendored scripts are public files: no token, nothing to protect.
    ("/assets/vendor/<path:name>", "GET"): PUBLIC,
    ("/assets/dashboard/<path:filename>", "GET"): PUBLIC,
    ("/", "GET"): PUBLIC,
    ("/runs/<run_id>", "GET"): PUBLIC,
    ("/compare", "GET"): PUBLIC,
    ("/sweeps", "GET"): PUBLIC,
    ("/sweeps/<sweep_id>", "GET"): PUBLIC,
    ("/signin", "GET"): PUBLIC,
    ("/signin", "POST"): PUBLIC,
    ("/api/v1/experiments", "POST"): USER,
    ("/api/v1/experiments", "GET"): USER,
    ("/api/v1/experiments/<exp_id>", "GET"): USER,
    ("/api/v1/experiments/<exp_id>/metrics", "GET"): USER,
    ("/api/v1/experiments/<exp_id>/timeline", "GET"): USER,
    ("/api/v1/experiments/<exp_id>/features", "GET"): USER,
    ("/api/v1/experiments/<exp_id>/predictions", "GET"): USER,
    ("/api/v1/experiments/<exp_id>/checkpoints", "GET"): USER,
    ("/api/v1/experiments/<exp_id>/checkpoints/<int:epoch>", "GET"): USER,
    ("/api/v1/experiments/<exp_id>/cancel", "POST"): USER,
    ("/api/v1/experiments/<exp_id>", "PATCH"): USER,
    ("/api/v1/experiments/<exp_id>", "DELETE"): USER,
    ("/api/v1/experiments/<exp_id>/archive", "GET"): USER,
    ("/api/v1/sweeps", "POST"): USER,
    ("/api/v1/sweeps", "GET"): USER,
    ("/api/v1/sweeps/<sweep_id>", "GET"): USER,
    ("/api/v1/sweeps/<sweep_id>/runs", "GET"): USER,
    ("/api/v1/sweeps/<sweep_id>/cancel", "POST"): USER,
    ("/api/v1/sweeps/<sweep_id>/scaling-law", "GET"): USER,
    ("/api/v1/sweeps/<sweep_id>", "PATCH"): USER,
    ("/api/v1/sweeps/<sweep_id>", "DELETE"): USER,
    ("/api/v1/searches", "POST"): USER,
    ("/api/v1/searches", "GET"): USER,
    ("/api/v1/searches/<search_id>", "GET"): USER,
    ("/api/v1/searches/<search_id>/runs", "GET"): USER,
    ("/api/v1/searches/<search_id>/cancel", "POST"): USER,
    ("/api/v1/searches/<search_id>/scaling-law", "GET"): USER,
    ("/api/v1/queue", "GET"): USER,
}

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
IMPLICIT = {"HEAD", "OPTIONS"}


def served(app) -> set[tuple[str, str]]:
    """(rule, method) pairs the Flask app answers, without the implicit HEAD/OPTIONS."""
    return {(r.rule, m) for r in app.url_map.iter_rules() for m in r.methods - IMPLICIT}


def documented(client) -> set[tuple[str, str]]:
    """(rule, method) pairs of the OpenAPI document, with {name} turned back into werkzeug's <...>."""
    doc = client.get("/api/v1/openapi.json").get_json()
    out = set()
    for path, item in doc["paths"].items():
        for method in item:
            if method.upper() in ALL_METHODS:
                rule = re.sub(r"\{(\w+)\}", lambda m: "<int:epoch>" if m[1] == "epoch" else f"<{m[1]}>", path)
                out.add((rule, method.upper()))
    return out


def concrete(rule: str, world, experiment_id: str | None = None) -> str:
    """A real URL for a rule: alice's ids, so a valid token gets a real answer, not a 404."""
    return (
        rule.replace("<exp_id>", experiment_id or world.experiment_id)
        .replace("<sweep_id>", world.sweep_id)
        .replace("<search_id>", world.search_id)
        .replace("<int:epoch>", str(world.checkpoint_epoch))
        .replace("<path:filename>", "nothing.css")
        .replace("<run_id>", world.experiment_id)
        .replace("<path:name>", "plotly.min.js")
    )


def disposable_run(engine, world) -> str:
    """A new finished experiment of alice's (a copy of the shared one's row, without result), for a
    DELETE: it must not take the shared run away from the routes tested after it."""
    import sqlalchemy as sa

    from li2_store import models
    from li2_store.db import session_scope

    with session_scope(engine) as s:
        shared = s.get(models.Experiment, world.experiment_id)
        assert shared is not None
        columns = {c.key: getattr(shared, c.key) for c in sa.inspect(models.Experiment).column_attrs}
        row = models.Experiment(**{**columns, "id": models.new_id(), "dedup_key": None})
        s.add(row)
        return row.id


def call(client, method: str, url: str, headers: dict | None = None):
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.open(url, method=method, headers=headers or {}, **body)


def test_every_route_has_a_decision(app, client):
    """Fails when a route (in the app or in the OpenAPI document) has no entry in DECISIONS."""
    missing = (served(app) | documented(client)) - set(DECISIONS)
    assert not missing, f"routes without an authorization decision; add them to DECISIONS: {sorted(missing)}"
    stale = set(DECISIONS) - served(app)
    assert not stale, f"DECISIONS lists routes the app no longer serves: {sorted(stale)}"


def test_openapi_marks_user_routes_as_secured(client):
    """The document tells clients the truth: token routes need bearerAuth, public ones need none."""
    doc = client.get("/api/v1/openapi.json").get_json()
    default = doc.get("security", [])
    for (rule, method), decision in DECISIONS.items():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        op = doc["paths"].get(path, {}).get(method.lower())
        if op is None:
            continue  # docs pages, static files: not API operations
        security = op.get("security", default)
        if decision == USER:
            assert {"bearerAuth": []} in security, f"{method} {path} should declare bearerAuth"
        else:
            assert security in ([], [{}]), f"{method} {path} is public but declares {security}"


BAD_HEADERS = {
    "no header": {},
    "empty bearer": {"Authorization": "Bearer "},
    "basic scheme": {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    "unknown token": {"Authorization": "Bearer not-a-real-token"},
    "token hash instead of token": None,  # filled in per test: the stored sha256 must not work
    "oversized token": {"Authorization": "Bearer " + "A" * 5000},
}


@pytest.mark.parametrize("route", sorted(DECISIONS), ids=lambda r: f"{r[1]} {r[0]}")
def test_decision_is_enforced(route, client, world, engine):
    rule, method = route
    url = concrete(rule, world, disposable_run(engine, world) if method == "DELETE" else None)
    decision = DECISIONS[route]
    if decision == PUBLIC:
        r = call(client, method, url)
        assert r.status_code != 401, f"public {method} {rule} asked for a token"
        assert r.status_code < 500
        return
    import sqlalchemy as sa

    with engine.connect() as c:
        stored_hash = c.scalar(sa.text("SELECT token_hash FROM users WHERE name = 'alice'"))
    for name, headers in BAD_HEADERS.items():
        headers = headers if headers is not None else {"Authorization": f"Bearer {stored_hash}"}
        r = call(client, method, url, headers)
        assert r.status_code == 401, f"{method} {rule} with {name}: {r.status_code} {r.get_data()[:200]!r}"
        assert r.get_json()["code"] == 401 and r.get_json()["message"]
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    r = call(client, method, url, {"Authorization": f"Bearer {world.alice}"})
    assert r.status_code not in (401, 403, 404, 405) and r.status_code < 500, (
        f"alice's own {method} {rule}: {r.status_code} {r.get_data()[:300]!r}"
    )


@pytest.mark.parametrize("rule", sorted({r for r, _ in DECISIONS}))
def test_unserved_methods_answer_405(rule, client, world):
    """Methods a route does not serve answer 405 with Allow, with or without a token, never 5xx."""
    url = concrete(rule, world)
    allowed = {m for r, m in DECISIONS if r == rule}
    for method in sorted(set(ALL_METHODS) - allowed):
        for headers in ({}, {"Authorization": f"Bearer {world.alice}"}):
            r = call(client, method, url, headers)
            assert r.status_code == 405, f"{method} {rule}: {r.status_code}"
            assert set(r.headers["Allow"].replace(" ", "").split(",")) >= allowed


def test_user_filter_is_admin_only(client, world):
    """?user=NAME (list someone else's runs) is the one admin-only switch: 403 for a user."""
    for path in ("/api/v1/experiments?user=alice", "/api/v1/sweeps?user=alice"):
        r = client.get(path, headers={"Authorization": f"Bearer {world.bob}"})
        assert r.status_code == 403, path
        r = client.get(path, headers={"Authorization": f"Bearer {world.root}"})
        assert r.status_code == 200 and r.get_json()["total"] >= 1, path


def test_the_queue_shows_another_users_work_without_ids_or_specs(client, world):
    """GET /queue: bob sees that alice waits (counts, position), never her run ids or specs."""
    spec = {
        "task": {"group": "cyclic", "order": 11},
        "model": {"hidden": 8},
        "training": {"epochs": 20, "eval_every": 10},
        "seed": 424242,
    }
    run_ids = []
    for seed in (424242, 424243):  # the submit releases one for an idle slot; the other waits
        r = client.post(
            "/api/v1/experiments", json={**spec, "seed": seed}, headers={"Authorization": f"Bearer {world.alice}"}
        )
        assert r.status_code == 202, r.get_json()
        run_ids.append(r.get_json()["id"])
    mine = client.get("/api/v1/queue", headers={"Authorization": f"Bearer {world.alice}"})
    theirs = client.get("/api/v1/queue", headers={"Authorization": f"Bearer {world.bob}"})
    assert mine.status_code == theirs.status_code == 200
    alice_row = next(w for w in mine.get_json()["waiting"] if w["user"] == "alice")
    assert alice_row["runs"] >= 1 and alice_row["position"] >= 1
    queued_ids = set(alice_row["next_run_ids"])
    as_bob = next(w for w in theirs.get_json()["waiting"] if w["user"] == "alice")
    assert as_bob["runs"] == alice_row["runs"] and as_bob["next_run_ids"] is None
    text = theirs.get_data(as_text=True)
    assert '"spec"' not in text and not any(i in text for i in [*run_ids, *queued_ids])
