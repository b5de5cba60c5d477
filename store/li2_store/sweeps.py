"""Sweep fan-in through the database (no Celery chords: a chord whose header task dies never fires).

A sweep is finished when none of its runs is queued or running. Whoever notices first — the
worker that wrote a run's last state, or the reaper's periodic pass (which also covers runs the
API cancelled while queued) — fits the scaling law on the succeeded runs and stores it. The final
UPDATE is conditioned on the sweep not being terminal yet, so concurrent finishers store it once.

A sweep that is a round of a search (li2_store.searches) stores no law of its own: closing it
hands over to the search, which plans its next round or closes itself with the law of all rounds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from li2.jsonsafe import json_safe
from li2_store.db import changed, db_now, session_scope
from li2_store.models import TERMINAL, Experiment, Sweep

Enqueue = Callable[[list[tuple[str, int]], str], None]  # (items, broker_url): li2_store.producer.send_batch

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")


def mark_running(session: Session, sweep_id: str) -> None:
    """The first claimed run of a queued sweep makes the sweep 'running'."""
    session.execute(sa.update(Sweep).where(Sweep.id == sweep_id, Sweep.status == "queued").values(status="running"))


def final_status(counts: dict[str, int]) -> str:
    """succeeded if any run succeeded; cancelled if every run was cancelled; otherwise failed."""
    if counts.get("succeeded"):
        return "succeeded"
    if counts and set(counts) == {"cancelled"}:
        return "cancelled"
    return "failed"


def fit_law(runs: list[dict]) -> dict:
    """li2.scaling's fit on [{spec, summary}, ...]; a fit that cannot be made is stored as {"error"}."""
    if not runs:
        return {"error": "no run of the sweep succeeded, nothing to fit"}
    from li2.scaling import fit_scaling_law  # numpy only, no torch

    try:
        return json_safe(fit_scaling_law(runs))
    except Exception as exc:
        log.warning("scaling-law fit failed: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def finalize_sweep(engine: Engine, sweep_id: str, config: dict | None = None, enqueue: Enqueue | None = None) -> bool:
    """If every run of the sweep has ended, fit the law and close the sweep; True if this call did.

    For a round of a search, the search then advances (`config` and `enqueue` are the settings and
    sender for its next round: the API passes its own; workers read the LI2_* environment).
    """
    with session_scope(engine) as s:
        sweep = s.execute(
            sa.select(Sweep.status, Sweep.n_runs, Sweep.search_id, Sweep.search_round).where(Sweep.id == sweep_id)
        ).first()
        if sweep is None or sweep.status in TERMINAL:
            return False
        counts = dict(
            s.execute(
                sa.select(Experiment.status, sa.func.count())
                .where(Experiment.sweep_id == sweep_id)
                .group_by(Experiment.status)
            ).all()
        )
        if any(counts.get(st) for st in ACTIVE) or sum(counts.values()) < sweep.n_runs:
            return False  # still running, or the API has not finished inserting its runs
        runs = [
            {"spec": spec, "summary": summary}
            for spec, summary in s.execute(
                sa.select(Experiment.spec_json, Experiment.summary_json)
                .where(Experiment.sweep_id == sweep_id, Experiment.status == "succeeded")
                .order_by(Experiment.created_at, Experiment.id)
            )
        ]
    if sweep.search_id is not None:
        law = {
            "error": f"this sweep is round {sweep.search_round} of search {sweep.search_id}; "
            f"the scaling law is the search's: GET /api/v1/searches/{sweep.search_id}/scaling-law"
        }
    else:
        law = fit_law(runs)
    with session_scope(engine) as s:
        done = changed(
            s,
            sa.update(Sweep)
            .where(Sweep.id == sweep_id, Sweep.status.not_in(TERMINAL))
            .values(status=final_status(counts), finished_at=db_now(), scaling_law_json=law, fitted_at=db_now()),
        )
    if done:
        log.info("sweep %s finished (%s), scaling law stored", sweep_id, final_status(counts))
    if sweep.search_id is not None:
        from li2_store.searches import advance

        advance(engine, sweep.search_id, config, enqueue)
    return bool(done)


def finalize_ready_sweeps(engine: Engine) -> list[str]:
    """Close every open sweep none of whose runs is still active (the reaper's periodic pass)."""
    active = sa.select(Experiment.id).where(Experiment.sweep_id == Sweep.id, Experiment.status.in_(ACTIVE))
    with session_scope(engine) as s:
        ids = list(s.scalars(sa.select(Sweep.id).where(Sweep.status.not_in(TERMINAL), ~sa.exists(active))))
    closed = [sid for sid in ids if finalize_sweep(engine, sid)]
    from li2_store.searches import advance_ready

    advance_ready(engine)  # searches whose round closed but whose next round was never planned
    return closed
