"""Checkpoints off the training path: `CheckpointWriter` on its own, then a real batch (real runner,
real database, SQLite and PostgreSQL) whose resume checkpoints follow the wall-time cadence."""

from __future__ import annotations

import threading
from functools import partial

import pytest
import sqlalchemy as sa

from li2 import checkpoint
from li2.runner import run_batch
from li2_store.db import session_scope
from li2_store.models import Checkpoint
from li2_worker.checkpoint_writer import CheckpointWriter
from li2_worker.tasks import BatchJob

from .helpers import add_run, add_user, row, settings_for, tiny_spec

W = "test-worker/1"


def test_training_goes_on_while_a_write_runs_and_one_write_per_run_is_in_flight():
    writer = CheckpointWriter()
    release, started, done = threading.Event(), threading.Event(), []

    def slow(tag):
        started.set()
        assert release.wait(10)
        done.append(tag)

    try:
        writer.submit("run-a", partial(slow, "a1"))  # returns at once: the write runs on the thread
        assert started.wait(10) and done == []
        writer.submit("run-b", lambda: done.append("b1"))  # another run: queued behind, no wait
        second = threading.Thread(target=writer.submit, args=("run-a", lambda: done.append("a2")))
        second.start()
        second.join(0.3)
        assert second.is_alive(), "a run's second checkpoint must wait for its first"
        release.set()
        second.join(10)
        writer.flush()
        assert done == ["a1", "b1", "a2"]  # FIFO: one run's checkpoints in order
    finally:
        release.set()
        writer.close()


def test_a_failed_write_is_raised_on_the_training_thread_not_swallowed():
    writer = CheckpointWriter()

    def boom():
        raise OSError("disk on fire")

    try:
        writer.submit("run-a", boom)
        with pytest.raises(RuntimeError, match="checkpoint write failed: OSError: disk on fire"):
            writer.flush()
        with pytest.raises(RuntimeError, match="disk on fire"):
            writer.submit("run-b", lambda: None)
    finally:
        writer.close()


class TickClock:
    """A simulated second per read (`Cadence` reads once at the start and once per epoch)."""

    def __init__(self):
        self.now = -1.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_long_batch_stores_one_resume_checkpoint_per_interval(engine, redis_url):
    """Through the worker's path (claim, real runner, background writer, one transaction each): 200
    epochs at a simulated second each with LI2_CHECKPOINT_INTERVAL_S=50 store resume checkpoints at
    epochs 0, 49, 99, 149, 199 and 200 (not every 50 epochs); the stored one is compact."""
    spec = tiny_spec(epochs=200, seed=1)
    run = add_run(engine, add_user(engine), spec)
    written: list[tuple[str, int]] = []

    def inserted(_mapper, _connection, target: Checkpoint) -> None:  # fires for every stored row
        written.append((target.kind, target.epoch))

    settings = settings_for(str(engine.url), redis_url, LI2_CHECKPOINT_INTERVAL_S=50, LI2_CHECKPOINT_EVERY=0)
    sa.event.listen(Checkpoint, "after_insert", inserted)
    try:
        BatchJob(engine, settings, W, run_batch=partial(run_batch, clock=TickClock())).run([(run, 1)])
    finally:
        sa.event.remove(Checkpoint, "after_insert", inserted)

    assert row(engine, run)["status"] == "succeeded"
    assert [e for kind, e in written if kind == "resume"] == [0, 49, 99, 149, 199, 200]
    assert sorted(e for kind, e in written if kind == "snapshot") == [0, 200]
    with session_scope(engine) as s:
        (blob,) = s.execute(
            sa.select(Checkpoint.data).where(Checkpoint.experiment_id == run, Checkpoint.kind == "resume")
        ).one()
    tensors, _history, epoch, _spec = checkpoint.read(bytes(blob))
    assert epoch == 200 and not any(k.startswith("init.") for k in tensors)
