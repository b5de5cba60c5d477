"""The reaper: finds work the queue lost and gives it back, from the database (the truth).

Each pass (`reap_once`) does four things, each one an atomic, guarded UPDATE per run, so several
reapers (one per worker host) can run at once without double work:

1. **stale leases** — a running run whose heartbeat is older than LI2_LEASE_S lost its worker
   (killed, OOM, host gone): back to queued with attempt+1 (the old attempt's messages and writes
   become void) and re-enqueued; the next worker resumes from its newest checkpoint. After
   max_attempts it fails with "lost: heartbeat expired after N attempts"; a run whose cancel was
   requested is simply cancelled.
2. **lost messages** — a queued run nobody claimed for LI2_REQUEUE_AFTER_S while the broker queue
   is empty (Redis restarted without persistence, a flushed database, a failed publish) is
   re-enqueued. When the queue still holds messages we wait: the runs are only waiting their turn,
   and re-sending them would pile duplicates into the queue.
3. **cancels that raced a requeue** — a queued run with cancel_requested (no worker will claim
   it) becomes cancelled.
4. **sweep fan-in** — sweeps whose runs have all ended get their scaling law (sweeps.py).

The loop also applies the checkpoint retention settings (retention.py) once a minute, apart from
these passes: deleting old checkpoints is never urgent, and it scans the checkpoints table.

Every age is measured on the database's clock (cutoffs from `database_now`, stamps by `db_now`),
the same clock the workers' heartbeats are stamped with, so hosts whose clocks disagree never make
each other's live runs look stale.

While the database is unreachable no worker can heartbeat, so an old heartbeat proves nothing.
When a pass fails because the database is unavailable, the loop (`run_forever`) notes the
database time at which it answers again and judges no lease stale until a whole lease has passed
since: the workers get a full lease to reconnect and refresh theirs, and keep their runs.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from li2.batching import pack_batches
from li2_store import sweeps
from li2_store.db import changed, database_now, db_now, is_unavailable, session_scope
from li2_store.models import Experiment as E
from li2_store.producer import producer_app, send_batch
from li2_worker.retention import apply_retention
from li2_worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def queue_length(broker_url: str) -> int | None:
    """Messages waiting in the default Celery queue; 0 if it does not exist; None if unknown."""
    from kombu.exceptions import ChannelError

    app = producer_app(broker_url)
    try:
        with app.connection_for_read() as conn:
            try:
                return conn.default_channel.queue_declare(queue=app.conf.task_default_queue, passive=True).message_count
            except ChannelError:
                return 0
    except Exception as exc:
        log.warning("broker queue length unknown: %s", exc)
        return None


def _send_batches(runs: list[tuple[str, dict, str, int]], settings: WorkerSettings) -> None:
    """Enqueue (batch_key, spec, run_id, attempt) runs in the batches the API would have made."""
    for items in pack_batches(
        ((key, spec, (rid, att)) for key, spec, rid, att in runs), settings.max_batch, settings.batch_memory_bytes
    ):
        send_batch(items, settings.broker_url)


def reap_stale_leases(
    engine: Engine, settings: WorkerSettings, reachable_since: datetime | None = None
) -> dict[str, int]:
    """Requeue, fail or cancel running runs whose heartbeat is older than the lease.

    `reachable_since` (database time) is when the database answered again after an outage: until a
    lease has passed since then, nothing is judged stale (module docstring).
    """
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    cutoff = database_now(engine) - timedelta(seconds=settings.lease_s)
    if reachable_since is not None and cutoff < reachable_since:
        return counts
    stale = sa.and_(E.status == "running", sa.or_(E.heartbeat_at < cutoff, E.heartbeat_at.is_(None)))
    requeued: list[tuple[str, dict, str, int]] = []
    sweep_ids: set[str] = set()
    with session_scope(engine) as s:
        rows = s.execute(
            sa.select(E.id, E.attempt, E.max_attempts, E.cancel_requested, E.batch_key, E.spec_json, E.sweep_id).where(
                stale
            )
        ).all()
    for r in rows:
        this = sa.and_(E.id == r.id, E.attempt == r.attempt, stale)  # still stale, still that attempt
        values: dict[str, Any]
        if r.cancel_requested:
            kind, values = "cancelled", {"status": "cancelled", "finished_at": db_now()}
        elif r.attempt >= r.max_attempts:
            kind, values = (
                "failed",
                {
                    "status": "failed",
                    "finished_at": db_now(),
                    "error": f"lost: heartbeat expired after {r.attempt} attempts",
                },
            )
        else:
            kind, values = (
                "requeued",
                {
                    "status": "queued",
                    "attempt": r.attempt + 1,
                    "claimed_by": None,
                    "heartbeat_at": None,
                    "enqueued_at": db_now(),
                    "released_at": db_now(),  # re-sent below: out of the dispatcher's hands
                },
            )
        with session_scope(engine) as s:
            if not changed(s, sa.update(E).where(this).values(**values)):
                continue  # it heartbeated meanwhile, or another reaper got there first
        counts[kind] += 1
        log.warning("run %s attempt %d: heartbeat expired -> %s", r.id, r.attempt, kind)
        if kind == "requeued":
            requeued.append((r.batch_key, r.spec_json, r.id, r.attempt + 1))
        elif r.sweep_id:
            sweep_ids.add(r.sweep_id)
    _send_batches(requeued, settings)
    for sweep_id in sweep_ids:
        sweeps.finalize_sweep(engine, sweep_id)
    return counts


def resend_lost_messages(engine: Engine, settings: WorkerSettings) -> int:
    """Re-enqueue queued runs left unclaimed for LI2_REQUEUE_AFTER_S while the queue is empty."""
    cutoff = database_now(engine) - timedelta(seconds=settings.requeue_after_s)
    waiting = sa.and_(
        E.status == "queued", E.cancel_requested.is_(False), sa.func.coalesce(E.enqueued_at, E.created_at) < cutoff
    )
    if settings.dispatch == "fair":  # runs not released yet wait for the dispatcher, not for a re-send
        waiting = sa.and_(waiting, E.released_at.is_not(None))
    with session_scope(engine) as s:
        rows = s.execute(sa.select(E.id, E.attempt, E.batch_key, E.spec_json).where(waiting)).all()
    if not rows or queue_length(settings.broker_url) != 0:
        return 0
    resend = []
    for r in rows:
        with session_scope(engine) as s:  # stamp first: a concurrent reaper then skips this run
            this = sa.and_(E.id == r.id, E.attempt == r.attempt, waiting)
            if changed(s, sa.update(E).where(this).values(enqueued_at=db_now())):
                resend.append((r.batch_key, r.spec_json, r.id, r.attempt))
    if resend:
        log.warning("re-enqueueing %d queued runs whose message was lost", len(resend))
        _send_batches(resend, settings)
    return len(resend)


def cancel_queued_on_request(engine: Engine) -> int:
    """Queued runs with a cancel request (a cancel that raced a requeue) become cancelled.

    No worker will claim them (the claim requires NOT cancel_requested), so without this they would
    stay queued for ever.
    """
    target = sa.and_(E.status == "queued", E.cancel_requested.is_(True))
    with session_scope(engine) as s:
        sweep_ids = {sid for sid in s.scalars(sa.select(E.sweep_id).where(target)) if sid is not None}
        n = changed(s, sa.update(E).where(target).values(status="cancelled", finished_at=db_now()))
    for sweep_id in sweep_ids:
        sweeps.finalize_sweep(engine, sweep_id)
    return n


def reap_once(engine: Engine, settings: WorkerSettings, reachable_since: datetime | None = None) -> dict[str, int]:
    """One full pass; returns what it did (for logs and tests). `reachable_since`: see
    `reap_stale_leases`."""
    done = reap_stale_leases(engine, settings, reachable_since)
    done["cancelled_queued"] = cancel_queued_on_request(engine)
    done["resent"] = resend_lost_messages(engine, settings)
    done["sweeps_closed"] = len(sweeps.finalize_ready_sweeps(engine))
    return done


def reaper_interval(settings: WorkerSettings) -> float:
    """Often enough to notice a stale lease within a fraction of it; never busier than 2 Hz."""
    return max(0.5, min(settings.heartbeat_s, settings.lease_s / 4, settings.requeue_after_s / 2))


RETENTION_EVERY_S = 60.0  # seconds between two applications of the checkpoint retention rules


def retention_due(settings: WorkerSettings, last: float | None) -> bool:
    """Whether the loop should apply checkpoint retention now (monotonic `last` run, None: never)."""
    enabled = settings.checkpoint_keep > 0 or settings.checkpoint_max_age_days > 0
    return enabled and (last is None or time.monotonic() - last >= RETENTION_EVERY_S)


def run_forever(engine: Engine, settings: WorkerSettings, stop: threading.Event) -> None:
    """The reaper loop (a thread of `li2lab worker`'s main process); errors are logged, not fatal.

    It remembers database outages it saw: after one, `reachable_since` is the database time of the
    first pass that reached it again (module docstring). Checkpoint retention runs on the first
    pass and then every RETENTION_EVERY_S.
    """
    outage = False
    reachable_since: datetime | None = None
    from li2_worker.dispatcher import pass_lock  # no fork mid-pass (dispatcher module docstring)

    retained_at: float | None = None
    while not stop.wait(reaper_interval(settings)):
        with pass_lock:
            try:
                if outage:
                    reachable_since = database_now(engine)
                    outage = False
                    log.warning(
                        "reaper: database reachable again; judging leases from one lease after %s", reachable_since
                    )
                done = reap_once(engine, settings, reachable_since)
                if any(done.values()):
                    log.info("reaper: %s", done)
            except Exception as exc:
                outage = outage or is_unavailable(exc)
                log.warning("reaper pass failed (will retry): %s", exc)
            if retention_due(settings, retained_at):
                retained_at = time.monotonic()  # a failed pass is retried at the next period, not at once
                try:
                    apply_retention(engine, settings)
                except Exception as exc:
                    log.warning("checkpoint retention failed (will retry): %s", exc)
