"""Marshmallow schemas of organising runs: list filters and sorts, labels (name, tags, note), archive.

The filters of GET /experiments are generated from two tables, NUMERIC and CHOICES, so the query
schema (and with it the OpenAPI document), the SQL (li2_service.organise) and the docs name the same
fields: each numeric field `f` filters by equality (`?f=`, where an exact value makes sense) and by
range (`?f_min=`, `?f_max=`, inclusive). Every parameter has its enum or bounds; an unknown one is a
422 naming it (`unknown = RAISE`, as for every query here).
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from li2.spec.schema import ACTIVATIONS, GROUPS, OPTIMIZERS
from li2_service import schemas
from li2_service.labels import NAME_MAX, TAG, LabelsSchema

INT_MAX = 2**31 - 1

# query name -> (catalogue column of models.Experiment, "int" | "float", (min, max), exact match)
NUMERIC: dict[str, tuple[str, str, tuple[float, float], bool]] = {
    "order": ("task_order", "int", (1, INT_MAX), True),
    "operands": ("operands", "int", (2, 8), True),
    "train_size": ("train_size", "int", (1, 2**62), True),
    "train_fraction": ("train_fraction", "float", (0.0, 1.0), False),
    "hidden": ("hidden", "int", (1, INT_MAX), True),
    "lr": ("lr", "float", (0.0, 100.0), True),
    "weight_decay": ("weight_decay", "float", (0.0, 100.0), True),
    "seed": ("seed", "int", (0, INT_MAX), True),
    "epoch_generalized": ("epoch_generalized", "int", (0, INT_MAX), True),
    "final_test_acc": ("final_test_acc", "float", (0.0, 1.0), False),
}
# query name -> (catalogue column, allowed values)
CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "group": ("group_kind", GROUPS),
    "activation": ("activation", ACTIVATIONS),
    "optimizer": ("optimizer", OPTIMIZERS),
}
# ?sort= name -> column of models.Experiment; "-name" sorts descending. Unknown values sort last.
SORTS = {
    "created_at": "created_at",
    "finished_at": "finished_at",
    "name": "name",
    "status": "status",
    "grokked": "grokked",
    **{name: column for name, (column, *_) in NUMERIC.items()},
}
SORT_CHOICES = tuple(s for name in SORTS for s in (name, "-" + name))


def _one_of(choices: tuple[str, ...]) -> validate.OneOf:
    return validate.OneOf(choices, error="must be one of: " + ", ".join(choices))


def _numeric_fields() -> dict[str, fields.Field]:
    """`f`, `f_min`, `f_max` for each NUMERIC entry (no `f` where an exact value makes no sense)."""
    out: dict[str, fields.Field] = {}
    for name, (_column, kind, (lo, hi), exact) in NUMERIC.items():
        bounds = validate.Range(lo, hi, error=f"must be between {lo} and {hi}")
        what = "M, the number of elements of the group" if name == "order" else name.replace("_", " ")

        def make(relation: str, bounds=bounds, kind=kind, what=what) -> fields.Field:
            meta = {"description": f"only runs whose {what} is {relation}"}
            if kind == "float":
                return fields.Float(validate=bounds, allow_nan=False, metadata=meta)
            return fields.Integer(validate=bounds, metadata=meta)

        if exact:
            out[name] = make("this")
        out[f"{name}_min"], out[f"{name}_max"] = make("≥ this"), make("≤ this")
    return out


def _choice_fields() -> dict[str, fields.Field]:
    return {
        name: fields.String(validate=_one_of(allowed), metadata={"description": f"only runs with this {name}"})
        for name, (_, allowed) in CHOICES.items()
    }


class _LabelFilters(Schema):
    """?name=, ?tag= and ?archived= of the experiment and sweep lists."""

    name = fields.String(
        validate=validate.Length(1, NAME_MAX),
        metadata={"description": "only those whose name contains this text (case-insensitive)"},
    )
    tag = fields.List(
        TAG,
        validate=validate.Length(1, 10),
        metadata={"description": "only those with this tag; repeat (?tag=a&tag=b) to require several"},
    )
    archived = fields.Boolean(
        load_default=False,
        metadata={"description": "false (default): the unarchived ones; true: only the archived ones"},
    )


ExperimentFilterQuery = type(
    "ExperimentFilterQuery",
    (schemas.ExperimentListQuery, _LabelFilters),
    {
        **_numeric_fields(),
        **_choice_fields(),
        "grokked": fields.Boolean(metadata={"description": "only runs that grokked (true) or did not (false)"}),
        "sort": fields.String(
            validate=_one_of(SORT_CHOICES),
            metadata={
                "description": "order of the list: a field name, '-' in front for descending; runs without "
                "the value come last; ties newest first (default: -created_at)"
            },
        ),
        "__doc__": "GET /experiments: page, filters on spec fields, outcome and labels, and the sort.",
    },
)


class SweepFilterQuery(schemas.SweepListQuery, _LabelFilters):
    """GET /sweeps: page, status, and the label filters."""


class PatchSchema(LabelsSchema):
    """PATCH body: any of name, tags, note, archived; fields left out stay as they are."""

    archived = fields.Boolean(metadata={"description": "true hides it from the default list; false brings it back"})


class DeletedSchema(Schema):
    id = fields.String()
    deleted = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "rows removed per kind: experiments, results, checkpoints, metric_rows, tags"},
    )


class ArchiveQuery(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(
        load_default="tar.gz",
        validate=_one_of(("tar.gz", "zip")),
        metadata={"description": "tar.gz (default) or zip"},
    )
