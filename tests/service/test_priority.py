"""The submit field `priority`: stored per run, outside the spec hash, `high` rationed for non-admins.

The dispatch order it produces (a user's high run first, other users' turns unchanged) is tested in
tests/worker/test_dispatch.py; here: the API's side, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from li2_store import dispatch, models
from li2_store.db import session_scope


def submit(svc, body, who="alice"):
    return svc.client.post("/api/v1/experiments", json=body, headers=svc.auth(who))


def priorities(svc) -> dict[str, int]:
    with svc.engine.connect() as c:
        return dict(c.execute(sa.select(models.Experiment.id, models.Experiment.priority)).all())


def test_priority_is_stored_in_either_body_form_and_not_part_of_the_spec(svc, make_spec):
    low = submit(svc, {"spec": make_spec(seed=1), "priority": "low"})
    high = submit(svc, {**make_spec(seed=2), "priority": "high"})  # bare spec with the field
    plain = submit(svc, make_spec(seed=3))
    assert low.status_code == high.status_code == plain.status_code == 202, (low.json, high.json)
    assert priorities(svc) == {low.json["id"]: 0, high.json["id"]: 2, plain.json["id"]: 1}
    assert "priority" not in high.json["spec"]
    again = submit(svc, {"spec": make_spec(seed=2), "priority": "low"})  # same spec: the same run
    assert again.status_code == 200 and again.json["id"] == high.json["id"]


def test_an_unknown_priority_is_a_422_naming_the_field_and_changes_nothing(svc, make_spec):
    before = svc.counts()
    for bad in ("urgent", 3, None):
        r = submit(svc, {"spec": make_spec(), "priority": bad})
        assert r.status_code == 422 and "priority" in r.json["errors"], r.json
    r = svc.client.post(
        "/api/v1/sweeps",
        json={"base": make_spec(), "grid": {"seed": [1, 2]}, "priority": "top"},
        headers=svc.auth("alice"),
    )
    assert r.status_code == 422 and "priority" in r.json["errors"]
    assert svc.counts() == before and svc.enqueued == []


def test_high_beyond_the_allowance_is_a_403_for_users_but_not_for_admins(service_factory, db_url, make_spec):
    svc = service_factory(db_url, HIGH_ALLOWANCE=2)
    sweep = {"base": make_spec(), "grid": {"seed": [1, 2]}, "priority": "high"}
    ok = svc.client.post("/api/v1/sweeps", json=sweep, headers=svc.auth("alice"))
    assert ok.status_code == 202
    before = svc.counts()
    over = submit(svc, {"spec": make_spec(seed=5), "priority": "high"})
    assert over.status_code == 403 and "priority" in over.json["errors"] and "allowance is 2" in over.json["message"]
    assert svc.counts() == before
    assert submit(svc, {"spec": make_spec(seed=5), "priority": "normal"}).status_code == 202
    assert submit(svc, {"spec": make_spec(seed=6), "priority": "high"}, who="root").status_code == 202
    # an admin raises alice's own allowance
    with session_scope(svc.engine) as s:
        alice = s.scalar(sa.select(models.User.id).where(models.User.name == "alice"))
        dispatch.set_share(s, alice, high_allowance=3)
    assert submit(svc, {"spec": make_spec(seed=7), "priority": "high"}).status_code == 202
