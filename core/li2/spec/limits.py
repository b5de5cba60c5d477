"""Sizes of a spec, and the bounds that depend on more than one field.

`task_order` and `resolve_train_size` compute M and n from a structurally valid spec without numpy
or torch; `check_sizes` names every field that breaks a bound no single field carries (M of a
derived group, M^operands samples, the training size against the data set). The single-field
bounds (order, operands, hidden, extra_layers, epochs, ...) are the schema's own validators
(li2.spec.bounds.Limited), so the OpenAPI document shows exactly what is enforced. `limits()` is
li2.spec.bounds.limits, re-exported here.
"""

from __future__ import annotations

import math

from li2.errors import SpecError
from li2.spec.bounds import limits
from li2.spec.schema import GROUP_FIELDS, GROUPS
from li2.theory import predicted_critical_size


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
    return round(data["critical_multiple"] * predicted_critical_size(m))


def check_sizes(spec: dict) -> dict[str, list[str]]:
    """{field: [messages]} for every size bound that spans fields (empty when all hold)."""
    lim = limits()
    errors: dict[str, list[str]] = {}
    task = spec["task"]
    m = task_order(task)
    k = task["operands"]
    if task["group"] == "table" and m > lim["table_order"]:
        errors["task.table"] = [f"at most {lim['table_order']} rows (LI2_MAX_TABLE_ORDER)"]
    if m > lim["order"]:
        errors[f"task.{GROUP_FIELDS[task['group']][0] if GROUP_FIELDS[task['group']] else 'group'}"] = [
            f"gives M = {m} elements; at most {lim['order']} allowed (LI2_MAX_ORDER)"
        ]
    if m <= lim["order"] and m**k > lim["samples"]:
        errors["task.operands"] = [f"M^operands = {m}^{k} samples; at most {lim['samples']} allowed (LI2_MAX_SAMPLES)"]
    tr = spec["training"]
    if any(e > tr["epochs"] for e in tr["checkpoint_epochs"]):
        errors["training.checkpoint_epochs"] = [f"each epoch must be between 0 and training.epochs ({tr['epochs']})"]
    if errors:
        return errors
    total = m**k
    n = resolve_train_size(spec)
    if not 1 <= n <= total - 1:
        which = next(f for f in ("train_fraction", "train_size", "critical_multiple") if spec["data"][f] is not None)
        errors[f"data.{which}"] = [
            f"gives {n} training samples; must leave between 1 and {total - 1} "
            f"of the {total} samples for training (the rest is the test set)"
        ]
    return errors
