"""What the API does to runs: submit (with atomic dedup), submit a sweep, enqueue, cancel.

The database is the truth. A submit commits its row(s) first and only then sends `(run_id,
attempt)` to the broker; if the broker is down the row simply stays queued and the worker side's
reconciler re-enqueues it from the database, so the client still gets its 202. Sweeps fan in
through `li2_store.sweeps` (one implementation shared with the worker); the API only triggers it
early. Messages go out through `li2_store.producer`, by task name: the API never imports worker code.
In fair dispatch a submit also runs one release pass (`release_now`), so an idle worker starts at once.
Views stay thin: they parse and authorise, then call these functions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from li2.batching import pack_batches
from li2.spec import expand_sweep, spec_hash, validate_sweep
from li2_service import limits
from li2_service.auth import Caller
from li2_service.errors import fail, unprocessable
from li2_service.priority import check_priority, pop_priority
from li2_store import models
from li2_store.db import changed, database_now, db_now, session_scope
from li2_store.dispatch import release_pass, worker_seen_s
from li2_store.searches import new_experiment

log = logging.getLogger(__name__)

Enqueue = Callable[[list[tuple[str, int]], str], None]


@dataclass
class ServiceState:
    """What views need at run time; stored as app.extensions["li2"]."""

    engine: sa.Engine
    config: dict
    enqueue: Enqueue


@dataclass
class Submitted:
    """Outcome of a submit: the experiment row and how it was obtained."""

    row: models.Experiment
    outcome: str  # "created" | "cached" (identical spec) | "replayed" (same Idempotency-Key)


def send(state: ServiceState, items: list[tuple[str, int]]) -> bool:
    """Enqueue one batch; a broker failure is logged, not raised (the reconciler retries)."""
    try:
        state.enqueue(items, state.config["BROKER_URL"])
        return True
    except Exception:
        log.exception("enqueue of %d run(s) failed; they stay queued for the reconciler", len(items))
        return False


def release_now(state: ServiceState) -> None:
    """Fair dispatch: one release pass right after a submit has committed, so that an idle worker
    gets the new work now instead of at its dispatcher's next pass (up to LI2_DISPATCH_INTERVAL_S
    later). The pass's own rules decide whether and what to release (idle slots, fair order:
    li2_store.dispatch). A failure is only logged; the dispatchers release the work anyway. In
    fifo mode, which sent every batch at submit, the pass releases nothing. Off when the app was
    built with an ENQUEUE hook, which then takes over all sending (the API tests record what is
    handed to the broker)."""
    cfg = state.config
    if cfg.get("ENQUEUE"):
        return
    try:
        release_pass(state.engine, cfg, lookahead=cfg["LOOKAHEAD"], within_s=worker_seen_s(cfg))
    except Exception:
        log.exception("release pass after a submit failed; the dispatchers release the work")


def _idempotency_dedup(key: str) -> str:
    # "k" is not a hex digit, so these never collide with spec hashes in the same column (64 chars).
    return "k" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:63]


def _new_experiment(user: Caller, spec: dict, config: dict, enqueued_at: datetime, **extra) -> models.Experiment:
    """A queued run. `enqueued_at` must be the database's clock (`database_now`): the reaper
    compares it with that clock to find runs whose message was lost."""
    return new_experiment(user.id, spec, config["MAX_ATTEMPTS"], enqueued_at, **extra)


def submit_experiment(
    state: ServiceState, user: Caller, spec: dict, *, force: bool, idempotency_key: str | None, priority: int = 1
) -> Submitted:
    """Create (or find) the experiment for a validated spec, then enqueue it.

    Dedup key: the spec hash for a plain submit; with force, the Idempotency-Key's hash if one was
    given (reusing a key for another spec is a 422), else none. Without force the key adds nothing:
    the spec hash already returns the same run. The unique index on (user_id, dedup_key) makes this atomic: a concurrent
    identical submit that loses the insert race reads and returns the winner's row. A previous
    identical run that failed or was cancelled is retired (its key cleared) so the spec runs again.
    """
    dedup = spec_hash(spec) if not force else (_idempotency_dedup(idempotency_key) if idempotency_key else None)
    for _ in range(3):
        try:
            with session_scope(state.engine) as session:
                if dedup is not None:
                    existing = session.scalar(
                        sa.select(models.Experiment).where(
                            models.Experiment.user_id == user.id, models.Experiment.dedup_key == dedup
                        )
                    )
                    if existing is not None:
                        if force and existing.spec_hash != spec_hash(spec):
                            unprocessable("Idempotency-Key", "was already used for a different spec")
                        if force or existing.status not in ("failed", "cancelled"):
                            return Submitted(existing, "replayed" if force else "cached")
                        existing.dedup_key = None
                        session.flush()
                limits.check_active(session, user, 1, state.config)
                limits.check_compute(session, user, [spec], state.config)
                check_priority(session, user, priority, 1, state.config)
                row = _new_experiment(
                    user, spec, state.config, database_now(session), dedup_key=dedup, priority=priority
                )
                session.add(row)
        except IntegrityError:
            continue  # lost the race to an identical submit: the next pass returns its row
        send(state, [(row.id, 1)])
        release_now(state)
        return Submitted(row, "created")
    fail(409, "concurrent identical submissions kept conflicting; retry")


def batches(rows: list[models.Experiment], config: dict) -> list[list[tuple[str, int]]]:
    """Pack runs by batch_key (they train as one stacked model) within the batch limits."""
    return pack_batches(
        ((r.batch_key, r.spec_json, (r.id, r.attempt)) for r in rows),
        config["MAX_BATCH"],
        config["BATCH_MEMORY_MB"] << 20,
    )


def submit_sweep(state: ServiceState, user: Caller, raw: dict) -> models.Sweep:
    """Validate and expand a sweep, create it and all its runs in one transaction, enqueue batches.

    `raw` may carry `priority` (low | normal | high) beside base and grid: every run gets it."""
    raw = dict(raw)
    priority = pop_priority(raw)
    sweep = validate_sweep(raw)
    specs = expand_sweep(sweep)
    limits.check_sweep_size(len(specs), state.config)
    with session_scope(state.engine) as session:
        limits.check_active(session, user, len(specs), state.config)
        limits.check_compute(session, user, specs, state.config)
        check_priority(session, user, priority, len(specs), state.config)
        row = models.Sweep(
            user_id=user.id, base_json=sweep["base"], grid_json=sweep["grid"], status="queued", n_runs=len(specs)
        )
        session.add(row)
        session.flush()
        now = database_now(session)
        runs = [_new_experiment(user, spec, state.config, now, sweep_id=row.id, priority=priority) for spec in specs]
        session.add_all(runs)
        session.flush()
        work = batches(runs, state.config)
    for items in work:
        send(state, items)
    release_now(state)
    return row


def cancel_experiment(session, row: models.Experiment) -> str:
    """Cancel one run; returns its status afterwards. Conditional updates race safely with claims.

    queued -> cancelled at once; running -> cancel_requested (the worker stops it within seconds
    and marks it cancelled); already finished -> 409. The caller closes the run's sweep, if any,
    after committing (`li2_store.sweeps.finalize_sweep`).
    """
    exp = models.Experiment
    if changed(
        session,
        sa.update(exp)
        .where(exp.id == row.id, exp.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=db_now()),
    ):
        status = "cancelled"
    else:
        asked = changed(
            session, sa.update(exp).where(exp.id == row.id, exp.status == "running").values(cancel_requested=True)
        )
        if not asked:
            session.refresh(row)
            fail(409, f"the experiment is already {row.status}; only queued or running runs can be cancelled")
        status = "running"
    session.refresh(row)
    return status


def cancel_sweep(session, sweep: models.Sweep) -> dict:
    """Cancel every queued run of a sweep now and ask its running runs to stop."""
    exp = models.Experiment
    cancelled = changed(
        session,
        sa.update(exp)
        .where(exp.sweep_id == sweep.id, exp.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=db_now()),
    )
    stopping = changed(
        session, sa.update(exp).where(exp.sweep_id == sweep.id, exp.status == "running").values(cancel_requested=True)
    )
    return {"cancelled": cancelled, "stopping": stopping}


def sweep_counts(session, sweep_id: str) -> dict[str, int]:
    """{status: number of the sweep's runs in it} for all five statuses."""
    exp = models.Experiment
    rows = session.execute(
        sa.select(exp.status, sa.func.count()).where(exp.sweep_id == sweep_id).group_by(exp.status)
    ).all()
    counts = dict.fromkeys(models.STATUSES, 0)
    counts.update(dict(rows))
    return counts
