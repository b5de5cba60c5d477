"""/api/v1/sweeps: a grid of runs over dotted spec paths, its progress, runs and scaling law.

A sweep fans in through the database (no Celery chords): when none of its runs is active, the
worker's `li2_store.sweeps.finalize_sweep` fits the scaling law on the succeeded runs, stores it
and closes the sweep. The views trigger that same finaliser early (reads of one sweep, cancel), and
?partial=true fits now, with the same `fit_law`, on the runs that have succeeded so far.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import url_for
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy.orm import Session

from li2_service import auth, organise, organise_schemas, runs, schemas
from li2_service.blueprints.common import app_state, delete_visible, law_answer, page_of, patch_visible
from li2_service.body import json_object
from li2_service.errors import fail
from li2_service.listing import fetch_page, page_response
from li2_service.openapi import BODY_ERRORS, location, problems
from li2_service.result_schemas import ScalingLawSchema
from li2_store import models
from li2_store import sweeps as sweeps_store
from li2_store.db import session_scope, utcnow

blp = Blueprint(
    "sweeps",
    __name__,
    url_prefix="/api/v1/sweeps",
    description="Sweeps: the Cartesian product of dotted spec paths, batched by shape.",
)


@blp.route("", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SweepSubmit"}}},
    }
)
@blp.response(202, schemas.SweepSchema, description="queued", headers=location("the new sweep"))
@problems(
    blp,
    {
        **BODY_ERRORS,
        422: "invalid base spec or grid, or more runs than a sweep (or your limit) may hold; errors name each field",
        429: "too many active runs right now; retry after Retry-After seconds",
    },
)
def submit():
    """Submit a sweep {"base": SPEC, "grid": {"dotted.path": [values]}}."""
    state = app_state()
    body, labels = organise.pop_labels(json_object())
    sweep = runs.submit_sweep(state, auth.current_user(), body)
    with session_scope(state.engine) as session:
        if labels:
            sweep = session.get(models.Sweep, sweep.id) or sweep
            organise.apply_labels(sweep, labels)
            session.flush()
            session.refresh(sweep)
        return _sweep_view(session, sweep), 202, _location(sweep.id)


def _sweep_view(session: Session, sweep: models.Sweep) -> dict:
    """The JSON shape of one sweep, with its runs counted by status now."""
    return schemas.sweep_view(sweep, runs.sweep_counts(session, sweep.id))


def _location(sweep_id: str) -> dict:
    """The Location header of a 202: the sweep's own URL."""
    return {"Location": url_for("sweeps.get_sweep", sweep_id=sweep_id)}


@blp.route("", methods=["GET"])
@blp.arguments(organise_schemas.SweepFilterQuery, location="query", unknown=RAISE)
@blp.response(200, schemas.SweepPageSchema)
@problems(blp, {403: "only admins may filter by user"})
def list_sweeps(query: dict):
    """List your sweeps, newest first (admins: everyone's, or ?user=NAME); ?name=, ?tag= filter by
    labels; archived sweeps only with ?archived=true."""
    stmt = organise.sweeps_query(auth.current_user(), query)
    return page_of(stmt, query["page"], query["page_size"], _sweep_view)


def _visible_sweep(sweep_id: str, close: bool = False) -> str:
    """The id of a sweep the caller may see (else 404); with close, run the fan-in first if due."""
    engine = app_state().engine
    with session_scope(engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        still_open = sweep.status not in models.TERMINAL
    if close and still_open:
        sweeps_store.finalize_sweep(engine, sweep.id)
    return sweep.id


@blp.route("/<sweep_id>", methods=["GET"])
@blp.response(200, schemas.SweepSchema)
def get_sweep(sweep_id: str):
    """A sweep's status, its runs counted by status, and the fraction that has ended."""
    sweep_id = _visible_sweep(sweep_id, close=True)
    with session_scope(app_state().engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        return _sweep_view(session, sweep)


@blp.route("/<sweep_id>/runs", methods=["GET"])
@blp.arguments(schemas.SweepRunsQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, schemas.ExperimentPageSchema)
def sweep_runs(sweep_id: str, page: int, page_size: int, status: str | None = None):
    """The sweep's runs in grid order, each with spec, status and summary."""
    exp = models.Experiment
    with session_scope(app_state().engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        stmt = sa.select(exp).where(exp.sweep_id == sweep.id)
        if status:
            stmt = stmt.where(exp.status == status)
        rows, total = fetch_page(session, stmt.order_by(exp.created_at, exp.id), page, page_size)
        items = [schemas.experiment_view(r) for r in rows]
    return page_response(items, page, page_size, total)


@blp.route("/<sweep_id>/cancel", methods=["POST"])
@blp.response(202, schemas.SweepCancelSchema, headers=location("the sweep"))
def cancel(sweep_id: str):
    """Cancel every queued run of the sweep and ask its running runs to stop."""
    engine = app_state().engine
    with session_scope(engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        done = runs.cancel_sweep(session, sweep)
    sweeps_store.finalize_sweep(engine, sweep.id)
    return {"id": sweep.id, **done}, 202, _location(sweep.id)


@blp.route("/<sweep_id>/scaling-law", methods=["GET"])
@blp.arguments(schemas.ScalingLawQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(
    200,
    schema=ScalingLawSchema,
    success=True,
    description="form, c, ci95, critical (per-M n_star, p_star), alternatives; plus partial, n_runs_used, fitted_at",
)
@problems(blp, {409: "no run has succeeded yet, the fit failed, or the sweep is still running without ?partial=true"})
def scaling_law(sweep_id: str, partial: bool):
    """The fitted scaling law n* ≈ c·M·ln M: stored when the sweep has ended; ?partial=true fits now."""
    from li2_store.sweeps import fit_law  # the finaliser's own fit (numpy/scipy only)

    sweep_id = _visible_sweep(sweep_id, close=True)
    exp = models.Experiment
    with session_scope(app_state().engine) as session:
        sweep = auth.get_visible(session, models.Sweep, sweep_id, auth.current_user(), "sweep")
        law, fitted_at = sweep.scaling_law_json, sweep.fitted_at
        if law is None:
            if not partial:
                ended = sum(n for s, n in runs.sweep_counts(session, sweep_id).items() if s in models.TERMINAL)
                fail(
                    409,
                    (
                        f"the sweep is still {sweep.status} ({ended} of {sweep.n_runs} runs ended); "
                        "ask with ?partial=true for a fit on the runs that have succeeded so far"
                    ),
                )
            succeeded = session.execute(
                sa.select(exp.spec_json, exp.summary_json)
                .where(exp.sweep_id == sweep_id, exp.status == "succeeded")
                .order_by(exp.created_at, exp.id)
            ).all()
            law = fit_law([{"spec": spec, "summary": summary} for spec, summary in succeeded])
            law["n_runs_used"], fitted_at = len(succeeded), utcnow()
    return law_answer(law, fitted_at, partial=sweep.status not in models.TERMINAL)


# ---------------------------------------------------------------------------------- organise


@blp.route("/<sweep_id>", methods=["PATCH"])
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": organise_schemas.PatchSchema}}})
@blp.response(200, schemas.SweepSchema)
@problems(blp, {422: "invalid name, tags, note or archived; errors name each field, nothing changed"})
def patch_sweep(sweep_id: str):
    """Set the name, tags (replacing them), note or archived flag of one of your sweeps."""
    return patch_visible(
        models.Sweep,
        sweep_id,
        "sweep",
        _sweep_view,
    )


@blp.route("/<sweep_id>", methods=["DELETE"])
@blp.response(200, organise_schemas.DeletedSchema)
@problems(blp, {409: "a run of the sweep is queued or running, or the sweep is a round of a search"})
def delete_sweep(sweep_id: str):
    """Delete one of your sweeps whose runs have all ended (or were cancelled), with all its runs."""
    return delete_visible(models.Sweep, sweep_id, "sweep", organise.delete_sweep)
