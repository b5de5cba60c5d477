"""What counts as a success for the scaling law: a run that generalized and was still generalized
when its budget ran out.

The first epoch at which test accuracy reaches the threshold (`epoch_generalized`) is not enough:
a run can reach 1.0 and end at 0.94 (the paper's §4.5 "ungrokking" with scarce data), and a
law fitted on first crossings counts it as a success. The rule here is a spec field
(`training.success_rule`, with `success_threshold` and `success_window`):

    held   test accuracy ≥ threshold at every measurement in the last `window` share of the budget
           (default: the last 10 %); the last measurement is always in the window
    final  test accuracy ≥ threshold at the last measurement
    ever   test accuracy ≥ threshold at any measurement (the old rule, kept for comparison)

The same rule is applied to the curve cut at fractions of the budget (T/4, T/2, T), so a sweep
can be refitted at shorter budgets from the same runs (`li2.scaling.budget`).
"""

from __future__ import annotations

import math

import numpy as np

from li2.spec.schema import SUCCESS_RULES as RULES
from li2.spec.schema import SUCCESS_THRESHOLD as DEFAULT_THRESHOLD
from li2.spec.schema import SUCCESS_WINDOW as DEFAULT_WINDOW

DEFAULT_RULE = RULES[0]
BUDGET_FRACTIONS = (0.25, 0.5, 1.0)


def rule_of(spec: dict) -> dict:
    """{"metric", "threshold", "rule", "window"} of a spec (defaults for specs written before the fields)."""
    tr = spec.get("training") or {}
    return {
        "metric": "test_acc",
        "threshold": float(tr.get("success_threshold", DEFAULT_THRESHOLD)),
        "rule": str(tr.get("success_rule", DEFAULT_RULE)),
        "window": float(tr.get("success_window", DEFAULT_WINDOW)),
    }


def _columns(metrics: dict) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, test_acc) as float arrays, NaN where a value is missing (NaN never counts as ≥)."""
    epochs = np.array([np.nan if e is None else float(e) for e in metrics.get("epoch", [])], dtype=np.float64)
    raw = metrics.get("test_acc") or []
    acc = np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
    if len(acc) != len(epochs):
        acc = np.full(len(epochs), np.nan)
    return epochs, acc


def judge(epochs: np.ndarray, acc: np.ndarray, cutoff: float, rule: dict) -> dict:
    """Success of one curve cut at `cutoff` epochs (measurements after at most `cutoff` steps).

    Returns {"epochs": cutoff, "success", "epoch_generalized" (first crossing), "epoch_success"
    (first epoch of the final unbroken stretch at or above the threshold, when successful)}.
    """
    keep = np.isfinite(epochs) & (epochs <= cutoff)
    ep, a = epochs[keep], acc[keep]  # (P,), (P,)
    above = a >= rule["threshold"]  # NaN compares False
    out = {"epochs": round(cutoff), "success": False, "epoch_generalized": None, "epoch_success": None}
    if not len(ep):
        return out
    if above.any():
        out["epoch_generalized"] = int(ep[np.argmax(above)])
    if rule["rule"] == "ever":
        success = bool(above.any())
    elif rule["rule"] == "final":
        success = bool(above[-1])
    else:  # held: every measurement in the last `window` of the budget, the last one included
        start = ep[-1] - rule["window"] * cutoff
        success = bool(above[ep >= start].all())
    out["success"] = success
    if success:
        if rule["rule"] == "ever":
            first = int(np.argmax(above))
        else:  # the measurement after the last one below the threshold
            below = np.flatnonzero(~above)
            first = int(below[-1]) + 1 if below.size else 0
        out["epoch_success"] = int(ep[first])
    return out


def summarize_success(metrics: dict, spec: dict) -> dict:
    """The summary keys of the success rule (see module doc) for one run's metric columns.

    grokked               success under the spec's rule at the full budget
    epoch_success         first epoch of the final stretch at or above the threshold (None if not)
    generalization_lost   the run reached the threshold at some measurement but ended below it
    success_rule          the rule applied
    success_by_budget     [{"fraction", "epochs", "success", "epoch_generalized", "epoch_success"}]
                          at T/4, T/2 and T
    """
    rule = rule_of(spec)
    budget = float((spec.get("training") or {}).get("epochs") or 0)
    epochs, acc = _columns(metrics)
    if budget <= 0 and len(epochs):
        budget = float(np.nanmax(epochs)) + 1
    by_budget = []
    for f in BUDGET_FRACTIONS:
        verdict = judge(epochs, acc, math.ceil(f * budget) if f < 1 else budget, rule)
        by_budget.append({"fraction": f, **verdict})
    full = by_budget[-1]
    finite = np.isfinite(acc)
    ever = bool((acc[finite] >= rule["threshold"]).any())
    ended_above = bool(finite.any() and acc[np.flatnonzero(finite)[-1]] >= rule["threshold"])
    return {
        "grokked": full["success"],
        "epoch_success": full["epoch_success"],
        "generalization_lost": ever and not ended_above,
        "success_rule": rule,
        "success_by_budget": by_budget,
    }
