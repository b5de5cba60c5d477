"""The likelihood every scaling-law fit shares: a logistic boundary in ln n, fitted by profiling.

Each run is a Bernoulli outcome with

    P(success) = σ((ln n − ln n*) / s),

where ln n* is a *location* θ plus a known per-run offset (for the law n* = c·g(M): the offset
is ln g(M) and θ = ln c; for one order alone the offset is 0 and θ = ln n*), and s > 0 is the
width of the transition in ln n. Runs are grouped into cells (same offset and same n) holding k
successes out of m.

For fixed θ the log-likelihood is concave in the slope β = 1/s, so the profile ℓ_p(θ) = max_β ℓ
is found by bisection on the derivative. β is kept in [BETA_MIN, BETA_MAX]: s ≥ S_MIN = 0.005
(0.5 % in n) is the narrowest transition the fit claims to see. That bound is what keeps a
perfectly separated data set finite: there the likelihood is ≈ 1 (ℓ ≈ 0) for every θ inside the
bracket between the largest failing and the smallest succeeding size, so the profile is flat
across the whole bracket and the 95 % interval {θ : 2(ℓ̂ − ℓ_p(θ)) ≤ χ²₁(0.95)} covers all of it,
plus the margin the data cannot exclude. It is never narrower than what the data allow.

Only numpy: the API process fits laws too, and its image has no scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

S_MIN = 0.005
BETA_MAX = 1.0 / S_MIN
BETA_MIN = 1e-3
CHI2_1_95 = 3.841458820694124  # χ²₁ quantile at 0.95: the profile-likelihood interval's cut
PAD = 1.0  # the location grid reaches this far (in ln units, a factor e) beyond the data
GRID = 401
_BISECT = 24  # bisection steps on ln β over [ln BETA_MIN, ln BETA_MAX]: 12.2/2^24 ≈ 1e-6
_ZOOMS = 2  # grid refinements of a maximum or an interval end (×32–64 each)


@dataclass(frozen=True)
class Cells:
    """Outcomes grouped by (offset, n): offset and x = ln n per cell, k successes of m runs."""

    offset: np.ndarray  # (C,)
    x: np.ndarray  # (C,)
    k: np.ndarray  # (C,)
    m: np.ndarray  # (C,)

    @property
    def d0(self) -> np.ndarray:
        """x − offset: the location each cell would put θ at."""
        return self.x - self.offset

    def __len__(self) -> int:
        return len(self.x)


def make_cells(offset: np.ndarray, n: np.ndarray, success: np.ndarray) -> Cells:
    """Group runs (offset, n, success) into cells of equal (offset, n)."""
    offset = np.asarray(offset, dtype=np.float64)
    x = np.log(np.asarray(n, dtype=np.float64))
    y = np.asarray(success, dtype=np.float64)
    keys = np.stack([offset, x], axis=1)  # (N, 2)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = np.bincount(inverse, weights=y, minlength=len(uniq))
    m = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
    return Cells(offset=uniq[:, 0], x=uniq[:, 1], k=k, m=m)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def loglik(d: np.ndarray, k: np.ndarray, m: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """ℓ = Σ_cells k·log σ(β d) + (m − k)·log σ(−β d); d (T, C), beta (T,) → (T,)."""
    z = beta[:, None] * d  # (T, C)
    return (-(k * np.logaddexp(0.0, -z)) - (m - k) * np.logaddexp(0.0, z)).sum(axis=1)


def best_slope(d: np.ndarray, k: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of d (T, C): the β in [BETA_MIN, BETA_MAX] maximising ℓ, and that ℓ. (T,), (T,)."""

    def grad(log_beta: np.ndarray) -> np.ndarray:  # dℓ/dβ, decreasing in β (ℓ is concave in β)
        return (d * (k - m * _sigmoid(np.exp(log_beta)[:, None] * d))).sum(axis=1)

    rows = d.shape[0]
    lo = np.full(rows, np.log(BETA_MIN))
    hi = np.full(rows, np.log(BETA_MAX))
    at_min = grad(lo) <= 0
    at_max = grad(hi) >= 0
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        up = grad(mid) > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    beta = np.exp(0.5 * (lo + hi))
    beta = np.where(at_min, BETA_MIN, np.where(at_max, BETA_MAX, beta))
    return beta, loglik(d, k, m, beta)


def profile(cells: Cells, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ℓ_p(θ) = max_β ℓ(θ, β) and the maximising β at each θ (T,) → (T,), (T,)."""
    d = cells.d0[None, :] - np.asarray(thetas, dtype=np.float64)[:, None]  # (T, C)
    beta, ll = best_slope(d, cells.k, cells.m)
    return ll, beta


@dataclass(frozen=True)
class LocationFit:
    """The maximum-likelihood location θ̂ with its profile interval (None = not bounded by the data)."""

    theta: float
    lo: float | None
    hi: float | None
    slope: float  # β̂ = 1/ŝ at θ̂
    loglik: float
    separated: bool  # ŝ at its lower bound: outcomes separate perfectly along ln n − offset


def fit_location(cells: Cells, grid: int = GRID, interval: bool = True) -> LocationFit | None:
    """θ̂ and its 95 % profile-likelihood interval; None without any cell.

    The interval is the hull of {θ : 2(ℓ̂ − ℓ_p(θ)) ≤ χ²₁(0.95)} on a grid PAD beyond the data,
    with both ends refined, and never narrower than the separation bracket (the s → 0 limit that
    the bound S_MIN cuts off). An end that reaches the grid's edge is open (None): the
    data do not bound θ on that side (e.g. every run succeeded). `interval=False` skips the
    interval (both ends None), for the bootstrap.
    """
    if len(cells) == 0:
        return None
    d0 = cells.d0
    thetas = np.linspace(d0.min() - PAD, d0.max() + PAD, grid)  # (T,)
    ll = profile(cells, thetas)[0]
    best = int(np.argmax(ll))
    theta, ll_max, slope = _refine_max(cells, thetas, ll, best)
    if not interval:
        return LocationFit(theta, None, None, slope, ll_max, bool(slope >= BETA_MAX * (1 - 1e-9)))
    cut = ll_max - CHI2_1_95 / 2
    inside = np.flatnonzero(ll >= cut)
    first, last = int(inside[0]), int(inside[-1])
    lo = None if first == 0 else _crossing(cells, thetas[first - 1], thetas[first], cut)
    hi = None if last == grid - 1 else _crossing(cells, thetas[last + 1], thetas[last], cut)
    bracket = separation_bracket(cells)
    if bracket is not None:  # the s → 0 limit: ℓ → 0 = the maximum everywhere inside the bracket
        lo = None if lo is None or not np.isfinite(bracket[0]) else min(lo, bracket[0])
        hi = None if hi is None or not np.isfinite(bracket[1]) else max(hi, bracket[1])
    return LocationFit(
        theta=theta, lo=lo, hi=hi, slope=slope, loglik=ll_max, separated=bool(slope >= BETA_MAX * (1 - 1e-9))
    )


def _refine_max(cells: Cells, thetas: np.ndarray, ll: np.ndarray, best: int) -> tuple[float, float, float]:
    """Zoom twice into the grid neighbours of the best grid point (65 points each time)."""
    lo = thetas[max(best - 1, 0)]
    hi = thetas[min(best + 1, len(thetas) - 1)]
    for _ in range(_ZOOMS):
        pts = np.linspace(lo, hi, 65)
        lls, betas = profile(cells, pts)
        j = int(np.argmax(lls))
        step = pts[1] - pts[0]
        lo, hi = pts[j] - step, pts[j] + step
    if lls[j] < ll[best]:  # never worse than the grid's own best point
        return float(thetas[best]), float(ll[best]), float(profile(cells, thetas[best : best + 1])[1][0])
    return float(pts[j]), float(lls[j]), float(betas[j])


def _crossing(cells: Cells, outside: float, inside: float, cut: float) -> float:
    """The θ between a grid point below the cut and one above it where ℓ_p crosses the cut."""
    for _ in range(_ZOOMS + 1):
        pts = np.linspace(outside, inside, 33)  # pts[0] is below the cut, pts[-1] above it
        above = profile(cells, pts)[0] >= cut
        j = int(np.argmax(above))
        outside, inside = pts[max(j - 1, 0)], pts[j]
    return float(0.5 * (outside + inside))


def separation_bracket(cells: Cells) -> tuple[float, float] | None:
    """(largest d0 with a failure, smallest d0 with a success) when every failure lies below every
    success, else None; −inf/inf when there is no failure/success. Inside it the likelihood tends
    to 1 as s → 0."""
    fails = cells.d0[cells.k < cells.m]
    wins = cells.d0[cells.k > 0]
    lo = float(fails.max()) if len(fails) else -np.inf
    hi = float(wins.min()) if len(wins) else np.inf
    return (lo, hi) if lo < hi else None


def fit_shared_slope(groups: list[Cells]) -> tuple[float, float]:
    """(ℓ̂, β̂) of the model with a free location per group and one slope shared by all groups:
    the 'free n* per order' alternative a law is tested against.

    For a fixed β each group's ℓ is concave in its own θ, so all (β, group) maxima are found at
    once by bisection on the derivative; β is then refined on a log grid.
    """
    d0 = np.concatenate([c.d0 for c in groups])  # (C,)
    k = np.concatenate([c.k for c in groups])
    m = np.concatenate([c.m for c in groups])
    member = np.zeros((len(d0), len(groups)))  # (C, G) one-hot: which group a cell belongs to
    member[np.arange(len(d0)), np.repeat(np.arange(len(groups)), [len(c) for c in groups])] = 1.0
    lo0 = np.array([c.d0.min() - PAD for c in groups])  # (G,)
    hi0 = np.array([c.d0.max() + PAD for c in groups])
    betas = np.exp(np.linspace(np.log(BETA_MIN), np.log(BETA_MAX), 49))
    best = (-np.inf, float(betas[0]))
    for _ in range(_ZOOMS + 1):
        lo = np.broadcast_to(lo0, (len(betas), len(groups))).copy()  # (B, G)
        hi = np.broadcast_to(hi0, (len(betas), len(groups))).copy()
        for _ in range(_BISECT + 16):
            mid = 0.5 * (lo + hi)
            z = betas[:, None] * (d0[None, :] - mid @ member.T)  # (B, C)
            up = (m * _sigmoid(z) - k) @ member > 0  # dℓ/dθ_g > 0: the maximum is above mid
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
        z = betas[:, None] * (d0[None, :] - (0.5 * (lo + hi)) @ member.T)  # (B, C)
        ll = (-(k * np.logaddexp(0.0, -z)) - (m - k) * np.logaddexp(0.0, z)).sum(axis=1)  # (B,)
        j = int(np.argmax(ll))
        if ll[j] > best[0]:
            best = (float(ll[j]), float(betas[j]))
        betas = np.exp(np.linspace(np.log(betas[max(j - 1, 0)]), np.log(betas[min(j + 1, len(betas) - 1)]), 33))
    return best
