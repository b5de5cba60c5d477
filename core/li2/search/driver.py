"""The search loop without a service: plan a round, train it, repeat (what `li2lab search` runs).

`train(specs)` trains a list of normalised specs and returns their result dicts (at least
`spec` and `summary`) in order: `li2.runner.run_batch` for real runs, a simulated trainer in the
tests. The service runs the same `plan_round` at each round's fan-in instead of in this loop.
"""

from __future__ import annotations

from collections.abc import Callable

from li2.scaling import collect, fit_scaling_law
from li2.search.plan import Plan, plan_round
from li2.search.request import point_spec

Train = Callable[[list[dict]], list[dict]]


def specs_for(request: dict, plan: Plan) -> list[dict]:
    """The normalised specs of a plan's points."""
    value_of = dict(zip(request["orders"], request["order_values"], strict=True))
    return [point_spec(request, value_of[p.order], p.train_size, p.seed) for p in plan.points]


def run_search(
    request: dict,
    train: Train,
    *,
    on_round: Callable[[Plan, list[dict]], None] | None = None,
    bootstrap: int | None = None,
) -> dict:
    """Run a validated search to its end; returns {"rounds", "runs", "stop", "n_runs", "scaling_law"}.

    Each entry of `runs` is {"round", "spec", "summary"}; `rounds` holds each round's per-order
    state (li2.search.plan.order_state) and how many runs it trained.
    """
    runs: list[dict] = []
    rounds: list[dict] = []
    round_index = 0
    while True:
        outcomes = collect(runs)
        assert outcomes is not None
        plan = plan_round(request, outcomes, len(runs), round_index)
        rounds.append({"round": round_index, "orders": plan.orders, "n_runs": len(plan.points), "stop": plan.stop})
        if plan.done:
            break
        results = train(specs_for(request, plan))
        runs += [{"round": round_index, "spec": r["spec"], "summary": r["summary"]} for r in results]
        if on_round is not None:
            on_round(plan, results)
        round_index += 1
    kwargs = {} if bootstrap is None else {"bootstrap": bootstrap}
    return {
        "rounds": rounds,
        "runs": runs,
        "stop": plan.stop,
        "n_runs": len(runs),
        "scaling_law": fit_scaling_law(runs, **kwargs),
    }
