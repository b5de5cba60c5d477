"""Fair-share dispatch: the database holds the waiting work; the broker only a short look-ahead.

With LI2_DISPATCH=fair (the default) a submit commits its queued runs and sends nothing (`hold`).
A dispatcher (`release_pass`, run by every `li2lab worker` beside its reaper) releases batches to
the broker only as fast as workers can take them: one message per idle worker slot, plus
LI2_LOOKAHEAD more. Which batch goes next is decided per user, by stride scheduling:

- every user with waiting work has a *pass* value (table fair_shares); the user with the lowest
  pass gets the next batch and their pass grows by 1/weight (admin-set weight, default 1), so
  users take turns and a weight-2 user gets two turns per round;
- a user's pass is clamped to within one round of the others' (`effective_pass`): a user who was
  away does not bank turns, and one who used a lot earlier is not shut out when they return;
- within one user, batches go out by priority (high, normal, low), then submission order;
- nobody starves: every release raises the served user's pass, so any waiting user's pass is the
  lowest after at most (number of users × weight ratio) releases.

Safety. A batch is marked released (`released_at`, `release_id`, and `enqueued_at`, from which
the reaper's lost-message pass counts) in the pass's transaction, which
commits *before* its message is sent; a guarded UPDATE (still queued, not yet released) makes two
dispatchers unable to release the same run twice. If the process dies between the commit and the
send, or the broker loses the message, the run is a released, unclaimed, queued run: the reaper's
existing lost-message pass re-sends it. A dispatcher restart loses nothing: all its state (passes,
release marks) is in the database. Duplicate messages stay harmless (the claim is atomic).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from li2.batching import pack_batches
from li2_store.db import changed, database_now, db_now, session_scope
from li2_store.models import Experiment as E
from li2_store.models import FairShare, WorkerSlot, new_id
from li2_store.producer import send_batch

log = logging.getLogger(__name__)

PRIORITIES = {"low": 0, "normal": 1, "high": 2}
"""Submit field `priority` -> the experiments.priority column (higher goes first within a user)."""
PRIORITY_NAMES = {v: k for k, v in PRIORITIES.items()}

Send = Callable[[list[tuple[str, int]], str], None]

WORKER_SEEN_S = 60.0
"""The API counts a worker's slots while its dispatcher registered within this many seconds (the
workers themselves use their LI2_LEASE_S, 60 by default)."""


def worker_seen_s(config: dict) -> float:
    """The API's window for live workers: config WORKER_SEEN_S, else WORKER_SEEN_S."""
    return float(config.get("WORKER_SEEN_S", WORKER_SEEN_S))


def hold(items: list[tuple[str, int]], broker_url: str) -> None:
    """The enqueue of fair mode: send nothing; the runs wait in the database for the dispatcher."""


def enqueue_for(config: dict) -> Send:
    """What a new batch is handed to: the broker at once (LI2_DISPATCH=fifo) or `hold` (fair)."""
    return send_batch if config.get("DISPATCH", "fair") == "fifo" else hold


def waiting() -> sa.ColumnElement[bool]:
    """WHERE clause: queued runs the dispatcher has not released yet (and nobody cancelled)."""
    return sa.and_(E.status == "queued", E.released_at.is_(None), E.cancel_requested.is_(False))


def released_unclaimed() -> sa.ColumnElement[bool]:
    """WHERE clause: queued runs whose message is out (in the broker or a worker's prefetch)."""
    return sa.and_(E.status == "queued", E.released_at.is_not(None), E.cancel_requested.is_(False))


def queue_order() -> tuple:
    """Within one user: priority first, then submission order."""
    return (E.priority.desc(), E.created_at, E.id)


def register_worker(session: Session, name: str, slots: int, device: str) -> None:
    """Record that worker `name` is alive with `slots` pool processes (stamped on the DB clock)."""
    t = WorkerSlot
    if not changed(session, sa.update(t).where(t.name == name).values(slots=slots, device=device, seen_at=db_now())):
        session.add(WorkerSlot(name=name, slots=slots, device=device, seen_at=database_now(session)))
        session.flush()


def live_slots(session: Session, within_s: float) -> int:
    """Pool slots of the workers seen within `within_s` seconds."""
    cutoff = database_now(session) - timedelta(seconds=within_s)
    return int(session.scalar(sa.select(sa.func.sum(WorkerSlot.slots)).where(WorkerSlot.seen_at >= cutoff)) or 0)


def release_budget(session: Session, lookahead: int, within_s: float) -> int:
    """How many batches to release now: idle slots (live slots - batches running - messages out)
    plus `lookahead`. With no worker registered, keep one message out for unregistered workers."""
    slots = live_slots(session, within_s) or 1
    busy = session.scalar(sa.select(sa.func.count(sa.distinct(E.claimed_by))).where(E.status == "running")) or 0
    out = session.scalar(sa.select(sa.func.count(sa.distinct(E.release_id))).where(released_unclaimed())) or 0
    return max(0, slots - int(busy) - int(out) + lookahead)


def shares(session: Session, user_ids: Iterable[int]) -> dict[int, FairShare]:
    """The fair_shares rows of `user_ids`, created (weight 1, pass 0) where missing."""
    ids = sorted(set(user_ids))
    found = {s.user_id: s for s in session.scalars(sa.select(FairShare).where(FairShare.user_id.in_(ids)))}
    for uid in ids:
        if uid not in found:
            found[uid] = FairShare(user_id=uid, weight=1.0, pass_value=0.0)
            session.add(found[uid])
    session.flush()
    return found


def effective_pass(share: FairShare, active: list[FairShare]) -> float:
    """The share's pass clamped to within one round (the largest stride) of the active users'."""
    stride = max(1.0 / s.weight for s in active)
    lo = max(s.pass_value for s in active) - stride
    hi = min(s.pass_value for s in active) + stride
    return min(max(share.pass_value, lo), hi)


def next_user(active: list[FairShare]) -> FairShare:
    """The user whose turn it is: lowest effective pass; ties to the one served longest ago."""
    return min(active, key=lambda s: (effective_pass(s, active), s.last_released_at or datetime.min, s.user_id))


def next_batch(session: Session, user_id: int, max_batch: int, memory_bytes: int) -> list[tuple[str, int]]:
    """The user's next batch: their first waiting run (queue_order) and the runs after it that
    train with it (same batch_key and priority), packed by li2.batching."""
    mine = sa.and_(waiting(), E.user_id == user_id)
    head = session.execute(sa.select(E.batch_key, E.priority).where(mine).order_by(*queue_order()).limit(1)).first()
    if head is None:
        return []
    rows = session.execute(
        sa.select(E.id, E.attempt, E.spec_json)
        .where(mine, E.batch_key == head.batch_key, E.priority == head.priority)
        .order_by(*queue_order())
        .limit(max_batch)
    ).all()
    packed = pack_batches(((head.batch_key, r.spec_json, (r.id, r.attempt)) for r in rows), max_batch, memory_bytes)
    return packed[0] if packed else []


@dataclass
class Released:
    """One batch a pass released: whose it is and its (run_id, attempt) items."""

    user_id: int
    items: list[tuple[str, int]]


def _lock_pass(session: Session) -> bool:
    """One dispatcher at a time: a PostgreSQL advisory lock held to the end of the transaction
    (False: another dispatcher is mid-pass; skip this one). SQLite serialises writers itself."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(0x6C6932646973))))


def release(session: Session, budget: int, max_batch: int, memory_bytes: int) -> list[Released]:
    """Release up to `budget` batches in fair order inside `session`'s transaction (no sending)."""
    out: list[Released] = []
    for _ in range(budget):
        user_ids = list(session.scalars(sa.select(E.user_id).where(waiting()).distinct()))
        if not user_ids:
            break
        active = list(shares(session, user_ids).values())
        share = next_user(active)
        items = next_batch(session, share.user_id, max_batch, memory_bytes)
        release_id = new_id()
        ids = [rid for rid, _ in items]
        changed(
            session,
            sa.update(E)
            .where(E.id.in_(ids), E.status == "queued", E.released_at.is_(None))
            .values(released_at=db_now(), enqueued_at=db_now(), release_id=release_id),
        )
        got = set(session.scalars(sa.select(E.id).where(E.release_id == release_id)))
        items = [(rid, att) for rid, att in items if rid in got]
        share.pass_value = effective_pass(share, active) + 1.0 / share.weight
        share.last_released_at = database_now(session)
        session.flush()
        if items:
            out.append(Released(share.user_id, items))
    return out


def release_pass(
    engine: Engine,
    config: dict,
    *,
    lookahead: int,
    within_s: float,
    worker: tuple[str, int, str] | None = None,
    send: Send = send_batch,
) -> list[Released]:
    """One dispatcher pass: register `worker` (name, slots, device), release what the idle slots
    can take, commit, then send. A send failure is logged; the reaper re-sends such runs."""
    with session_scope(engine) as s:
        if worker is not None:
            register_worker(s, *worker)  # on SQLite this first write also takes the write lock
        if config.get("DISPATCH", "fair") != "fair" or not _lock_pass(s):
            return []
        budget = release_budget(s, lookahead, within_s)
        done = release(s, budget, config["MAX_BATCH"], config["BATCH_MEMORY_MB"] << 20) if budget else []
    for batch in done:
        try:
            send(batch.items, config["BROKER_URL"])
        except Exception:
            log.exception("send of released batch (%d runs) failed; the reaper re-sends it", len(batch.items))
    return done


def set_share(
    session: Session, user_id: int, *, weight: float | None = None, high_allowance: int | None = None
) -> FairShare:
    """Admin: set a user's weight (> 0) and/or allowance of waiting `high` runs."""
    if weight is not None and not weight > 0:
        raise ValueError(f"weight must be > 0, got {weight}")
    if high_allowance is not None and high_allowance < 0:
        raise ValueError(f"high_allowance must be >= 0, got {high_allowance}")
    share = shares(session, [user_id])[user_id]
    if weight is not None:
        share.weight = float(weight)
    if high_allowance is not None:
        share.high_allowance = int(high_allowance)
    session.flush()
    return share
