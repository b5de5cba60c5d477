"""Searches through the database: each round is a sweep, the next round is planned at its fan-in.

The search's state is its row: `round` is the round in flight. When that round's sweep has closed
(li2_store.sweeps.finalize_sweep calls `advance`), the planner (li2.search.plan_round) reads every
outcome so far and either closes the search with its scaling law or creates the next round. The
round moves on by one conditional UPDATE (`... WHERE round = r AND status = 'running'`) in the same
transaction that inserts the new sweep and its runs, and sweeps are unique on (search_id,
search_round): a fan-in delivered twice, or by the worker and the reaper at once, plans one round.

Messages go out after that commit. If sending fails or the broker loses them (a Redis restart),
the runs are queued rows like any other and the reaper's re-enqueue pass sends them again; if the
process dies between closing a round's sweep and planning the next round, the reaper's
`advance_ready` pass (called from li2_store.sweeps.finalize_ready_sweeps) plans it.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from li2.batching import batch_key, pack_batches
from li2.jsonsafe import json_safe
from li2.search.plan import Plan
from li2.spec import spec_hash
from li2_store.catalog import spec_columns
from li2_store.db import changed, database_now, db_now, session_scope
from li2_store.models import TERMINAL, Experiment, Search, Sweep
from li2_store.sweeps import Enqueue

log = logging.getLogger(__name__)


def new_experiment(user_id: int, spec: dict, max_attempts: int, enqueued_at: datetime, **extra: object) -> Experiment:
    """A queued run row for a normalised spec (the one constructor of API submits and search rounds).
    `enqueued_at` must be the database's clock (`database_now`): the reaper compares it with that
    clock to find runs whose message was lost."""
    return Experiment(
        user_id=user_id,
        spec_json=spec,
        spec_hash=spec_hash(spec),
        batch_key=batch_key(spec),
        status="queued",
        attempt=1,
        max_attempts=max_attempts,
        epochs=int(spec["training"]["epochs"]),
        enqueued_at=enqueued_at,
        **spec_columns(spec),
        **extra,
    )


def _settings(config: dict | None) -> dict:
    if config is not None:
        return config
    from li2_store.config import load_config

    return load_config()


def _sender(enqueue: Enqueue | None, config: dict) -> Enqueue:
    if enqueue is not None:
        return enqueue
    from li2_store.dispatch import enqueue_for

    return enqueue_for(config)


def add_round(session: Session, search: Search, round_index: int, plan: Plan, config: dict) -> list[Experiment]:
    """Insert the sweep and the runs of one round of `search` (in the caller's transaction)."""
    from li2.search import specs_for

    request = search.request_json
    specs = specs_for(request, plan)
    points = [{"order": p.order, "train_size": p.train_size, "seed": p.seed} for p in plan.points]
    sweep = Sweep(
        user_id=search.user_id,
        base_json=request["base"],
        grid_json={"search_id": search.id, "round": round_index, "points": points},
        status="queued",
        n_runs=len(specs),
        search_id=search.id,
        search_round=round_index,
    )
    session.add(sweep)
    session.flush()
    now = database_now(session)
    rows = [new_experiment(search.user_id, spec, config["MAX_ATTEMPTS"], now, sweep_id=sweep.id) for spec in specs]
    session.add_all(rows)
    session.flush()
    return rows


def work_items(rows: list[Experiment]) -> list[tuple[str, dict, tuple[str, int]]]:
    """(batch_key, spec, (run_id, attempt)) of each row: read them before the session closes."""
    return [(r.batch_key, r.spec_json, (r.id, r.attempt)) for r in rows]


def send_rows(work: list[tuple[str, dict, tuple[str, int]]], config: dict, enqueue: Enqueue | None = None) -> None:
    """Enqueue runs in li2.batching's batches; a broker failure is logged (the reaper re-sends)."""
    send = _sender(enqueue, config)
    batches = pack_batches(work, config["MAX_BATCH"], config["BATCH_MEMORY_MB"] << 20)
    for items in batches:
        try:
            send(items, config["BROKER_URL"])
        except Exception:
            log.exception("enqueue of %d search run(s) failed; they stay queued for the reaper", len(items))


def search_runs(session: Session, search_id: str, statuses: tuple[str, ...] | None = None) -> list[dict]:
    """Every run of the search's rounds: {"id", "round", "status", "spec", "summary", "error"}."""
    stmt = (
        sa.select(Experiment.id, Sweep.search_round, Experiment.status, Experiment.spec_json, Experiment.summary_json)
        .add_columns(Experiment.error)
        .join(Sweep, Experiment.sweep_id == Sweep.id)
        .where(Sweep.search_id == search_id)
        .order_by(Sweep.search_round, Experiment.created_at, Experiment.id)
    )
    if statuses is not None:
        stmt = stmt.where(Experiment.status.in_(statuses))
    return [
        {"id": i, "round": r, "status": st, "spec": spec, "summary": summary, "error": err}
        for i, r, st, spec, summary, err in session.execute(stmt)
    ]


def fit_search_law(runs: list[dict]) -> dict:
    """The joint law over the succeeded runs of a search (li2_store.sweeps.fit_law's fit)."""
    from li2_store.sweeps import fit_law

    return fit_law([{"spec": r["spec"], "summary": r["summary"]} for r in runs if r["status"] == "succeeded"])


def advance(engine: Engine, search_id: str, config: dict | None = None, enqueue: Enqueue | None = None) -> str:
    """Plan the next round of a search whose round in flight has closed, or close the search.

    Returns "planned", "finished", "failed", "waiting" (its round is still open), "closed" (the
    search has ended) or "raced" (another caller planned this round first).
    """
    from li2.scaling import collect
    from li2.search import plan_round

    with session_scope(engine) as s:
        search = s.get(Search, search_id)
        if search is None or search.status in TERMINAL:
            return "closed"
        r = search.round
        open_round = s.scalar(
            sa.select(sa.func.count())
            .select_from(Sweep)
            .where(Sweep.search_id == search_id, Sweep.search_round == r, Sweep.status.not_in(TERMINAL))
        )
        if open_round:
            return "waiting"
        runs = search_runs(s, search_id)
        request = search.request_json
    done = [x for x in runs if x["status"] == "succeeded"]
    this_round = [x for x in runs if x["round"] == r]
    if this_round and not any(x["status"] in ("succeeded", "cancelled") for x in this_round):
        errors = sorted({str(x["error"])[:200] for x in this_round if x["error"]})
        return _close(engine, search_id, r, "failed", "runs_failed", runs, note="; ".join(errors[:3]))
    outcomes = collect([{"spec": x["spec"], "summary": x["summary"]} for x in done])
    assert outcomes is not None
    plan = plan_round(request, outcomes, len(runs), r + 1)
    if plan.done:
        return _close(engine, search_id, r, "succeeded", plan.stop or "tolerance", runs, progress=plan.orders)
    settings = _settings(config)
    try:
        with session_scope(engine) as s:
            moved = changed(
                s,
                sa.update(Search)
                .where(Search.id == search_id, Search.round == r, Search.status == "running")
                .values(round=r + 1, n_runs=Search.n_runs + len(plan.points), progress_json=json_safe(plan.orders)),
            )
            if not moved:
                return "raced"
            search = s.get(Search, search_id)
            assert search is not None
            work = work_items(add_round(s, search, r + 1, plan, settings))
    except IntegrityError:
        return "raced"  # the unique (search_id, search_round): another caller inserted this round
    log.info("search %s: round %d planned, %d runs", search_id, r + 1, len(work))
    send_rows(work, settings, enqueue)
    return "planned"


def _close(
    engine: Engine,
    search_id: str,
    r: int,
    status: str,
    reason: str,
    runs: list[dict],
    progress: list | None = None,
    note: str | None = None,
) -> str:
    law = fit_search_law(runs)
    if note:
        law["search_note"] = note
    values: dict = {
        "status": status,
        "stop_reason": reason,
        "scaling_law_json": law,
        "finished_at": db_now(),
        "fitted_at": db_now(),
    }
    if progress is not None:
        values["progress_json"] = json_safe(progress)
    with session_scope(engine) as s:
        done = changed(
            s,
            sa.update(Search)
            .where(Search.id == search_id, Search.round == r, Search.status == "running")
            .values(**values),
        )
    if done:
        log.info("search %s %s (%s) after round %d", search_id, status, reason, r)
    return "finished" if status == "succeeded" and done else (status if done else "raced")


def mark_cancelled(session: Session, search: Search) -> bool:
    """Stop planning rounds (the caller cancels the rounds' runs); False if it had already ended."""
    return bool(
        changed(
            session,
            sa.update(Search)
            .where(Search.id == search.id, Search.status.not_in(TERMINAL))
            .values(status="cancelled", stop_reason="cancelled", finished_at=db_now()),
        )
    )


def advance_ready(engine: Engine) -> list[str]:
    """Advance every running search whose round in flight has closed (the reaper's pass)."""
    open_round = sa.select(Sweep.id).where(
        Sweep.search_id == Search.id, Sweep.search_round == Search.round, Sweep.status.not_in(TERMINAL)
    )
    with session_scope(engine) as s:
        ids = list(s.scalars(sa.select(Search.id).where(Search.status == "running", ~sa.exists(open_round))))
    return [sid for sid in ids if advance(engine, sid) in ("planned", "finished", "failed")]
