"""/api/v1/sweeps: a grid of runs over dotted spec paths, its progress, runs and scaling law.

A sweep fans in through the database (no Celery chords): its status is derived from its runs'
statuses, and the scaling law is fitted from the ended runs' summaries — stored once all runs
have ended, or fitted on demand with ?partial=true.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from li2_service import auth, models, runs, schemas
from li2_service.body import json_object
from li2_service.db import session_scope, utcnow
from li2_service.listing import fetch_page, page_response

blp = Blueprint("sweeps", __name__, url_prefix="/api/v1/sweeps",
                description="Sweeps: the Cartesian product of dotted spec paths, batched by shape.")


def _state() -> runs.ServiceState:
    return current_app.extensions["li2"]


@blp.route("", methods=["POST"])
@blp.doc(requestBody={"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SweepSubmit"}}}})
@blp.response(202, schemas.SweepSchema, description="queued")
@blp.alt_response(422, description="invalid base spec or grid; errors name each field")
@blp.alt_response(429, description="too many runs (per sweep or active per user); see Retry-After")
def submit():
    """Submit a sweep {"base": SPEC, "grid": {"dotted.path": [values]}}."""
    state = _state()
    sweep = runs.submit_sweep(state, auth.current_user(), json_object())
    with session_scope(state.engine) as session:
        return schemas.sweep_view(sweep, runs.sweep_counts(session, sweep.id)), 202


@blp.route("", methods=["GET"])
@blp.arguments(schemas.SweepListQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, schemas.SweepPageSchema)
def list_sweeps(page: int, page_size: int, status: str | None = None, user: str | None = None):
    """List your sweeps, newest first (admins: everyone's, or ?user=NAME)."""
    caller = auth.current_user()
    sw = models.Sweep
    stmt = sa.select(sw).where(auth.visible_to(caller, sw.user_id))
    if user is not None:
        if not caller.is_admin:
            abort(403, message="only admins may filter by user", errors={"user": ["admins only"]})
        stmt = stmt.join(models.User, models.User.id == sw.user_id).where(models.User.name == user)
    if status:
        stmt = stmt.where(sw.status == status)
    with session_scope(_state().engine) as session:
        rows, total = fetch_page(session, stmt.order_by(sw.created_at.desc(), sw.id), page, page_size)
        items = [schemas.sweep_view(r, runs.settle_sweep(session, r)) for r in rows]
    return page_response(items, page, page_size, total)


@blp.route("/<sweep_id>", methods=["GET"])
@blp.response(200, schemas.SweepSchema)
def get_sweep(sweep_id: str):
    """A sweep's status, its runs counted by status, and the fraction that has ended."""
    with session_scope(_state().engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        return schemas.sweep_view(sweep, runs.settle_sweep(session, sweep))


@blp.route("/<sweep_id>/runs", methods=["GET"])
@blp.arguments(schemas.SweepRunsQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, schemas.ExperimentPageSchema)
def sweep_runs(sweep_id: str, page: int, page_size: int, status: str | None = None):
    """The sweep's runs in grid order, each with spec, status and summary."""
    exp = models.Experiment
    with session_scope(_state().engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        stmt = sa.select(exp).where(exp.sweep_id == sweep.id)
        if status:
            stmt = stmt.where(exp.status == status)
        rows, total = fetch_page(session, stmt.order_by(exp.created_at, exp.id), page, page_size)
        items = [schemas.experiment_view(r) for r in rows]
    return page_response(items, page, page_size, total)


@blp.route("/<sweep_id>/cancel", methods=["POST"])
@blp.response(202, schemas.SweepCancelSchema)
def cancel(sweep_id: str):
    """Cancel every queued run of the sweep and ask its running runs to stop."""
    with session_scope(_state().engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        return {"id": sweep.id, **runs.cancel_sweep(session, sweep)}


def _fit(ended: list[models.Experiment]) -> dict:
    """li2.scaling.fit_scaling_law on the ended runs' {id, spec, status, summary}; 409 if it cannot."""
    from li2.scaling import fit_scaling_law  # numpy/scipy only, loaded on first use

    payload = [{"id": r.id, "spec": r.spec_json, "status": r.status, "summary": r.summary_json}
               for r in ended if r.summary_json]
    if not payload:
        abort(409, message="no run of this sweep has ended with a summary yet; nothing to fit")
    try:
        return schemas.finite(fit_scaling_law(payload))
    except (ValueError, ArithmeticError, RuntimeError) as exc:
        abort(409, message=f"the scaling law cannot be fitted on these runs yet: {str(exc)[:300]}")


@blp.route("/<sweep_id>/scaling-law", methods=["GET"])
@blp.arguments(schemas.ScalingLawQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, description="form, c, ci95, critical (per-M n_star, p_star), alternatives; "
                               "plus partial, n_runs_used, fitted_at")
@blp.alt_response(409, description="no run has ended yet, or the sweep is still running without ?partial=true")
def scaling_law(sweep_id: str, partial: bool):
    """The fitted scaling law n* ≈ c·M·ln M: stored when the sweep has ended; ?partial=true fits now."""
    exp = models.Experiment
    with session_scope(_state().engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        counts = runs.settle_sweep(session, sweep)
        if sweep.scaling_law_json is not None:
            return {**sweep.scaling_law_json, "partial": False, "fitted_at": schemas.iso(sweep.fitted_at)}
        finished = sweep.status in models.TERMINAL
        ended_n = sum(counts[s] for s in models.TERMINAL)
        if not finished and not partial:
            abort(409, message=(f"the sweep is {sweep.status} ({ended_n} of {sweep.n_runs} runs ended); "
                                "ask with ?partial=true for a fit on the runs that have ended"))
        ended = session.scalars(sa.select(exp).where(exp.sweep_id == sweep.id,
                                                     exp.status.in_(models.TERMINAL))).all()
        fit = _fit(list(ended))
        now = utcnow()
        if finished:
            sweep.scaling_law_json, sweep.fitted_at = fit, now
        return {**fit, "partial": not finished, "n_runs_used": sum(1 for r in ended if r.summary_json),
                "fitted_at": schemas.iso(now)}
