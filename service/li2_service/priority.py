"""The submit field `priority` (low | normal | high): read it, and admit `high` within an allowance.

Priority orders one user's own waiting work (li2_store.dispatch); it never moves a user ahead of
another user's turn, and it is not part of the spec hash (two runs of one spec are the same
result whatever their priority). `high` is rationed: a non-admin may have at most
LI2_HIGH_ALLOWANCE runs (default 8; per user in fair_shares.high_allowance, set by an admin)
waiting at `high`; admins have no such limit.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from li2_service.auth import Caller
from li2_service.errors import fail, unprocessable
from li2_store.dispatch import PRIORITIES
from li2_store.models import Experiment, FairShare

HIGH = PRIORITIES["high"]


def pop_priority(body: dict) -> int:
    """Remove `priority` from a submit body (or bare spec) and return its level (normal if absent);
    422 naming the field when it is not one of low, normal, high."""
    value = body.pop("priority", "normal")
    if not isinstance(value, str) or value not in PRIORITIES:
        unprocessable("priority", f"must be one of {', '.join(PRIORITIES)}; got {str(value)[:40]!r}")
    return PRIORITIES[value]


def check_priority(session: Session, user: Caller, level: int, adding: int, config: dict) -> None:
    """403 naming `priority` when `adding` more `high` runs would pass the user's allowance.

    Call it inside the submit's transaction after `limits.lock_user`, so the count holds.
    """
    if level != HIGH or user.is_admin:
        return
    own = session.scalar(sa.select(FairShare.high_allowance).where(FairShare.user_id == user.id))
    allowance = config.get("HIGH_ALLOWANCE", 8) if own is None else own
    waiting = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Experiment)
            .where(Experiment.user_id == user.id, Experiment.status == "queued", Experiment.priority == HIGH)
        )
        or 0
    )
    if waiting + adding > allowance:
        fail(
            403,
            (
                f"priority high: you have {waiting} high-priority runs waiting and asked for {adding} more; "
                f"your allowance is {allowance} (LI2_HIGH_ALLOWANCE or an admin's per-user setting)"
            ),
            errors={"priority": [f"at most {allowance} waiting high-priority runs; use normal or low"]},
        )
