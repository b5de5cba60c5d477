"""The lease on a run: atomic claim, heartbeat, progress and the guarded final write.

Every write a worker makes to a run is conditioned on the run still being *its* lease: status
'running', the same attempt number and the same ``claimed_by``. So a duplicate or late message
(same run, old attempt) claims nothing, and a worker whose lease was taken over by the reaper can
no longer overwrite anything — it only finds out at its next heartbeat and stops that run.

Every time stamped here (claim, heartbeat, finish) is the database's clock (`db_now`), so the
reaper on another host compares it with the same clock, whatever this host's clock says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from li2_store import metric_rows
from li2_store.catalog import outcome_columns
from li2_store.db import changed, db_now, session_scope
from li2_store.models import Experiment as E


@dataclass(frozen=True, eq=False)  # hashed by identity: one object per held run
class Claim:
    """A run this worker holds: the (run_id, attempt) pair of the message plus its row's facts."""

    run_id: str
    attempt: int
    sweep_id: str | None
    spec: dict
    epochs: int


def owned(run_id: str, attempt: int, worker_id: str) -> sa.ColumnElement[bool]:
    """WHERE clause: the row is still this worker's lease (same attempt, still running)."""
    return sa.and_(E.id == run_id, E.attempt == attempt, E.status == "running", E.claimed_by == worker_id)


def claim(engine: Engine, run_id: str, attempt: int, worker_id: str) -> Claim | None:
    """Atomically turn a queued (run_id, attempt) into this worker's running lease, or None.

    One UPDATE ... WHERE status='queued' AND attempt=... AND NOT cancel_requested: of two workers
    that got the same message, exactly one sees rowcount 1.
    """
    with session_scope(engine) as s:
        n = changed(
            s,
            sa.update(E)
            .where(E.id == run_id, E.attempt == attempt, E.status == "queued", E.cancel_requested.is_(False))
            .values(status="running", claimed_by=worker_id, heartbeat_at=db_now(), started_at=db_now(), error=None),
        )
        if n != 1:
            return None
        row = s.execute(sa.select(E.sweep_id, E.spec_json, E.epochs).where(E.id == run_id)).one()
    return Claim(run_id, attempt, row.sweep_id, row.spec_json, row.epochs)


def heartbeat(engine: Engine, claims: list[Claim], worker_id: str) -> tuple[set[str], set[str]]:
    """Refresh the lease of every held run; return (cancel requested, lease lost) run ids."""
    alive: set[str] = set()
    with session_scope(engine) as s:
        for c in sorted(claims, key=lambda c: c.run_id):  # one lock order for all multi-run writes
            if changed(s, sa.update(E).where(owned(c.run_id, c.attempt, worker_id)).values(heartbeat_at=db_now())):
                alive.add(c.run_id)
        ids = [c.run_id for c in claims]
        cancel = set(s.scalars(sa.select(E.id).where(E.id.in_(ids), E.cancel_requested.is_(True))))
    return cancel & alive, {c.run_id for c in claims} - alive


def touch(session: Session, c: Claim, worker_id: str) -> bool:
    """Refresh one run's lease inside `session`'s transaction; False if it is no longer ours.

    Writes that must not outlive the lease (checkpoints) go in the same transaction, so they
    cannot land after the reaper handed the run to a newer attempt.
    """
    return bool(
        changed(session, sa.update(E).where(owned(c.run_id, c.attempt, worker_id)).values(heartbeat_at=db_now()))
    )


def write_progress(engine: Engine, progress: dict[Claim, list[tuple[int, dict]]], worker_id: str) -> None:
    """Store each run's rows measured since the last call, in one transaction: the newest row as the
    progress answer (progress_epoch, latest_metrics_json) and every row as a live metric row — only
    for runs whose lease this worker still holds."""
    with session_scope(engine) as s:
        held = []
        # rows in run-id order, as heartbeat takes its locks: two transactions that lock the same
        # runs in different orders deadlock on PostgreSQL (the progress dict's order follows the
        # measurements, which wraps around the batch)
        for c, rows in sorted(progress.items(), key=lambda item: item[0].run_id):
            if not rows:
                continue
            epoch, metrics = rows[-1]
            if changed(
                s,
                sa.update(E)
                .where(owned(c.run_id, c.attempt, worker_id))
                .values(progress_epoch=epoch, latest_metrics_json=metrics),
            ):
                held.append((c.run_id, rows))
        metric_rows.write(s, held)


def finish(session: Session, c: Claim, worker_id: str, status: str, **values: Any) -> bool:
    """Move a held run to a terminal `status` (or back to 'queued'); False if the lease was lost."""
    values.setdefault("finished_at", db_now() if status != "queued" else None)
    if "summary_json" in values:  # the outcome's catalogue columns land with the summary
        values.update(outcome_columns(values["summary_json"]))
    return bool(
        changed(session, sa.update(E).where(owned(c.run_id, c.attempt, worker_id)).values(status=status, **values))
    )
