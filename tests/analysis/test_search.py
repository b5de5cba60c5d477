"""The adaptive search for n*: its planner against a simulated trainer with a known boundary, and
the validation of a search request."""

import math

import numpy as np
import pytest

from li2.errors import SpecError
from li2.scaling import collect
from li2.search import plan_round, run_search, specs_for, validate_search
from li2.theory import C_CRIT

ORDERS = [11, 17, 23, 31]


def request(**over):
    raw = {
        "base": {"model": {"hidden": 64}, "training": {"epochs": 100}, "seed": 1},
        "orders": ORDERS,
        "seeds": 2,
        "tolerance": 0.05,
        "max_runs": 400,
    }
    raw.update(over)
    return validate_search(raw)


def trainer(c, s, seed=0):
    """A simulated trainer whose boundary is n* = c·M·ln M with transition width s (0: sharp)."""
    rng = np.random.default_rng(seed)
    log = []

    def train(specs):
        out = []
        for sp in specs:
            M, n = sp["task"]["order"], sp["data"]["train_size"]
            z = math.log(n) - math.log(c * M * math.log(M))
            ok = z > 0 if s == 0 else rng.random() < 1 / (1 + math.exp(-z / s))
            log.append((M, n, sp["seed"]))
            out.append({"spec": sp, "summary": {"grokked": bool(ok), "epoch_generalized": 50 if ok else None}})
        return out

    train.log = log
    return train


def grid_runs(req):
    """A grid with the tolerance's resolution (adjacent sizes (1 + tol)² apart) over round 0's range."""
    sizes = math.ceil(math.log(req["initial_spread"] ** 2) / math.log((1 + req["tolerance"]) ** 2)) + 1
    return len(req["orders"]) * req["seeds"] * sizes


@pytest.mark.parametrize(("c", "rounds", "runs"), [(3.1, 2, 72), (C_CRIT, 2, 72), (4.0, 2, 72), (1.2, 3, 90)])
def test_sharp_boundary_is_found_to_tolerance_in_few_rounds_and_far_fewer_runs_than_a_grid(c, rounds, runs):
    req = request()
    train = trainer(c, 0)
    result = run_search(req, train, bootstrap=0)
    assert result["stop"] == "tolerance"
    assert len(result["rounds"]) - 1 <= rounds and result["n_runs"] <= runs
    assert grid_runs(req) == 128 and result["n_runs"] <= 0.75 * grid_runs(req)
    for state in result["rounds"][-1]["orders"]:  # every order's own n* is pinned to ±5 % around the truth
        M = state["order"]
        lo, hi = state["ci95"]
        assert state["phase"] == "resolved" and math.sqrt(hi / lo) - 1 <= 0.05
        assert lo <= c * M * math.log(M) <= hi
    law = result["scaling_law"]
    assert law["status"] == "fitted" and law["ci95"][0] <= c <= law["ci95"][1]
    assert len(set(train.log)) == len(train.log) == result["n_runs"]  # no (M, n, seed) trained twice


def test_a_soft_boundary_reaches_the_tolerance_within_the_cap():
    req = request(max_runs=200)
    result = run_search(req, trainer(3.1, 0.03, seed=4), bootstrap=0)
    assert result["stop"] == "tolerance" and result["n_runs"] <= 200 and len(result["rounds"]) - 1 <= 8
    law = result["scaling_law"]
    assert law["ci95"][0] <= 3.1 <= law["ci95"][1]


def test_round_zero_brackets_the_prior_and_later_rounds_stay_inside_the_bracket():
    req = request(prior_c=2.0, initial_points=5, initial_spread=2.0)
    plan = plan_round(req, collect([]), 0, 0)
    assert plan.round == 0 and not plan.done
    for M in ORDERS:
        sizes = sorted({p.train_size for p in plan.points if p.order == M})
        prior = 2.0 * M * math.log(M)
        assert len(sizes) == 5 and sizes[0] == round(prior / 2) and sizes[-1] == round(prior * 2)
        assert [p.seed for p in plan.points if p.order == M and p.train_size == sizes[0]] == [1, 2]
    train = trainer(2.3, 0)
    runs = [{"spec": r["spec"], "summary": r["summary"]} for r in train(specs_for(req, plan))]
    nxt = plan_round(req, collect(runs), len(runs), 1)
    for state in nxt.orders:
        b = state["bracket"]
        new = [p.train_size for p in nxt.points if p.order == state["order"]]
        assert new and all(b["largest_failing"] < n < b["smallest_succeeding"] for n in new)


def test_the_cap_trims_a_round_and_stops_the_search():
    req = request(max_runs=50, initial_points=5)  # round 0 takes 40
    result = run_search(req, trainer(3.1, 0), bootstrap=0)
    assert result["n_runs"] <= 50 and result["stop"] == "max_runs"
    assert result["scaling_law"]["status"] != "no_data"
    capped = run_search(request(max_rounds=1), trainer(3.1, 0.03), bootstrap=0)
    assert capped["stop"] in ("max_rounds", "tolerance") and len(capped["rounds"]) <= 2


def test_a_boundary_beyond_the_largest_split_exhausts_the_order():
    req = request(orders=[5], seeds=1, initial_points=3, max_runs=30)
    result = run_search(req, trainer(50.0, 0), bootstrap=0)  # n* far above 5² − 1 = 24
    state = result["rounds"][-1]["orders"][0]
    assert result["stop"] == "tolerance" and state["phase"] == "exhausted" and "24" in state["note"]


def test_repeated_sizes_take_new_seeds():
    req = request(orders=[23], seeds=2)
    runs = [
        {
            "spec": {"task": {"group": "cyclic", "order": 23, "operands": 2}, "data": {"train_size": n}, "seed": s},
            "summary": {"grokked": ok},
        }
        for n, ok in ((190, False), (195, True), (200, False), (205, True))
        for s in (1, 2)
    ]  # overlapping outcomes: the next round repeats sizes inside the interval
    plan = plan_round(req, collect(runs), len(runs), 1)
    assert plan.orders[0]["phase"] == "narrowing"
    seen = {(r["spec"]["data"]["train_size"], r["spec"]["seed"]) for r in runs}
    assert plan.points and all((p.train_size, p.seed) not in seen for p in plan.points)


def test_point_specs_are_valid_runs_of_the_base():
    req = request(order_kind="dihedral", orders=[6, 8], base={"model": {"hidden": 32}, "training": {"epochs": 40}})
    assert req["orders"] == [12, 16] and req["order_values"] == [6, 8]
    plan = plan_round(req, collect([]), 0, 0)
    specs = specs_for(req, plan)
    assert {s["task"]["n"] for s in specs} == {6, 8} and all(s["task"]["group"] == "dihedral" for s in specs)
    assert all(s["model"]["hidden"] == 32 and s["training"]["epochs"] == 40 for s in specs)
    assert all(s["data"]["train_size"] == p.train_size for s, p in zip(specs, plan.points, strict=True))


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"tolerance": 0}, "tolerance"),
        ({"tolerance": 1}, "tolerance"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"seeds": 0}, "seeds"),
        ({"order_kind": "lattice"}, "order_kind"),
        ({"orders": []}, "orders"),
        ({"orders": [11, 11]}, "orders"),
        ({"order_kind": "symmetric", "orders": [4, 100]}, "orders[1]"),
        ({"max_runs": 10}, "max_runs"),
        ({"max_runs": 10**6}, "max_runs"),
        ({"base": {"training": {"lr": -1}}}, "base.training.lr"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_requests_name_the_field(over, field):
    with pytest.raises(SpecError) as err:
        request(**over)
    assert field in err.value.errors, err.value.errors


def test_defaults():
    req = request()
    assert req["order_kind"] == "cyclic" and req["prior_c"] == C_CRIT and req["early_stopping"] is True
    assert req["epochs"] == 100 and req["points_per_round"] == 4 and req["initial_points"] == 5


def test_search_runs_stop_early_by_default_and_not_when_asked():
    from li2.search import point_spec

    on = point_spec(request(), 11, 40, 1)["training"]
    assert on["early_stop"] == {"threshold": on["success_threshold"], "patience_epochs": 10}  # 10 % of 100
    assert point_spec(request(early_stopping=False), 11, 40, 1)["training"]["early_stop"] is None
