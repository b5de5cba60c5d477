"""/api/v1/experiments: submit, list, status, results, checkpoints, cancel.

Views parse and authorise; `li2_service.runs` does the work. Metrics are served while a run trains
(the rows the worker stores as it measures, `li2_store.metric_rows`; ?since=EPOCH for the new ones)
and from the result once it has ended. Timeline and features exist once a run has ended and answer
409 before; predictions are computed from the spec and exist from the moment of submit.
"""

from __future__ import annotations

import csv
import io
import logging

import sqlalchemy as sa
from flask import Response, request, url_for
from flask_smorest import Blueprint
from marshmallow import RAISE

from li2.spec import validate_spec
from li2_service import auth, organise, organise_schemas, runs, schemas
from li2_service import result_schemas as answers
from li2_service.blueprints.common import app_state, delete_visible, page_of, patch_visible
from li2_service.body import json_object
from li2_service.errors import fail, unprocessable
from li2_service.openapi import BINARY, BODY_ERRORS, CSV, location, problems
from li2_service.priority import pop_priority
from li2_store import metric_rows, models
from li2_store import sweeps as sweeps_store
from li2_store.db import session_scope

log = logging.getLogger(__name__)

blp = Blueprint(
    "experiments", __name__, url_prefix="/api/v1/experiments", description="Experiments: one spec, one training run."
)

MAX_EPOCH = 2**31 - 1
IDEMPOTENCY_KEY_MAX = 200  # characters; documented as the header's maxLength
RESULT_COLUMNS = {"metrics": "metrics_json", "timeline": "timeline_json", "features": "features_json"}


def _read_submit_body() -> tuple[dict, bool, int]:
    """Accept {"spec": SPEC, "force": bool, "priority": ...} or a bare SPEC (which may carry
    `priority` too, outside the spec proper); return (raw spec, force, priority level)."""
    body = json_object()
    if "spec" in body and set(body) <= {"spec", "force", "priority", *organise.LABEL_FIELDS}:
        force = body.get("force", False)
        if not isinstance(force, bool):
            unprocessable("force", "must be true or false")
        return body["spec"], force, pop_priority(body)
    return body, False, pop_priority(body)


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        unprocessable("Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    return key


@blp.route("", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{"$ref": "#/components/schemas/Submit"}, {"$ref": "#/components/schemas/ExperimentSpec"}]
                }
            }
        },
    },
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
            "description": "same key + same user -> same answer",
        }
    ],
)
@blp.response(202, schemas.ExperimentSchema, description="queued", headers=location("the new run"))
@blp.alt_response(200, schema=schemas.ExperimentSchema, description="your identical spec: the existing run, cached")
@problems(
    blp,
    {
        **BODY_ERRORS,
        422: "invalid spec, or more runs than your limit could ever hold; errors name each field",
        429: "too many active runs right now; retry after Retry-After seconds",
    },
)
def submit():
    """Submit one experiment."""
    raw, force, priority = _read_submit_body()
    key = _idempotency_key()
    spec = validate_spec(raw)
    labels = _submit_labels()
    done = runs.submit_experiment(
        app_state(), auth.current_user(), spec, force=force, idempotency_key=key, priority=priority
    )
    row = _label_new_run(done.row, labels) if labels and done.outcome == "created" else done.row
    if done.outcome == "cached":
        return schemas.experiment_view(row, cached=True), 200
    return schemas.experiment_view(row), 202, _location(row.id)


def _location(exp_id: str) -> dict:
    """The Location header of a 202: the experiment's own URL."""
    return {"Location": url_for("experiments.get_experiment", exp_id=exp_id)}


@blp.route("", methods=["GET"])
@blp.arguments(organise_schemas.ExperimentFilterQuery, location="query", unknown=RAISE)
@blp.response(200, schemas.ExperimentPageSchema)
@problems(blp, {403: "only admins may filter by user"})
def list_experiments(query: dict):
    """List your experiments, newest first (admins: everyone's, or ?user=NAME), filtered by spec fields,
    outcome and labels and sorted by ?sort= (see the parameters); archived runs only with ?archived=true."""
    stmt = organise.experiments_query(auth.current_user(), query)
    return page_of(stmt, query["page"], query["page_size"], lambda _session, row: schemas.experiment_view(row))


@blp.route("/<exp_id>", methods=["GET"])
@blp.response(200, schemas.ExperimentSchema)
def get_experiment(exp_id: str):
    """Status, progress (epoch of epochs, latest metrics), summary and error of one experiment."""
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        return schemas.experiment_view(row)


def _finished_result(session, exp_id: str, what: str) -> models.Result:
    row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
    result = session.get(models.Result, row.id)
    if result is None or row.status not in models.TERMINAL:
        fail(
            409,
            f"the experiment is {row.status}; its {what} are available once it has finished"
            + (" (it ended without results)" if row.status in models.TERMINAL else ""),
        )
    return result


def _csv(columns: dict) -> Response:
    """Metric columns as CSV: header row of names, one row per measurement; NaN/None as empty."""
    names = list(columns)
    n = max((len(v) for v in columns.values() if isinstance(v, list)), default=0)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(names)
    for i in range(n):
        writer.writerow(["" if (v := _cell(columns[c], i)) is None else v for c in names])
    return Response(
        buf.getvalue(), mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=metrics.csv"}
    )


def _cell(column, i: int):
    value = column[i] if isinstance(column, list) and i < len(column) else None
    return schemas.json_safe(value)


METRICS_ANSWER = (
    "JSON columns, or text/csv with ?format=csv or `Accept: text/csv` (?format wins). While the run "
    "trains: the rows measured so far (the worker stores them about once a second), complete=false; poll "
    "with ?since=last_epoch for the new rows only. Once it has ended: the full curves of its result, "
    "complete=true."
)


@blp.route("/<exp_id>/metrics", methods=["GET"])
@blp.arguments(schemas.MetricsQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=answers.MetricsSchema, success=True, description=METRICS_ANSWER)
@blp.alt_response(200, schema=CSV, content_type="text/csv", success=True, description=METRICS_ANSWER)  # JSON first
def metrics(exp_id: str, format: str | None = None, since: int | None = None):
    """Training curves as columns {name: [values]} (epoch, train_acc, test_acc, losses, diagnostics),
    also while the run trains; ?since=EPOCH returns only the rows after that epoch."""
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        result = session.get(models.Result, row.id)
        if result is not None and row.status in models.TERMINAL:
            columns = _rows_after(result.metrics_json or {}, since)
        else:  # queued, running, or ended without a result (failed): the rows stored while it trained
            columns = metric_rows.columns_since(session, row.id, since)
        status = row.status
    if (format or _accepted()) == "csv":
        return _csv(columns)
    epochs = columns.get("epoch") or []
    answer = {
        "columns": schemas.json_safe(columns),
        "status": status,
        "complete": status in models.TERMINAL,
        "last_epoch": epochs[-1] if epochs else since,
    }
    return answer, 200, {"Cache-Control": "no-store"}


def _accepted() -> str:
    """json or csv, whichever the Accept header prefers (json when it names neither)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"], default="application/json")
    return "csv" if best == "text/csv" else "json"


def _rows_after(columns: dict, since: int | None) -> dict:
    """The columns cut to the rows whose epoch is > `since` (epochs ascend); all when since is None."""
    if since is None:
        return columns
    first = next((i for i, e in enumerate(columns.get("epoch") or []) if e is not None and e > since), None)
    if first is None:
        return {}
    return {name: values[first:] if isinstance(values, list) else values for name, values in columns.items()}


def _result_json(exp_id: str, name: str) -> dict:
    with session_scope(app_state().engine) as session:
        return schemas.json_safe(getattr(_finished_result(session, exp_id, name), RESULT_COLUMNS[name]) or {})


@blp.route("/<exp_id>/timeline", methods=["GET"])
@blp.alt_response(
    200,
    schema=answers.TimelineSchema,
    success=True,
    description="stages (lazy, independent, interactive) with epochs and criteria; events",
)
@problems(blp, {409: "not finished yet, or ended without results"})
def timeline(exp_id: str):
    """The three-stage timeline of feature learning and its events."""
    return _result_json(exp_id, "timeline")


@blp.route("/<exp_id>/features", methods=["GET"])
@blp.alt_response(
    200, schema=answers.FeaturesSchema, success=True, description="per-node irrep decomposition, pairing, coverage"
)
@problems(blp, {409: "not finished yet, or ended without results"})
def features(exp_id: str):
    """The emerged features of the hidden layer."""
    return _result_json(exp_id, "features")


def predict_spec(spec: dict) -> dict:
    """li2.predictions.predict(spec) — theory before any training; degrades to a note if absent."""
    try:
        from li2.predictions import predict
    except ImportError:
        return {"note": "predictions are not available in this installation (li2.predictions missing)"}
    return schemas.json_safe(predict(spec))


@blp.route("/<exp_id>/predictions", methods=["GET"])
@blp.alt_response(
    200,
    schema=answers.PredictionsSchema,
    success=True,
    description="predicted critical data size and widths, from the spec",
)
def predictions(exp_id: str):
    """What the Li2 theory predicts for this spec (available right after submit)."""
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        result = session.get(models.Result, row.id)
        if result is not None and result.predictions_json:
            return schemas.json_safe(result.predictions_json)
        spec = row.spec_json
    return predict_spec(spec)


@blp.route("/<exp_id>/checkpoints", methods=["GET"])
@blp.response(200, schemas.CheckpointSchema(many=True))
def list_checkpoints(exp_id: str):
    """The run's stored checkpoints: epoch, kind (snapshot | resume) and size in bytes."""
    ck = models.Checkpoint
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        found = session.execute(
            sa.select(ck.epoch, ck.kind, sa.func.length(ck.data))
            .where(ck.experiment_id == row.id)
            .order_by(ck.epoch, ck.kind)
        ).all()
    return [{"epoch": e, "kind": k, "size": int(n or 0)} for e, k, n in found]


@blp.route("/<exp_id>/checkpoints/<int:epoch>", methods=["GET"])
@blp.alt_response(
    200, schema=BINARY, content_type="application/octet-stream", success=True, description="safetensors bytes"
)
def get_checkpoint(exp_id: str, epoch: int):
    """One checkpoint's safetensors bytes (a snapshot at that epoch, else the resume state)."""
    ck = models.Checkpoint
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        if epoch > MAX_EPOCH:  # no such epoch; and the database's INTEGER would overflow
            fail(404, f"no checkpoint at epoch {epoch}")
        run_id = row.id
        data = session.scalar(
            sa.select(ck.data)
            .where(ck.experiment_id == row.id, ck.epoch == epoch)
            .order_by(sa.case((ck.kind == "snapshot", 0), else_=1))
            .limit(1)
        )
    if data is None:
        fail(404, f"no checkpoint at epoch {epoch}")
    return Response(
        bytes(data),
        mimetype="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename={run_id}-{epoch}.safetensors"},
    )


@blp.route("/<exp_id>/cancel", methods=["POST"])
@blp.response(202, schemas.CancelSchema, headers=location("the experiment"))
@problems(blp, {409: "already finished"})
def cancel(exp_id: str):
    """Cancel: a queued run at once; a running run stops within seconds and frees its slot."""
    engine = app_state().engine
    with session_scope(engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        status = runs.cancel_experiment(session, row)
    if row.sweep_id and status == "cancelled":
        sweeps_store.finalize_sweep(engine, row.sweep_id)
    return {"id": row.id, "status": status, "cancel_requested": True}, 202, _location(row.id)


# ---------------------------------------------------------------------------------- organise


def _submit_labels() -> dict:
    """The validated {name, tags, note} of a {"spec": ...} submit body (none for a bare spec)."""
    body = json_object()
    return organise.pop_labels(body)[1] if "spec" in body else {}


def _label_new_run(row: models.Experiment, labels: dict) -> models.Experiment:
    """Put a fresh submit's labels on its run; the run as it is now. (An identical spec answered from
    the cache, or a replayed Idempotency-Key, keeps the labels it has: change them with PATCH.)"""
    with session_scope(app_state().engine) as session:
        fresh = session.get(models.Experiment, row.id)
        assert fresh is not None  # just created, and only its owner can delete it
        organise.apply_labels(fresh, labels)
        session.flush()
        session.refresh(fresh)
        return fresh


@blp.route("/<exp_id>", methods=["PATCH"])
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": organise_schemas.PatchSchema}}})
@blp.response(200, schemas.ExperimentSchema)
@problems(blp, {422: "invalid name, tags, note or archived; errors name each field, nothing changed"})
def patch_experiment(exp_id: str):
    """Set the name, tags (replacing them), note or archived flag of one of your experiments."""
    return patch_visible(models.Experiment, exp_id, "experiment", lambda _session, row: schemas.experiment_view(row))


@blp.route("/<exp_id>", methods=["DELETE"])
@blp.response(200, organise_schemas.DeletedSchema)
@problems(blp, {409: "the run is queued or running, or belongs to a sweep (delete the sweep)"})
def delete_experiment(exp_id: str):
    """Delete one of your runs that has ended, with its metric rows, result and checkpoints."""
    return delete_visible(models.Experiment, exp_id, "experiment", organise.delete_experiment)


@blp.route("/<exp_id>/archive", methods=["GET"])
@blp.arguments(organise_schemas.ArchiveQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(
    200,
    schema=BINARY,
    success=True,
    description="tar.gz (or zip) of <id>/experiment.json, <id>/result.json and <id>/checkpoints/*.safetensors",
    content_type="application/gzip",
)
@blp.alt_response(
    200, schema=BINARY, success=True, description="the same as zip (?format=zip)", content_type="application/zip"
)
@problems(blp, {409: "the run is queued or running"})
def archive(exp_id: str, format: str):
    """Download a run that has ended as one archive: its record, result.json and every checkpoint (streamed)."""
    engine = app_state().engine
    with session_scope(engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        if row.status not in models.TERMINAL:
            fail(409, f"the experiment is {row.status}; its archive is available once it has ended")
        run_id, view = row.id, schemas.experiment_view(row)
    chunks = organise.archive_stream(organise.archive_members(engine, run_id, view), format)
    return Response(
        chunks,
        mimetype=organise.ARCHIVE_TYPES[format],
        headers={"Content-Disposition": f"attachment; filename={run_id}.{format}"},
        direct_passthrough=True,
    )
