"""The worker side of a database outage, against a real PostgreSQL server that the tests stop and
start (a server of their own on a free port, tests/reliability/stack.py: PostgresServer).

- `is_unavailable` tells "cannot answer now" (refused, terminated, pool exhausted) from bugs and bad
  data (constraint violations, bad SQL), on the errors the driver really raises;
- `retrying` rides out a restart, and gives up after its bound;
- the reaper, having seen the database down, gives workers a whole lease after it comes back before
  it judges any heartbeat stale;
- a batch whose database restarts mid-run (at a checkpoint) and again as it writes its result keeps
  its run: attempt 1, one result, the sweep closed, and the retries logged.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from li2_store import lease, sweeps
from li2_store.db import database_now, is_unavailable, retrying, session_scope
from li2_store.models import Checkpoint, Result, Sweep, User
from li2_worker import reaper

from .helpers import FakeRunner, add_run, add_sweep, add_user, new_engine, row, settings_for, tiny_spec, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from stack import private_postgres

__all__ = ["private_postgres"]

W = "test@host/1"


@pytest.fixture
def pg(private_postgres):
    """(server, engine on a fresh database with the tables)."""
    engine = new_engine(private_postgres.create_database("li2"))
    yield private_postgres, engine
    engine.dispose()


def outage(server, seconds: float) -> threading.Timer:
    """Stop the server now (every session is terminated) and start it again `seconds` later."""
    server.stop()
    timer = threading.Timer(seconds, server.start)
    timer.start()
    return timer


def caught(fn) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("expected an error")


def test_unavailable_means_cannot_answer_now_not_a_bug(pg):
    server, engine = pg
    user = add_user(engine)
    duplicate = caught(lambda: add_user(engine))  # users.name is unique
    bad_sql = caught(lambda: engine.connect().execute(sa.text("SELECT no_such_column FROM users")))
    assert isinstance(duplicate, sa.exc.IntegrityError) and not is_unavailable(duplicate)
    assert isinstance(bad_sql, sa.exc.ProgrammingError) and not is_unavailable(bad_sql)

    with engine.connect() as victim:  # a session the server terminates under us (a restart does this)
        pid = victim.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        terminated = caught(lambda: victim.execute(sa.text("SELECT 1")))
    assert is_unavailable(terminated), repr(terminated)

    tiny_pool = sa.create_engine(engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    with tiny_pool.connect():
        exhausted = caught(lambda: tiny_pool.connect())
    tiny_pool.dispose()
    assert isinstance(exhausted, sa.exc.TimeoutError) and is_unavailable(exhausted)

    server.stop()
    try:
        refused = caught(lambda: session_scope(engine).__enter__().get(User, user))
    finally:
        server.start()
    assert isinstance(refused, sa.exc.OperationalError) and is_unavailable(refused), repr(refused)
    assert not is_unavailable(ValueError("not a database error"))


def test_retrying_rides_out_a_restart_and_gives_up_after_its_bound(pg, caplog):
    server, engine = pg
    sweep_id = add_sweep(engine, add_user(engine), n_runs=0)  # nothing to wait for: closes at once
    timer = outage(server, 2.0)
    with caplog.at_level(logging.WARNING, logger="li2_store.db"):
        assert retrying("sweep fan-in", lambda: sweeps.finalize_sweep(engine, sweep_id)) is True
    timer.join()
    assert "sweep fan-in: database unavailable" in caplog.text
    with session_scope(engine) as s:
        assert s.get(Sweep, sweep_id).status == "failed"  # no run succeeded: nothing to fit

    timer = outage(server, 3.0)
    try:
        with pytest.raises(sa.exc.OperationalError):
            retrying("a write", lambda: database_now(engine), for_s=0.5)
    finally:
        timer.join()
    slept: list[float] = []
    with pytest.raises(sa.exc.IntegrityError):  # not an outage: raised at once, never retried
        retrying("a bug", lambda: add_user(engine, "dup") and add_user(engine, "dup"), sleep=slept.append)
    assert slept == []


def test_reaper_gives_workers_a_whole_lease_after_an_outage(pg, redis_url):
    """A silent run (no heartbeat thread) is requeued only a lease after the database is back."""
    server, engine = pg
    settings = settings_for(str(engine.url), redis_url, LI2_LEASE_S=2, LI2_HEARTBEAT_S=0.5)
    run = add_run(engine, add_user(engine), tiny_spec())
    assert lease.claim(engine, run, 1, W)
    stop = threading.Event()
    loop = threading.Thread(target=reaper.run_forever, args=(engine, settings, stop), daemon=True)
    loop.start()
    try:
        outage(server, settings.lease_s + 1).join()  # longer than a lease: every heartbeat is old
        with engine.connect() as c:
            restarted = c.execute(sa.text("SELECT pg_postmaster_start_time() AT TIME ZONE 'UTC'")).scalar_one()
        requeued = wait_until(lambda: (r := row(engine, run))["status"] == "queued" and r, 30, "the requeue")
    finally:
        stop.set()
        loop.join(10)
    assert requeued["attempt"] == 2
    # stamped on the database's clock: not before a whole lease after the server was back
    assert requeued["enqueued_at"] - restarted >= timedelta(seconds=settings.lease_s), (requeued, restarted)


def resume_epoch(engine, run_id: str) -> int | None:
    with session_scope(engine) as s:
        return s.execute(
            sa.select(Checkpoint.epoch).where(Checkpoint.experiment_id == run_id, Checkpoint.kind == "resume")
        ).scalar()


def test_a_batch_rides_out_database_restarts(pg, redis_url, caplog):
    server, engine = pg
    user = add_user(engine)
    sweep_id = add_sweep(engine, user, n_runs=1)
    run = add_run(engine, user, tiny_spec(epochs=10), sweep_id=sweep_id)
    settings = settings_for(str(engine.url), redis_url, LI2_LEASE_S=2, LI2_HEARTBEAT_S=0.2, LI2_CHECKPOINT_EVERY=5)
    timers: list[threading.Timer] = []
    # down from epoch 8 until after the checkpoint at epoch 10 was attempted
    fake = FakeRunner(between_epochs=lambda epoch: epoch == 8 and timers.append(outage(server, 3.0)))

    def runner(*args, **kwargs):
        results = fake(*args, **kwargs)
        for t in timers:
            t.join()
        # the epoch-10 checkpoint is written by the background writer; once it is stored, take the
        # database down again, so that the outage meets the final state's write
        wait_until(lambda: resume_epoch(engine, run) == 10, 30, "the epoch-10 checkpoint")
        timers.append(outage(server, 3.0))  # down again while the result is written
        return results

    stop = threading.Event()
    loop = threading.Thread(target=reaper.run_forever, args=(engine, settings, stop), daemon=True)
    loop.start()
    try:
        with caplog.at_level(logging.WARNING):
            from li2_worker.tasks import BatchJob

            BatchJob(engine, settings, W, run_batch=runner).run([(run, 1)])
        for t in timers:
            t.join()
        time.sleep(2 * settings.lease_s)  # a reaper that misjudged the outage would requeue it by now
    finally:
        stop.set()
        loop.join(10)
    r = row(engine, run)
    assert (r["status"], r["attempt"], r["claimed_by"]) == ("succeeded", 1, W), r
    with session_scope(engine) as s:
        assert s.query(Result).filter_by(experiment_id=run).count() == 1
        assert s.query(Checkpoint).filter_by(experiment_id=run, kind="resume").one().epoch == 10
        assert s.get(Sweep, sweep_id).status == "succeeded"
    # which checkpoint meets the first outage depends on when the background writer gets to it
    assert re.search(f"checkpoint of run {run} at epoch (5|10): database unavailable", caplog.text)
    assert f"final state of run {run}: database unavailable" in caplog.text
    assert "heartbeat expired" not in caplog.text
