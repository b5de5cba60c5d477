"""Grokking time against weight decay: t = A·wd^−a over the runs that generalized.

The paper (Eqs. 4/5) makes weight decay η the learning rate of feature learning, so it predicts
a ≈ 1 for small η. t is the first crossing (`epoch_generalized`) of runs that succeed under the
spec's rule; a least-squares fit on log-log axes with a bootstrap over runs.
"""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP = 400


def fit_grokking_time_vs_wd(runs: list[dict], *, bootstrap: int = BOOTSTRAP, seed: int = 0) -> dict:
    """Fit t = A·wd^−a on grokked runs (t = epoch_generalized, wd = training.weight_decay > 0)."""
    pts = [
        (float(r["spec"]["training"]["weight_decay"]), float(r["summary"]["epoch_generalized"]))
        for r in runs
        if (r.get("summary") or {}).get("grokked")
        and r["summary"].get("epoch_generalized")
        and float(r["spec"].get("training", {}).get("weight_decay", 0.0)) > 0
    ]
    out = {
        "form": "t = A·wd^-a",
        "a": None,
        "A": None,
        "ci95": [None, None],
        "r2": None,
        "points": [{"weight_decay": w, "epoch_generalized": t} for w, t in pts],
    }
    if len({w for w, _ in pts}) < 2:
        out["note"] = "needs grokked runs at two or more positive weight decays"
        return out
    x = np.log([w for w, _ in pts])
    y = np.log([t for _, t in pts])
    slope, icpt = np.polyfit(x, y, 1)
    out["a"], out["A"] = float(-slope), float(math.exp(icpt))
    tot = float(np.sum((y - y.mean()) ** 2))
    out["r2"] = float(1 - np.sum((y - (icpt + slope * x)) ** 2) / tot) if tot > 0 else None
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(bootstrap):
        i = rng.integers(0, len(x), len(x))
        if len(set(x[i])) >= 2:
            boots.append(-np.polyfit(x[i], y[i], 1)[0])
    if len(boots) >= 10:
        out["ci95"] = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    return out
