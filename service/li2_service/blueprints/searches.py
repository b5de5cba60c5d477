"""/api/v1/searches: the adaptive search for the critical training size n*(M) as a job.

A search runs in rounds; each round is a sweep of the search (li2_store.searches), trained in
batches like any sweep. Round 0 brackets prior_c·M·ln M at every order; at each round's fan-in the
planner (li2.search) places the next sizes where each n*(M) is still uncertain, until every order
is known to the requested tolerance or the run cap is reached. The views trigger that fan-in early
(reads of one search, cancel) with the API's own settings and sender, exactly as the sweep views do.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import url_for
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from li2.errors import SpecError
from li2.jsonsafe import json_safe
from li2.search import plan_round, specs_for, validate_search
from li2_service import auth, limits, runs, schemas
from li2_service.blueprints.common import app_state, law_answer, page_of
from li2_service.body import json_object
from li2_service.errors import fail
from li2_service.listing import fetch_page, page_response, visible_rows
from li2_service.openapi import BODY_ERRORS, location, problems
from li2_service.result_schemas import ScalingLawSchema
from li2_store import models
from li2_store import searches as store
from li2_store import sweeps as sweeps_store
from li2_store.db import session_scope, utcnow

blp = Blueprint(
    "searches",
    __name__,
    url_prefix="/api/v1/searches",
    description="Searches: find the critical training size n*(M) in adaptive rounds of runs.",
)


SEARCH_EXAMPLE = {"base": schemas.SPEC_EXAMPLE, "orders": [11, 17], "seeds": 1, "max_runs": 12, "initial_points": 3}


class SearchSchema(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "running | succeeded | failed | cancelled"})
    round = fields.Integer(metadata={"description": "the round in flight (0 first)"})
    n_runs = fields.Integer(metadata={"description": "runs created so far"})
    max_runs = fields.Integer()
    counts = fields.Nested(schemas.CountsSchema)
    progress = fields.Float(metadata={"description": "fraction of the created runs that have ended"})
    orders = fields.List(fields.Dict(), metadata={"description": "per order: phase, n_star, ci95, half_width"})
    stop_reason = fields.String(allow_none=True, metadata={"description": "tolerance | max_runs | max_rounds | ..."})
    request = fields.Dict()
    user_id = fields.Integer()
    has_scaling_law = fields.Boolean()
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)


class SearchPageSchema(Schema):
    items = fields.List(fields.Nested(SearchSchema))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


class SearchListQuery(schemas.PageQuery):
    status = fields.String(validate=validate.OneOf(("running", *models.TERMINAL)))
    user = fields.String(validate=validate.Length(1, 100), metadata={"description": "admins only"})


class SearchRunsQuery(schemas.PageQuery):
    class Meta:
        unknown = RAISE

    page_size = fields.Integer(load_default=1000, validate=validate.Range(1, 1000))


class SearchCancelSchema(Schema):
    id = fields.String()
    status = fields.String()
    cancelled = fields.Integer()
    stopping = fields.Integer()


def _counts(session, search_id: str) -> dict[str, int]:
    exp, sw = models.Experiment, models.Sweep
    rows = session.execute(
        sa.select(exp.status, sa.func.count())
        .join(sw, exp.sweep_id == sw.id)
        .where(sw.search_id == search_id)
        .group_by(exp.status)
    ).all()
    counts = dict.fromkeys(models.STATUSES, 0)
    counts.update(dict(rows))
    return counts


def search_view(row: models.Search, counts: dict[str, int]) -> dict:
    """The JSON shape of one search."""
    ended = sum(counts[s] for s in models.TERMINAL)
    return {
        "id": row.id,
        "status": row.status,
        "round": row.round,
        "n_runs": row.n_runs,
        "max_runs": row.max_runs,
        "counts": counts,
        "progress": ended / row.n_runs if row.n_runs else 0.0,
        "orders": json_safe(row.progress_json or []),
        "stop_reason": row.stop_reason,
        "request": row.request_json,
        "user_id": row.user_id,
        "has_scaling_law": row.scaling_law_json is not None,
        "created_at": schemas.iso(row.created_at),
        "finished_at": schemas.iso(row.finished_at),
    }


def submit_search(state: runs.ServiceState, user: auth.Caller, raw: dict) -> models.Search:
    """Validate, create the search and its round 0 in one transaction, then enqueue round 0."""
    try:
        request = validate_search(raw)
    except SpecError as exc:
        fail(422, "invalid search; see errors", errors=exc.errors)
    quota = state.config["MAX_SWEEP_RUNS"]
    if request["max_runs"] > quota:
        fail(
            422,
            f"max_runs: at most {quota} runs per search (LI2_MAX_SWEEP_RUNS)",
            errors={"max_runs": [f"must be between 1 and {quota}, your quota of runs per search"]},
        )
    from li2.scaling import collect

    outcomes = collect([])
    assert outcomes is not None
    plan = plan_round(request, outcomes, 0, 0)
    with session_scope(state.engine) as session:
        limits.check_active(session, user, len(plan.points), state.config)
        # Round 0 is admitted by estimated compute like any submit; later rounds are planned at
        # fan-in (no request to refuse), bounded by max_runs.
        limits.check_compute(session, user, specs_for(request, plan), state.config)
        row = models.Search(
            user_id=user.id,
            request_json=json_safe(request),
            status="running",
            round=0,
            n_runs=len(plan.points),
            max_runs=request["max_runs"],
            progress_json=json_safe(plan.orders),
        )
        session.add(row)
        session.flush()
        work = store.work_items(store.add_round(session, row, 0, plan, state.config))
    store.send_rows(work, state.config, state.enqueue)
    runs.release_now(state)
    return row


@blp.route("", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchSubmit"}}},
    }
)
@blp.response(202, SearchSchema, description="round 0 queued", headers=location("the new search"))
@problems(
    blp,
    {
        **BODY_ERRORS,
        422: "invalid request; errors name each field (tolerance, seeds, order_kind, max_runs…)",
        429: "round 0 would exceed your active runs right now; retry after Retry-After seconds",
    },
)
def submit():
    """Start a search {"base": SPEC, "orders": [M…], "seeds", "tolerance", "max_runs", …}."""
    state = app_state()
    row = submit_search(state, auth.current_user(), json_object())
    with session_scope(state.engine) as session:
        fresh = session.get(models.Search, row.id)
        assert fresh is not None
        return search_view(fresh, _counts(session, fresh.id)), 202, _location(fresh.id)


def _location(search_id: str) -> dict:
    """The Location header of a 202: the search's own URL."""
    return {"Location": url_for("searches.get_search", search_id=search_id)}


@blp.route("", methods=["GET"])
@blp.arguments(SearchListQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, SearchPageSchema)
@problems(blp, {403: "only admins may filter by user"})
def list_searches(page: int, page_size: int, status: str | None = None, user: str | None = None):
    """Your searches, newest first (admins: everyone's, or ?user=NAME)."""
    se = models.Search
    stmt = visible_rows(se, auth.current_user(), user, status).order_by(se.created_at.desc(), se.id)
    return page_of(stmt, page, page_size, lambda session, row: search_view(row, _counts(session, row.id)))


def _visible_search(search_id: str, close: bool = False) -> str:
    """The id of a search the caller may see (else 404); with close, run its round's fan-in if due."""
    state = app_state()
    with session_scope(state.engine) as session:
        search = auth.get_visible(session, models.Search, search_id, auth.current_user(), "search")
        sweep_ids = list(
            session.scalars(
                sa.select(models.Sweep.id).where(
                    models.Sweep.search_id == search.id, models.Sweep.status.not_in(models.TERMINAL)
                )
            )
        )
        running = search.status == "running"
    if close:
        for sweep_id in sweep_ids:
            sweeps_store.finalize_sweep(state.engine, sweep_id, state.config, state.enqueue)
        if running:
            store.advance(state.engine, search.id, state.config, state.enqueue)
    return search.id


@blp.route("/<search_id>", methods=["GET"])
@blp.response(200, SearchSchema)
def get_search(search_id: str):
    """A search's status, its round in flight, its runs counted by status and each order's state."""
    search_id = _visible_search(search_id, close=True)
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, models.Search, search_id, auth.current_user(), "search")
        return search_view(row, _counts(session, search_id))


@blp.route("/<search_id>/runs", methods=["GET"])
@blp.arguments(SearchRunsQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, schemas.ExperimentPageSchema)
def search_runs(search_id: str, page: int, page_size: int):
    """Every run of every round, round by round; each item also says its `round`."""
    exp, sw = models.Experiment, models.Sweep
    with session_scope(app_state().engine) as session:
        search = auth.get_visible(session, models.Search, search_id, auth.current_user(), "search")
        stmt = (
            sa.select(exp)
            .join(sw, exp.sweep_id == sw.id)
            .where(sw.search_id == search.id)
            .order_by(sw.search_round, exp.created_at, exp.id)
        )
        rows, total = fetch_page(session, stmt, page, page_size)
        rounds = dict(session.execute(sa.select(sw.id, sw.search_round).where(sw.search_id == search.id)).all())
        items = [{**schemas.experiment_view(r), "round": rounds.get(r.sweep_id)} for r in rows]
    return page_response(items, page, page_size, total)


@blp.route("/<search_id>/cancel", methods=["POST"])
@blp.response(202, SearchCancelSchema, headers=location("the search"))
@problems(blp, {409: "the search has already ended"})
def cancel(search_id: str):
    """Stop the search: no new round is planned, queued runs are cancelled, running ones stopped."""
    state = app_state()
    done = {"cancelled": 0, "stopping": 0}
    with session_scope(state.engine) as session:
        search = auth.get_visible(session, models.Search, search_id, auth.current_user(), "search")
        if not store.mark_cancelled(session, search):
            fail(409, f"the search has already ended ({search.status})")
        rounds = list(session.scalars(sa.select(models.Sweep).where(models.Sweep.search_id == search.id)))
        for sweep in rounds:
            for k, v in runs.cancel_sweep(session, sweep).items():
                done[k] += v
        sweep_ids = [s.id for s in rounds]
    for sweep_id in sweep_ids:
        sweeps_store.finalize_sweep(state.engine, sweep_id, state.config, state.enqueue)
    return {"id": search_id, "status": "cancelled", **done}, 202, _location(search_id)


@blp.route("/<search_id>/scaling-law", methods=["GET"])
@blp.arguments(schemas.ScalingLawQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(
    200,
    schema=ScalingLawSchema,
    success=True,
    description="status, c, ci95, s, critical, missing, alternatives, goodness_of_fit, by_budget, convergence, "
    "time_to_grok; plus partial, n_runs_used, fitted_at. `c` is null unless status is 'fitted'; `note` says why.",
)
@problems(blp, {409: "the search is still running and ?partial=true was not given, or the fit failed"})
def scaling_law(search_id: str, partial: bool):
    """The joint law over every run of the search: stored when it has ended; ?partial=true fits now."""
    search_id = _visible_search(search_id, close=True)
    with session_scope(app_state().engine) as session:
        search = auth.get_visible(session, models.Search, search_id, auth.current_user(), "search")
        law, fitted_at, status, n_runs = search.scaling_law_json, search.fitted_at, search.status, search.n_runs
        every = store.search_runs(session, search_id) if law is None else []
    if law is None:
        if not partial and status == "running":
            fail(
                409,
                f"the search is still running ({n_runs} runs so far); ask with ?partial=true for a fit on "
                "the runs that have succeeded so far",
            )
        law = store.fit_search_law(every)
        law["n_runs_used"], fitted_at = sum(r["status"] == "succeeded" for r in every), utcnow()
    return law_answer(law, fitted_at, partial=status == "running")
