"""Marshmallow schemas for query strings and answers, and the presenters that build the answers.

The experiment spec itself is `li2.spec.ExperimentSpecSchema` (one definition, shared with the CLI
and the worker); it is documented here by reference only. Query schemas reject unknown parameters
and out-of-range values with 422 field messages. Presenters turn ORM rows into plain dicts; JSON
results are passed through `json_safe` (`li2.jsonsafe`, the same function the worker writes with)
so a NaN in a stored metric never yields invalid JSON.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy.orm import InstanceState
from sqlalchemy.orm.base import NO_VALUE

from li2.jsonsafe import json_safe
from li2.spec import ExperimentSpecSchema
from li2.spec.schema import GridSchema
from li2_service.labels import LabelsSchema
from li2_store import models

STATUS = validate.OneOf(models.STATUSES, error="must be one of: " + ", ".join(models.STATUSES))
HEX_ID = validate.Regexp(r"^[0-9a-f]{32}$", error="must be a 32-character hex id")


# ---------------------------------------------------------------------------------- queries


class _Query(Schema):
    class Meta:
        unknown = RAISE


class PageQuery(_Query):
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    page_size = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class ExperimentListQuery(PageQuery):
    status = fields.String(validate=STATUS)
    sweep_id = fields.String(validate=HEX_ID)
    user = fields.String(
        validate=validate.Length(1, 100), metadata={"description": "admins only: the owner's user name"}
    )


class SweepListQuery(PageQuery):
    status = fields.String(validate=STATUS)
    user = fields.String(
        validate=validate.Length(1, 100), metadata={"description": "admins only: the owner's user name"}
    )


class SweepRunsQuery(PageQuery):
    page_size = fields.Integer(load_default=1000, validate=validate.Range(1, 1000))
    status = fields.String(validate=STATUS)


class MetricsQuery(_Query):
    format = fields.String(
        validate=validate.OneOf(("json", "csv"), error="must be json or csv"),
        metadata={"description": "json or csv; without it, the Accept header chooses (json by default)"},
    )
    since = fields.Integer(
        validate=validate.Range(0, 2**31 - 1),
        metadata={"description": "only the rows measured after this epoch (poll with the last epoch you hold)"},
    )


class ScalingLawQuery(_Query):
    partial = fields.Boolean(load_default=False)  # type: ignore[assignment]  # the query's name, not Schema.partial


# ---------------------------------------------------------------------------------- bodies (documentation)


# Valid bodies, shown in the document and sent by the link-driven fuzz test (tests/security).
SPEC_EXAMPLE = {
    "task": {"group": "cyclic", "order": 23},
    "data": {"train_fraction": 0.4},
    "model": {"hidden": 512, "activation": "sqr"},
    "training": {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0001, "epochs": 300},
    "seed": 1,
}
SUBMIT_EXAMPLE = {"spec": SPEC_EXAMPLE, "force": False}
SWEEP_EXAMPLE = {"base": SPEC_EXAMPLE, "grid": {"task.order": [23, 41], "seed": [1, 2]}}


class SubmitSchema(LabelsSchema):
    """POST /experiments body: {"spec": SPEC, "force": false, "name", "tags", "note"}, or the bare SPEC."""

    spec = fields.Nested(ExperimentSpecSchema, required=True)
    force = fields.Boolean(
        load_default=False, metadata={"description": "run again even if an identical spec of yours exists"}
    )
    priority = fields.String(
        load_default="normal",
        metadata={"description": "low | normal | high: orders your own waiting work (high: within an allowance)"},
    )


class SweepSubmitSchema(LabelsSchema):
    """POST /sweeps body: base, grid and the sweep's optional name, tags and note."""

    base = fields.Nested(ExperimentSpecSchema, required=True)
    grid = fields.Nested(
        GridSchema,
        required=True,
        metadata={
            "description": "dotted spec path -> list of values; the runs are their Cartesian product "
            "(at most LI2_MAX_SWEEP_RUNS, and LI2_MAX_GRID)",
            "example": SWEEP_EXAMPLE["grid"],
        },
    )
    early_stop = fields.Dict(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "early stopping for every run: training.early_stop {threshold, patience_epochs}, "
            "{} for the defaults (the success threshold, held for the success window)",
            "example": {},
        },
    )
    priority = fields.String(
        load_default="normal", metadata={"description": "low | normal | high, for every run of the sweep"}
    )


# ---------------------------------------------------------------------------------- answers


class ProblemSchema(Schema):
    """Every error answer: an RFC 7807 problem document (li2_service.errors)."""

    type = fields.String(required=True, metadata={"description": "always about:blank: the status says what happened"})
    title = fields.String(required=True, metadata={"description": "the status's phrase, e.g. Unprocessable Entity"})
    status = fields.Integer(required=True, metadata={"description": "the HTTP status code"})
    detail = fields.String(required=True, metadata={"description": "what went wrong, for people"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "dotted field (or header/parameter) -> messages that say what is allowed",
            "example": {"model.hidden": ["must be between 1 and 8192 (LI2_MAX_HIDDEN)"]},
        },
    )
    code = fields.Integer(required=True, metadata={"description": "same as status (kept for older clients)"})
    message = fields.String(required=True, metadata={"description": "same as detail (kept for older clients)"})


class LatestSchema(Schema):
    train_acc = fields.Float(allow_none=True)
    test_acc = fields.Float(allow_none=True)
    train_loss = fields.Float(allow_none=True)
    test_loss = fields.Float(allow_none=True)


class ProgressSchema(Schema):
    epoch = fields.Integer()
    epochs = fields.Integer()
    fraction = fields.Float()
    latest = fields.Nested(LatestSchema)


def _label_fields() -> dict[str, fields.Field]:
    """The labels an experiment and a sweep answer end with (fresh field objects for each schema;
    a `Meta.include` puts them after the declared fields, where the OpenAPI document has them)."""
    return {
        "name": fields.String(allow_none=True),
        "tags": fields.List(fields.String()),
        "note": fields.String(allow_none=True),
        "archived": fields.Boolean(),
    }


class ExperimentSchema(Schema):
    class Meta:
        include = _label_fields()

    id = fields.String()
    status = fields.String()
    spec = fields.Nested(ExperimentSpecSchema, metadata={"description": "the normalised spec: every default filled in"})
    spec_hash = fields.String()
    sweep_id = fields.String(allow_none=True)
    user_id = fields.Integer()
    attempt = fields.Integer()
    max_attempts = fields.Integer()
    progress = fields.Nested(ProgressSchema)
    summary = fields.Dict(allow_none=True)
    error = fields.String(allow_none=True)
    cancel_requested = fields.Boolean()
    cached = fields.Boolean()
    created_at = fields.String()
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    round = fields.Integer(allow_none=True, metadata={"description": "a search's runs only: the round that made it"})


class _PageSchema(Schema):
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


class ExperimentPageSchema(_PageSchema):
    items = fields.List(fields.Nested(ExperimentSchema))


class CountsSchema(Schema):
    queued = fields.Integer()
    running = fields.Integer()
    succeeded = fields.Integer()
    failed = fields.Integer()
    cancelled = fields.Integer()


class SweepSchema(Schema):
    class Meta:
        include = _label_fields()

    id = fields.String()
    status = fields.String()
    n_runs = fields.Integer()
    base = fields.Dict()
    grid = fields.Dict()
    user_id = fields.Integer()
    counts = fields.Nested(CountsSchema)
    progress = fields.Float(metadata={"description": "fraction of runs that have ended"})
    has_scaling_law = fields.Boolean()
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)


class SweepPageSchema(_PageSchema):
    items = fields.List(fields.Nested(SweepSchema))


class CancelSchema(Schema):
    id = fields.String()
    status = fields.String()
    cancel_requested = fields.Boolean()


class SweepCancelSchema(Schema):
    id = fields.String()
    cancelled = fields.Integer()
    stopping = fields.Integer()


class CheckpointSchema(Schema):
    epoch = fields.Integer()
    kind = fields.String()
    size = fields.Integer()


class HealthSchema(Schema):
    status = fields.String()
    checks = fields.Dict()


# ---------------------------------------------------------------------------------- presenters


def iso(ts: datetime | None) -> str | None:
    """Naive-UTC datetime from the DB -> ISO 8601 with Z."""
    return None if ts is None else ts.isoformat(timespec="milliseconds") + "Z"


LATEST_KEYS = ("train_acc", "test_acc", "train_loss", "test_loss")


def experiment_view(row: models.Experiment, *, cached: bool = False) -> dict:
    """The JSON shape of one experiment (GET /experiments/{id}, list items, submit answers)."""
    epochs = row.epochs or int(row.spec_json.get("training", {}).get("epochs", 0) or 0)
    epoch = epochs if row.status == "succeeded" else (row.progress_epoch or 0)
    latest = row.latest_metrics_json or {}
    return {
        "id": row.id,
        "status": row.status,
        "spec": row.spec_json,
        "spec_hash": row.spec_hash,
        "sweep_id": row.sweep_id,
        "user_id": row.user_id,
        "attempt": row.attempt,
        "max_attempts": row.max_attempts,
        "progress": {
            "epoch": epoch,
            "epochs": epochs,
            "fraction": min(1.0, epoch / epochs) if epochs else 0.0,
            "latest": json_safe({k: latest.get(k) for k in LATEST_KEYS}),
        },
        "summary": json_safe(row.summary_json),
        "error": row.error,
        "cancel_requested": bool(row.cancel_requested),
        "cached": cached,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        **labels_view(row),
    }


def sweep_view(row: models.Sweep, counts: dict[str, int]) -> dict:
    """The JSON shape of one sweep, with its runs counted by status."""
    ended = sum(counts[s] for s in models.TERMINAL)
    # The worker marks a sweep running on its first claim; show it as soon as any run has moved.
    status = "running" if row.status == "queued" and counts["queued"] < row.n_runs else row.status
    return {
        "id": row.id,
        "status": status,
        "n_runs": row.n_runs,
        "base": row.base_json,
        "grid": row.grid_json,
        "user_id": row.user_id,
        "counts": counts,
        "progress": ended / row.n_runs if row.n_runs else 0.0,
        "has_scaling_law": row.scaling_law_json is not None,
        "created_at": iso(row.created_at),
        "finished_at": iso(row.finished_at),
        **labels_view(row),
    }


def labels_view(row: models.Experiment | models.Sweep) -> dict:
    """The owner's labels of a run or sweep: name, tags (sorted), note, archived.

    Tags are the row's `tag_rows`, loaded with it (selectin); a row made in this request and never
    loaded since (a fresh submit) has none yet, and is not lazily loaded outside its session.
    """
    state: InstanceState = sa.inspect(row)
    loaded = state.attrs.tag_rows.loaded_value
    tags = [] if loaded is NO_VALUE else sorted(t.tag for t in loaded)
    return {"name": row.name, "tags": tags, "note": row.note, "archived": bool(row.archived)}
