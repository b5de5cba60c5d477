"""Scaling-law fits: a planted c is recovered; degenerate sweeps are reported, not raised."""

import math

import numpy as np
import pytest

from li2.scaling import estimate_critical_size, fit_grokking_time_vs_wd, fit_scaling_law


def run(M, n, grokked, wd=1e-4, epoch=None):
    return {
        "spec": {
            "task": {"group": "cyclic", "order": M, "operands": 2},
            "data": {"train_fraction": None, "train_size": int(n), "critical_multiple": None},
            "training": {"weight_decay": wd},
        },
        "summary": {"grokked": bool(grokked), "epoch_generalized": epoch},
    }


def planted_sweep(c, seed=1, orders=(11, 17, 23, 31, 41, 53, 71), seeds=12, width=0.15):
    """Success ~ logistic in ln n around ln(c·M·ln M), the model the fit assumes."""
    rng = np.random.default_rng(seed)
    runs = []
    for M in orders:
        n_star = c * M * math.log(M)
        for mult in np.exp(np.linspace(math.log(0.5), math.log(2.0), 10)):
            n = round(mult * n_star)
            p = 1 / (1 + math.exp(-(math.log(n) - math.log(n_star)) / width))
            runs += [run(M, n, rng.random() < p) for _ in range(seeds)]
    return runs


@pytest.mark.parametrize("c", [2.7482, 1.3])
def test_planted_c_is_recovered_within_5_percent(c):
    law = fit_scaling_law(planted_sweep(c), bootstrap=200)
    assert law["form"] == "n* = c·M·ln M"
    assert law["c"] == pytest.approx(c, rel=0.05)
    lo, hi = law["ci95"]
    assert lo < law["c"] < hi and hi - lo < 0.2 * c
    assert law["r2"] > 0.9
    assert {a["form"] for a in law["alternatives"]} == {"n* = a·M^b", "n* = c·M·ln M"}
    assert all(a["aic"] is not None for a in law["alternatives"])
    assert len(law["critical"]) == 7 and all(c_["method"] == "logistic" for c_ in law["critical"])
    for crit in law["critical"]:
        assert crit["p_star"] == pytest.approx(crit["n_star"] / crit["order"] ** 2)
    assert len(law["residuals"]) == 7 and len(law["curve"]) == 50


def test_estimate_critical_size_cases():
    assert estimate_critical_size([(10, False), (20, False), (40, True), (80, True)]) == {
        "n_star": pytest.approx(math.sqrt(20 * 40)),
        "method": "midpoint",
        "bound": None,
        "slope": None,
    }
    assert estimate_critical_size([(10, True), (20, True)])["bound"] == {"upper": 10.0}
    assert estimate_critical_size([(10, False), (20, False)])["bound"] == {"lower": 20.0}
    overlap = estimate_critical_size([(10, False), (20, True), (30, False), (40, True), (50, True), (15, False)])
    assert overlap["method"] == "logistic" and 10 < overlap["n_star"] < 50


def test_degenerate_sweeps_do_not_raise():
    all_ok = fit_scaling_law([run(11, n, True) for n in (20, 40, 60)])
    assert all_ok["c"] is None and "note" in all_ok and all_ok["critical"][0]["bound"] == {"upper": 20.0}
    one_m = fit_scaling_law([run(11, 20, False), run(11, 80, True), run(17, 50, True)])
    assert one_m["c"] == pytest.approx(math.sqrt(20 * 80) / (11 * math.log(11)))
    assert one_m["r2"] is None and "note" in one_m
    assert [c["method"] for c in one_m["critical"]] == ["midpoint", "bounded"]
    assert fit_scaling_law([])["c"] is None
    assert fit_scaling_law([])["grokking_time_vs_wd"]["a"] is None
    stopped = run(11, 20, True)
    stopped["summary"]["stopped"] = True
    assert fit_scaling_law([stopped])["critical"] == []


def test_grokking_time_power_law_in_weight_decay():
    runs = [
        run(23, 300, True, wd=wd, epoch=round(5.0 * wd**-0.8 * f))
        for wd in (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
        for f in (0.95, 1.0, 1.05)
    ]
    runs.append(run(23, 300, False, wd=1e-6))
    fit = fit_grokking_time_vs_wd(runs)
    assert fit["a"] == pytest.approx(0.8, rel=0.03)
    assert fit["ci95"][0] < fit["a"] < fit["ci95"][1]
    assert len(fit["points"]) == 15
    assert fit_grokking_time_vs_wd(runs[:3])["a"] is None  # one wd only


def test_dataset_section_takes_precedence_over_the_spec():
    r = run(11, 20, True)
    r["dataset"] = {"order": 11, "train_size": 37}
    law = fit_scaling_law([r, run(11, 10, False)])
    assert law["critical"][0]["n_star"] == pytest.approx(math.sqrt(10 * 37))
