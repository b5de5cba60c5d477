"""Predictions before running: critical size, width for irrep coverage, coupon collector; no torch."""

import math
import subprocess
import sys

import pytest

from li2.predictions import coupon_collector, predict

BASE = {"model": {"hidden": 512}, "training": {"lr": 0.01, "epochs": 10}, "seed": 1}


def spec(task, **data):
    return {"task": task, "data": data or {"train_fraction": 0.9}, **BASE}


def test_cyclic_prediction():
    p = predict(spec({"group": "cyclic", "order": 23}))
    n_star = 2.7482 * 23 * math.log(23)
    assert p["critical_train_size"] == pytest.approx(n_star)
    assert p["critical_train_fraction"] == pytest.approx(n_star / 529)
    assert p["train_size"] == 476 and p["above_critical"] is True
    assert p["train_to_critical_ratio"] == pytest.approx(476 / n_star)
    assert p["width_to_cover_irreps"] == 2 * 23 - 2
    assert p["irrep_classes"] == 11
    assert p["coupon_collector"]["expected"] == pytest.approx(11 * sum(1 / i for i in range(1, 12)))


def test_below_critical_and_fitted_c():
    p = predict(spec({"group": "cyclic", "order": 41}, train_size=200), c=1.0)
    assert p["c"] == 1.0 and p["c_source"] == "given"
    assert p["critical_train_size"] == pytest.approx(41 * math.log(41))
    assert p["above_critical"] is True
    assert predict(spec({"group": "cyclic", "order": 41}, train_size=200))["above_critical"] is False


def test_even_order_and_nonabelian_width():
    assert predict(spec({"group": "cyclic", "order": 24}))["width_to_cover_irreps"] == 46
    s4 = predict(spec({"group": "symmetric", "n": 4}, train_fraction=0.5))
    assert s4["width_to_cover_irreps"] == 2 * (1 + 2**4 + 3**4 + 3**4)
    assert s4["d_max"] == 3
    assert s4["critical_train_size_dk2"] == pytest.approx(9 * s4["critical_train_size"])


def test_coupon_collector_bound():
    cc = coupon_collector(11, delta=0.05)
    # Union bound: 11·(1 − 1/11)^K ≤ 0.05 at K = whp.
    assert 11 * (1 - 1 / 11) ** cc["whp"] <= 0.05
    assert coupon_collector(1)["whp"] == 1


def test_expression_gets_a_note():
    p = predict(spec({"group": "expression", "expression": "x*y", "modulus": 7}, train_fraction=0.5))
    assert p["group"] is False and "not a group" in p["note"]
    assert "critical_train_size" in p


def test_predictions_do_not_import_torch():
    code = (
        "import sys; from li2.predictions import predict; "
        "predict({'task': {'group': 'dihedral', 'n': 5}, 'data': {'train_fraction': 0.5}, "
        "'model': {'hidden': 64}, 'training': {'lr': 0.01, 'epochs': 1}, 'seed': 0}); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
