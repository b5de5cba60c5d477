"""analyze_run: the summary/timeline/features sections the runner stores in result.json."""

import json

import numpy as np
import pytest

from li2.analysis import analyze_run
from li2.energy import landscape
from li2.groups import build_task
from li2.spec import validate_spec

METRICS = {"epoch": [0, 10, 20, 30], "train_acc": [0.1, 1.0, 1.0, 1.0], "test_acc": [0.0, 0.0, 0.5, 1.0]}


def spec(task):
    return validate_spec(
        {
            "task": task,
            "data": {"train_fraction": 0.5},
            "model": {"hidden": 22},
            "training": {"lr": 0.01, "epochs": 30},
            "seed": 3,
        }
    )


def test_group_run_sections():
    s = spec({"group": "cyclic", "order": 11})
    task = build_task(s["task"])
    m = np.arange(11)
    W = np.stack(
        [
            np.concatenate([np.cos(2 * np.pi * k * m / 11), np.cos(2 * np.pi * k * m / 11)])
            for k in list(range(1, 6)) * 2
        ],
        axis=1,
    ) / np.sqrt(11)  # w = [u; P u]
    out = analyze_run(task, s, {"W": W, "V": np.zeros((10, 11))}, METRICS)
    assert set(out) == {"summary", "timeline", "features"}
    assert out["summary"]["epoch_generalized"] == 30 and out["summary"]["grokked"]
    f = out["features"]
    assert f["coverage"] == 1.0
    en = f["energies"]
    assert en["theory_full_data"] == [pytest.approx(11 / 4)]
    assert all(e == pytest.approx(11 / 4) for e in en["full"])  # unit-normalised maxima
    json.dumps(out)  # JSON-ready


def test_expression_run_says_not_a_group():
    s = spec({"group": "expression", "expression": "x*x + y", "modulus": 7})
    task = build_task(s["task"])
    out = analyze_run(task, s, {"W": np.ones((14, 4)), "V": np.ones((4, 7))}, METRICS)
    assert out["features"]["group"] is False and "not a group" in out["features"]["note"]
    land = landscape(s, starts=4, steps=200)
    assert "not a group" in land["note"]
    assert all(m["dominant_irrep"] == "not a group" for m in land["maxima"])
