"""A search request: what the user asks for, validated and normalised, and the specs of its points.

    {"base": SPEC,                      the experiment every point starts from (task and data are set per point)
     "orders": [11, 17, 23, 31],        sizes of the group family named by order_kind
     "order_kind": "cyclic",            cyclic | dihedral | symmetric | alternating | multiplicative
     "seeds": 2,                        runs per (order, size) point
     "tolerance": 0.05,                 stop once each n*(M) is known to ±5 % (95 % interval)
     "max_runs": 200,                   never train more runs than this in all
     "epochs": 3000,                    optional: the epoch budget (else base.training.epochs)
     "prior_c": 2.7482,                 round 0 brackets prior_c·M·ln M (the theory's constant)
     "initial_points": 5, "initial_spread": 2.0,   round 0: 5 sizes from prior/2 to prior·2
     "points_per_round": 4, "max_rounds": 10,
     "early_stopping": true}            stop a run once it has generalized for good (see `apply_early_stopping`)

`order_kind` names how an integer in `orders` becomes a task: the order itself for cyclic groups,
n for D_n, S_n and A_n, the prime p for (Z/p)^×. Errors come out as a SpecError naming each field.
"""

from __future__ import annotations

import copy
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from li2.errors import SpecError
from li2.spec import task_order, validate_spec
from li2.spec.bounds import Limited
from li2.spec.schema import flatten_errors
from li2.theory import C_CRIT

ORDER_KINDS = {"cyclic": "order", "dihedral": "n", "symmetric": "n", "alternating": "n", "multiplicative": "prime"}


class SearchRequestSchema(Schema):
    """The body of POST /api/v1/searches and the file of `li2lab search`."""

    class Meta:
        unknown = RAISE

    base = fields.Dict(required=True, metadata={"description": "the experiment spec every run starts from"})
    orders = fields.List(
        fields.Integer(strict=True, validate=validate.Range(2, 1 << 20)),
        required=True,
        validate=validate.Length(1, 32),
        metadata={"description": "the sizes to search, e.g. [11, 17, 23] (the order_kind's own parameter)"},
    )
    order_kind = fields.String(
        load_default=None,
        validate=validate.OneOf(tuple(ORDER_KINDS)),
        metadata={"description": "which group the sizes are of (else base.task.group, else cyclic)"},
    )
    seeds = fields.Integer(
        strict=True, load_default=2, validate=validate.Range(1, 64), metadata={"description": "runs per point"}
    )
    tolerance = fields.Float(
        load_default=0.05,
        allow_nan=False,
        validate=validate.Range(0, 1, min_inclusive=False, max_inclusive=False),
        metadata={"description": "relative half-width of each n*(M)'s 95 % interval at which to stop"},
    )
    max_runs = fields.Integer(
        strict=True,
        load_default=200,
        validate=Limited(1, "grid"),
        metadata={"description": "most runs in all (also at most the server's LI2_MAX_SWEEP_RUNS quota)"},
    )
    epochs = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=Limited(1, "epochs"),
        metadata={"description": "epoch budget of every run (else base.training.epochs)"},
    )
    prior_c = fields.Float(
        load_default=C_CRIT,
        allow_nan=False,
        validate=validate.Range(0, 1e6, min_inclusive=False),
        metadata={"description": "round 0 brackets prior_c·M·ln M"},
    )
    initial_points = fields.Integer(strict=True, load_default=5, validate=validate.Range(2, 32))
    initial_spread = fields.Float(
        load_default=2.0, allow_nan=False, validate=validate.Range(1, 1e3, min_inclusive=False)
    )
    points_per_round = fields.Integer(strict=True, load_default=4, validate=validate.Range(1, 32))
    max_rounds = fields.Integer(strict=True, load_default=10, validate=validate.Range(1, 100))
    early_stopping = fields.Boolean(load_default=True)

    @validates_schema
    def _distinct_orders(self, data, **kwargs):
        orders = data.get("orders") or []
        if len(set(orders)) != len(orders):
            raise ValidationError("each order may appear once", "orders")


def order_task(request: dict, value: int) -> dict:
    """The task section of one entry of `orders` (operands as in the base)."""
    kind = request["order_kind"]
    return {"group": kind, "operands": request["base"]["task"]["operands"], ORDER_KINDS[kind]: value}


def point_spec(request: dict, value: int, train_size: int, seed: int) -> dict:
    """The normalised spec of one run of the search: the base at one order, size and seed."""
    raw = copy.deepcopy(request["base"])
    raw["task"] = order_task(request, value)
    raw["data"] = {"train_size": int(train_size)}
    raw["seed"] = int(seed)
    return apply_early_stopping(validate_spec(raw), request["early_stopping"])


def apply_early_stopping(spec: dict, enabled: bool) -> dict:
    """A search's runs with early stopping on (`training.early_stop` at its defaults) when `enabled`.

    A run that has generalized for good needs no more epochs: stopping it saves most of a
    successful run's budget, and the success rule (held over the last window) stays what decides,
    since the default patience is that window. A base spec's own early_stop is kept.
    """
    if not enabled or spec["training"]["early_stop"] is not None:
        return spec
    return validate_spec({**spec, "training": {**spec["training"], "early_stop": {}}})


def validate_search(raw: Any) -> dict:
    """Validate a search request and return it normalised (SpecError naming each bad field)."""
    if not isinstance(raw, dict):
        raise SpecError({"_schema": ["the search must be a JSON object {base, orders, ...}"]})
    try:
        req = SearchRequestSchema().load(raw)
    except ValidationError as exc:
        raise SpecError(flatten_errors(exc.messages)) from None
    base = copy.deepcopy(req["base"])
    kind = req["order_kind"] or (base.get("task") or {}).get("group") or "cyclic"
    if kind not in ORDER_KINDS:
        raise SpecError(
            {"order_kind": [f"the base's group '{kind}' has no single size; give order_kind: {', '.join(ORDER_KINDS)}"]}
        )
    req["order_kind"] = kind
    operands = (base.get("task") or {}).get("operands", 2)
    base["task"] = {"group": kind, "operands": operands, ORDER_KINDS[kind]: req["orders"][0]}
    base["data"] = {"train_fraction": 0.5}  # replaced at every point
    if req["epochs"] is not None:
        base.setdefault("training", {})
        if isinstance(base["training"], dict):
            base["training"]["epochs"] = req["epochs"]
    try:
        req["base"] = validate_spec(base)
    except SpecError as exc:
        raise SpecError({f"base.{k}" if k != "_schema" else "base": v for k, v in exc.errors.items()}) from None
    req["epochs"] = req["base"]["training"]["epochs"]
    errors: dict[str, list[str]] = {}
    for i, value in enumerate(req["orders"]):
        try:
            validate_spec({**req["base"], "task": order_task(req, value)})
        except SpecError as exc:
            errors[f"orders[{i}]"] = [f"{k}: {'; '.join(v)}" for k, v in exc.errors.items()]
    first_round = len(req["orders"]) * req["initial_points"] * req["seeds"]
    if first_round > req["max_runs"]:
        errors["max_runs"] = [
            f"round 0 alone needs {first_round} runs (orders × initial_points × seeds); raise max_runs or lower those"
        ]
    if errors:
        raise SpecError(errors)
    req["order_values"] = list(req["orders"])
    req["orders"] = [task_order(order_task(req, v)) for v in req["orders"]]
    return req
