"""Redis, the API and PostgreSQL restart under load; no run is lost and none runs twice.

- Redis (private, without persistence) is stopped while one run trains and others wait in its
  queue, then started again empty: the queued runs come back from the database (the reaper
  re-enqueues runs left unclaimed), a run submitted during the outage is accepted and runs too,
  and every run ends succeeded with exactly one result.
- The API process is killed mid-sweep and started again: the sweep completes and every one of its
  runs has exactly one result.
- PostgreSQL (a server of the test's own) is stopped while a sweep's batch trains and another run
  waits, and started again seconds later: the worker keeps its runs (attempt 1, no requeue) and
  every run ends with exactly one result, while the API, polled on every kind of route throughout,
  answered 503 with Retry-After during the outage and never 500.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest
from stack import FAST_RECOVERY, Stack, small_spec, wait_until

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
def test_redis_restart_loses_nothing(stack_with, redis_server):
    # A look-ahead of 2, so under fair-share dispatch the waiting runs' messages are in Redis too.
    stack = stack_with(LI2_LOOKAHEAD=2)
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a")
    long_id = api.post("/experiments", json=small_spec(1500, seed=1)).json()["id"]
    stack.wait_status(long_id, ("running",), 90)
    waiting = [api.post("/experiments", json=small_spec(300, seed=s)).json()["id"] for s in (2, 3)]
    assert all(stack.status(i) == "queued" for i in waiting)
    # Their messages are in Redis only once the dispatcher has released them (the look-ahead); a
    # release that met the outage would simply be retried by the dispatcher, not lost.
    wait_until(lambda: all(stack.experiment(i)["released_at"] is not None for i in waiting), 60, "the release")

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


class Poller(threading.Thread):
    """Calls one route of each kind over and over from its own connection; records every answer.

    Routes: an experiment, the experiment list, a sweep, a submit (the same spec each time: after
    the first 202 the answers are 200 "cached"), a request with an unknown token (authentication
    needs the database), /readyz and /healthz.
    """

    def __init__(self, stack: Stack, token: str, exp_id: str, sweep_id: str):
        super().__init__(name="poller", daemon=True)
        api, stranger = stack.api(token), stack.api("not-a-token")
        self.routes = {
            "GET experiment": lambda: api.get(f"/experiments/{exp_id}"),
            "GET experiments": lambda: api.get("/experiments"),
            "GET sweep": lambda: api.get(f"/sweeps/{sweep_id}"),
            "POST experiments": lambda: api.post("/experiments", json=small_spec(200, seed=9)),  # 202, then 200
            "GET with an unknown token": lambda: stranger.get("/experiments"),
            "GET /readyz": lambda: api.session.get(f"{stack.base_url}/readyz", timeout=30),
            "GET /healthz": lambda: api.session.get(f"{stack.base_url}/healthz", timeout=30),
        }
        self.answers: list[tuple[str, int, str | None, str]] = []  # (route, status, Retry-After, body)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for route, call in self.routes.items():
                r = call()
                self.answers.append((route, r.status_code, r.headers.get("Retry-After"), r.text[:300]))
            time.sleep(0.05)

    def statuses(self, since: int = 0) -> Counter:
        return Counter((route, status) for route, status, _, _ in self.answers[since:])


@pytest.mark.timeout(400)
def test_postgres_restart_mid_run_loses_nothing(private_postgres, redis_server, tmp_path):
    stack = Stack(private_postgres.create_database("li2"), redis_server.url, tmp_path, **FAST_RECOVERY)
    poller = None
    try:
        stack.start_api()
        token = stack.create_user("alice")
        api = stack.api(token)
        stack.start_worker("a")
        r = api.post("/sweeps", json={"base": small_spec(30000), "grid": {"seed": [1, 2]}})
        assert r.status_code == 202, r.text
        sweep_id = r.json()["id"]
        waiting = api.post("/experiments", json=small_spec(300, seed=3)).json()["id"]
        sweep_runs = [run["id"] for run in api.get(f"/sweeps/{sweep_id}/runs").json()["items"]]
        assert len(sweep_runs) == 2
        for run_id in sweep_runs:  # one batch of two, trained together: mid-run and checkpointed
            wait_until(lambda i=run_id: (stack.resume_checkpoint_epoch(i) or 0) >= 100, 120, f"{run_id} checkpoint")
        claims = {i: stack.experiment(i)["claimed_by"] for i in sweep_runs}
        poller = Poller(stack, token, waiting, sweep_id)
        poller.start()
        wait_until(lambda: len(poller.answers) >= 2 * len(poller.routes), 30, "answers before the outage")

        stack.note("stopping PostgreSQL")
        private_postgres.stop()
        down_from = len(poller.answers)
        wait_until(  # every database route has answered 503 at least once
            lambda: all(poller.statuses(down_from)[(route, 503)] for route in poller.routes if route != "GET /healthz"),
            60,
            "503 from every route during the outage",
        )
        time.sleep(FAST_RECOVERY["LI2_LEASE_S"] + 1)  # longer than a lease: no heartbeat got through
        private_postgres.start()
        down_until = len(poller.answers)
        stack.note(f"PostgreSQL started again; {down_until - down_from} answers during the outage")

        for run_id in [*sweep_runs, waiting]:
            row = stack.wait_status(run_id, ("succeeded", "failed", "cancelled"), 240)
            assert row["status"] == "succeeded", row
        body = wait_until(
            lambda: (b := api.get(f"/sweeps/{sweep_id}").json())["status"] in ("succeeded", "failed") and b,
            60,
            "the sweep to close",
        )
        wait_until(lambda: poller.statuses(down_until)[("POST experiments", 200)], 60, "a submit answered after it")
        poller.halt.set()
        poller.join(30)

        # no request got a 500 (or any 5xx but 503), and every 503 said when to retry
        answers = poller.answers
        assert not [a for a in answers if a[1] >= 500 and a[1] != 503], [a for a in answers if a[1] >= 500][:5]
        unavailable = [a for a in answers if a[1] == 503]
        assert unavailable and all(a[2] and int(a[2]) > 0 for a in unavailable), unavailable[:5]
        assert all("unavailable" in a[3] for a in unavailable)
        during = poller.statuses(down_from)
        assert during[("GET /healthz", 200)] >= 1  # the process itself stayed up
        assert during[("GET with an unknown token", 401)] >= 1 and during[("GET experiment", 200)] >= 1  # back
        stack.note(f"answers: {sorted(poller.statuses().items())}")

        # the worker kept its runs through the outage: first attempt, first claim, one result each
        for run_id in sweep_runs:
            row = stack.experiment(run_id)
            assert (row["attempt"], row["claimed_by"]) == (1, claims[run_id]), row
        rows = [stack.wait_status(i, ("succeeded", "failed", "cancelled"), 120) for i in stack_ids(stack)]
        assert len(rows) == 4  # the sweep's two, the waiting one, the poller's one (made before the outage)
        for row in rows:
            assert row["status"] == "succeeded", row
            assert stack.count(models.Result, experiment_id=row["id"]) == 1, row["id"]
        assert body["status"] == "succeeded" and body["counts"]["succeeded"] == 2
        log = stack.workers["a"].log()
        assert "database unavailable" in log, "the worker never met the outage"
        assert "heartbeat expired" not in log
        stack.assert_settled()
    finally:
        if poller is not None:
            poller.halt.set()
        stack.close()


def stack_ids(stack: Stack) -> list[str]:
    with stack.engine.connect() as c:
        return list(c.scalars(models.Experiment.__table__.select().with_only_columns(models.Experiment.id)))
