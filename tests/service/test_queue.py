"""GET /api/v1/queue: running batches, waiting users in fair-share order, estimated starts.

The worker's writes (claims, finished runs with their wall times, worker registration) are made
directly in the database, as the worker makes them. Durations come from those measured runs, so
the expected estimates follow from the numbers written here. SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from li2_store import dispatch, models
from li2_store.db import database_now, session_scope


def submit(svc, body, who):
    r = svc.client.post("/api/v1/experiments", json=body, headers=svc.auth(who))
    assert r.status_code == 202, r.json
    return r.json["id"]


@pytest.mark.parametrize("latency", [0, 3])
def test_the_queue_estimates_each_users_turn_from_measured_epoch_rates(svc, make_spec, latency):
    """`latency`: the measured release-to-start time of finished runs (0: none measured), added
    before each batch the estimate places."""
    epochs = 20  # make_spec's
    done = submit(svc, make_spec(seed=1), "alice")
    running = submit(svc, make_spec(seed=2), "alice")
    waiting_a = [submit(svc, make_spec(seed=s), "alice") for s in (3, 4)]
    waiting_b = submit(svc, make_spec(seed=5), "bob")
    with session_scope(svc.engine) as s:
        now = database_now(s)
        dispatch.register_worker(s, "li2-1@host", 1, "cuda:0")
        e = models.Experiment
        # measured: 1 s per epoch (20 s for 20 epochs)
        s.execute(
            sa.update(e)
            .where(e.id == done)
            .values(
                status="succeeded",
                released_at=now - timedelta(seconds=60 + latency) if latency else None,
                started_at=now - timedelta(seconds=60),
                finished_at=now - timedelta(seconds=40),
            )
        )
        # running for 5 s of its expected 20 s: 15 s left
        s.execute(
            sa.update(e)
            .where(e.id == running)
            .values(
                status="running",
                claimed_by="li2-1@host/77",
                started_at=now - timedelta(seconds=5),
                released_at=now,
                release_id="r1",
                progress_epoch=5,
            )
        )
        alice = s.scalar(sa.select(models.User.id).where(models.User.name == "alice"))
        dispatch.shares(s, [alice])[alice].pass_value = 1.0  # alice was served once already

    q = svc.client.get("/api/v1/queue", headers=svc.auth("alice")).json
    assert q["slots"] == 1 and q["released"] == 0 and q["dispatch"] == "fair"
    (batch,) = q["running"]
    assert (batch["user"], batch["device"], batch["run_ids"], batch["epoch"], batch["epochs"]) == (
        "alice",
        "cuda:0",
        [running],
        5,
        epochs,
    )
    by_user = {w["user"]: w for w in q["waiting"]}
    # bob's turn comes first (alice was served), after the running batch's 15 s and a start-up;
    # alice's after bob's 20 s and another start-up
    bob_start, alice_start = 15 + latency, 15 + latency + 20 + latency
    assert by_user["bob"]["position"] == 1 and abs(by_user["bob"]["estimated_start_s"] - bob_start) < 1
    assert by_user["alice"]["position"] == 2 and abs(by_user["alice"]["estimated_start_s"] - alice_start) < 1
    assert by_user["alice"]["runs"] == 2 and by_user["alice"]["batches"] == 1  # one shape: trained together
    assert by_user["alice"]["next_run_ids"] == waiting_a
    assert by_user["bob"]["next_run_ids"] is None  # not alice's to see
    assert svc.client.get("/api/v1/queue", headers=svc.auth("root")).json["waiting"][0]["next_run_ids"] == [
        waiting_b
    ]  # admins see everyone's


def test_without_measurements_the_estimate_is_unknown_not_invented(svc, make_spec):
    submit(svc, make_spec(seed=1), "alice")
    q = svc.client.get("/api/v1/queue", headers=svc.auth("bob")).json
    (w,) = q["waiting"]
    assert w["position"] == 1 and w["estimated_start_s"] is None and w["estimated_start"] is None
    assert svc.client.get("/api/v1/queue").status_code == 401
    doc = svc.client.get("/api/v1/openapi.json").json
    props = doc["components"]["schemas"]["Queue"]["properties"]
    assert "get" in doc["paths"]["/api/v1/queue"] and {"running", "waiting", "workers"} <= set(props)


def test_a_submit_releases_its_batch_for_an_idle_slot_at_once(service_factory, db_url, make_spec):
    """runs.release_now: in fair dispatch the API runs one release pass after the commit, so an
    idle worker need not wait for its dispatcher's next pass; the pass's budget still holds."""
    svc = service_factory(db_url, ENQUEUE=None)  # the real path: fair mode, sent to the SQLite broker
    first = submit(svc, make_spec(seed=1), "alice")
    second = submit(svc, make_spec(seed=2), "bob")
    with session_scope(svc.engine) as s:
        released = {e.id: e.released_at for e in s.scalars(sa.select(models.Experiment))}
    assert released[first] is not None  # no worker registered yet: one message is kept out
    assert released[second] is None  # that message is unclaimed: no idle slot for a second one
    with session_scope(svc.engine) as s:  # the first run is claimed and ends: its slot is idle again
        s.execute(sa.update(models.Experiment).where(models.Experiment.id == first).values(status="succeeded"))
    svc.app.extensions["li2"].config["DISPATCH"] = "fifo"  # fifo sends at submit and releases nothing
    submit(svc, make_spec(seed=3), "alice")
    with session_scope(svc.engine) as s:
        assert s.get(models.Experiment, second).released_at is None
    svc.app.extensions["li2"].config["DISPATCH"] = "fair"
    fourth = submit(svc, make_spec(seed=4), "alice")
    with session_scope(svc.engine) as s:  # the idle slot takes the waiting run next in fair order
        assert s.get(models.Experiment, second).released_at is not None
        assert s.get(models.Experiment, fourth).released_at is None
