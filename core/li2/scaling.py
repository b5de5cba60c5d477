"""Scaling laws from a sweep: critical training size n*(M), the fit n* = c·M·ln M, and t ∝ wd^−a.

Per group order M, success = the run generalized within its budget (`summary.grokked`); runs that
did not are *censored* — "not within budget", counted as not (yet) successful. Stopped runs
(`summary.stopped`) carry no information and are left out. n*(M) is where success becomes likely:

* overlapping outcomes → maximum-likelihood logistic fit P(success) = 1/(1 + exp(−(ln n − ln n*)/s));
* perfectly separated outcomes → the geometric midpoint between the largest failing and the smallest
  succeeding n (the logistic MLE would run off to s → 0 there);
* all succeed (or all fail) at an M → n* is only bounded (≤ smallest n, resp. > largest n); such an
  M is reported with its bound and left out of the fit.

Then n* = c·M·ln M (Theorem 4's form, natural log) is fitted by least squares on ln n*, with a 95 %
bootstrap interval (resampling runs within each M and refitting everything), R², residuals and a
curve; the free power law a·M^b is the alternative, compared by AIC on the same log residuals.
Nothing raises on degenerate sweeps: missing pieces come back as None with a "note". The same
dict carries `grokking_time_vs_wd` (t = A·wd^−a over grokked runs), so `sweep.json` holds both.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

FORM = "n* = c·M·ln M"
BOOTSTRAP = 400


def order_and_size(run: dict) -> tuple[int, int]:
    """(M, n) of a sweep run: from its `dataset` section when present (what the runner really used),
    else computed from the normalised spec."""
    ds = run.get("dataset") or {}
    if ds.get("order") is not None and ds.get("train_size") is not None:
        return int(ds["order"]), int(ds["train_size"])
    from li2.spec import resolve_train_size, task_order

    return int(task_order(run["spec"]["task"])), int(resolve_train_size(run["spec"]))


def _outcomes(runs: list[dict]) -> dict[int, list[tuple[int, bool]]]:
    """{M: [(n, success), …]} from runs [{"spec", "summary"}], stopped runs left out."""
    by_m: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for run in runs:
        summary = run.get("summary") or {}
        if summary.get("stopped"):
            continue
        M, n = order_and_size(run)
        by_m[M].append((n, bool(summary.get("grokked"))))
    return dict(sorted(by_m.items()))


def estimate_critical_size(points: list[tuple[int, bool]]) -> dict:
    """n* for one M from (n, success) pairs: {"n_star", "method", "bound", "slope"}."""
    n = np.array([p[0] for p in points], dtype=np.float64)
    s = np.array([p[1] for p in points], dtype=bool)
    if s.all():
        return {"n_star": None, "method": "bounded", "bound": {"upper": float(n.min())}, "slope": None}
    if not s.any():
        return {"n_star": None, "method": "bounded", "bound": {"lower": float(n.max())}, "slope": None}
    max_fail, min_succ = n[~s].max(), n[s].min()
    if max_fail < min_succ:  # perfectly separated
        return {"n_star": float(math.sqrt(max_fail * min_succ)), "method": "midpoint", "bound": None, "slope": None}
    x = np.log(n)
    fit = _logistic_irls(x, s.astype(np.float64))
    if fit is None or not (x.min() - 1 <= fit[0] <= x.max() + 1):
        return {"n_star": float(math.sqrt(max_fail * min_succ)), "method": "midpoint", "bound": None, "slope": None}
    mu, scale = fit
    return {"n_star": float(math.exp(mu)), "method": "logistic", "bound": None, "slope": float(scale)}


def _logistic_irls(x: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float] | None:
    """Maximum-likelihood logistic regression of y ∈ {0,1} on x by Newton steps.

    Returns (mu, s) of P(y=1) = 1/(1 + exp(−(x − mu)/s)), or None when it does not converge to an
    increasing curve.
    """
    xc = x - x.mean()
    X = np.stack([np.ones_like(xc), xc], axis=1)  # (N, 2)
    beta = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ beta)))
        w = np.clip(p * (1 - p), 1e-9, None)
        H = X.T @ (X * w[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(H, X.T @ (y - p))
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    if not np.all(np.isfinite(beta)) or beta[1] <= 1e-9 or beta[1] > 1e6:
        return None
    return float(x.mean() - beta[0] / beta[1]), float(1 / beta[1])


def _fit_c(Ms: np.ndarray, nstar: np.ndarray) -> float:
    """Least squares on ln n*: ln c = mean(ln n* − ln(M ln M))."""
    return float(np.exp(np.mean(np.log(nstar) - np.log(Ms * np.log(Ms)))))


def _aic(resid: np.ndarray, k: int) -> float | None:
    """Gaussian AIC of log residuals with k parameters; None if it is not defined (too few points)."""
    m = len(resid)
    rss = float(np.sum(resid**2))
    if m <= k or rss <= 0:
        return None
    return float(m * math.log(rss / m) + 2 * k)


def fit_scaling_law(runs: list[dict], *, bootstrap: int = BOOTSTRAP, seed: int = 0) -> dict:
    """Fit n* = c·M·ln M over the sweep's group orders (see module docstring). JSON-ready dict."""
    by_m = _outcomes(runs)
    critical = []
    for M, pts in by_m.items():
        cs = estimate_critical_size(pts)
        critical.append(
            {
                "order": M,
                "n_star": cs["n_star"],
                "p_star": cs["n_star"] / M**2 if cs["n_star"] is not None else None,
                "method": cs["method"],
                "bound": cs["bound"],
                "slope": cs["slope"],
                "n_runs": len(pts),
                "successes": int(sum(p[1] for p in pts)),
            }
        )
    fitted = [c for c in critical if c["n_star"] is not None and c["order"] >= 3]
    out = {
        "form": FORM,
        "c": None,
        "ci95": [None, None],
        "r2": None,
        "critical": critical,
        "alternatives": [],
        "aic": None,
        "residuals": [],
        "curve": [],
        "n_orders_fitted": len(fitted),
        "grokking_time_vs_wd": fit_grokking_time_vs_wd(runs, bootstrap=bootstrap, seed=seed),
    }
    if not fitted:
        out["note"] = "no group order with both successes and failures: n* is only bounded, c not fitted"
        return out
    Ms = np.array([c["order"] for c in fitted], dtype=np.float64)
    ns = np.array([c["n_star"] for c in fitted])
    c = _fit_c(Ms, ns)
    logres = np.log(ns) - np.log(c * Ms * np.log(Ms))
    out["c"] = c
    out["residuals"] = [
        {"order": int(M), "n_star": float(n), "fitted": float(c * M * math.log(M)), "log_residual": float(r)}
        for M, n, r in zip(Ms, ns, logres, strict=False)
    ]
    grid = np.linspace(max(3.0, 0.8 * Ms.min()), 1.1 * Ms.max(), 50)
    out["curve"] = [{"order": float(M), "n_star": float(c * M * math.log(M))} for M in grid]
    tot = float(np.sum((np.log(ns) - np.log(ns).mean()) ** 2))
    out["r2"] = float(1 - np.sum(logres**2) / tot) if len(ns) > 1 and tot > 0 else None
    out["aic"] = _aic(logres, 1)
    # Alternative: free power law ln n* = ln a + b ln M.
    if len(ns) >= 2:
        b, ln_a = np.polyfit(np.log(Ms), np.log(ns), 1)
        res_pl = np.log(ns) - (ln_a + b * np.log(Ms))
        out["alternatives"] = [
            {"form": "n* = a·M^b", "params": {"a": float(math.exp(ln_a)), "b": float(b)}, "aic": _aic(res_pl, 2)},
            {"form": FORM, "params": {"c": c}, "aic": out["aic"]},
        ]
    lo, hi = _bootstrap_c(by_m, [c_["order"] for c_ in fitted], bootstrap, seed)
    out["ci95"] = [lo, hi]
    if len(fitted) < 2:
        out["note"] = "only one group order has a fitted n*: c rests on one point (no R², no AIC)"
    elif out["aic"] is None:
        out["note"] = "too few group orders for AIC comparison"
    return out


def _bootstrap_c(by_m: dict, orders: list[int], reps: int, seed: int) -> tuple[float | None, float | None]:
    """95 % percentile interval of c, resampling the runs within each fitted M."""
    if reps <= 0:
        return None, None
    rng = np.random.default_rng(seed)
    cs = []
    for _ in range(reps):
        Ms, ns = [], []
        for M in orders:
            pts = by_m[M]
            sample = [pts[i] for i in rng.integers(0, len(pts), len(pts))]
            n_star = estimate_critical_size(sample)["n_star"]
            if n_star is not None:
                Ms.append(M)
                ns.append(n_star)
        if Ms:
            cs.append(_fit_c(np.array(Ms, dtype=np.float64), np.array(ns)))
    if len(cs) < 10:
        return None, None
    return float(np.percentile(cs, 2.5)), float(np.percentile(cs, 97.5))


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
