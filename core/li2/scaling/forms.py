"""The candidate laws n*(M) = a·g(M), each fitted jointly over every run with the same likelihood.

    M ln M   n* = c·M·ln M     Theorem 4's order (the theory); a is called c
    M        n* = a·M
    M^2      n* = a·M²         (memorising every pair)
    M^b      n* = a·M^b        b free: the empirical alternative

Every form shares one transition width s across orders, so all are fitted on the same
likelihood (li2.scaling.logistic) and compare by AIC = 2k − 2ℓ̂ (k = 2, or 3 for M^b), and the
fixed-exponent forms against M^b by a likelihood-ratio test (nested, 1 degree of freedom).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from li2.scaling.logistic import CHI2_1_95, Cells, LocationFit, fit_location, make_cells, profile
from li2.scaling.outcomes import Outcomes

THEORY = "M ln M"
FIXED: dict[str, Callable[[np.ndarray], np.ndarray]] = {  # form -> ln g(M)
    THEORY: lambda M: np.log(M) + np.log(np.log(M)),
    "M": np.log,
    "M^2": lambda M: 2 * np.log(M),
}
FREE = "M^b"
B_GRID = np.linspace(0.0, 4.0, 81)  # exponents tried for M^b before refining


def log_g(form: str, M: np.ndarray | float) -> np.ndarray:
    """ln g(M) of a fixed form (M ln M, M, M²); the free form M^b is fitted by `fit_power`."""
    return FIXED[form](np.asarray(M, dtype=np.float64))


def cells_for(outcomes: Outcomes, offset: np.ndarray) -> Cells:
    return make_cells(offset, outcomes.size, outcomes.success)


def fit_fixed(outcomes: Outcomes, form: str) -> LocationFit | None:
    """θ̂ = ln a of a fixed-exponent form, with its 95 % profile interval."""
    return fit_location(cells_for(outcomes, log_g(form, outcomes.order)))


@dataclass(frozen=True)
class PowerFit:
    """n* = a·M^b: b̂ with its 95 % profile interval (None = open), ln â and the maximum ℓ."""

    b: float
    b_lo: float | None
    b_hi: float | None
    log_a: float
    slope: float
    loglik: float


def _best_location(cells: Cells) -> tuple[float, float, float]:
    """(θ̂, ℓ̂, β̂) without the interval: a grid over θ then a golden-section refinement."""
    fit = fit_location(cells, grid=161, interval=False)
    assert fit is not None
    return fit.theta, fit.loglik, fit.slope


def _power_profile(outcomes: Outcomes, bs: np.ndarray) -> np.ndarray:
    """ℓ_p(b) = max over ln a and s, on a θ grid (vectorised over b; refined later where it matters)."""
    lnM = np.log(outcomes.order.astype(np.float64))
    out = np.empty(len(bs))
    for i, b in enumerate(bs):
        cells = cells_for(outcomes, b * lnM)
        d0 = cells.d0
        thetas = np.linspace(d0.min() - 1.0, d0.max() + 1.0, 121)
        out[i] = profile(cells, thetas)[0].max()
    return out


def fit_power(outcomes: Outcomes) -> PowerFit | None:
    """Fit n* = a·M^b with b free; None with fewer than two orders (b is then not identified)."""
    if len(outcomes.orders()) < 2:
        return None
    lnM = np.log(outcomes.order.astype(np.float64))

    def exact(b: float) -> tuple[float, float, float]:
        return _best_location(cells_for(outcomes, b * lnM))

    coarse = _power_profile(outcomes, B_GRID)
    i = int(np.argmax(coarse))
    lo_b, hi_b = B_GRID[max(i - 1, 0)], B_GRID[min(i + 1, len(B_GRID) - 1)]
    g = (math.sqrt(5) - 1) / 2
    for _ in range(20):
        b1, b2 = hi_b - g * (hi_b - lo_b), lo_b + g * (hi_b - lo_b)
        if exact(b1)[1] >= exact(b2)[1]:
            hi_b = b2
        else:
            lo_b = b1
    cands = [0.5 * (lo_b + hi_b), float(B_GRID[i])]
    fits = [exact(b) for b in cands]
    j = int(np.argmax([f[1] for f in fits]))
    b_hat, (log_a, ll_max, slope) = cands[j], fits[j]
    cut = ll_max - CHI2_1_95 / 2
    inside = np.flatnonzero(coarse >= cut)
    if not len(inside):  # the coarse θ grid missed a narrow ridge: start from the best b's neighbours
        inside = np.array([i])
    first, last = int(inside[0]), int(inside[-1])

    def crossing(outside: float, inside_b: float) -> float:
        for _ in range(14):
            mid = 0.5 * (outside + inside_b)
            if exact(mid)[1] >= cut:
                inside_b = mid
            else:
                outside = mid
        return 0.5 * (outside + inside_b)

    b_lo = None if first == 0 else crossing(float(B_GRID[first - 1]), float(min(B_GRID[first], b_hat)))
    b_hi = None if last == len(B_GRID) - 1 else crossing(float(B_GRID[last + 1]), float(max(B_GRID[last], b_hat)))
    return PowerFit(b=b_hat, b_lo=b_lo, b_hi=b_hi, log_a=log_a, slope=slope, loglik=ll_max)


def effective_exponent(orders: list[int]) -> float:
    """d ln(M ln M)/d ln M = 1 + 1/ln M at the geometric mean of the orders: the power M ln M
    looks like over that range."""
    m = math.exp(float(np.mean(np.log(orders))))
    return 1 + 1 / math.log(m)
