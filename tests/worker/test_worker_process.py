"""Integration: a real worker process, the real Redis (or the embedded SQLite transport), a real
database (PostgreSQL or SQLite) and the real li2 core. Runs are inserted through the service's
models and enqueued through li2_store.producer, exactly as the API does; nothing is mocked.
"""

from __future__ import annotations

import re

import pytest
import redis
import sqlalchemy as sa

from li2.batching import pack_batches
from li2_store.config import embedded_broker_url, load_config
from li2_store.db import session_scope
from li2_store.models import Checkpoint, Experiment, Result, Sweep
from li2_store.producer import send_batch

from .helpers import add_run, add_sweep, add_user, new_engine, row, tiny_spec, update, wait_until
from .procs import Worker, worker_env

pytest.importorskip("torch", reason="the worker tests train with the real core (torch)")
pytestmark = pytest.mark.slow


@pytest.fixture
def workers(tmp_path):
    started: list[Worker] = []

    def start(name: str, env: dict) -> Worker:
        w = Worker(name, env, tmp_path)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


def results_of(engine, run_id: str) -> list:
    with session_scope(engine) as s:
        return list(s.scalars(sa.select(Result).where(Result.experiment_id == run_id)))


def newest_resume_epoch(engine, run_id: str) -> int | None:
    with session_scope(engine) as s:
        return s.scalar(
            sa.select(sa.func.max(Checkpoint.epoch)).where(
                Checkpoint.experiment_id == run_id, Checkpoint.kind == "resume"
            )
        )


def wait_status(engine, run_id, status, timeout=180, worker: Worker | None = None):
    try:
        return wait_until(
            lambda: row(engine, run_id)["status"] == status and row(engine, run_id),
            timeout,
            f"run {run_id} to be {status}",
        )
    except AssertionError:
        if worker is not None:
            print(worker.log()[-4000:])
        raise


def test_run_succeeds_and_a_duplicate_message_executes_once(tmp_path, redis_url, postgres_url, workers):
    engine = new_engine(postgres_url)
    run = add_run(engine, add_user(engine), tiny_spec(epochs=200))
    send_batch([(run, 1)], redis_url)
    send_batch([(run, 1)], redis_url)  # the same (run_id, attempt) delivered twice
    w = workers("w1", worker_env(postgres_url, redis_url))
    seen = set()
    wait_until(lambda: seen.add(row(engine, run)["status"]) or "running" in seen, 120, "the run to start")
    r = wait_status(engine, run, "succeeded", worker=w)
    assert r["attempt"] == 1 and r["error"] is None and r["progress_epoch"] == 200
    assert r["summary_json"]["stopped"] is False and "test_acc" in r["latest_metrics_json"]
    (res,) = results_of(engine, run)
    assert res.result_json["summary"]["epochs_run"] == 200 and res.result_json["spec"] == r["spec_json"]
    assert res.metrics_json == res.result_json["metrics"] and len(res.metrics_json["epoch"]) > 100
    # the second message is consumed (by the next fresh pool child) and claims nothing
    wait_until(lambda: "claimed 0 of 1" in w.log(), 60, "the duplicate message to be consumed")
    assert len(re.findall(r"claimed 1 of 1", w.log())) == 1
    assert row(engine, run)["started_at"] == r["started_at"] and len(results_of(engine, run)) == 1
    # the training stack is preloaded in the worker's main process (li2_worker.preload): the
    # children above were forked with torch already imported, and trained
    assert "libtorch" in open(f"/proc/{w.popen.pid}/maps").read() and "preloaded torch" in w.log()


def test_cancel_stops_a_running_run_and_a_held_message_goes_to_an_idle_worker(
    tmp_path, redis_url, postgres_url, workers
):
    engine = new_engine(postgres_url)
    user = add_user(engine)
    long_run = add_run(engine, user, tiny_spec(epochs=50_000, seed=1))
    send_batch([(long_run, 1)], redis_url)
    env = worker_env(postgres_url, redis_url)
    busy = workers("w1", env)
    wait_until(lambda: row(engine, long_run)["progress_epoch"] > 0, 120, "training progress")
    nxt = add_run(engine, user, tiny_spec(epochs=50, seed=2))  # submitted now, as the API would
    send_batch([(nxt, 1)], redis_url)
    # The busy worker prefetches (holds) the next message; the reaper re-sends that run once it has
    # waited LI2_REQUEUE_AFTER_S with an empty queue, and an idle worker runs it meanwhile.
    wait_until(lambda: redis.Redis.from_url(redis_url).llen("celery") == 0, 30, "the busy worker to take the message")
    idle = workers("w2", {**env, "LI2_WORKER_PRELOAD": "0"})  # its children import torch themselves
    wait_status(engine, nxt, "succeeded", timeout=120, worker=idle)
    # with the preload off, torch lives only in the pool children: the main process never maps it
    maps = open(f"/proc/{idle.popen.pid}/maps").read()
    assert "site-packages/torch" not in maps and "libtorch" not in maps and "preloaded" not in idle.log()
    assert row(engine, long_run)["status"] == "running"
    assert "re-enqueueing 1 queued runs" in busy.log() + idle.log()
    update(engine, long_run, cancel_requested=True)  # what POST /experiments/{id}/cancel does
    r = wait_status(engine, long_run, "cancelled", timeout=30, worker=busy)
    assert r["summary_json"]["stopped"] is True and r["progress_epoch"] < 50_000
    assert r["finished_at"] is not None
    # the held message reaches the freed worker and claims nothing: still one result for nxt
    wait_until(lambda: "claimed 0 of 1" in busy.log(), 60, "the held duplicate to be consumed")
    assert len(results_of(engine, nxt)) == 1


def test_kill9_mid_run_requeues_and_resumes_from_checkpoint(tmp_path, redis_url, postgres_url, workers):
    engine = new_engine(postgres_url)
    run = add_run(engine, add_user(engine), tiny_spec(epochs=3000))
    send_batch([(run, 1)], redis_url)
    env = worker_env(postgres_url, redis_url)
    first = workers("w1", env)
    wait_until(lambda: (newest_resume_epoch(engine, run) or 0) >= 100, 120, "a resume checkpoint at epoch >= 100")
    first.kill9()
    assert row(engine, run)["status"] == "running"  # nobody knows yet: the lease has to expire
    second = workers("w2", env)
    r = wait_status(engine, run, "succeeded", timeout=240, worker=second)
    assert r["attempt"] == 2 and len(results_of(engine, run)) == 1
    resumed = re.search(r"attempt 2: resuming from epoch (\d+)", second.log())
    assert resumed and int(resumed.group(1)) >= 100
    res = results_of(engine, run)[0]
    epochs = res.metrics_json["epoch"]
    assert epochs == sorted(set(epochs)) and epochs[0] == 0  # one continuous history, no replays
    assert res.result_json["summary"]["epochs_run"] == 3000


def test_sigterm_requeues_the_run_for_another_worker(tmp_path, redis_url, postgres_url, workers):
    engine = new_engine(postgres_url)
    run = add_run(engine, add_user(engine), tiny_spec(epochs=3000))
    send_batch([(run, 1)], redis_url)
    env = worker_env(postgres_url, redis_url)
    first = workers("w1", env)
    wait_until(lambda: (newest_resume_epoch(engine, run) or 0) >= 50, 120, "a resume checkpoint")
    assert first.terminate() == 0  # warm shutdown finishes promptly: the task stopped itself
    r = row(engine, run)
    assert (r["status"], r["attempt"], r["claimed_by"]) == ("queued", 2, None)
    second = workers("w2", env)
    r = wait_status(engine, run, "succeeded", timeout=240, worker=second)
    assert r["attempt"] == 2 and len(results_of(engine, run)) == 1
    assert re.search(r"attempt 2: resuming from epoch (\d+)", second.log())


def test_a_sweep_batch_fans_in_and_stores_the_fitted_law(tmp_path, redis_url, postgres_url, workers):
    engine = new_engine(postgres_url)
    user = add_user(engine)
    sweep = add_sweep(engine, user, n_runs=3)
    runs = [add_run(engine, user, tiny_spec(epochs=100, seed=s), sweep_id=sweep) for s in (1, 2, 3)]
    send_batch([(r, 1) for r in runs], redis_url)  # one batch_key: one message (trained in learned sub-batches)
    w = workers("w1", worker_env(postgres_url, redis_url))
    for r in runs:
        wait_status(engine, r, "succeeded", timeout=120, worker=w)
    assert "claimed 3 of 3" in w.log()
    with session_scope(engine) as s:
        sw = wait_until(
            lambda: (x := s.get(Sweep, sweep, populate_existing=True)).status == "succeeded" and x,
            30,
            "the sweep to close",
        )
        law = sw.scaling_law_json
    assert sw.fitted_at is not None and law["form"]
    assert [(c["order"], c["free"]["n_runs"]) for c in law["critical"]] == [(11, 3)]


def test_a_lost_message_is_reenqueued_by_the_reaper(tmp_path, redis_url, workers):
    db_url = f"sqlite:///{tmp_path / 'li2.sqlite'}"
    engine = new_engine(db_url)
    run = add_run(engine, add_user(engine), tiny_spec(epochs=50))
    send_batch([(run, 1)], redis_url)
    redis.Redis.from_url(redis_url).flushdb()  # Redis restarted without persistence
    w = workers("w1", worker_env(db_url, redis_url))
    wait_status(engine, run, "succeeded", timeout=120, worker=w)
    assert "re-enqueueing 1 queued runs whose message was lost" in w.log()


def test_embedded_sqlite_transport_runs_an_experiment(tmp_path, workers, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the embedded broker lives in ./var/broker.sqlite
    monkeypatch.delenv("LI2_BROKER_URL", raising=False)
    db_url = f"sqlite:///{tmp_path / 'var' / 'li2.sqlite'}"
    engine = new_engine(db_url)
    run = add_run(engine, add_user(engine), tiny_spec(epochs=200))
    send_batch([(run, 1)], embedded_broker_url())  # the embedded transport in ./var/broker.sqlite
    assert (tmp_path / "var" / "broker.sqlite").exists()
    w = workers("w1", worker_env(db_url, None))
    r = wait_status(engine, run, "succeeded", timeout=120, worker=w)
    assert r["progress_epoch"] == 200 and len(results_of(engine, run)) == 1


def test_a_sweep_over_training_sizes_at_one_order_is_one_task(tmp_path, redis_url, postgres_url, workers):
    """Six training sizes of Z_11: the packer (as the API and the reaper use it) makes one ragged batch,
    one message and one task; the worker logs its padding share and each run's summary keeps it."""
    engine = new_engine(postgres_url)
    user = add_user(engine)
    sweep = add_sweep(engine, user, n_runs=6)
    specs = [tiny_spec(epochs=60, seed=s) for s in range(6)]
    for spec, size in zip(specs, (15, 60, 30, 45, 25, 50), strict=True):
        spec["data"] = {"train_fraction": None, "train_size": size, "critical_multiple": None}
    runs = [add_run(engine, user, spec, sweep_id=sweep) for spec in specs]
    with session_scope(engine) as s:
        rows = [s.get(Experiment, r) for r in runs]
        entries = [(e.batch_key, e.spec_json, (e.id, e.attempt)) for e in rows]
    cfg = load_config({})
    (batch,) = pack_batches(entries, cfg["MAX_BATCH"], cfg["BATCH_MEMORY_MB"] << 20)
    assert [specs[runs.index(r)]["data"]["train_size"] for r, _ in batch] == [15, 25, 30, 45, 50, 60]
    send_batch(batch, redis_url)
    w = workers("w1", worker_env(postgres_url, redis_url))
    for r in runs:
        wait_status(engine, r, "succeeded", timeout=180, worker=w)
    assert len(re.findall(r"claimed \d+ of \d+", w.log())) == 1 and "claimed 6 of 6" in w.log()
    share = 1 - (15 + 25 + 30 + 45 + 50 + 60) / (6 * 60)
    assert f"batch of 6 runs, n 15..60: padding share {100 * share:.1f} %" in w.log()
    for r in runs:
        assert row(engine, r)["summary_json"]["batch"] == {"runs": 6, "n_max": 60, "padding_share": round(share, 6)}
    with session_scope(engine) as s:
        sw = wait_until(
            lambda: (x := s.get(Sweep, sweep, populate_existing=True)).status == "succeeded" and x, 30, "the sweep"
        )
        assert [(c["order"], c["free"]["n_runs"]) for c in sw.scaling_law_json["critical"]] == [(11, 6)]


def test_an_early_stopped_run_succeeds_with_its_stop_recorded(tmp_path, redis_url, postgres_url, workers):
    """training.early_stop through a real worker: the run ends succeeded (not cancelled or failed),
    after fewer epochs than its budget, and says why in its summary."""
    engine = new_engine(postgres_url)
    spec = tiny_spec(epochs=80, seed=1, lr=0.05, early_stop={"threshold": 0.1, "patience_epochs": 15})
    spec["data"]["train_fraction"] = 0.8  # the Z_11 run of tests/core that crosses 0.1 for good by epoch 40
    run = add_run(engine, add_user(engine), spec)
    send_batch([(run, 1)], redis_url)
    w = workers("w1", worker_env(postgres_url, redis_url))
    r = wait_status(engine, run, "succeeded", worker=w)
    s = r["summary_json"]
    assert s["stopped_early"] is True and s["stopped"] is False and r["error"] is None
    assert r["progress_epoch"] == s["epochs_run"] == s["early_stop"]["epoch"] + 1 < 80
    (res,) = results_of(engine, run)
    assert res.metrics_json["epoch"][-1] == s["early_stop"]["epoch"]
