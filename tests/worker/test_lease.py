"""Unit tests of the lease logic: atomic claim, heartbeat, final states, reaper, sweep fan-in.

A real SQLite database and (where a message is sent) the real Redis; only the training core is
replaced by tests/worker/helpers.FakeRunner so these run in a second. The real core runs in
test_worker_process.py.
"""

from __future__ import annotations

import base64
import json
import signal
from datetime import timedelta

import pytest
import redis

from li2_store import lease, sweeps
from li2_store.config import ConfigError
from li2_store.db import database_now, session_scope
from li2_store.models import Checkpoint, Result, Sweep
from li2_store.producer import send_batch
from li2_worker import reaper
from li2_worker.settings import load_settings
from li2_worker.tasks import BatchJob, parse_items

from .helpers import FakeRunner, add_run, add_sweep, add_user, new_engine, row, settings_for, tiny_spec, update

W = "test@host/1"


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'li2.sqlite'}"
    engine = new_engine(url)
    yield url, engine
    engine.dispose()


def queued_messages(redis_url: str) -> list[list]:
    """The `items` argument of every li2.run_batch message waiting in the Redis queue."""
    out = []
    for raw in redis.Redis.from_url(redis_url).lrange("celery", 0, -1):
        envelope = json.loads(raw)
        assert envelope["headers"]["task"] == "li2.run_batch"
        assert envelope["content-type"] == "application/json"
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        out.append(args[0])
    return out


def count(engine, model, run_id) -> int:
    with session_scope(engine) as s:
        return s.query(model).filter_by(experiment_id=run_id).count()


def test_claim_is_atomic_and_attempt_scoped(db):
    _, engine = db
    run = add_run(engine, add_user(engine), tiny_spec())
    assert lease.claim(engine, run, 2, W) is None  # a message for another attempt
    first = lease.claim(engine, run, 1, W)
    assert first is not None and first.spec["task"]["order"] == 11
    assert lease.claim(engine, run, 1, "other@host/2") is None  # the duplicate delivery
    r = row(engine, run)
    assert (r["status"], r["claimed_by"], r["attempt"]) == ("running", W, 1)
    assert r["started_at"] is not None and r["heartbeat_at"] is not None


def test_claim_refuses_cancel_requested(db):
    _, engine = db
    run = add_run(engine, add_user(engine), tiny_spec())
    update(engine, run, cancel_requested=True)
    assert lease.claim(engine, run, 1, W) is None
    assert row(engine, run)["status"] == "queued"


def test_heartbeat_reports_cancel_and_lost_lease(db):
    _, engine = db
    user = add_user(engine)
    a, b = add_run(engine, user, tiny_spec(seed=1)), add_run(engine, user, tiny_spec(seed=2))
    claims = [lease.claim(engine, a, 1, W), lease.claim(engine, b, 1, W)]
    before = row(engine, a)["heartbeat_at"]
    assert lease.heartbeat(engine, claims, W) == (set(), set())
    assert row(engine, a)["heartbeat_at"] >= before
    update(engine, a, cancel_requested=True)
    update(engine, b, status="queued", attempt=2)  # what the reaper does to a stale lease
    assert lease.heartbeat(engine, claims, W) == ({a}, {b})


def test_batch_succeeds_with_progress_checkpoints_and_result(db, redis_url):
    url, engine = db
    run = add_run(engine, add_user(engine), tiny_spec(epochs=12, checkpoint_epochs=[7]))
    fake = FakeRunner()
    BatchJob(engine, settings_for(url, redis_url), W, run_batch=fake).run([(run, 1)])
    r = row(engine, run)
    assert r["status"] == "succeeded" and r["finished_at"] is not None and r["error"] is None
    assert r["progress_epoch"] == 12 and r["summary_json"]["test_acc"] == 1.0
    assert r["latest_metrics_json"]["test_loss"] is None  # NaN is stored as JSON null
    assert fake.calls == [{"n": 1, "device": "auto", "resume": [None]}]
    with session_scope(engine) as s:
        kinds = sorted((c.kind, c.epoch) for c in s.query(Checkpoint).filter_by(experiment_id=run))
        res = s.get(Result, run)
        assert res.metrics_json["epoch"][-1] == 12 and res.timeline_json == {"stages": []}
    # one "resume" (the newest); snapshots at the initial and final epochs (the fake never offers 7)
    assert kinds == [("resume", 12), ("snapshot", 0), ("snapshot", 12)]


def test_duplicate_message_runs_once(db, redis_url):
    url, engine = db
    run = add_run(engine, add_user(engine), tiny_spec(epochs=5))
    fake = FakeRunner()
    job_settings = settings_for(url, redis_url)
    BatchJob(engine, job_settings, W, run_batch=fake).run([(run, 1)])
    BatchJob(engine, job_settings, "second@host/2", run_batch=fake).run([(run, 1)])
    assert len(fake.calls) == 1 and count(engine, Result, run) == 1


def test_core_exception_fails_the_runs_with_its_message(db, redis_url):
    url, engine = db
    run = add_run(engine, add_user(engine), tiny_spec(epochs=8))
    BatchJob(
        engine, settings_for(url, redis_url), W, run_batch=FakeRunner(fail=RuntimeError("CUDA out of memory"))
    ).run([(run, 1)])
    r = row(engine, run)
    assert r["status"] == "failed" and r["error"] == "RuntimeError: CUDA out of memory"
    assert count(engine, Result, run) == 0


def test_cancel_stops_only_that_run(db, redis_url):
    url, engine = db
    user = add_user(engine)
    keep, stop = (
        add_run(engine, user, tiny_spec(epochs=40, seed=1)),
        add_run(engine, user, tiny_spec(epochs=40, seed=2)),
    )
    job = BatchJob(
        engine,
        settings_for(url, redis_url),
        W,
        run_batch=FakeRunner(
            between_epochs=lambda e: (
                (update(engine, stop, cancel_requested=True), job.heartbeat.beat()) if e == 10 else None
            )
        ),
    )
    job.run([(keep, 1), (stop, 1)])
    assert row(engine, keep)["status"] == "succeeded"
    r = row(engine, stop)
    assert r["status"] == "cancelled" and r["summary_json"]["stopped"] is True and r["progress_epoch"] < 40


def test_lost_lease_discards_the_result(db, redis_url):
    url, engine = db
    run = add_run(engine, add_user(engine), tiny_spec(epochs=40))
    job = BatchJob(
        engine,
        settings_for(url, redis_url),
        W,
        run_batch=FakeRunner(
            between_epochs=lambda e: (
                (update(engine, run, status="queued", attempt=2), job.heartbeat.beat()) if e == 10 else None
            )
        ),
    )
    job.run([(run, 1)])
    r = row(engine, run)
    assert (r["status"], r["attempt"]) == ("queued", 2) and count(engine, Result, run) == 0
    # No checkpoint of epoch 10 on: those are taken after the takeover. (Epoch 5's may be refused
    # too: it is written on the background thread, maybe after the takeover, under the lease check.)
    with session_scope(engine) as s:
        assert [c.epoch for c in s.query(Checkpoint).filter_by(experiment_id=run, kind="resume")] in ([0], [5])


def test_sigterm_checkpoints_and_requeues_with_next_attempt(db, redis_url):
    url, engine = db
    run = add_run(engine, add_user(engine), tiny_spec(epochs=40))
    handler_before = signal.getsignal(signal.SIGTERM)
    job = BatchJob(
        engine,
        settings_for(url, redis_url),
        W,
        run_batch=FakeRunner(between_epochs=lambda e: signal.raise_signal(signal.SIGTERM) if e == 12 else None),
    )
    job.run([(run, 1)])
    r = row(engine, run)
    assert (r["status"], r["attempt"], r["claimed_by"], r["max_attempts"]) == ("queued", 2, None, 4)
    assert queued_messages(redis_url) == [[[run, 2]]]
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the task's handler is gone again
    # the next attempt resumes from the newest checkpoint (epoch 10) and finishes
    fake = FakeRunner()
    BatchJob(engine, settings_for(url, redis_url), "next@host/3", run_batch=fake).run([(run, 2)])
    assert fake.calls[0]["resume"] == [b"state@10"]
    assert row(engine, run)["status"] == "succeeded" and count(engine, Result, run) == 1


def test_reaper_requeues_fails_and_cancels_stale_leases(db, redis_url):
    url, engine = db
    user = add_user(engine)
    settings = settings_for(url, redis_url, LI2_LEASE_S=30)  # long enough that `fresh` stays fresh on a busy host
    stale = database_now(engine) - timedelta(seconds=60)
    retry, exhausted, cancel, fresh = (add_run(engine, user, tiny_spec(seed=i)) for i in range(4))
    for run in (retry, exhausted, cancel, fresh):
        lease.claim(engine, run, 1, W)
    update(engine, retry, heartbeat_at=stale)
    update(engine, exhausted, heartbeat_at=stale, max_attempts=1)
    update(engine, cancel, heartbeat_at=stale, cancel_requested=True)
    done = reaper.reap_stale_leases(engine, settings)
    assert done == {"requeued": 1, "failed": 1, "cancelled": 1}
    assert (row(engine, retry)["status"], row(engine, retry)["attempt"]) == ("queued", 2)
    assert row(engine, exhausted)["error"] == "lost: heartbeat expired after 1 attempts"
    assert row(engine, cancel)["status"] == "cancelled" and row(engine, fresh)["status"] == "running"
    assert queued_messages(redis_url) == [[[retry, 2]]]
    assert reaper.reap_stale_leases(engine, settings) == {"requeued": 0, "failed": 0, "cancelled": 0}


def test_reaper_resends_lost_messages_only_when_the_queue_is_empty(db, redis_url):
    url, engine = db
    user = add_user(engine)
    # `other` below is enqueued now and must stay younger than the threshold through the test,
    # also on a loaded machine (with 1 s it was once old enough to count as lost too)
    settings = settings_for(url, redis_url, LI2_REQUEUE_AFTER_S=10)
    old = database_now(engine) - timedelta(seconds=30)
    lost = [add_run(engine, user, tiny_spec(seed=i)) for i in range(3)]
    for run in lost:
        update(engine, run, enqueued_at=old)
    other = add_run(engine, user, tiny_spec(seed=9))
    send_batch([(other, 1)], redis_url)  # the queue is busy: runs wait their turn
    assert reaper.resend_lost_messages(engine, settings) == 0
    redis.Redis.from_url(redis_url).flushdb()  # the broker lost everything
    assert reaper.resend_lost_messages(engine, settings) == 3
    messages = queued_messages(redis_url)
    assert len(messages) == 1 and sorted(r for r, _ in messages[0]) == sorted(lost)  # one shape, one batch
    assert reaper.resend_lost_messages(engine, settings) == 0  # stamped: not re-sent at once again


def test_reaper_cancels_queued_runs_with_a_cancel_request(db):
    _, engine = db
    user = add_user(engine)
    sweep = add_sweep(engine, user, n_runs=1)
    run = add_run(engine, user, tiny_spec(), sweep_id=sweep)
    update(engine, run, cancel_requested=True)  # e.g. a cancel that raced a SIGTERM requeue
    assert reaper.cancel_queued_on_request(engine) == 1
    assert row(engine, run)["status"] == "cancelled"
    with session_scope(engine) as s:
        assert s.get(Sweep, sweep).status == "cancelled"


def test_sweep_fans_in_when_its_last_run_ends(db, redis_url):
    url, engine = db
    user = add_user(engine)
    sweep = add_sweep(engine, user, n_runs=2)
    a, b = (add_run(engine, user, tiny_spec(epochs=5, seed=i), sweep_id=sweep) for i in range(2))
    settings = settings_for(url, redis_url)
    BatchJob(engine, settings, W, run_batch=FakeRunner()).run([(a, 1)])
    with session_scope(engine) as s:
        assert s.get(Sweep, sweep).status == "running"
    BatchJob(engine, settings, W, run_batch=FakeRunner()).run([(b, 1)])
    with session_scope(engine) as s:
        sw = s.get(Sweep, sweep)
        assert sw.status == "succeeded" and sw.fitted_at is not None and sw.scaling_law_json["form"]
    assert sweeps.finalize_sweep(engine, sweep) is False  # closed once


def test_message_and_settings_validation():
    assert parse_items([["abc", 1]]) == [("abc", 1)]
    for bad in ("x", [["abc", 0]], [["abc", True]], [[1, 1]], [["abc"]]):
        with pytest.raises(ValueError):
            parse_items(bad)
    with pytest.raises(ConfigError, match="LI2_HEARTBEAT_S"):
        load_settings({"LI2_HEARTBEAT_S": "soon"})
    with pytest.raises(ConfigError, match="LI2_LEASE_S"):
        load_settings({"LI2_HEARTBEAT_S": "10", "LI2_LEASE_S": "5"})
    with pytest.raises(ConfigError, match="LI2_WORKER_DEVICE"):
        load_settings({"LI2_WORKER_DEVICE": "gpu0"})


def test_worker_refuses_placeholder_secrets_and_bad_settings(tmp_path):
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    for env, needle in (
        ({"LI2_BROKER_URL": "redis://:CHANGE_ME@127.0.0.1:6379/0"}, "LI2_BROKER_URL"),
        ({"LI2_LEASE_S": "soon"}, "LI2_LEASE_S"),
    ):
        p = subprocess.run(
            [sys.executable, "-m", "li2_worker"],
            env={**base, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 2 and needle in p.stderr and "Traceback" not in p.stderr
