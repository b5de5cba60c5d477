"""Per-user limits that keep one account from filling a shared server.

- compute: the estimated FLOPs of a user's queued + running work (li2.compute: run-epochs ×
  FLOPs per run-epoch, from each spec) may not exceed MAX_COMPUTE_PFLOP peta-FLOPs. This is the
  quota that measures work; fair-share dispatch (li2_store.dispatch) keeps a big backlog from
  crowding others out, so the default (50 PFLOP) admits the paper's Fig. 5 grid (800 runs,
  K = 2048, 3000 epochs: about 10 PFLOP) and a critical-size search beside it;
- active runs: a user's queued + running experiments may not exceed MAX_ACTIVE_PER_USER (10,000),
  and one sweep may not expand to more than MAX_SWEEP_RUNS (10,000): guards against abuse only.

A request that can never be met (alone over a limit) is a 422; one that waiting frees (over only
with the work already queued) is a 429 with Retry-After.

The active-run limit holds exactly under concurrent submits. An admission decision (count, then
insert) runs inside the submit's transaction after `lock_user`, which takes a lock on the user's
row: PostgreSQL serialises the user's concurrent submits on that row lock until each commits, and
SQLite takes its database-wide write lock. So the next submit counts only after the previous one
has inserted its runs (or rolled back), and two racing submits can no longer both see room for one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from li2.compute import run_flops
from li2_service.auth import Caller
from li2_service.errors import fail
from li2_store import models
from li2_store.db import changed

ACTIVE = ("queued", "running")
PETA = 1e15
DEFAULT_COMPUTE_PFLOP = 50


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


def active_compute(session: Session, user: Caller) -> float:
    """Estimated FLOPs still to run of the user's queued and running experiments."""
    rows = session.execute(
        sa.select(models.Experiment.spec_json, models.Experiment.progress_epoch).where(
            models.Experiment.user_id == user.id, models.Experiment.status.in_(ACTIVE)
        )
    ).all()
    return sum(run_flops(r.spec_json, r.progress_epoch or 0) for r in rows)


def check_compute(session: Session, user: Caller, specs: list[dict], config: dict) -> None:
    """422 when `specs` alone estimate more than MAX_COMPUTE_PFLOP; 429 when they would with the
    user's queued and running work. Call after `check_active` (which holds the user's lock)."""
    limit = config.get("MAX_COMPUTE_PFLOP", DEFAULT_COMPUTE_PFLOP) * PETA
    adding = sum(run_flops(s) for s in specs)
    if adding > limit:
        fail(
            422,
            (
                f"estimated compute {adding / PETA:.3g} PFLOP (run-epochs × FLOPs per run-epoch) exceeds the "
                f"limit of {limit / PETA:.3g} PFLOP per user (LI2_MAX_COMPUTE_PFLOP): it can never be admitted; "
                "use fewer runs, epochs or a smaller hidden width"
            ),
            errors={"compute": [f"estimate {adding / PETA:.3g} PFLOP > limit {limit / PETA:.3g} PFLOP"]},
        )
    active = active_compute(session, user)
    if active + adding > limit:
        fail(
            429,
            (
                f"estimated compute {adding / PETA:.3g} PFLOP with your queued and running "
                f"{active / PETA:.3g} PFLOP exceeds the limit of {limit / PETA:.3g} PFLOP per user "
                "(LI2_MAX_COMPUTE_PFLOP). Retry when some have finished."
            ),
            errors={
                "compute": [
                    f"estimate {adding / PETA:.3g} PFLOP + active {active / PETA:.3g} PFLOP "
                    f"> limit {limit / PETA:.3g} PFLOP"
                ]
            },
            headers={"Retry-After": str(config["RETRY_AFTER_S"])},
        )
