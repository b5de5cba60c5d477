"""Runs of a sweep or search → the arrays the fits use: order M, size n, success, seed, time.

A run is `{"spec", "summary"}` (plus `dataset` when it came from the runner, which then wins for M
and n). Success is `summary.grokked` (the spec's success rule, li2.scaling.success) at the full
budget, or the `success_by_budget` entry of a shorter budget. Runs stopped on request
(`summary.stopped`) carry no outcome and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def order_and_size(run: dict) -> tuple[int, int]:
    """(M, n) of a run: from its `dataset` section when present (what the runner really used),
    else computed from the normalised spec."""
    ds = run.get("dataset") or {}
    if ds.get("order") is not None and ds.get("train_size") is not None:
        return int(ds["order"]), int(ds["train_size"])
    from li2.spec import resolve_train_size, task_order

    return int(task_order(run["spec"]["task"])), int(resolve_train_size(run["spec"]))


@dataclass(frozen=True)
class Outcomes:
    """One entry per run that has an outcome. Arrays of length N."""

    order: np.ndarray  # (N,) M
    size: np.ndarray  # (N,) n
    success: np.ndarray  # (N,) bool
    seed: np.ndarray  # (N,) the spec's seed: the bootstrap's resampling unit
    epoch: np.ndarray  # (N,) time to grok (first crossing) of successful runs, NaN otherwise

    def __len__(self) -> int:
        return len(self.order)

    def orders(self) -> list[int]:
        return sorted({int(m) for m in self.order})

    def at(self, M: int) -> Outcomes:
        """The runs of one order."""
        return self.take(self.order == M)

    def take(self, index: np.ndarray) -> Outcomes:
        return Outcomes(self.order[index], self.size[index], self.success[index], self.seed[index], self.epoch[index])


def _verdict(summary: dict, fraction: float) -> tuple[bool, float] | None:
    """(success, first-crossing epoch) at a budget fraction; None when the summary cannot say."""
    if fraction >= 1:
        t = summary.get("epoch_generalized")
        return bool(summary.get("grokked")), float(t) if t is not None else np.nan
    for entry in summary.get("success_by_budget") or []:
        if abs(float(entry.get("fraction", -1)) - fraction) < 1e-9:
            t = entry.get("epoch_generalized")
            return bool(entry.get("success")), float(t) if t is not None else np.nan
    return None


def collect(runs: list[dict], fraction: float = 1.0) -> Outcomes | None:
    """The outcomes at `fraction` of each run's budget; None if some run has no verdict for it."""
    rows = []
    for run in runs:
        summary = run.get("summary") or {}
        if summary.get("stopped"):
            continue
        verdict = _verdict(summary, fraction)
        if verdict is None:
            return None
        M, n = order_and_size(run)
        ok, t = verdict
        rows.append((M, n, ok, int((run.get("spec") or {}).get("seed", 0)), t if ok else np.nan))
    if not rows:
        return Outcomes(*(np.zeros(0) for _ in range(5)))
    cols = list(zip(*rows, strict=True))
    return Outcomes(
        order=np.array(cols[0], dtype=np.int64),
        size=np.array(cols[1], dtype=np.int64),
        success=np.array(cols[2], dtype=bool),
        seed=np.array(cols[3], dtype=np.int64),
        epoch=np.array(cols[4], dtype=np.float64),
    )
