"""The adaptive search for n*(M): given the outcomes so far, which sizes to train next at each order.

Pure logic, no training and no storage: the service calls `plan_round` at each round's fan-in, the
local `li2lab search` and the tests call it in a loop (li2.search.driver). Per order M:

    no runs yet        round 0: `initial_points` sizes spread geometrically over
                       [prior/spread, prior·spread] around the prior prior_c·M·ln M
    every run failed   the boundary is above: sizes up to `spread`× above the largest tried
                       (capped at M² − 1; at the cap the order is exhausted)
    every run won      the boundary is below: sizes down to `spread`× below the smallest tried
    both outcomes      the order's own 95 % profile interval of n* (li2.scaling.law.per_order);
                       resolved when its relative half-width is ≤ tolerance, else
                       sizes spaced geometrically inside what is still open: when the outcomes
                       separate, strictly inside the bracket between the largest failure and the
                       smallest success, as many as make the next bracket meet the tolerance (at
                       most `points_per_round`); when they overlap, `points_per_round` sizes
                       inside the interval, with new seeds

New sizes take seeds not used yet at that (M, n), so a repeated size adds information. A round is
trimmed to fit the run cap (widest orders first, the middle size of each first). The search stops
when every order is resolved or exhausted ("tolerance"), when no run fits under the cap
("max_runs"), or after `max_rounds` rounds ("max_rounds").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from li2.scaling import Outcomes, half_width, per_order
from li2.theory import predicted_critical_size


@dataclass(frozen=True)
class Point:
    """One run to train: order M, size n, seed."""

    order: int
    train_size: int
    seed: int


@dataclass
class Plan:
    """The next round (empty `points` when the search stops, with `stop` saying why)."""

    round: int
    points: list[Point] = field(default_factory=list)
    stop: str | None = None
    orders: list[dict] = field(default_factory=list)  # per-order state, for progress views

    @property
    def done(self) -> bool:
        return self.stop is not None


def _geometric(lo: float, hi: float, k: int, inclusive: bool) -> list[float]:
    """k sizes spaced geometrically over [lo, hi] (inclusive) or strictly inside (lo, hi)."""
    if inclusive:
        return list(np.exp(np.linspace(math.log(lo), math.log(hi), k)))
    return list(np.exp(np.linspace(math.log(lo), math.log(hi), k + 2)[1:-1]))


def order_state(request: dict, outcomes: Outcomes, M: int) -> tuple[dict, list[int]]:
    """This order's state and the integer sizes it wants next, middle first; none when settled."""
    cap = M ** request["base"]["task"]["operands"] - 1
    o = outcomes.at(M)
    spread, k = request["initial_spread"], request["points_per_round"]
    state: dict = {"order": M, "runs": len(o), "successes": int(o.success.sum())}
    if len(o) == 0:
        prior = predicted_critical_size(M, request["prior_c"])
        state["phase"] = "initial"
        return state, _integers(_geometric(prior / spread, prior * spread, request["initial_points"], True), cap)
    entry = per_order(outcomes, M)
    state.update(
        {"n_star": entry["n_star"], "ci95": entry["ci95"], "bracket": entry["bracket"], "sizes": entry["sizes"]}
    )
    if entry["successes"] == 0:
        top = max(entry["sizes"])
        if top >= cap:
            state["phase"] = "exhausted"
            state["note"] = f"no run generalized even at n = {top}, the largest split of M = {M}"
            return state, []
        state["phase"] = "expanding_up"
        return state, _integers([top * spread ** (j / k) for j in range(1, k + 1)], cap)
    if entry["successes"] == entry["n_runs"]:
        bottom = min(entry["sizes"])
        if bottom <= 1:
            state["phase"] = "exhausted"
            state["note"] = f"every run generalized, even at n = {bottom}"
            return state, []
        state["phase"] = "expanding_down"
        return state, _integers([bottom * spread ** (-j / k) for j in range(1, k + 1)], cap)
    width = half_width(*entry["ci95"])
    state["half_width"] = width
    if width is not None and width <= request["tolerance"]:
        state["phase"] = "resolved"
        return state, []
    state["phase"] = "narrowing"
    if entry["separated"]:  # new sizes strictly between the largest failure and the smallest success
        lo, hi = entry["bracket"]["largest_failing"], entry["bracket"]["smallest_succeeding"]
        k = min(k, needed_points(hi / lo, request["tolerance"]))
        sizes = [n for n in _integers(_geometric(lo, hi, k, False), cap) if lo < n < hi]
        if not sizes and hi - lo > 1:
            sizes = [(lo + hi) // 2]
        if not sizes:
            state["phase"] = "resolved"
            state["note"] = f"no integer size left between {lo} and {hi}"
        return state, sizes
    lo = entry["ci95"][0] or float(min(entry["sizes"]))  # overlapping outcomes: more seeds inside the interval
    hi = entry["ci95"][1] or float(max(entry["sizes"]))
    return state, _integers(_geometric(max(lo, 1.0), min(hi, cap), k, False), cap)


MARGIN = 1.3  # the profile interval of a separated order is about this much wider than its bracket


def needed_points(ratio: float, tolerance: float) -> int:
    """Sizes to place inside a bracket hi/lo = ratio so that, if the outcomes stay separated, the
    next bracket (and its interval, ~MARGIN wider) is within ±tolerance: at least 1."""
    target = (1 + tolerance / MARGIN) ** 2  # bracket ratio whose interval meets the tolerance
    return max(1, math.ceil(math.log(ratio) / math.log(target)) - 1)


def _integers(sizes: list[float], cap: int) -> list[int]:
    """Rounded, clipped to [1, cap], duplicates dropped, middle size first (a trimmed round keeps it)."""
    ints = sorted({min(cap, max(1, round(s))) for s in sizes})
    mid = (len(ints) - 1) / 2
    return sorted(ints, key=lambda n: (abs(ints.index(n) - mid), n))


def _seeds_for(outcomes: Outcomes, M: int, n: int, count: int, base_seed: int) -> list[int]:
    used = {int(s) for s in outcomes.seed[(outcomes.order == M) & (outcomes.size == n)]}
    seeds, s = [], base_seed
    while len(seeds) < count:
        if s not in used:
            seeds.append(s)
        s += 1
    return seeds


def plan_round(request: dict, outcomes: Outcomes, runs_used: int, round_index: int) -> Plan:
    """The points of round `round_index` given every outcome so far and the runs already spent
    (including runs that failed to train, which have no outcome)."""
    plan = Plan(round=round_index)
    wants: list[tuple[float, int, list[int]]] = []  # (priority, M, sizes)
    for M in request["orders"]:
        state, sizes = order_state(request, outcomes, M)
        plan.orders.append(state)
        if sizes:
            wants.append((state.get("half_width") or math.inf, M, sizes))
    if not wants:
        plan.stop = "tolerance"
        return plan
    if round_index >= request["max_rounds"]:
        plan.stop = "max_rounds"
        return plan
    budget = request["max_runs"] - runs_used
    seeds = request["seeds"]
    base_seed = int(request["base"].get("seed", 0))
    wants.sort(key=lambda w: -w[0])  # the widest orders first when the cap trims a round
    depth = 0
    while budget >= seeds and any(depth < len(w[2]) for w in wants):
        for _, M, sizes in wants:
            if depth < len(sizes) and budget >= seeds:
                n = sizes[depth]
                plan.points += [Point(M, n, s) for s in _seeds_for(outcomes, M, n, seeds, base_seed)]
                budget -= seeds
        depth += 1
    if not plan.points:
        plan.stop = "max_runs"
    return plan
