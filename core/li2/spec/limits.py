"""Sizes of a spec and the bounds that protect a shared server.

`limits()` reads the bounds (LI2_MAX_* overrides each); `task_order` and `resolve_train_size`
compute M and n from a structurally valid spec without numpy or torch; `check_sizes` names every
field that breaks a bound.
"""

from __future__ import annotations

import math
import os

from li2.errors import SpecError
from li2.spec.schema import GROUP_FIELDS, GROUPS
from li2.theory import predicted_critical_size


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
        "order": _limit("order", 1024),  # M, number of elements / classes
        "samples": _limit("samples", 1 << 20),  # M ** operands, the full data set
        "operands": _limit("operands", 4),
        "hidden": _limit("hidden", 8192),  # K
        "extra_layers": _limit("extra_layers", 4),
        "epochs": _limit("epochs", 100_000),
        "table_order": _limit("table_order", 128),
        "grid": _limit("grid", 1024),  # runs in one sweep expansion
        "grid_values": _limit("grid_values", 256),  # values per grid axis
        "checkpoints": _limit("checkpoints", 100),
    }


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
    if k > lim["operands"]:
        errors["task.operands"] = [f"must be between 2 and {lim['operands']} (LI2_MAX_OPERANDS)"]
    if m <= lim["order"] and k <= lim["operands"] and m**k > lim["samples"]:
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
    total = m**k
    n = resolve_train_size(spec)
    if not 1 <= n <= total - 1:
        which = next(f for f in ("train_fraction", "train_size", "critical_multiple") if spec["data"][f] is not None)
        errors[f"data.{which}"] = [
            f"gives {n} training samples; must leave between 1 and {total - 1} "
            f"of the {total} samples for training (the rest is the test set)"
        ]
    return errors
