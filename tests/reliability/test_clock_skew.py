"""Worker hosts whose clocks are five minutes off keep their live runs.

Two real `li2lab worker` processes serve one PostgreSQL database: "behind" has a host clock 300 s
slow, "ahead" one 300 s fast (tests/reliability/stack.py: SKEWED_CLOCK replaces the wall clock
of the whole process, its pool children and its reaper thread). Each holds one long run while the
other's reaper, with a lease of 4 s, judges it every second. Leases are stamped and judged on the
database's clock, so neither run is taken from its worker: both stay attempt 1 with their first
claim, their stamps agree with the database's clock, and each finishes once.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from stack import small_spec

from li2_store import models
from li2_store.db import database_now

pytestmark = pytest.mark.slow

SKEW_S = 300
EPOCHS = 20000  # 25 s or more: run 1 must outlast the start of the second worker


def start_run(stack, api, seed: int, holder: str) -> str:
    r = api.post("/experiments", json=small_spec(EPOCHS, seed=seed))
    assert r.status_code == 202, r.text
    exp_id = r.json()["id"]
    stack.wait_status(exp_id, ("running",), 120)
    holder_now = stack.worker_holding(exp_id)
    assert holder_now == holder, f"{holder_now} holds it; the other worker took a run: {holdings(stack)}"
    return exp_id


def holdings(stack) -> list[tuple]:
    """(id, status, attempt, claimed_by) of every run: who holds what, and on which try."""
    t = models.Experiment.__table__
    with stack.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.select(t.c.id, t.c.status, t.c.attempt, t.c.claimed_by))]


@pytest.mark.timeout(400)
def test_workers_with_skewed_clocks_keep_their_live_runs(stack):
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("behind", clock_offset_s=-SKEW_S)
    slow_host_run = start_run(stack, api, 1, "behind")
    stack.start_worker("ahead", clock_offset_s=+SKEW_S)
    fast_host_run = start_run(stack, api, 2, "ahead")
    claims = {i: stack.experiment(i)["claimed_by"] for i in (slow_host_run, fast_host_run)}
    stack.note(f"both runs held: {claims}")

    # Three leases with both reapers running: every sample shows both runs still held, first try,
    # with heartbeats on the database's clock (within a lease of it, not five minutes away).
    lease_s = float(stack.env["LI2_LEASE_S"])
    watch_until = time.monotonic() + 3 * lease_s
    samples = 0
    while time.monotonic() < watch_until:
        now = database_now(stack.engine)
        for exp_id, claimed_by in claims.items():
            row = stack.experiment(exp_id)
            if row["status"] != "running":
                continue  # finished already: judged below
            assert (row["attempt"], row["claimed_by"]) == (1, claimed_by), f"{row}\n{stack.tail_logs()}"
            assert abs((now - row["heartbeat_at"]).total_seconds()) < lease_s, (now, row["heartbeat_at"])
            assert abs((now - row["started_at"]).total_seconds()) < SKEW_S / 2, (now, row["started_at"])
            samples += 1
        time.sleep(0.2)
    assert samples >= 10, "the runs ended before both reapers had watched them for three leases"

    for exp_id, claimed_by in claims.items():
        row = stack.wait_status(exp_id, ("succeeded", "failed", "cancelled"), 240)
        assert (row["status"], row["attempt"], row["claimed_by"]) == ("succeeded", 1, claimed_by), row
        assert stack.count(models.Result, experiment_id=exp_id) == 1
        assert abs((row["finished_at"] - database_now(stack.engine)).total_seconds()) < SKEW_S / 2
    for name in ("behind", "ahead"):
        assert "heartbeat expired" not in stack.workers[name].log(), stack.workers[name].log()[-3000:]
    # the skew was real: each worker's log lines are stamped by its own (wrong) clock
    assert last_log_time(stack.workers["behind"].log()) < datetime.now() - timedelta(seconds=SKEW_S / 2)
    assert last_log_time(stack.workers["ahead"].log()) > datetime.now() + timedelta(seconds=SKEW_S / 2)
    stack.assert_settled()


def last_log_time(log: str) -> datetime:
    """The local time of the newest line of a worker's log ("[2026-12-02 16:17:43,565: INFO/...")."""
    stamps = re.findall(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+:", log, flags=re.MULTILINE)
    assert stamps, log[-2000:]
    return datetime.strptime(stamps[-1], "%Y-%m-%d %H:%M:%S")
