"""`fit_scaling_law`: the critical training size n*(M) ≈ c·M·ln M from every run of a sweep or search.

One joint model over all runs (li2.scaling.logistic): P(success | M, n) = σ((ln n − ln(c·M ln M))/s),
fitted by maximum likelihood. What comes back (JSON-ready):

    status        "fitted" — c is bounded on both sides and its 95 % interval is within
                  ±`resolve_within` (default 10 %); "unresolved" — bounded but wider, or fewer than
                  two orders carry both outcomes; "bounded" — open on one side (e.g. every run
                  succeeded); "no_data". `c` is a number only when fitted: a law that cannot be
                  fitted must not look like one. `c_mle` always holds the likelihood's maximum.
    ci95          the 95 % profile-likelihood interval of c (None = open). With perfectly
                  separated outcomes it covers the whole range of c the outcomes allow, and more.
    s             the transition width in ln n (≥ 0.005, the narrowest the fit resolves)
    critical      per order: n* under the law with its interval, and the order's own free
                  estimate (its own n* and width) with interval and the bracket between the
                  largest failing and the smallest succeeding size
    missing       in words, what data would resolve what is not resolved
    alternatives  M, M², M^b and M ln M on the same likelihood: ℓ̂, AIC, ΔAIC, Akaike weight;
                  `comparison` says whether the data can tell them apart
    goodness_of_fit  likelihood-ratio test of the law against a free n* per order (same width),
                  with a parametric-bootstrap p-value
    bootstrap     a seed-level bootstrap of c, as a cross-check of the profile interval
    by_budget, convergence, time_to_grok   the budget in the law (li2.scaling.budget)
    grokking_time_vs_wd                    t = A·wd^−a (li2.scaling.wd)
"""

from __future__ import annotations

import math

import numpy as np

from li2.scaling import budget as budget_mod
from li2.scaling.forms import FIXED, FREE, THEORY, effective_exponent, fit_fixed, fit_power, log_g
from li2.scaling.logistic import S_MIN, fit_location, fit_shared_slope, make_cells
from li2.scaling.outcomes import Outcomes, collect
from li2.scaling.stats import chi2_sf
from li2.scaling.wd import fit_grokking_time_vs_wd

FORM = "n* = c·M·ln M"
RESOLVE_WITHIN = 0.10
BOOTSTRAP = 100
GOF_REPS = 49
CURVE_POINTS = 50


def half_width(lo: float | None, hi: float | None) -> float | None:
    """Relative half-width of an interval on a log scale, √(hi/lo) − 1; None if open."""
    if lo is None or hi is None or lo <= 0:
        return None
    return math.sqrt(hi / lo) - 1


def _exp(v: float | None) -> float | None:
    return None if v is None else float(math.exp(v))


def per_order(outcomes: Outcomes, M: int) -> dict:
    """One order's own estimate: n* and its interval from its runs alone, and the raw bracket."""
    o = outcomes.at(M)
    fit = fit_location(make_cells(np.zeros(len(o)), o.size, o.success))
    assert fit is not None
    fails, wins = o.size[~o.success], o.size[o.success]
    lo, hi = _exp(fit.lo), _exp(fit.hi)
    return {
        "order": int(M),
        "n_runs": len(o),
        "successes": int(o.success.sum()),
        "sizes": sorted({int(n) for n in o.size}),
        "bracket": {
            "largest_failing": int(fails.max()) if len(fails) else None,
            "smallest_succeeding": int(wins.min()) if len(wins) else None,
        },
        "n_star": _exp(fit.theta) if lo is not None and hi is not None else None,
        "ci95": [lo, hi],
        "s": 1 / fit.slope,
        "separated": bool(len(fails) and len(wins) and fails.max() < wins.min()),
        "loglik": fit.loglik,
    }


def missing_text(entry: dict, limit: float) -> str | None:
    """What data would pin this order's n* to within ±limit, in words; None if it is pinned."""
    M, sizes = entry["order"], entry["sizes"]
    if entry["successes"] == 0:
        return f"needs sizes above {max(sizes)} at M = {M} (no run there generalized within the budget)"
    if entry["successes"] == entry["n_runs"]:
        return f"needs sizes below {min(sizes)} at M = {M} (every run there generalized)"
    width = half_width(*entry["ci95"])
    if width is not None and width <= limit:
        return None
    b = entry["bracket"]
    if entry["separated"]:
        return f"needs sizes between {b['largest_failing']} and {b['smallest_succeeding']} at M = {M}"
    lo, hi = entry["ci95"]
    lo_s = f"{lo:.0f}" if lo is not None else f"{min(sizes)}"
    hi_s = f"{hi:.0f}" if hi is not None else f"{max(sizes)}"
    return f"needs more seeds between {lo_s} and {hi_s} at M = {M} (outcomes overlap there)"


def _status(lo: float | None, hi: float | None, informative: int, limit: float) -> tuple[str, str | None]:
    if lo is None or hi is None:
        side = "from below" if lo is None else "from above"
        return "bounded", f"the runs do not bound c {side}: c is only bounded, not fitted"
    if informative < 2:
        return "unresolved", (
            "fewer than two orders have both successes and failures: c rests on one order's n* "
            "and the law's form is not tested"
        )
    width = half_width(lo, hi)
    assert width is not None
    if width > limit:
        return "unresolved", (
            f"the data allow c anywhere in [{lo:.3g}, {hi:.3g}] (±{100 * width:.0f} %, wider than the "
            f"±{100 * limit:.0f} % a fit needs)"
        )
    return "fitted", None


def fit_c(outcomes: Outcomes, limit: float = RESOLVE_WITHIN) -> dict:
    """The theory form alone: {"c", "c_mle", "ci95", "s", "status", "note"} (no alternatives)."""
    if len(outcomes) == 0:
        return {"c": None, "c_mle": None, "ci95": [None, None], "s": None, "status": "no_data", "note": "no runs"}
    fit = fit_fixed(outcomes, THEORY)
    assert fit is not None
    lo, hi = _exp(fit.lo), _exp(fit.hi)
    informative = sum(1 for M in outcomes.orders() if 0 < outcomes.at(M).success.sum() < len(outcomes.at(M)))
    status, note = _status(lo, hi, informative, limit)
    return {
        "c": _exp(fit.theta) if status == "fitted" else None,
        "c_mle": _exp(fit.theta),
        "ci95": [lo, hi],
        "s": 1 / fit.slope,
        "s_at_bound": bool(fit.separated),
        "loglik": fit.loglik,
        "status": status,
        "note": note,
    }


def _alternatives(outcomes: Outcomes, theory_ll: float) -> tuple[list[dict], dict]:
    """Every form on the same likelihood, and what the comparison can and cannot say."""
    orders = outcomes.orders()
    rows = []
    for form in FIXED:
        if form == THEORY:
            ll = theory_ll
            fit_theta = fit_fixed(outcomes, THEORY)
        else:
            fit_theta = fit_fixed(outcomes, form)
            assert fit_theta is not None
            ll = fit_theta.loglik
        assert fit_theta is not None
        name = "c" if form == THEORY else "a"
        rows.append({"form": form, "params": {name: math.exp(fit_theta.theta)}, "k": 2, "loglik": ll})
    power = fit_power(outcomes)
    if power is not None:
        rows.append(
            {
                "form": FREE,
                "params": {"a": math.exp(power.log_a), "b": power.b, "b_ci95": [power.b_lo, power.b_hi]},
                "k": 3,
                "loglik": power.loglik,
            }
        )
    for r in rows:
        r["aic"] = 2 * r["k"] - 2 * r["loglik"]
    best = min(r["aic"] for r in rows)
    weights = np.array([math.exp(-(r["aic"] - best) / 2) for r in rows])
    for r, w in zip(rows, weights / weights.sum(), strict=True):
        r["delta_aic"] = r["aic"] - best
        r["weight"] = float(w)
    comparison: dict = {"best": min(rows, key=lambda r: r["aic"])["form"], "lr_tests": []}
    if power is not None:
        for r in rows:
            if r["form"] in ("M", "M^2"):
                lr = max(0.0, 2 * (power.loglik - r["loglik"]))
                comparison["lr_tests"].append(
                    {
                        "null": r["form"],
                        "against": FREE,
                        "lr": lr,
                        "df": 1,
                        "p_value": chi2_sf(lr, 1) if lr > 0 else 1.0,
                    }
                )
        eff = effective_exponent(orders)
        comparison["effective_exponent"] = eff
        comparison["b"] = power.b
        comparison["b_ci95"] = [power.b_lo, power.b_hi]
        inside = (power.b_lo is None or power.b_lo <= eff) and (power.b_hi is None or eff <= power.b_hi)
        theory_delta = next(r["delta_aic"] for r in rows if r["form"] == THEORY)
        if len(orders) < 3:
            comparison["verdict"] = "too few orders to compare forms (needs at least 3)"
        elif inside and theory_delta < 2:
            comparison["verdict"] = (
                f"the data cannot tell M ln M from a free power: over M = {min(orders)}–{max(orders)} M ln M "
                f"behaves like M^{eff:.2f}, inside b's interval"
            )
        elif theory_delta < 2:
            comparison["verdict"] = "M ln M is among the best forms (ΔAIC < 2)"
        else:
            comparison["verdict"] = f"{comparison['best']} fits better than M ln M (ΔAIC = {theory_delta:.1f})"
    else:
        comparison["verdict"] = "one order only: forms cannot be compared"
    return rows, comparison


def _free_orders_lr(outcomes: Outcomes, success: np.ndarray, theory_ll: float) -> float:
    """2(ℓ̂_free − ℓ̂_law) for the given outcomes; ℓ̂_free: a free n* per order, one shared width."""
    groups = []
    for M in outcomes.orders():
        at = outcomes.order == M
        groups.append(make_cells(np.zeros(int(at.sum())), outcomes.size[at], success[at]))
    free_ll, _ = fit_shared_slope(groups)
    return max(0.0, 2 * (free_ll - theory_ll))


def _goodness_of_fit(outcomes: Outcomes, c: float, s: float, theory_ll: float, reps: int, seed: int) -> dict:
    """Likelihood-ratio test of the law (one c, one s) against a free n* per order with one shared s.

    The χ²(K − 1) reference is optimistic with few runs near each boundary (an order whose runs
    happen to separate fits its own n* perfectly), so the p-value is a parametric bootstrap:
    outcomes are redrawn from the fitted law at the same (M, n) `reps` times and refitted.
    """
    orders = outcomes.orders()
    test = "law vs free n* per order (shared width)"
    if len(orders) < 2:
        return {"test": test, "lr": None, "df": 0, "p_value": None, "note": "needs two orders"}
    lr = _free_orders_lr(outcomes, outcomes.success, theory_ll)
    df = len(orders) - 1
    out: dict = {"test": test, "lr": lr, "df": df, "p_value_chi2": chi2_sf(lr, df) if lr > 0 else 1.0}
    offset = log_g(THEORY, outcomes.order)
    p_law = 1 / (1 + np.exp(-(np.log(outcomes.size) - offset - math.log(c)) / s))  # (N,)
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(reps):
        y = rng.random(len(outcomes)) < p_law
        fit = fit_location(make_cells(offset, outcomes.size, y), grid=101, interval=False)
        assert fit is not None
        exceed += _free_orders_lr(outcomes, y, fit.loglik) >= lr - 1e-9
    out["reps"] = reps
    out["p_value"] = (1 + exceed) / (1 + reps) if reps > 0 else out["p_value_chi2"]
    if out["p_value"] < 0.05:
        out["note"] = "one c and one width do not describe every order (p < 0.05)"
    return out


def seed_bootstrap(outcomes: Outcomes, reps: int, seed: int = 0) -> dict:
    """Resample seeds (each with all its runs) and refit ln c: the 95 % percentile interval of c."""
    seeds = np.unique(outcomes.seed)
    out: dict = {"unit": "seed", "reps": 0, "ci95": [None, None]}
    if reps <= 0 or len(seeds) < 2:
        out["note"] = "needs runs with at least two seeds" if reps > 0 else "not requested"
        return out
    rng = np.random.default_rng(seed)
    rows_of = {s: np.flatnonzero(outcomes.seed == s) for s in seeds}
    offset_all = log_g(THEORY, outcomes.order)
    cs = []
    for _ in range(reps):
        idx = np.concatenate([rows_of[s] for s in rng.choice(seeds, len(seeds))])
        ok = outcomes.success[idx]
        if ok.all() or not ok.any():
            continue  # no boundary in this resample
        fit = fit_location(make_cells(offset_all[idx], outcomes.size[idx], ok), grid=101, interval=False)
        assert fit is not None
        cs.append(math.exp(fit.theta))
    out["reps"] = len(cs)
    if len(cs) >= 20:
        out["ci95"] = [float(np.percentile(cs, 2.5)), float(np.percentile(cs, 97.5))]
    out["note"] = (
        "cross-check only: where outcomes separate perfectly each resample's c is a point inside the "
        "allowed range, so this interval can be narrower than what the data allow; ci95 is the profile interval"
    )
    return out


def _curve(orders: list[int], c: float | None, lo: float | None, hi: float | None) -> list[dict]:
    if not orders:
        return []
    grid = np.linspace(max(3.0, 0.8 * min(orders)), 1.1 * max(orders), CURVE_POINTS)
    base = grid * np.log(grid)
    return [
        {
            "order": float(M),
            "n_star": None if c is None else float(c * g),
            "lo": None if lo is None else float(lo * g),
            "hi": None if hi is None else float(hi * g),
        }
        for M, g in zip(grid, base, strict=True)
    ]


def fit_scaling_law(
    runs: list[dict],
    *,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
    resolve_within: float = RESOLVE_WITHIN,
    budgets: bool = True,
    gof_reps: int = GOF_REPS,
) -> dict:
    """Fit n* = c·M·ln M over every run (see module doc). Never raises on degenerate input."""
    outcomes = collect(runs)
    assert outcomes is not None  # the full budget always has a verdict
    out: dict = {
        "form": FORM,
        "model": "P(success | M, n) = σ((ln n − ln(c·M·ln M))/s), maximum likelihood over all runs",
        "interval": "95 % profile likelihood",
        "resolve_within": resolve_within,
        "s_min": S_MIN,
        "n_runs": len(outcomes),
        "n_orders": len(outcomes.orders()),
        "grokking_time_vs_wd": fit_grokking_time_vs_wd(runs, bootstrap=bootstrap, seed=seed),
    }
    main = fit_c(outcomes, resolve_within)
    out.update({k: main[k] for k in ("status", "c", "c_mle", "ci95", "s")})
    out["s_at_bound"] = main.get("s_at_bound")
    orders = outcomes.orders()
    per = [per_order(outcomes, M) for M in orders]
    lo, hi = main["ci95"]
    out["critical"] = [
        {
            "order": p["order"],
            "n_star": None if main["c"] is None else main["c"] * math.exp(log_g(THEORY, p["order"])),
            "ci95": [None if v is None else v * math.exp(log_g(THEORY, p["order"])) for v in (lo, hi)],
            "p_star": None if main["c"] is None else main["c"] * math.exp(log_g(THEORY, p["order"])) / p["order"] ** 2,
            "free": {k: v for k, v in p.items() if k not in ("order", "loglik")},
        }
        for p in per
    ]
    out["missing"] = [t for t in (missing_text(p, resolve_within) for p in per) if t]
    if len(orders) < 2 and len(outcomes):
        out["missing"].append("needs at least two orders M to measure c across orders")
    elif 2 <= len(orders) < 3:
        out["missing"].append("needs at least three orders M to compare the law's form with alternatives")
    notes = [main["note"]] if main["note"] else []
    if main["status"] != "fitted" and out["missing"]:
        notes.append("; ".join(out["missing"]))
    out["curve"] = _curve(orders, main["c"], lo, hi)
    if len(outcomes) and main["status"] != "no_data":
        out["alternatives"], out["comparison"] = _alternatives(outcomes, main["loglik"])
        out["goodness_of_fit"] = _goodness_of_fit(outcomes, main["c_mle"], main["s"], main["loglik"], gof_reps, seed)
        out["bootstrap"] = seed_bootstrap(outcomes, bootstrap, seed)
    else:
        out["alternatives"], out["comparison"] = [], {"verdict": "no runs"}
        out["goodness_of_fit"] = {
            "test": "law vs free n* per order (shared width)",
            "lr": None,
            "df": 0,
            "p_value": None,
        }
        out["bootstrap"] = {"unit": "seed", "reps": 0, "ci95": [None, None]}
    if budgets:
        out["by_budget"] = budget_mod.refit_by_budget(runs, resolve_within)
        out["convergence"] = budget_mod.convergence(out["by_budget"])
        if out["convergence"]["verdict"] == "not_converged":
            notes.append(out["convergence"]["note"])
        out["time_to_grok"] = budget_mod.time_to_grok(outcomes, main["c_mle"])
    if notes:
        out["note"] = " — ".join(notes)
    return out
