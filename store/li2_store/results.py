"""Checkpoints and results in the database (no shared filesystem between hosts).

Checkpoint kinds: "resume" is the newest full training state of a run (older ones are deleted, so
one row per run); "snapshot" rows are the user-visible epochs (initial, final and the spec's
``training.checkpoint_epochs``). Blobs are the runner's safetensors bytes, never pickle.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from li2.jsonsafe import json_safe
from li2_store import metric_rows
from li2_store.db import session_scope
from li2_store.models import Checkpoint, Result


def add_checkpoint(session: Session, run_id: str, epoch: int, blob: bytes, kind: str) -> None:
    """Store `blob`; a "resume" replaces the run's previous one, a snapshot replaces its own epoch."""
    old = sa.delete(Checkpoint).where(Checkpoint.experiment_id == run_id, Checkpoint.kind == kind)
    if kind == "snapshot":
        old = old.where(Checkpoint.epoch == epoch)
    session.execute(old)
    session.add(Checkpoint(experiment_id=run_id, epoch=epoch, kind=kind, data=blob))


def load_resume(engine: Engine, run_id: str) -> tuple[int, bytes] | None:
    """(epoch, blob) of the run's newest "resume" checkpoint, or None."""
    with session_scope(engine) as s:
        row = s.execute(
            sa.select(Checkpoint.epoch, Checkpoint.data)
            .where(Checkpoint.experiment_id == run_id, Checkpoint.kind == "resume")
            .order_by(Checkpoint.epoch.desc())
            .limit(1)
        ).first()
    return (row.epoch, bytes(row.data)) if row else None


def add_result(session: Session, run_id: str, result: dict) -> None:
    """Insert the run's one results row (primary key = run id) from a runner result dict, and drop its
    live metric rows: the result's metrics hold every row now."""
    result = json_safe(result)
    session.add(
        Result(
            experiment_id=run_id,
            result_json=result,
            metrics_json=result.get("metrics") or {},
            timeline_json=result.get("timeline") or {},
            features_json=result.get("features") or {},
            predictions_json=result.get("predictions") or {},
        )
    )
    metric_rows.discard(session, run_id)
