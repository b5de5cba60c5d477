"""Redis and the API restart under load; no run is lost and none runs twice.

- Redis (private, without persistence) is stopped while one run trains and others wait in its
  queue, then started again empty: the queued runs come back from the database (the reaper
  re-enqueues runs left unclaimed), a run submitted during the outage is accepted and runs too,
  and every run ends succeeded with exactly one result.
- The API process is killed mid-sweep and started again: the sweep completes and every one of its
  runs has exactly one result.
"""

from __future__ import annotations

import signal

import pytest
from stack import small_spec, wait_until

from li2_store import models
from li2_store.db import utcnow

pytestmark = pytest.mark.slow


def assert_each_succeeded_once(stack, ids: list[str], timeout: float) -> list[dict]:
    rows = [stack.wait_status(i, ("succeeded", "failed", "cancelled"), timeout) for i in ids]
    for row in rows:
        assert row["status"] == "succeeded", row
        assert stack.count(models.Result, experiment_id=row["id"]) == 1, row["id"]
    return rows


@pytest.mark.timeout(300)
def test_redis_restart_loses_nothing(stack, redis_server):
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a")
    long_id = api.post("/experiments", json=small_spec(1500, seed=1)).json()["id"]
    stack.wait_status(long_id, ("running",), 90)
    waiting = [api.post("/experiments", json=small_spec(300, seed=s)).json()["id"] for s in (2, 3)]
    assert all(stack.status(i) == "queued" for i in waiting)

    stack.note("stopping Redis")
    redis_server.stop()  # the queue, with the waiting runs' messages, is gone
    outage_started = utcnow()
    during = api.post("/experiments", json=small_spec(300, seed=4))
    assert during.status_code == 202, during.text  # the row is the truth; the send is retried later
    waiting.append(during.json()["id"])
    redis_server.start()
    stack.note("Redis started again, empty")

    rows = assert_each_succeeded_once(stack, [long_id, *waiting], 240)
    stack.note(
        f"all {len(rows)} runs succeeded: "
        + ", ".join(f"{r['id'][:8]} attempt {r['attempt']} enqueued {r['enqueued_at']}" for r in rows)
    )
    for row in rows[1:]:
        assert row["enqueued_at"] > outage_started, f"run {row['id']} was never re-enqueued after the outage"
    assert "re-enqueueing" in stack.workers["a"].log()
    stack.assert_settled()


@pytest.mark.timeout(300)
def test_api_restart_mid_sweep_completes_the_sweep(stack):
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a")
    r = api.post("/sweeps", json={"base": small_spec(600), "grid": {"task.order": [11, 13], "seed": [1, 2]}})
    assert r.status_code == 202, r.text
    sweep_id = r.json()["id"]
    assert r.json()["n_runs"] == 4
    wait_until(lambda: api.get(f"/sweeps/{sweep_id}").json()["counts"]["running"] >= 1, 90, "a sweep run to start")

    stack.note("SIGKILL to the API")
    stack.api_proc.kill_group(signal.SIGKILL)  # a crash, not a clean stop
    stack.api_proc.wait(10)
    stack.start_api()
    stack.note("API answering again")

    def finished():
        body = api.get(f"/sweeps/{sweep_id}").json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    body = wait_until(finished, 240, f"sweep {sweep_id} to finish", 0.5)
    assert body["status"] == "succeeded", body
    assert body["counts"]["succeeded"] == 4 and body["progress"] == 1.0
    runs = api.get(f"/sweeps/{sweep_id}/runs").json()["items"]
    assert len(runs) == 4
    assert_each_succeeded_once(stack, [run["id"] for run in runs], 10)
    stack.assert_settled()
