"""Per-user limits that keep one account from filling a shared server: answer 429 + Retry-After.

- active runs: a user's queued + running experiments may not exceed MAX_ACTIVE_PER_USER;
- sweep size: one sweep may not expand to more than MAX_SWEEP_RUNS runs.
The active count is read, not locked: two racing submits may overshoot by one request's worth,
which is acceptable for a fairness limit (the database stays consistent either way).
"""

from __future__ import annotations

import sqlalchemy as sa

from li2_service.auth import Caller
from li2_service.errors import fail
from li2_store import models

ACTIVE = ("queued", "running")


def active_runs(session, user: Caller) -> int:
    """Number of the user's experiments that are queued or running."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(models.Experiment)
            .where(models.Experiment.user_id == user.id, models.Experiment.status.in_(ACTIVE))
        )
        or 0
    )


def check_active(session, user: Caller, adding: int, config: dict) -> None:
    """429 when `adding` more runs would take the user past MAX_ACTIVE_PER_USER."""
    limit = config["MAX_ACTIVE_PER_USER"]
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
    """429 when a sweep expands to more runs than MAX_SWEEP_RUNS."""
    limit = config["MAX_SWEEP_RUNS"]
    if n_runs > limit:
        fail(
            429,
            (
                f"the sweep expands to {n_runs} runs; at most {limit} per sweep "
                "(LI2_MAX_SWEEP_RUNS). Split it into smaller sweeps."
            ),
            errors={"grid": [f"expands to {n_runs} runs; at most {limit} allowed"]},
            headers={"Retry-After": str(config["RETRY_AFTER_S"])},
        )
