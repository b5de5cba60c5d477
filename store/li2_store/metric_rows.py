"""Live metric rows: what a run has measured so far, while it trains.

The worker's progress flush (li2_worker.tasks, at most about once a second per batch) calls `write`
inside the same transaction as the progress update, for the runs whose lease it still holds, with
one INSERT for the whole batch (bench/bench_progress_flush.py measures its cost). The
API reads them back with `columns_since` as the partial curves of a running (or failed) run. When
the run's result row is written, the result holds every curve and `discard` drops these rows.

A run resumed by a newer attempt re-measures the epochs after its checkpoint; the first rows it
writes replace whatever the older attempt had written from that epoch on, so the rows always form
one consistent history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from li2.jsonsafe import json_safe
from li2_store.models import MetricRow


def write(session: Session, batches: Sequence[tuple[str, Sequence[tuple[int, dict]]]]) -> None:
    """Store each run's new rows: `batches` = [(run_id, [(epoch, {column: value}), ...])], epochs
    ascending per run. Rows from a run's first new epoch on that are already stored (left by an older
    attempt) are replaced. One INSERT for all runs; a DELETE only for a run that needs one."""
    firsts = {run_id: min(epoch for epoch, _ in rows) for run_id, rows in batches if rows}
    if not firsts:
        return
    newest = session.execute(
        sa.select(MetricRow.experiment_id, sa.func.max(MetricRow.epoch))
        .where(MetricRow.experiment_id.in_(list(firsts)))
        .group_by(MetricRow.experiment_id)
    ).all()
    for run_id, stored in newest:
        if stored is not None and stored >= firsts[run_id]:  # a resumed attempt re-measures these epochs
            session.execute(
                sa.delete(MetricRow).where(MetricRow.experiment_id == run_id, MetricRow.epoch >= firsts[run_id])
            )
    session.execute(
        sa.insert(MetricRow),
        [
            {"experiment_id": run_id, "epoch": int(epoch), "row_json": json_safe(dict(row))}
            for run_id, rows in batches
            for epoch, row in rows
        ],
    )


def columns_since(session: Session, run_id: str, since: int | None = None) -> dict[str, list]:
    """The stored rows with epoch > `since` (all when None) as columns {name: [values]}, by epoch.

    Column names come in the order the rows give them (li2.trainer.COLUMNS); a row without a
    column (not measured then) contributes None, so every column has one value per epoch.
    """
    stmt = sa.select(MetricRow.row_json).where(MetricRow.experiment_id == run_id)
    if since is not None:
        stmt = stmt.where(MetricRow.epoch > since)
    rows = list(session.scalars(stmt.order_by(MetricRow.epoch)))
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}


def discard(session: Session, run_id: str) -> None:
    """Drop a run's rows (its result row now holds the full curves)."""
    session.execute(sa.delete(MetricRow).where(MetricRow.experiment_id == run_id))
