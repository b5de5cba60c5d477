"""The epoch budget in the law: refits at shorter budgets, a convergence verdict, time to grok.

Grokking time is right-censored by the budget T: a run that would generalize at 1.2·T counts as a
failure, so n* measured at budget T is n*(T), and it falls as T grows until the law converges.
Each run's summary judges its own curve at T/4, T/2 and T (li2.scaling.success), so the same runs
refit at each budget with no retraining. When the 95 % intervals of c(T/2) and c(T) do not
overlap, the law has not converged in the budget: a longer budget would move c.

Time to grok against n/n*: the paper (§4.5) expects generalization to slow down as n approaches
n* from above. We report the first-crossing epoch of every successful run against n/n* with
n* = c_mle·M·ln M, Spearman's rank correlation, and medians in bins of n/n*.
"""

from __future__ import annotations

import itertools

import numpy as np

from li2.scaling.forms import THEORY, log_g
from li2.scaling.outcomes import Outcomes, collect
from li2.scaling.stats import spearman
from li2.scaling.success import BUDGET_FRACTIONS

RATIO_BINS = (0.0, 1.0, 1.25, 1.5, 2.0, float("inf"))


def refit_by_budget(runs: list[dict], limit: float) -> list[dict]:
    """c with its interval at each budget fraction (T/4, T/2, T) from the same runs."""
    from li2.scaling.law import fit_c

    out = []
    for f in BUDGET_FRACTIONS:
        outcomes = collect(runs, f)
        if outcomes is None:
            out.append({"fraction": f, "status": "no_data", "note": "runs without per-budget verdicts"})
            continue
        fit = fit_c(outcomes, limit)
        out.append(
            {
                "fraction": f,
                "c": fit["c"],
                "c_mle": fit["c_mle"],
                "ci95": fit["ci95"],
                "status": fit["status"],
                "successes": int(outcomes.success.sum()),
                "n_runs": len(outcomes),
            }
        )
    return out


def _overlap(a: list, b: list) -> bool:
    lo = max(-np.inf if a[0] is None else a[0], -np.inf if b[0] is None else b[0])
    hi = min(np.inf if a[1] is None else a[1], np.inf if b[1] is None else b[1])
    return bool(lo <= hi)


def convergence(by_budget: list[dict]) -> dict:
    """converged: c(T/2) and c(T) have overlapping finite intervals; not_converged: disjoint
    intervals (open ends count as unbounded); unknown otherwise."""
    half = next((b for b in by_budget if b["fraction"] == 0.5), None)
    full = next((b for b in by_budget if b["fraction"] == 1.0), None)
    if not half or not full or "ci95" not in half or "ci95" not in full or full["status"] == "no_data":
        return {"verdict": "unknown", "note": "needs per-budget verdicts of every run"}

    def fmt(b: dict) -> str:
        lo, hi = b["ci95"]
        return f"[{'−∞' if lo is None else f'{lo:.3g}'}, {'∞' if hi is None else f'{hi:.3g}'}]"

    if not _overlap(half["ci95"], full["ci95"]):
        return {
            "verdict": "not_converged",
            "note": (
                f"the law has not converged in the budget: c(T/2) in {fmt(half)} and c(T) in {fmt(full)} "
                "do not overlap; a longer budget would move c"
            ),
        }
    if None in half["ci95"] or None in full["ci95"]:
        return {"verdict": "unknown", "note": f"c(T/2) in {fmt(half)} and c(T) in {fmt(full)}: an open interval"}
    return {"verdict": "converged", "note": f"c(T/2) in {fmt(half)} and c(T) in {fmt(full)} overlap"}


def time_to_grok(outcomes: Outcomes, c: float | None) -> dict:
    """First-crossing epoch of successful runs against n/n* (n* = c·M·ln M)."""
    out: dict = {"reference": "n* = c_mle·M·ln M", "points": [], "spearman": None, "bins": []}
    if c is None or not len(outcomes):
        out["note"] = "no n* to compare with"
        return out
    nstar = c * np.exp(log_g(THEORY, outcomes.order))  # (N,)
    ratio = outcomes.size / nstar
    ok = outcomes.success & np.isfinite(outcomes.epoch)
    out["points"] = [
        {"order": int(M), "train_size": int(n), "ratio": float(r), "epoch": float(t)}
        for M, n, r, t in zip(outcomes.order[ok], outcomes.size[ok], ratio[ok], outcomes.epoch[ok], strict=True)
    ]
    out["spearman"] = spearman(ratio[ok], outcomes.epoch[ok])
    for lo, hi in itertools.pairwise(RATIO_BINS):
        inside = (ratio >= lo) & (ratio < hi)
        t = outcomes.epoch[inside & ok]
        out["bins"].append(
            {
                "ratio": [lo, None if hi == float("inf") else hi],
                "grokked": int(t.size),
                "censored": int((inside & ~outcomes.success).sum()),
                "median_epoch": float(np.median(t)) if t.size else None,
            }
        )
    if out["spearman"] is not None:
        out["note"] = (
            "negative Spearman: runs closer to n* take longer to generalize, as the paper expects"
            if out["spearman"] < 0
            else "no slowing down near n* in these runs"
        )
    return out
