"""Per-user limits that keep one account from filling a shared server.

- active runs: a user's queued + running experiments may not exceed MAX_ACTIVE_PER_USER. While
  waiting can make room (some of the user's runs are active) the answer is 429 + Retry-After; a
  request that asks for more runs than the limit at all can never fit, and answers 422;
- sweep size: one sweep may not expand to more than MAX_SWEEP_RUNS runs: 422 (waiting cannot help).

The active-run limit holds exactly under concurrent submits. An admission decision (count, then
insert) runs inside the submit's transaction after `lock_user`, which takes a lock on the user's
row: PostgreSQL serialises the user's concurrent submits on that row lock until each commits, and
SQLite takes its database-wide write lock. So the next submit counts only after the previous one
has inserted its runs (or rolled back), and two racing submits can no longer both see room for one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from li2_service.auth import Caller
from li2_service.errors import fail
from li2_store import models
from li2_store.db import changed

ACTIVE = ("queued", "running")


def lock_user(session: Session, user: Caller) -> None:
    """Hold the user's lock until `session`'s transaction ends: call it before any admission count.

    A conditional UPDATE that writes the row's own value (so nothing changes): on PostgreSQL it
    takes the row's lock, which a second transaction's UPDATE waits for; on SQLite any write takes
    the database's write lock (waited for up to the busy timeout). Other users are not blocked on
    PostgreSQL. Idempotent within one transaction.
    """
    users = models.User
    if not changed(session, sa.update(users).where(users.id == user.id).values(is_admin=users.is_admin)):
        fail(401, "this account no longer exists", headers={"WWW-Authenticate": 'Bearer realm="li2lab"'})


def active_runs(session: Session, user: Caller) -> int:
    """Number of the user's experiments that are queued or running."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(models.Experiment)
            .where(models.Experiment.user_id == user.id, models.Experiment.status.in_(ACTIVE))
        )
        or 0
    )


def check_active(session: Session, user: Caller, adding: int, config: dict) -> None:
    """429 when `adding` more runs would take the user past MAX_ACTIVE_PER_USER for now; 422 when
    `adding` alone exceeds it (no amount of waiting makes room).

    Locks the user first (`lock_user`), so the count stays true until the caller's transaction
    commits the runs it admits.
    """
    limit = config["MAX_ACTIVE_PER_USER"]
    if adding > limit:
        fail(
            422,
            f"this asks for {adding} runs at once; at most {limit} may be active per user (LI2_MAX_ACTIVE_PER_USER)",
            errors={"active_runs": [f"at most {limit} queued + running runs per user; split the request"]},
        )
    lock_user(session, user)
    active = active_runs(session, user)
    if active + adding > limit:
        fail(
            429,
            (
                f"too many active runs: you have {active} queued or running and asked for "
                f"{adding} more; the limit is {limit} (LI2_MAX_ACTIVE_PER_USER). "
                "Retry when some have finished."
            ),
            errors={"active_runs": [f"at most {limit} queued + running runs per user"]},
            headers={"Retry-After": str(config["RETRY_AFTER_S"])},
        )


def check_sweep_size(n_runs: int, config: dict) -> None:
    """422 when a sweep expands to more runs than MAX_SWEEP_RUNS (a retry can never succeed)."""
    limit = config["MAX_SWEEP_RUNS"]
    if n_runs > limit:
        fail(
            422,
            (
                f"the sweep expands to {n_runs} runs; at most {limit} per sweep "
                "(LI2_MAX_SWEEP_RUNS). Split it into smaller sweeps."
            ),
            errors={"grid": [f"expands to {n_runs} runs; at most {limit} allowed"]},
        )
