"""Every route needs a token except health, readiness, the docs and the dashboard's page shells;
accounts and tokens.

The route list comes from the app's own url_map, so a route added later without thought is
covered automatically: it must answer 401 without a token (auth is on by default).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from li2_service.auth import hash_token
from li2_store import models

PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/api/v1/openapi.json", "/api/v1/docs", "/api/v1/redoc"}
# The dashboard's pages: shells without data whose scripts call the API with the user's token.
DASHBOARD = {"/", "/runs/<run_id>", "/compare", "/sweeps", "/sweeps/<sweep_id>", "/signin"}
FILES = {"static", "dashboard.static", "assets.vendor"}  # public files (tests/service/test_dashboard_shell.py)


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FILES or rule.rule.startswith("/api/v1/docs/"):
            continue
        path = re.sub(r"<(?:int:)?(\w+)>", lambda m: "7" if "int:" in m.group(0) else "0" * 32, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.rule, method, path


def test_every_protected_route_answers_401_without_or_with_a_bad_token(sqlite_svc):
    client = sqlite_svc.client
    seen = set()
    for rule, method, path in _routes(sqlite_svc.app):
        seen.add(rule)
        if rule in PUBLIC:
            assert client.open(path, method=method).status_code == 200, rule
            continue
        if rule in DASHBOARD:  # never asks for a token (a POSTed sign-in form is refused unread: 400)
            assert client.open(path, method=method).status_code == (200 if method == "GET" else 400), rule
            continue
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": "Basic YTpi"},
            {"Authorization": "Bearer " + "x" * 5000},
        ):
            r = client.open(path, method=method, headers=headers, json={})
            assert r.status_code == 401, (method, rule, headers.keys(), r.status_code)
            assert r.headers["WWW-Authenticate"].startswith("Bearer") and r.json["code"] == 401
    assert {"/api/v1/experiments", "/api/v1/sweeps/<sweep_id>/scaling-law"} <= seen
    assert seen >= PUBLIC


def test_openapi_documents_bearer_security_on_every_user_route(sqlite_svc):
    doc = sqlite_svc.client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]
    assert "ExperimentSpec" in doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue  # path-level "parameters"
            if path in ("/healthz", "/readyz"):
                assert op["security"] == []
            else:
                assert op.get("security", doc["security"]) == [{"bearerAuth": []}], path
    assert sqlite_svc.client.get("/openapi.json").json["paths"] == doc["paths"]


def test_tokens_are_stored_hashed(svc):
    with svc.engine.connect() as conn:
        hashes = set(conn.execute(sa.select(models.User.token_hash)).scalars())
    assert hashes == {hash_token(t) for t in svc.tokens.values()}
    assert not hashes & set(svc.tokens.values())


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_users_see_only_their_own_and_others_ids_are_404(svc, make_spec, who):
    other = "bob" if who == "alice" else "alice"
    exp_id = svc.client.post("/api/v1/experiments", json=make_spec(), headers=svc.auth(who)).json["id"]
    sweep_id = svc.client.post(
        "/api/v1/sweeps", json={"base": make_spec(), "grid": {"seed": [4, 5]}}, headers=svc.auth(who)
    ).json["id"]
    for path in (
        f"/api/v1/experiments/{exp_id}",
        f"/api/v1/experiments/{exp_id}/metrics",
        f"/api/v1/experiments/{exp_id}/predictions",
        f"/api/v1/experiments/{exp_id}/checkpoints",
        f"/api/v1/experiments/{exp_id}/checkpoints/1",
        f"/api/v1/sweeps/{sweep_id}",
        f"/api/v1/sweeps/{sweep_id}/runs",
        f"/api/v1/sweeps/{sweep_id}/scaling-law",
    ):
        mine = svc.client.get(path, headers=svc.auth(who))
        theirs = svc.client.get(path, headers=svc.auth(other))
        unknown = svc.client.get(path.replace(exp_id, "f" * 32).replace(sweep_id, "e" * 32), headers=svc.auth(who))
        assert mine.status_code != 404 or path.endswith("/checkpoints/1"), path
        assert theirs.status_code == 404 and unknown.status_code == 404, path
        assert theirs.json["message"] == unknown.json["message"]  # nothing tells them apart
    for path in (f"/api/v1/experiments/{exp_id}/cancel", f"/api/v1/sweeps/{sweep_id}/cancel"):
        assert svc.client.post(path, headers=svc.auth(other)).status_code == 404
    assert svc.client.get(f"/api/v1/experiments/{exp_id}", headers=svc.auth(who)).json["status"] == "queued"
    assert svc.client.get("/api/v1/experiments", headers=svc.auth(other)).json["total"] == 0
    assert svc.client.get("/api/v1/sweeps", headers=svc.auth(other)).json["total"] == 0
    # The same spec from the other user is a new run, never the first user's cached one.
    theirs = svc.client.post("/api/v1/experiments", json=make_spec(), headers=svc.auth(other))
    assert theirs.status_code == 202 and theirs.json["id"] != exp_id


def test_admin_sees_everyone_and_filters_by_user(svc, make_spec):
    a = svc.client.post("/api/v1/experiments", json=make_spec(seed=1), headers=svc.auth("alice")).json["id"]
    b = svc.client.post("/api/v1/experiments", json=make_spec(seed=2), headers=svc.auth("bob")).json["id"]
    everyone = svc.client.get("/api/v1/experiments", headers=svc.auth("root")).json
    assert {i["id"] for i in everyone["items"]} == {a, b}
    only_bob = svc.client.get("/api/v1/experiments?user=bob", headers=svc.auth("root")).json
    assert [i["id"] for i in only_bob["items"]] == [b]
    assert svc.client.get(f"/api/v1/experiments/{a}", headers=svc.auth("root")).status_code == 200
    assert svc.client.post(f"/api/v1/experiments/{a}/cancel", headers=svc.auth("root")).status_code == 202
    assert svc.client.get("/api/v1/experiments?user=bob", headers=svc.auth("alice")).status_code == 403
