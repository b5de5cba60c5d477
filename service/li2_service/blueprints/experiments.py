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
from flask import Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import RAISE

from li2.spec import validate_spec
from li2_service import auth, runs, schemas
from li2_service.body import json_object
from li2_service.errors import fail, unprocessable
from li2_service.listing import fetch_page, page_response, visible_rows
from li2_service.priority import pop_priority
from li2_store import metric_rows, models
from li2_store import sweeps as sweeps_store
from li2_store.db import session_scope

log = logging.getLogger(__name__)

blp = Blueprint(
    "experiments", __name__, url_prefix="/api/v1/experiments", description="Experiments: one spec, one training run."
)

MAX_EPOCH = 2**31 - 1
RESULT_COLUMNS = {"metrics": "metrics_json", "timeline": "timeline_json", "features": "features_json"}


def _state() -> runs.ServiceState:
    return current_app.extensions["li2"]


def _read_submit_body() -> tuple[dict, bool, int]:
    """Accept {"spec": SPEC, "force": bool, "priority": ...} or a bare SPEC (which may carry
    `priority` too, outside the spec proper); return (raw spec, force, priority level)."""
    body = json_object()
    if "spec" in body and set(body) <= {"spec", "force", "priority"}:
        force = body.get("force", False)
        if not isinstance(force, bool):
            unprocessable("force", "must be true or false")
        return body["spec"], force, pop_priority(body)
    return body, False, pop_priority(body)


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200:
        unprocessable("Idempotency-Key", "must be 1 to 200 characters")
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
            "schema": {"type": "string"},
            "description": "same key + same user -> same answer",
        }
    ],
)
@blp.response(202, schemas.ExperimentSchema, description="queued")
@blp.alt_response(200, schema=schemas.ExperimentSchema, description="your identical spec: the existing run, cached")
@blp.alt_response(422, description="invalid spec; errors name each field")
@blp.alt_response(429, description="too many active runs; see Retry-After")
def submit():
    """Submit one experiment."""
    raw, force, priority = _read_submit_body()
    key = _idempotency_key()
    spec = validate_spec(raw)
    done = runs.submit_experiment(
        _state(), auth.current_user(), spec, force=force, idempotency_key=key, priority=priority
    )
    cached = done.outcome == "cached"
    return schemas.experiment_view(done.row, cached=cached), 200 if cached else 202


@blp.route("", methods=["GET"])
@blp.arguments(schemas.ExperimentListQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, schemas.ExperimentPageSchema)
def list_experiments(
    page: int, page_size: int, status: str | None = None, sweep_id: str | None = None, user: str | None = None
):
    """List your experiments, newest first (admins: everyone's, or ?user=NAME)."""
    exp = models.Experiment
    stmt = visible_rows(exp, auth.current_user(), user, status)
    if sweep_id:
        stmt = stmt.where(exp.sweep_id == sweep_id)
    with session_scope(_state().engine) as session:
        rows, total = fetch_page(session, stmt.order_by(exp.created_at.desc(), exp.id), page, page_size)
        items = [schemas.experiment_view(r) for r in rows]
    return page_response(items, page, page_size, total)


@blp.route("/<exp_id>", methods=["GET"])
@blp.response(200, schemas.ExperimentSchema)
def get_experiment(exp_id: str):
    """Status, progress (epoch of epochs, latest metrics), summary and error of one experiment."""
    with session_scope(_state().engine) as session:
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


METRICS_ANSWER = {
    "type": "object",
    "properties": {
        "columns": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "number", "nullable": True}},
            "description": "{name: [values]}, one value per measured epoch (null: not measured then)",
        },
        "status": {"type": "string", "description": "the run's status when these rows were read"},
        "complete": {
            "type": "boolean",
            "description": "true once the run has ended: no more rows will come; false while queued or running",
        },
        "last_epoch": {
            "type": "integer",
            "nullable": True,
            "description": "the newest epoch in `columns` (else the `since` you sent): pass it as ?since= next time",
        },
    },
}


@blp.route("/<exp_id>/metrics", methods=["GET"])
@blp.arguments(schemas.MetricsQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.doc(
    responses={
        "200": {
            "description": (
                "JSON columns, or text/csv with ?format=csv. While the run trains: the rows measured so far "
                "(the worker stores them about once a second), complete=false; poll with ?since=last_epoch "
                "for the new rows only. Once it has ended: the full curves of its result, complete=true."
            ),
            "content": {"application/json": {"schema": METRICS_ANSWER}, "text/csv": {"schema": {"type": "string"}}},
        }
    }
)
def metrics(exp_id: str, format: str, since: int | None = None):
    """Training curves as columns {name: [values]} (epoch, train_acc, test_acc, losses, diagnostics),
    also while the run trains; ?since=EPOCH returns only the rows after that epoch."""
    with session_scope(_state().engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        result = session.get(models.Result, row.id)
        if result is not None and row.status in models.TERMINAL:
            columns = _rows_after(result.metrics_json or {}, since)
        else:  # queued, running, or ended without a result (failed): the rows stored while it trained
            columns = metric_rows.columns_since(session, row.id, since)
        status = row.status
    if format == "csv":
        return _csv(columns)
    epochs = columns.get("epoch") or []
    answer = {
        "columns": schemas.json_safe(columns),
        "status": status,
        "complete": status in models.TERMINAL,
        "last_epoch": epochs[-1] if epochs else since,
    }
    return answer, 200, {"Cache-Control": "no-store"}


def _rows_after(columns: dict, since: int | None) -> dict:
    """The columns cut to the rows whose epoch is > `since` (epochs ascend); all when since is None."""
    if since is None:
        return columns
    first = next((i for i, e in enumerate(columns.get("epoch") or []) if e is not None and e > since), None)
    if first is None:
        return {}
    return {name: values[first:] if isinstance(values, list) else values for name, values in columns.items()}


def _result_json(exp_id: str, name: str) -> dict:
    with session_scope(_state().engine) as session:
        return schemas.json_safe(getattr(_finished_result(session, exp_id, name), RESULT_COLUMNS[name]) or {})


@blp.route("/<exp_id>/timeline", methods=["GET"])
@blp.response(200, description="stages (lazy, independent, interactive) with epochs and criteria; events")
@blp.alt_response(409, description="not finished yet")
def timeline(exp_id: str):
    """The three-stage timeline of feature learning and its events."""
    return _result_json(exp_id, "timeline")


@blp.route("/<exp_id>/features", methods=["GET"])
@blp.response(200, description="per-node irrep decomposition, pairing, coverage")
@blp.alt_response(409, description="not finished yet")
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
@blp.response(200, description="predicted critical data size and widths, from the spec")
def predictions(exp_id: str):
    """What the Li2 theory predicts for this spec (available right after submit)."""
    with session_scope(_state().engine) as session:
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
    with session_scope(_state().engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        found = session.execute(
            sa.select(ck.epoch, ck.kind, sa.func.length(ck.data))
            .where(ck.experiment_id == row.id)
            .order_by(ck.epoch, ck.kind)
        ).all()
    return [{"epoch": e, "kind": k, "size": int(n or 0)} for e, k, n in found]


@blp.route("/<exp_id>/checkpoints/<int:epoch>", methods=["GET"])
@blp.response(200, description="safetensors bytes", content_type="application/octet-stream")
def get_checkpoint(exp_id: str, epoch: int):
    """One checkpoint's safetensors bytes (a snapshot at that epoch, else the resume state)."""
    ck = models.Checkpoint
    with session_scope(_state().engine) as session:
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
@blp.response(202, schemas.CancelSchema)
@blp.alt_response(409, description="already finished")
def cancel(exp_id: str):
    """Cancel: a queued run at once; a running run stops within seconds and frees its slot."""
    engine = _state().engine
    with session_scope(engine) as session:
        row = auth.get_visible(session, models.Experiment, exp_id, auth.current_user(), "experiment")
        status = runs.cancel_experiment(session, row)
    if row.sweep_id and status == "cancelled":
        sweeps_store.finalize_sweep(engine, row.sweep_id)
    return {"id": row.id, "status": status, "cancel_requested": True}
