"""What the queue looks like now, and when each user's waiting work should start (GET /queue).

`snapshot` reads the running batches (worker, device, since, user), the released batches not yet
claimed, and every user's waiting runs, then *replays the dispatcher* (li2_store.dispatch's stride
order, on copies of the users' shares) over the live worker slots to estimate when each user's
next batch starts. A batch's duration is measured, not modelled: the median wall time per epoch of
recently finished runs of the same batch_key (runs of one batch_key share a shape, so they cost
the same per epoch), else of any recent run, times the batch's epochs; a running batch is
expected to take that long in all and has already used its elapsed time. Between a slot coming
free and the next batch's first epoch there is the start-up (release, the broker, a fresh process,
its imports and data): also measured, as the median time from release to start of recent
finished runs, and added before each batch placed. With nothing measured yet the estimate is None.
"""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from li2.batching import pack_batches
from li2_store.db import database_now
from li2_store.dispatch import (
    PRIORITY_NAMES,
    effective_pass,
    next_user,
    queue_order,
    released_unclaimed,
    waiting,
)
from li2_store.models import Experiment as E
from li2_store.models import FairShare, User, WorkerSlot

RECENT_RUNS = 200  # finished runs whose epoch rates are measured


@dataclass
class RunningBatch:
    worker: str  # the claiming pool process, "li2-<pid>@host/<child pid>"
    device: str | None
    since: datetime
    user_id: int
    run_ids: list[str]
    epoch: int  # the furthest run's progress
    epochs: int


@dataclass
class UserWaiting:
    user_id: int
    runs: int
    batches: int
    position: int | None = None  # 1: this user's next batch is the next to go out
    estimated_start_s: float | None = None
    next_run_ids: list[str] = field(default_factory=list)
    priorities: dict[str, int] = field(default_factory=dict)


@dataclass
class Snapshot:
    now: datetime
    slots: int
    workers: list[dict]
    running: list[RunningBatch]
    released: int  # batches in the broker, not yet claimed
    waiting: list[UserWaiting]
    user_names: dict[int, str]


def epoch_seconds(session: Session) -> tuple[dict[str, float], float | None]:
    """Median seconds per epoch of recent finished runs: per batch_key, and over all of them."""
    rows = session.execute(
        sa.select(E.batch_key, E.started_at, E.finished_at, E.epochs)
        .where(E.status == "succeeded", E.started_at.is_not(None), E.finished_at.is_not(None), E.epochs > 0)
        .order_by(E.finished_at.desc())
        .limit(RECENT_RUNS)
    ).all()
    per: dict[str, list[float]] = {}
    for r in rows:
        per.setdefault(r.batch_key, []).append((r.finished_at - r.started_at).total_seconds() / r.epochs)
    every = [v for vs in per.values() for v in vs]
    return {k: statistics.median(v) for k, v in per.items()}, (statistics.median(every) if every else None)


def start_latency(session: Session) -> float:
    """Median seconds from release to start of recent finished runs (0 with none measured)."""
    rows = session.execute(
        sa.select(E.released_at, E.started_at)
        .where(E.status == "succeeded", E.released_at.is_not(None), E.started_at.is_not(None))
        .order_by(E.finished_at.desc())
        .limit(RECENT_RUNS)
    ).all()
    gaps = [(r.started_at - r.released_at).total_seconds() for r in rows if r.started_at >= r.released_at]
    return statistics.median(gaps) if gaps else 0.0


def snapshot(session: Session, *, within_s: float, max_batch: int, memory_bytes: int) -> Snapshot:
    """The queue now, with each waiting user's position and estimated start (module docstring)."""
    now = database_now(session)
    live = session.execute(
        sa.select(WorkerSlot.name, WorkerSlot.slots, WorkerSlot.device, WorkerSlot.seen_at).where(
            WorkerSlot.seen_at >= now - timedelta(seconds=within_s)
        )
    ).all()
    devices = {w.name: w.device for w in live}
    rates, overall = epoch_seconds(session)
    latency = start_latency(session)

    def duration(key: str, epochs: int) -> float | None:
        rate = rates.get(key, overall)
        return None if rate is None else rate * epochs

    running: dict[str, RunningBatch] = {}
    ends: list[float | None] = []
    rows = session.execute(
        sa.select(E.id, E.claimed_by, E.started_at, E.user_id, E.progress_epoch, E.epochs, E.batch_key)
        .where(E.status == "running")
        .order_by(E.started_at)
    ).all()
    keys: dict[str, str] = {}
    for r in rows:
        b = running.get(r.claimed_by)
        if b is None:
            b = running[r.claimed_by] = RunningBatch(
                r.claimed_by, devices.get((r.claimed_by or "").split("/")[0]), r.started_at, r.user_id, [], 0, 0
            )
            keys[r.claimed_by] = r.batch_key
        b.run_ids.append(r.id)
        b.epoch, b.epochs = max(b.epoch, r.progress_epoch or 0), max(b.epochs, r.epochs)
    for worker, b in running.items():
        d = duration(keys[worker], b.epochs)
        ends.append(None if d is None else max(0.0, d - (now - b.since).total_seconds()))

    released = session.execute(
        sa.select(E.release_id, E.batch_key, sa.func.max(E.epochs))
        .where(released_unclaimed())
        .group_by(E.release_id, E.batch_key)
    ).all()

    per_user: dict[int, list] = {}
    for r in session.execute(
        sa.select(E.id, E.user_id, E.batch_key, E.spec_json, E.attempt, E.priority, E.epochs)
        .where(waiting())
        .order_by(*queue_order())
    ).all():
        per_user.setdefault(r.user_id, []).append(r)
    users: dict[int, UserWaiting] = {}
    batches: dict[int, list[tuple[str, int, list[str]]]] = {}
    for uid, rs in per_user.items():
        by_id = {r.id: r for r in rs}
        packed = pack_batches(
            ((f"{r.batch_key}:{r.priority}", r.spec_json, (r.id, r.attempt)) for r in rs), max_batch, memory_bytes
        )
        # li2.batching groups by key; restore queue order by each batch's first run.
        order = {r.id: i for i, r in enumerate(rs)}
        packed.sort(key=lambda items: min(order[i] for i, _ in items))
        batches[uid] = [
            (by_id[items[0][0]].batch_key, max(by_id[i].epochs for i, _ in items), [i for i, _ in items])
            for items in packed
        ]
        prios: dict[str, int] = {}
        for r in rs:
            prios[PRIORITY_NAMES[r.priority]] = prios.get(PRIORITY_NAMES[r.priority], 0) + 1
        users[uid] = UserWaiting(uid, len(rs), len(packed), priorities=prios)

    slots = sum(w.slots for w in live) or 1
    # Free times of the slots (seconds from now; None = unknown), then the released batches.
    free: list[float] = []
    unknown = any(e is None for e in ends)
    for e in ends:
        free.append(e or 0.0)
    free += [0.0] * max(0, slots - len(free))
    heapq.heapify(free)

    def place(d: float | None) -> float | None:
        nonlocal unknown
        start = heapq.heappop(free) + latency  # the slot comes free, then the batch starts up
        heapq.heappush(free, start + (d or 0.0))
        unknown = unknown or d is None
        return None if unknown else start

    for rel in released:
        place(duration(rel.batch_key, int(rel[2] or 0)))

    shares = {s.user_id: s for s in session.scalars(sa.select(FairShare).where(FairShare.user_id.in_(list(users))))}
    sim = {
        uid: FairShare(
            user_id=uid,
            weight=shares[uid].weight if uid in shares else 1.0,
            pass_value=shares[uid].pass_value if uid in shares else 0.0,
            last_released_at=shares[uid].last_released_at if uid in shares else None,
        )
        for uid in users
    }
    left = {uid: list(bs) for uid, bs in batches.items()}
    position = 0
    tick = now
    while left:
        active = [sim[u] for u in left]
        share = next_user(active)
        share.pass_value = effective_pass(share, active) + 1.0 / share.weight
        tick += timedelta(microseconds=1)
        share.last_released_at = tick
        key, epochs, run_ids = left[share.user_id].pop(0)
        position += 1
        start = place(duration(key, epochs))
        u = users[share.user_id]
        if u.position is None:
            u.position, u.estimated_start_s, u.next_run_ids = position, start, run_ids
        if not left[share.user_id]:
            del left[share.user_id]

    names = dict(session.execute(sa.select(User.id, User.name)).all())
    return Snapshot(
        now=now,
        slots=slots,
        workers=[{"name": w.name, "slots": w.slots, "device": w.device, "seen_at": w.seen_at} for w in live],
        running=list(running.values()),
        released=len(released),
        waiting=sorted(users.values(), key=lambda u: u.position or 0),
        user_names=names,
    )
