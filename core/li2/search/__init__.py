"""The adaptive search for the critical training size n*(M) (a job kind next to sweeps).

request   `validate_search`: the user's request, normalised; `point_spec` makes a run's spec
plan      `plan_round`: given the outcomes so far, the next round's (M, n, seed) points, or why to stop
driver    `run_search`: the loop without a service (li2lab search, tests)
"""

from li2.search.driver import run_search, specs_for
from li2.search.plan import Plan, Point, plan_round
from li2.search.request import ORDER_KINDS, apply_early_stopping, point_spec, validate_search

__all__ = [
    "ORDER_KINDS",
    "Plan",
    "Point",
    "apply_early_stopping",
    "plan_round",
    "point_spec",
    "run_search",
    "specs_for",
    "validate_search",
]
