"""Checkpoint retention: the reaper deletes stored checkpoints the settings no longer keep.

Two rules, each off by default (0), set in the worker's environment:

- ``LI2_CHECKPOINT_KEEP=N`` — per run, only the N newest checkpoints (by epoch, snapshots and
  resume states alike) are kept; older ones are deleted.
- ``LI2_CHECKPOINT_MAX_AGE_DAYS=D`` — every checkpoint of a run that ended (succeeded, failed or
  cancelled) more than D days ago, by the database's clock, is deleted. The run's result stays.

Whatever the rules say, the "resume" checkpoint of an active (queued or running) run is never
deleted and never counted: it is what a requeued attempt continues from. Each rule is one DELETE
whose run-status condition is evaluated in the same statement, so a run cannot become active
between the choice and the deletion (an ended run never becomes active again).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from li2_store.db import changed, database_now, session_scope
from li2_store.models import TERMINAL
from li2_store.models import Checkpoint as C
from li2_store.models import Experiment as E
from li2_store.sweeps import ACTIVE
from li2_worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def _protected() -> sa.ColumnElement[bool]:
    """Checkpoints no rule may delete: the resume state of a run that is still active."""
    active = sa.select(E.id).where(E.id == C.experiment_id, E.status.in_(ACTIVE)).exists()
    return sa.and_(C.kind == "resume", active)


def delete_beyond_count(engine: Engine, keep: int) -> int:
    """Delete each run's checkpoints beyond its `keep` newest (by epoch); return how many went."""
    rank = sa.func.row_number().over(partition_by=C.experiment_id, order_by=(C.epoch.desc(), C.id.desc())).label("rank")
    ranked = sa.select(C.id, rank).where(sa.not_(_protected())).subquery()
    doomed = sa.select(ranked.c.id).where(ranked.c.rank > keep)
    with session_scope(engine) as s:
        return changed(s, sa.delete(C).where(C.id.in_(doomed), sa.not_(_protected())))


def delete_older_than(engine: Engine, days: float) -> int:
    """Delete every checkpoint of runs that ended more than `days` days ago; return how many went."""
    cutoff = database_now(engine) - timedelta(days=days)
    old_runs = sa.select(E.id).where(E.status.in_(TERMINAL), E.finished_at < cutoff)
    with session_scope(engine) as s:
        return changed(s, sa.delete(C).where(C.experiment_id.in_(old_runs)))


def apply_retention(engine: Engine, settings: WorkerSettings) -> int:
    """Apply both rules as configured (a 0 turns a rule off); return the checkpoints deleted."""
    deleted = 0
    if settings.checkpoint_keep > 0:
        deleted += delete_beyond_count(engine, settings.checkpoint_keep)
    if settings.checkpoint_max_age_days > 0:
        deleted += delete_older_than(engine, settings.checkpoint_max_age_days)
    if deleted:
        log.info("retention: deleted %d checkpoints", deleted)
    return deleted
