"""Checkpoint retention (li2_worker.retention): LI2_CHECKPOINT_KEEP and LI2_CHECKPOINT_MAX_AGE_DAYS.

Real databases (SQLite and PostgreSQL); rows are inserted the way the worker stores them
(li2_store.results.add_checkpoint). The reaper loop itself is run in a thread to show it applies
the rules without being asked.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from li2_store import results
from li2_store.config import ConfigError
from li2_store.db import database_now, session_scope
from li2_store.models import Checkpoint
from li2_worker import reaper, retention

from .helpers import add_run, add_user, new_engine, settings_for, tiny_spec, update, wait_until


def stored(engine, run_id: str) -> list[tuple[str, int]]:
    """The run's checkpoints as sorted (kind, epoch) pairs."""
    with session_scope(engine) as s:
        rows = s.execute(sa.select(Checkpoint.kind, Checkpoint.epoch).where(Checkpoint.experiment_id == run_id))
        return sorted((r.kind, r.epoch) for r in rows)


def run_with_checkpoints(engine, user: int, status: str, snapshots: list[int], resume: int | None, seed: int) -> str:
    run_id = add_run(engine, user, tiny_spec(seed=seed))
    with session_scope(engine) as s:
        for epoch in snapshots:
            results.add_checkpoint(s, run_id, epoch, b"snap", "snapshot")
        if resume is not None:
            results.add_checkpoint(s, run_id, resume, b"state", "resume")
    finished = {"finished_at": database_now(engine)} if status not in ("queued", "running") else {}
    update(engine, run_id, status=status, **finished)
    return run_id


def settings(engine, **env):
    return settings_for(engine.url.render_as_string(hide_password=False), "redis://127.0.0.1:1/0", **env)


def test_keep_n_newest_per_run_but_never_an_active_runs_resume_state(engine):
    user = add_user(engine)
    running = run_with_checkpoints(engine, user, "running", [0, 10, 20, 30], resume=35, seed=1)
    queued = run_with_checkpoints(engine, user, "queued", [0, 10], resume=15, seed=2)  # requeued: resumes at 15
    done = run_with_checkpoints(engine, user, "succeeded", [0, 10, 20, 30], resume=30, seed=3)
    deleted = retention.apply_retention(engine, settings(engine, LI2_CHECKPOINT_KEEP=1))
    # The active runs keep their resume state, uncounted, plus their newest snapshot.
    assert stored(engine, running) == [("resume", 35), ("snapshot", 30)]
    assert stored(engine, queued) == [("resume", 15), ("snapshot", 10)]
    # An ended run's resume state counts like any checkpoint: the one newest row stays.
    assert len(stored(engine, done)) == 1 and stored(engine, done)[0][1] == 30
    assert deleted == 3 + 1 + 4
    assert retention.apply_retention(engine, settings(engine, LI2_CHECKPOINT_KEEP=1)) == 0  # idempotent


def test_max_age_deletes_only_runs_that_ended_long_enough_ago(engine):
    user = add_user(engine)
    old = run_with_checkpoints(engine, user, "failed", [0, 10], resume=12, seed=1)
    recent = run_with_checkpoints(engine, user, "succeeded", [0, 10], resume=None, seed=2)
    active = run_with_checkpoints(engine, user, "running", [0], resume=40, seed=3)
    update(engine, old, finished_at=database_now(engine) - timedelta(days=8))
    # An active run is never aged out, whatever its stamps say (this guards the status condition).
    update(engine, active, finished_at=database_now(engine) - timedelta(days=30))
    assert retention.apply_retention(engine, settings(engine, LI2_CHECKPOINT_MAX_AGE_DAYS=7)) == 3
    assert stored(engine, old) == []
    assert stored(engine, recent) == [("snapshot", 0), ("snapshot", 10)]
    assert stored(engine, active) == [("resume", 40), ("snapshot", 0)]


def test_rules_off_by_default_keep_everything(engine):
    user = add_user(engine)
    run = run_with_checkpoints(engine, user, "succeeded", [0, 10, 20], resume=20, seed=1)
    update(engine, run, finished_at=database_now(engine) - timedelta(days=3650))
    plain = settings(engine)
    assert (plain.checkpoint_keep, plain.checkpoint_max_age_days) == (0, 0)
    assert retention.apply_retention(engine, plain) == 0 and len(stored(engine, run)) == 4


def test_the_reaper_loop_applies_retention(tmp_path):
    engine = new_engine(f"sqlite:///{tmp_path / 'li2.sqlite'}")
    user = add_user(engine)
    run = run_with_checkpoints(engine, user, "succeeded", [0, 10, 20], resume=None, seed=1)
    stop = threading.Event()
    loop = threading.Thread(
        target=reaper.run_forever, args=(engine, settings(engine, LI2_CHECKPOINT_KEEP=2), stop), daemon=True
    )
    loop.start()
    try:
        wait_until(lambda: stored(engine, run) == [("snapshot", 10), ("snapshot", 20)], 30, "retention by the loop")
    finally:
        stop.set()
        loop.join(10)
        engine.dispose()


@pytest.mark.parametrize(
    "name,value", [("LI2_CHECKPOINT_KEEP", "-1"), ("LI2_CHECKPOINT_KEEP", "two"), ("LI2_CHECKPOINT_MAX_AGE_DAYS", "x")]
)
def test_bad_retention_settings_are_refused_by_name(name, value):
    with pytest.raises(ConfigError, match=name):
        settings_for("sqlite:///x.sqlite", "redis://127.0.0.1:1/0", **{name: value})
