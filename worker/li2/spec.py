"""Experiment and sweep specs: validation, defaults, canonical hash and batch shape.

This module is the one definition of what a valid experiment is. The CLI, the API (through the
marshmallow schemas below) and the worker all call `validate_spec`. It imports no torch, so the
API process can validate without loading the training stack.

A normalised spec has every section and every field, defaults filled in, so two specs that mean
the same experiment hash the same (`spec_hash`). Errors are `SpecError`s whose `errors` map a
dotted field path to messages that say what is allowed.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from li2.errors import SpecError

# The reference code's critical-ratio multiplier: n* = C_CRIT · M · ln M (digest §4.5).
C_CRIT = 2.7482

GROUPS = ("cyclic", "product", "dihedral", "symmetric", "alternating", "quaternion",
          "multiplicative", "table", "expression")
ACTIVATIONS = ("sqr", "relu", "silu", "relusqr")
OPTIMIZERS = ("sgd", "adam", "adamw", "muon")
LOSSES = ("mse", "nll")
SCHEDULES = ("none", "step", "multistep", "exponential", "cosine")

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


def _limit(name: str, default: int) -> int:
    """A bound that protects a shared server; LI2_MAX_<NAME> overrides it."""
    raw = os.environ.get(f"LI2_MAX_{name.upper()}")
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def limits() -> dict[str, int]:
    """Current bounds on specs and sweeps (read from the environment each call)."""
    return {
        "order": _limit("order", 1024),          # M, number of elements / classes
        "samples": _limit("samples", 1 << 20),    # M ** operands, the full data set
        "operands": _limit("operands", 4),
        "hidden": _limit("hidden", 8192),         # K
        "extra_layers": _limit("extra_layers", 4),
        "epochs": _limit("epochs", 100_000),
        "table_order": _limit("table_order", 128),
        "grid": _limit("grid", 1024),             # runs in one sweep expansion
        "grid_values": _limit("grid_values", 256),  # values per grid axis
        "checkpoints": _limit("checkpoints", 100),
    }


LIMITS = limits()


def _int(lo: int, hi: int, **kw) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(lo, hi), **kw)


def _float(lo: float, hi: float, *, min_inclusive=True, **kw) -> fields.Float:
    return fields.Float(allow_nan=False, validate=validate.Range(lo, hi, min_inclusive=min_inclusive), **kw)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class TaskSchema(_Strict):
    group = fields.String(required=True, validate=validate.OneOf(GROUPS))
    operands = _int(2, 8, load_default=2)
    order = _int(2, 1 << 20)
    factors = fields.List(_int(2, 1 << 20), validate=validate.Length(1, 8))
    n = _int(2, 64)
    prime = _int(3, 1 << 20)
    table = fields.List(fields.List(fields.Integer(strict=True), validate=validate.Length(max=1024)),
                        validate=validate.Length(1, 1024))
    expression = fields.String(validate=validate.Length(1, 200))
    modulus = _int(2, 1 << 20)

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
    train_fraction = _float(0.0, 1.0, min_inclusive=False, allow_none=True, load_default=None)
    train_size = _int(1, 1 << 40, allow_none=True, load_default=None)
    critical_multiple = _float(0.0, 1e6, min_inclusive=False, allow_none=True, load_default=None)

    @validates_schema
    def _exactly_one(self, data, **kwargs):
        given = [k for k in ("train_fraction", "train_size", "critical_multiple") if data.get(k) is not None]
        if len(given) != 1:
            raise ValidationError(
                f"give exactly one of train_fraction (0..1), train_size (count) or critical_multiple "
                f"(multiple of {C_CRIT}·M·ln M); got {', '.join(given) or 'none'}", "_schema")


class ModelSchema(_Strict):
    hidden = _int(1, 1 << 20, load_default=512)
    activation = fields.String(load_default="sqr", validate=validate.OneOf(ACTIVATIONS))
    extra_layers = _int(0, 64, load_default=0)
    top_init_scale = _float(0.0, 1e3, load_default=1.0)
    output_scale = _float(0.0, 1e3, min_inclusive=False, load_default=1.0)
    embedding_trainable = fields.Boolean(load_default=False)
    ridge_top = _float(0.0, 1e6, min_inclusive=False, allow_none=True, load_default=None)


class TrainingSchema(_Strict):
    optimizer = fields.String(load_default="adam", validate=validate.OneOf(OPTIMIZERS))
    lr = _float(0.0, 100.0, min_inclusive=False, load_default=0.01)
    weight_decay = _float(0.0, 100.0, load_default=1e-4)
    epochs = _int(1, 1 << 30, load_default=300)
    loss = fields.String(load_default="mse", validate=validate.OneOf(LOSSES))
    schedule = fields.String(load_default="none", validate=validate.OneOf(SCHEDULES))
    step_size = _int(1, 1 << 30, allow_none=True, load_default=None)
    gamma = _float(0.0, 1.0, min_inclusive=False, load_default=0.1)
    milestones = fields.List(_int(1, 1 << 30), load_default=list, validate=validate.Length(max=100))
    momentum = _float(0.0, 0.999999, load_default=0.9)
    eval_every = _int(1, 1 << 30, load_default=10)
    dense_until = _int(0, 1 << 30, load_default=200)
    checkpoint_epochs = fields.List(_int(0, 1 << 30), load_default=list, validate=validate.Length(max=1000))
    diagnostics = fields.Boolean(load_default=True)
    # The Li2 diagnostics (ridge solve, repulsion, irreps) cost ~25 ms per run on a CPU, so they run
    # at measurement epochs that are multiples of this (and the last), not at every dense epoch.
    diagnostics_every = _int(1, 1 << 30, load_default=5)


class ExperimentSpecSchema(_Strict):
    """One experiment: task, data split, model, training and seed (DESIGN.md contract)."""

    task = fields.Nested(TaskSchema, required=True)
    data = fields.Nested(DataSchema, load_default=lambda: DataSchema().load({"train_fraction": 0.9}))
    model = fields.Nested(ModelSchema, load_default=lambda: ModelSchema().load({}))
    training = fields.Nested(TrainingSchema, load_default=lambda: TrainingSchema().load({}))
    seed = _int(0, 2**31 - 1, load_default=0)


class SweepSchema(_Strict):
    """A grid: the Cartesian product of dotted spec paths over a base spec."""

    base = fields.Dict(required=True)
    grid = fields.Dict(keys=fields.String(validate=validate.Length(1, 100)), values=fields.List(fields.Raw()),
                       required=True)


class SweepSubmitSchema(SweepSchema):
    class Meta:
        unknown = INCLUDE


# --------------------------------------------------------------------------------------------
# Error formatting


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


_SECTION_SCHEMAS = {"": ExperimentSpecSchema, "task": TaskSchema, "data": DataSchema,
                    "model": ModelSchema, "training": TrainingSchema}


def _explain_unknown(errs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Append the allowed names to marshmallow's bare 'Unknown field.' messages."""
    for path, msgs in errs.items():
        if any(m == "Unknown field." for m in msgs):
            section = path.rsplit(".", 1)[0] if "." in path else ""
            schema = _SECTION_SCHEMAS.get(section)
            allowed = ", ".join(schema().fields) if schema else ""
            errs[path] = [f"unknown field; allowed here: {allowed}" if m == "Unknown field." else m for m in msgs]
    return errs


def _load(schema: type[Schema], raw: dict) -> dict:
    """schema().load(raw), with marshmallow's errors as a SpecError of dotted fields."""
    try:
        return schema().load(raw)
    except ValidationError as exc:
        raise SpecError(_explain_unknown(flatten_errors(exc.messages))) from None


# --------------------------------------------------------------------------------------------
# Task size (no numpy/torch needed)


def task_order(task: dict) -> int:
    """M, the number of elements of the task's set, from a structurally valid task section."""
    g = task["group"]
    if g == "cyclic":
        return task["order"]
    if g == "product":
        return math.prod(task["factors"])
    if g == "dihedral":
        return 2 * task["n"]
    if g == "symmetric":
        return math.factorial(task["n"])
    if g == "alternating":
        return math.factorial(task["n"]) // 2
    if g == "quaternion":
        return 8
    if g == "multiplicative":
        return task["prime"] - 1
    if g == "table":
        return len(task["table"])
    if g == "expression":
        return task["modulus"]
    raise SpecError({"task.group": [f"must be one of: {', '.join(GROUPS)}"]})


def resolve_train_size(spec: dict) -> int:
    """n, the number of training samples, from whichever of the three data options is set.

    train_fraction follows the reference's sklearn split: n_test = ceil((1 - f) · M^k).
    critical_multiple gives n = round(multiple · C_CRIT · M · ln M).
    """
    total = task_order(spec["task"]) ** spec["task"]["operands"]
    data = spec["data"]
    if data.get("train_fraction") is not None:
        return total - math.ceil(round((1.0 - data["train_fraction"]) * total, 9))
    if data.get("train_size") is not None:
        return int(data["train_size"])
    m = task_order(spec["task"])
    return int(round(data["critical_multiple"] * C_CRIT * m * math.log(m)))


def _check_sizes(spec: dict) -> dict[str, list[str]]:
    lim = limits()
    errors: dict[str, list[str]] = {}
    task = spec["task"]
    m = task_order(task)
    k = task["operands"]
    if task["group"] == "table" and m > lim["table_order"]:
        errors["task.table"] = [f"at most {lim['table_order']} rows (LI2_MAX_TABLE_ORDER)"]
    if m > lim["order"]:
        errors[f"task.{GROUP_FIELDS[task['group']][0] if GROUP_FIELDS[task['group']] else 'group'}"] = [
            f"gives M = {m} elements; at most {lim['order']} allowed (LI2_MAX_ORDER)"]
    if k > lim["operands"]:
        errors["task.operands"] = [f"must be between 2 and {lim['operands']} (LI2_MAX_OPERANDS)"]
    if m <= lim["order"] and k <= lim["operands"] and m ** k > lim["samples"]:
        errors["task.operands"] = [f"M^operands = {m}^{k} samples; at most {lim['samples']} allowed (LI2_MAX_SAMPLES)"]
    if spec["model"]["hidden"] > lim["hidden"]:
        errors["model.hidden"] = [f"must be between 1 and {lim['hidden']} (LI2_MAX_HIDDEN)"]
    if spec["model"]["extra_layers"] > lim["extra_layers"]:
        errors["model.extra_layers"] = [f"must be between 0 and {lim['extra_layers']} (LI2_MAX_EXTRA_LAYERS)"]
    tr = spec["training"]
    if tr["epochs"] > lim["epochs"]:
        errors["training.epochs"] = [f"must be between 1 and {lim['epochs']} (LI2_MAX_EPOCHS)"]
    if len(tr["checkpoint_epochs"]) > lim["checkpoints"]:
        errors["training.checkpoint_epochs"] = [f"at most {lim['checkpoints']} epochs"]
    elif any(e > tr["epochs"] for e in tr["checkpoint_epochs"]):
        errors["training.checkpoint_epochs"] = [f"each epoch must be between 0 and training.epochs ({tr['epochs']})"]
    if errors:
        return errors
    total = m ** k
    n = resolve_train_size(spec)
    if not 1 <= n <= total - 1:
        which = next(f for f in ("train_fraction", "train_size", "critical_multiple") if spec["data"][f] is not None)
        errors[f"data.{which}"] = [f"gives {n} training samples; must leave between 1 and {total - 1} "
                                   f"of the {total} samples for training (the rest is the test set)"]
    return errors


def _check_cross_fields(spec: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    tr = spec["training"]
    if spec["task"]["group"] == "expression" and spec["task"]["operands"] != 2:
        errors["task.operands"] = ["an expression in x and y takes exactly 2 operands"]
    if spec["model"]["ridge_top"] is not None and tr["loss"] != "mse":
        errors["model.ridge_top"] = ["needs training.loss = 'mse' (the ridge solution is for the squared loss)"]
    if tr["schedule"] == "step" and tr["step_size"] is None:
        errors["training.step_size"] = ["required when training.schedule is 'step'"]
    if tr["schedule"] == "multistep" and not tr["milestones"]:
        errors["training.milestones"] = ["required (ascending epochs) when training.schedule is 'multistep'"]
    if tr["milestones"] != sorted(set(tr["milestones"])):
        errors["training.milestones"] = ["must be strictly ascending epochs"]
    return errors


# --------------------------------------------------------------------------------------------
# Public API


def validate_spec(raw: Any) -> dict:
    """Validate one experiment spec and return it normalised (all defaults filled in)."""
    if not isinstance(raw, dict):
        raise SpecError({"_schema": ["the spec must be a JSON object with task, data, model, training, seed"]})
    spec = _load(ExperimentSpecSchema, raw)
    task = spec["task"]
    # Normalised task: group, operands and exactly the kind's own fields.
    spec["task"] = {"group": task["group"], "operands": task["operands"],
                    **{k: task[k] for k in GROUP_FIELDS[task["group"]]}}
    spec["data"] = {k: spec["data"].get(k) for k in ("train_fraction", "train_size", "critical_multiple")}
    spec["training"]["checkpoint_epochs"] = sorted(set(spec["training"]["checkpoint_epochs"]))
    errors = _check_sizes(spec)
    errors.update(_check_cross_fields(spec))
    if errors:
        raise SpecError(errors)
    if task["group"] in ("table", "expression"):
        from li2.groups import build_task  # numpy only; checks group axioms / parses safely

        build_task(spec["task"])
    return spec


def spec_hash(spec: dict) -> str:
    """sha256 of the canonical JSON of a *normalised* spec: equal experiments, equal hashes."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


# Fields that may differ between runs trained together as one stacked model.
_PER_RUN = {("seed",), ("training", "lr"), ("training", "weight_decay"), ("model", "top_init_scale"),
            ("data", "train_fraction"), ("data", "train_size"), ("data", "critical_multiple"),
            ("training", "checkpoint_epochs")}


def shape_key(spec: dict) -> str:
    """Key under which runs share a batch: everything but the per-run fields, plus n_train.

    Runs with equal keys have identical tensor shapes and the same algorithm, and differ only in
    seed, split, learning rate, weight decay or init scale (which the trainer holds per run).
    """
    shared = copy.deepcopy(spec)
    for path in _PER_RUN:
        node = shared
        for p in path[:-1]:
            node = node[p]
        node.pop(path[-1], None)
    shared["n_train"] = resolve_train_size(spec)
    return spec_hash(shared)[:32]


def run_memory_bytes(spec: dict) -> int:
    """Estimated device memory of one run inside a stacked batch (float32 training, float64 diagnostics).

    Parameters P = d·K + K·M + L·K² (+ M² for a trainable embedding), held six times over
    (value, gradient, two Adam moments, the initial copy for drift, the pre-step copy for the
    cosine step); training activations and their gradients (n, K) per layer and (n, M) outputs;
    the test forward; and the diagnostics' float64 K×K and n×K work arrays.
    """
    m, k = task_order(spec["task"]), spec["task"]["operands"]
    model = spec["model"]
    hidden, layers = model["hidden"], model["extra_layers"]
    n = resolve_train_size(spec)
    n_test = m ** k - n
    params = k * m * hidden + hidden * m + layers * hidden * hidden + (m * m if model["embedding_trainable"] else 0)
    floats = 6 * params + n * hidden * (4 + 2 * layers) + 3 * n * m + n_test * (2 * hidden + m)
    return 4 * floats + 8 * (hidden * hidden + 2 * n * hidden)


def pack_batches(entries, max_batch: int, memory_bytes: int) -> list[list]:
    """Group (shape_key, spec, item) entries into batches of one shape_key each, in sorted key order.

    A batch holds at most `max_batch` runs and, by `run_memory_bytes`, at most `memory_bytes` of
    device memory (always at least one run). The API packs sweeps with it and the reaper packs
    re-sent runs, so both make the same batches.
    """
    groups: dict[str, list] = {}
    size: dict[str, int] = {}
    for key, spec, item in entries:
        if key not in groups:
            groups[key] = []
            size[key] = max(1, min(max_batch, memory_bytes // max(1, run_memory_bytes(spec))))
        groups[key].append(item)
    return [items[i:i + size[key]] for key, items in sorted(groups.items())
            for i in range(0, len(items), size[key])]


def _set_path(spec: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = spec
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value
    if parts[0] == "data" and len(parts) == 2 and value is not None:
        for other in ("train_fraction", "train_size", "critical_multiple"):
            if other != parts[1]:
                node.pop(other, None)


def _grid_paths_allowed() -> set[str]:
    allowed = {"seed"}
    for section, schema in (("task", TaskSchema), ("data", DataSchema), ("model", ModelSchema),
                            ("training", TrainingSchema)):
        allowed |= {f"{section}.{name}" for name in schema().fields}
    return allowed


def validate_sweep(raw: Any) -> dict:
    """Validate a sweep {"base": SPEC, "grid": {dotted.path: [values]}}; every run is checked."""
    if not isinstance(raw, dict):
        raise SpecError({"_schema": ["the sweep must be a JSON object {base, grid}"]})
    sweep = _load(SweepSchema, raw)
    lim = limits()
    errors: dict[str, list[str]] = {}
    grid = sweep["grid"]
    if not grid:
        errors["grid"] = ["give at least one dotted path with a list of values, e.g. {\"seed\": [1, 2]}"]
    allowed = _grid_paths_allowed()
    for path, values in grid.items():
        if path not in allowed:
            errors[f"grid.{path}"] = [f"unknown path; allowed: {', '.join(sorted(allowed))}"]
        elif not values:
            errors[f"grid.{path}"] = ["give at least one value"]
        elif len(values) > lim["grid_values"]:
            errors[f"grid.{path}"] = [f"at most {lim['grid_values']} values per path"]
    if not errors:
        size = math.prod(len(v) for v in grid.values())
        if size > lim["grid"]:
            errors["grid"] = [f"expands to {size} runs; at most {lim['grid']} allowed (LI2_MAX_GRID)"]
    if errors:
        raise SpecError(errors)
    try:
        base = validate_spec(sweep["base"])
    except SpecError as exc:
        raise SpecError({f"base.{k}" if k != "_schema" else "base": v for k, v in exc.errors.items()}) from None
    out = {"base": base, "grid": grid}
    expand_sweep(out, _raw_base=sweep["base"])  # validates every run; raises with the run's values named
    return out


def expand_sweep(sweep: dict, _raw_base: dict | None = None) -> list[dict]:
    """The validated specs of a sweep, one per point of the grid, in grid order."""
    base = _raw_base if _raw_base is not None else sweep["base"]
    paths = list(sweep["grid"])
    specs = []
    for values in itertools.product(*(sweep["grid"][p] for p in paths)):
        raw = copy.deepcopy(base)
        for path, value in zip(paths, values):
            _set_path(raw, path, value)
        try:
            specs.append(validate_spec(raw))
        except SpecError as exc:
            point = ", ".join(f"{p}={v!r}" for p, v in zip(paths, values))
            raise SpecError({f"grid ({point}): {k}": v for k, v in exc.errors.items()}) from None
    return specs
