"""The experiments table's catalogue columns: spec fields and outcome copied out of the JSON.

Lists filter and sort runs by these (li2_service.organise) in SQL, with indexes, instead of reading
`spec_json`/`summary_json` in Python. They are written in three places, all through this module:
`spec_columns` when a run row is made (li2_store.searches.new_experiment, the one constructor),
`outcome_columns` whenever a summary is stored (li2_store.lease.finish), and `backfill` once, by
the migration that added them, for the rows that existed before.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import sqlalchemy as sa

from li2.spec import resolve_train_size, task_order

# The columns each function fills (the migration and the tests read these names).
SPEC_COLUMNS = (
    "group_kind",
    "task_order",
    "operands",
    "train_size",
    "train_fraction",
    "hidden",
    "activation",
    "optimizer",
    "lr",
    "weight_decay",
    "seed",
)
OUTCOME_COLUMNS = ("grokked", "epoch_generalized", "final_test_acc")


def spec_columns(spec: dict) -> dict[str, Any]:
    """The catalogue values of a normalised spec (li2.spec.validate_spec's output).

    `task_order` is M for every group kind (cyclic: its order; dihedral n: 2n; ...), `train_size`
    the resolved n whichever data option was given, `train_fraction` n / M^operands.
    """
    task, model, training = spec["task"], spec["model"], spec["training"]
    m, k = task_order(task), int(task["operands"])
    n = resolve_train_size(spec)
    return {
        "group_kind": task["group"],
        "task_order": m,
        "operands": k,
        "train_size": n,
        "train_fraction": n / m**k,
        "hidden": int(model["hidden"]),
        "activation": model["activation"],
        "optimizer": training["optimizer"],
        "lr": float(training["lr"]),
        "weight_decay": float(training["weight_decay"]),
        "seed": int(spec["seed"]),
    }


def outcome_columns(summary: dict | None) -> dict[str, Any]:
    """The catalogue values of a run's summary (result.json's `summary`); None where it has none.

    grokked: the summary's verdict under the spec's success rule; epoch_generalized: the first
    epoch test accuracy reached the threshold; final_test_acc: the last finite test accuracy.
    """
    summary = summary or {}
    grokked = summary.get("grokked")
    epoch = summary.get("epoch_generalized")
    acc = summary.get("test_acc")
    final = float(acc) if isinstance(acc, (int, float)) and not isinstance(acc, bool) else None
    return {
        "grokked": None if grokked is None else bool(grokked),
        "epoch_generalized": int(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
        "final_test_acc": final if final is not None and math.isfinite(final) else None,
    }


def backfill(connection: sa.Connection, experiments: sa.TableClause) -> int:
    """Fill the catalogue columns of every row from its stored spec and summary; the number of rows.

    For the migration that adds the columns: it passes its own table description, so this works on
    the schema of that revision. A stored spec that no longer resolves keeps NULL spec columns.
    """
    rows = connection.execute(sa.select(experiments.c.id, experiments.c.spec_json, experiments.c.summary_json)).all()
    for run_id, spec, summary in rows:
        values = outcome_columns(summary)
        # An old row whose spec predates a field stays filterable by outcome only.
        with contextlib.suppress(KeyError, TypeError, ValueError, ArithmeticError):
            values.update(spec_columns(spec))
        connection.execute(sa.update(experiments).where(experiments.c.id == run_id).values(**values))
    return len(rows)
