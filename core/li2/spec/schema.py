"""The marshmallow schemas of an experiment spec and a sweep, and their error messages.

These are the one definition of the spec's fields, defaults and allowed values: the CLI and the
worker validate with them, and the API documents them in its OpenAPI document. Errors come out as
{dotted.field: [messages]} that name what is allowed (`flatten_errors`, `load`).
"""

from __future__ import annotations

import copy
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from marshmallow.utils import missing as marshmallow_missing

from li2.errors import SpecError
from li2.spec.bounds import Limited, LimitedLength
from li2.theory import C_CRIT

GROUPS = (
    "cyclic",
    "product",
    "dihedral",
    "symmetric",
    "alternating",
    "quaternion",
    "multiplicative",
    "table",
    "expression",
)
ACTIVATIONS = ("sqr", "relu", "silu", "relusqr")
OPTIMIZERS = ("sgd", "adam", "adamw", "muon")
LOSSES = ("mse", "nll")
SCHEDULES = ("none", "step", "multistep", "exponential", "cosine")
# The success rule's choices and defaults (applied by li2.scaling.success).
SUCCESS_RULES = ("held", "final", "ever")
SUCCESS_THRESHOLD = 0.99
SUCCESS_WINDOW = 0.1
# training.precision: the arithmetic of the matrix products (li2.precision, docs/precision.md).
PRECISIONS = ("fp32", "tf32", "bf16")
PRECISION_DEFAULT = "fp32"
# The split when a spec has no `data` section.
DEFAULT_TRAIN_FRACTION = 0.9

# Which task fields each group kind takes (besides `group` and `operands`).
GROUP_FIELDS = {
    "cyclic": ("order",),
    "product": ("factors",),
    "dihedral": ("n",),
    "symmetric": ("n",),
    "alternating": ("n",),
    "quaternion": (),
    "multiplicative": ("prime",),
    "table": ("table",),
    "expression": ("expression", "modulus"),
}


def _int(lo: int, hi: int, **kw) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(lo, hi), **kw)


def _limited(lo: int, name: str, offset: int = 0, **kw) -> fields.Integer:
    """An integer from `lo` up to the server bound LI2_MAX_<NAME> (+ offset), read when used."""
    return fields.Integer(strict=True, validate=Limited(lo, name, offset), **kw)


def _float(lo: float, hi: float, *, min_inclusive=True, max_inclusive=True, **kw) -> fields.Float:
    return fields.Float(
        allow_nan=False,
        validate=validate.Range(lo, hi, min_inclusive=min_inclusive, max_inclusive=max_inclusive),
        **kw,
    )


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class TaskSchema(_Strict):
    group = fields.String(required=True, validate=validate.OneOf(GROUPS))
    operands = _limited(2, "operands", load_default=2)
    order = _limited(2, "order", metadata={"description": "cyclic: M"})
    factors = fields.List(
        _limited(2, "order"),
        validate=validate.Length(1, 8),
        metadata={"description": "product: the cyclic factors; M is their product (≤ LI2_MAX_ORDER)"},
    )
    n = _int(2, 64, metadata={"description": "dihedral (M = 2n), symmetric (M = n!), alternating (M = n!/2)"})
    prime = _limited(3, "order", 1, metadata={"description": "multiplicative: the prime p, M = p - 1"})
    table = fields.List(
        fields.List(fields.Integer(strict=True), validate=LimitedLength(1, "table_order")),
        validate=LimitedLength(1, "table_order"),
        metadata={"description": "table: the Cayley table, rows of element indices (checked as a group)"},
    )
    expression = fields.String(
        validate=validate.Length(1, 200), metadata={"description": "expression: a formula in x and y, mod modulus"}
    )
    modulus = _limited(2, "order", metadata={"description": "expression: M"})

    @validates_schema
    def _kind_fields(self, data, **kwargs):
        group = data.get("group")
        if group not in GROUP_FIELDS:
            return
        allowed = GROUP_FIELDS[group]
        errors = {}
        for name in ("order", "factors", "n", "prime", "table", "expression", "modulus"):
            if name in data and name not in allowed:
                errors[name] = [f"not used by group '{group}'; it takes: {', '.join(allowed) or 'no parameters'}"]
            elif name in allowed and name not in data:
                errors[name] = [f"required for group '{group}'"]
        if errors:
            raise ValidationError(errors)


class DataSchema(_Strict):
    train_fraction = _float(
        0.0,
        1.0,
        min_inclusive=False,
        max_inclusive=False,
        allow_none=True,
        metadata={"description": "share of the M^operands samples used for training (0.9 when `data` is omitted)"},
    )
    train_size = fields.Integer(
        strict=True,
        allow_none=True,
        validate=Limited(1, "samples", -1),
        metadata={"description": "number of training samples; at most M^operands - 1"},
    )
    critical_multiple = _float(
        0.0,
        1e3,
        min_inclusive=False,
        allow_none=True,
        metadata={"description": f"n = multiple · {C_CRIT}·M·ln M, the theory's critical size"},
    )

    @validates_schema
    def _exactly_one(self, data, **kwargs):
        given = [k for k in ("train_fraction", "train_size", "critical_multiple") if data.get(k) is not None]
        if len(given) != 1:
            raise ValidationError(
                f"give exactly one of train_fraction (0..1), train_size (count) or critical_multiple "
                f"(multiple of {C_CRIT}·M·ln M); got {', '.join(given) or 'none'}",
                "_schema",
            )


class ModelSchema(_Strict):
    hidden = _limited(1, "hidden", load_default=512, metadata={"description": "K, hidden nodes"})
    activation = fields.String(load_default="sqr", validate=validate.OneOf(ACTIVATIONS))
    extra_layers = _limited(0, "extra_layers", load_default=0)
    top_init_scale = _float(0.0, 1e3, load_default=1.0)
    output_scale = _float(0.0, 1e3, min_inclusive=False, load_default=1.0)
    embedding_trainable = fields.Boolean(load_default=False)
    ridge_top = _float(0.0, 1e6, min_inclusive=False, allow_none=True, load_default=None)


class EarlyStopSchema(_Strict):
    """training.early_stop: stop a run once it has generalized and stayed there (li2.trainer).

    Stop after the measurement at which test accuracy has been ≥ threshold at every measurement of
    the last patience_epochs epochs. Defaults (filled in by validate_spec): the run's
    success_threshold, and success_window × epochs, so a stopped run passes the "held" success rule.
    """

    threshold = _float(0.0, 1.0, min_inclusive=False, allow_none=True, load_default=None)
    patience_epochs = _int(1, 1 << 30, allow_none=True, load_default=None)


class TrainingSchema(_Strict):
    optimizer = fields.String(load_default="adam", validate=validate.OneOf(OPTIMIZERS))
    lr = _float(0.0, 100.0, min_inclusive=False, load_default=0.01)
    weight_decay = _float(0.0, 100.0, load_default=1e-4)
    epochs = _limited(1, "epochs", load_default=300)
    loss = fields.String(load_default="mse", validate=validate.OneOf(LOSSES))
    schedule = fields.String(load_default="none", validate=validate.OneOf(SCHEDULES))
    step_size = _int(1, 1 << 30, allow_none=True, load_default=None)
    gamma = _float(0.0, 1.0, min_inclusive=False, load_default=0.1)
    milestones = fields.List(_int(1, 1 << 30), load_default=list, validate=validate.Length(max=100))
    momentum = _float(0.0, 0.999999, load_default=0.9)
    eval_every = _int(1, 1 << 30, load_default=10)
    dense_until = _int(0, 1 << 30, load_default=200)
    checkpoint_epochs = fields.List(
        _limited(0, "epochs"),
        load_default=list,
        validate=LimitedLength(0, "checkpoints"),
        metadata={"description": "epochs to store a snapshot at, each ≤ training.epochs"},
    )
    diagnostics = fields.Boolean(load_default=True)
    # The Li2 diagnostics (a ridge solve on the smaller Gram of F, Fig. 3's Gram checks, irreps) run at
    # measurement epochs that are multiples of this period (and the last). None: the shortest period
    # whose estimated cost is within 10 % of training (li2.diagnostics.auto_every).
    diagnostics_every = _int(1, 1 << 30, allow_none=True, load_default=None)
    # What counts as generalized for `summary.grokked` and the scaling laws (li2.scaling.success):
    # test accuracy ≥ success_threshold, held over the last success_window share of the budget
    # ("held"), at the last measurement ("final") or at any measurement ("ever", the old rule).
    success_threshold = _float(0.0, 1.0, min_inclusive=False, load_default=SUCCESS_THRESHOLD)
    success_rule = fields.String(load_default="held", validate=validate.OneOf(SUCCESS_RULES))
    success_window = _float(0.0, 1.0, min_inclusive=False, load_default=SUCCESS_WINDOW)
    # The matrix products' arithmetic: fp32 (reference), tf32 (CUDA only; a no-op on the CPU) or
    # bf16 autocast (li2.precision). It changes results, so it is in the hash and the batch key.
    precision = fields.String(load_default=PRECISION_DEFAULT, validate=validate.OneOf(PRECISIONS))
    # Opt-in early stopping (EarlyStopSchema); None trains the whole budget. It changes the curves,
    # so it is part of the spec hash.
    early_stop = fields.Nested(EarlyStopSchema, allow_none=True, load_default=None)


class ExperimentSpecSchema(_Strict):
    """One experiment: task, data split, model, training and seed (the contract in docs/design.md)."""

    task = fields.Nested(TaskSchema, required=True)
    data = fields.Nested(
        DataSchema,
        load_default=lambda: DataSchema().load({"train_fraction": DEFAULT_TRAIN_FRACTION}),
        metadata={"description": f"how the samples split; omitted: {{train_fraction: {DEFAULT_TRAIN_FRACTION}}}"},
    )
    model = fields.Nested(ModelSchema, load_default=lambda: ModelSchema().load({}))
    training = fields.Nested(TrainingSchema, load_default=lambda: TrainingSchema().load({}))
    seed = _int(0, 2**31 - 1, load_default=0)


class SweepSchema(_Strict):
    """A grid: the Cartesian product of dotted spec paths over a base spec."""

    base = fields.Dict(required=True)
    grid = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 100)), values=fields.List(fields.Raw()), required=True
    )
    # Sets training.early_stop of every run ({} for the defaults); None leaves the base spec's own.
    early_stop = fields.Nested(EarlyStopSchema, allow_none=True, load_default=None)


def precision_of(spec: dict) -> str:
    """training.precision of a normalised spec; specs stored before the field existed are fp32."""
    return spec["training"].get("precision", PRECISION_DEFAULT)


def _grid_fields() -> dict[str, fields.Field]:
    """One list field per path a sweep may vary ("seed", "task.order", ...): a copy of the spec's own
    field (type, bounds, choices) as the item, 1 to LI2_MAX_GRID_VALUES values."""
    sections = {"": ExperimentSpecSchema, "task": TaskSchema, "data": DataSchema, "model": ModelSchema}
    sections["training"] = TrainingSchema
    out: dict[str, fields.Field] = {}
    for section, schema in sections.items():
        for name, field in schema._declared_fields.items():
            if not isinstance(field, fields.Nested):
                item = copy.deepcopy(field)
                item.load_default = item.dump_default = marshmallow_missing
                out[f"{section}.{name}" if section else name] = fields.List(
                    item, required=False, validate=LimitedLength(1, "grid_values")
                )
    return out


# A sweep's grid: {dotted path: [values]}; its paths are exactly these fields (li2.spec.sweep checks).
GridSchema = Schema.from_dict(_grid_fields(), name="GridSchema")


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested error dict -> {"training.lr": [...]}; list indices become `[i]`."""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, val in errors.items():
            if key == "_schema":
                path = prefix or "_schema"
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for p, msgs in flatten_errors(val, path).items():
                out.setdefault(p, []).extend(msgs)
    elif isinstance(errors, (list, tuple)):
        if all(isinstance(e, str) for e in errors):
            out[prefix or "_schema"] = list(errors)
        else:
            for e in errors:
                for p, msgs in flatten_errors(e, prefix).items():
                    out.setdefault(p, []).extend(msgs)
    else:
        out[prefix or "_schema"] = [str(errors)]
    return out


_SECTION_SCHEMAS = {
    "": ExperimentSpecSchema,
    "task": TaskSchema,
    "data": DataSchema,
    "model": ModelSchema,
    "training": TrainingSchema,
    "training.early_stop": EarlyStopSchema,
}


def _explain_unknown(errs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Append the allowed names to marshmallow's bare 'Unknown field.' messages."""
    for path, msgs in errs.items():
        if any(m == "Unknown field." for m in msgs):
            section = path.rsplit(".", 1)[0] if "." in path else ""
            schema = _SECTION_SCHEMAS.get(section)
            allowed = ", ".join(schema().fields) if schema else ""
            errs[path] = [f"unknown field; allowed here: {allowed}" if m == "Unknown field." else m for m in msgs]
    return errs


def load(schema: type[Schema], raw: dict) -> dict:
    """schema().load(raw), with marshmallow's errors as a SpecError of dotted fields."""
    try:
        return schema().load(raw)
    except ValidationError as exc:
        raise SpecError(_explain_unknown(flatten_errors(exc.messages))) from None
