"""Sweeps: a base spec and a grid of dotted paths, validated and expanded into one spec per point.

    {"base": SPEC, "grid": {"task.order": [23, 41], "seed": [1, 2, 3]}}  ->  6 normalised specs

Every point of the grid is validated as a spec, so a sweep is accepted only when all its runs are.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

from li2.errors import SpecError
from li2.spec.limits import limits
from li2.spec.schema import GridSchema, SweepSchema, load
from li2.spec.validate import validate_spec


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
    """The dotted paths a grid may vary: the fields of li2.spec.schema.GridSchema."""
    return set(GridSchema._declared_fields)


def validate_sweep(raw: Any) -> dict:
    """Validate a sweep {"base": SPEC, "grid": {dotted.path: [values]}, "early_stop": {...} | None};
    every run is checked. `early_stop` sets training.early_stop in the base (so in every run)."""
    if not isinstance(raw, dict):
        raise SpecError({"_schema": ["the sweep must be a JSON object {base, grid}"]})
    sweep = load(SweepSchema, raw)
    if sweep["early_stop"] is not None:  # the sweep's option: early stopping for every run
        sweep["base"] = copy.deepcopy(sweep["base"])
        training = sweep["base"].setdefault("training", {})
        if isinstance(training, dict):
            training["early_stop"] = sweep["early_stop"]
    lim = limits()
    errors: dict[str, list[str]] = {}
    grid = sweep["grid"]
    if not grid:
        errors["grid"] = ['give at least one dotted path with a list of values, e.g. {"seed": [1, 2]}']
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
        for path, value in zip(paths, values, strict=False):
            _set_path(raw, path, value)
        try:
            specs.append(validate_spec(raw))
        except SpecError as exc:
            point = ", ".join(f"{p}={v!r}" for p, v in zip(paths, values, strict=False))
            raise SpecError({f"grid ({point}): {k}": v for k, v in exc.errors.items()}) from None
    return specs
