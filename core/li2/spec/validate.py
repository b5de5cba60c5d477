"""`validate_spec`: one experiment spec in, the normalised spec (every default filled in) out.

A normalised spec has every section and every field, so two specs that mean the same experiment
hash the same (`li2.spec.hashing.spec_hash`). Failures raise `SpecError` naming each bad field.
"""

from __future__ import annotations

import math
from typing import Any

from li2.errors import SpecError
from li2.spec.limits import check_sizes
from li2.spec.schema import GROUP_FIELDS, ExperimentSpecSchema, load


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


def _early_stop(tr: dict) -> dict | None:
    """training.early_stop normalised: None, or {threshold, patience_epochs} with the defaults
    (the success threshold; the success window's share of the budget, at least one epoch)."""
    rule = tr["early_stop"]
    if rule is None:
        return None
    threshold = rule.get("threshold")
    patience = rule.get("patience_epochs")
    return {
        "threshold": tr["success_threshold"] if threshold is None else threshold,
        "patience_epochs": max(1, math.ceil(tr["success_window"] * tr["epochs"])) if patience is None else patience,
    }


def validate_spec(raw: Any) -> dict:
    """Validate one experiment spec and return it normalised (all defaults filled in)."""
    if not isinstance(raw, dict):
        raise SpecError({"_schema": ["the spec must be a JSON object with task, data, model, training, seed"]})
    spec = load(ExperimentSpecSchema, raw)
    task = spec["task"]
    # Normalised task: group, operands and exactly the kind's own fields.
    spec["task"] = {
        "group": task["group"],
        "operands": task["operands"],
        **{k: task[k] for k in GROUP_FIELDS[task["group"]]},
    }
    spec["data"] = {k: spec["data"].get(k) for k in ("train_fraction", "train_size", "critical_multiple")}
    spec["training"]["checkpoint_epochs"] = sorted(set(spec["training"]["checkpoint_epochs"]))
    spec["training"]["early_stop"] = _early_stop(spec["training"])
    errors = check_sizes(spec)
    errors.update(_check_cross_fields(spec))
    if errors:
        raise SpecError(errors)
    if task["group"] in ("table", "expression", "multiplicative"):
        from li2.groups import build_task  # numpy only; group axioms, a safe parse, a prime modulus

        build_task(spec["task"])
    return spec
