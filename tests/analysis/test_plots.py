"""Plots are drawn from JSON-like dicts alone and written as PNG files."""

import json
import math

import numpy as np
import pytest

from li2.features import node_features
from li2.groups import build_task
from li2.plots import curves_figure, plot_emergence, plot_run, plot_sweep
from li2.scaling import fit_scaling_law
from li2.timeline import GRAM_RISE, build_timeline

PNG = b"\x89PNG"


def fake_result():
    epochs = list(range(0, 200, 5))
    m = {
        "epoch": epochs,
        "train_acc": [min(1.0, e / 20) for e in epochs],
        "test_acc": [0.0 if e < 60 else 1.0 for e in epochs],
        "train_loss": [math.exp(-e / 20) for e in epochs],
        "test_loss": [1.0 / (1 + e) for e in epochs],
        "v_gap": [max(0.01, 1 - e / 40) for e in epochs],
        "gf_fixed_ratio": [0.3] * len(epochs),
        "gf_key_cos": [0.9 if e < 40 else 0.2 for e in epochs],
        "fft_dist_ideal": [0.1 if e < 100 else 0.15 for e in epochs],
        "coverage": [min(1, e / 50) for e in epochs],
        "mean_concentration": [min(1, e / 100) for e in epochs],
        "ftf_offdiag_ratio": [0.05] * len(epochs),
    }
    task = build_task({"group": "cyclic", "order": 11})
    W = np.random.default_rng(0).normal(size=(22, 30))
    emergence = np.where(np.arange(30) % 3 == 0, np.arange(30) * 5, -1)
    feats = node_features(task, W, 2, emergence=emergence)
    feats["energies"] = {
        "nodes": feats["spectrum"]["nodes"],
        "train": list(np.linspace(1, 2, 30)),
        "full": list(np.linspace(1, 3, 30)),
        "theory_full_data": [11 / 4],
    }
    result = {"metrics": m, "timeline": build_timeline(m), "features": feats}
    return json.loads(json.dumps(result))  # exactly what JSON gives back


def test_plot_run_writes_pngs(tmp_path):
    paths = plot_run(fake_result(), str(tmp_path))
    assert [p.split("/")[-1] for p in paths] == ["curves.png", "emergence.png", "spectrum.png", "energies.png"]
    for p in paths:
        assert open(p, "rb").read(4) == PNG


def test_diagnostics_measured_every_few_epochs_are_drawn_through_the_gaps():
    result = fake_result()
    m = result["metrics"]
    names = ("v_gap", "gf_fixed_ratio", "gf_key_cos", "fft_dist_ideal", "coverage", "mean_concentration")
    for name in names:
        m[name] = [v if i % 5 == 0 else None for i, v in enumerate(m[name])]  # as diagnostics every 5th gives
    fig = curves_figure(result)
    assert len(fig.axes) == 5  # accuracy, loss, top layer (Stage I), Gram (Fig. 3), features
    lines = [ln for ax in fig.axes[2:] for ln in ax.get_lines() if ln.get_label() in names]
    assert len(lines) == len(names)
    assert all(len(ln.get_xdata()) == 8 and np.isfinite(ln.get_ydata()).all() for ln in lines)
    # the Stage II → III threshold is drawn at (1 + GRAM_RISE) × the initial fft_dist_ideal
    gram_ax = next(ax for ax in fig.axes if "Gram" in ax.get_ylabel())
    dotted = [ln.get_ydata()[0] for ln in gram_ax.get_lines() if ln.get_linestyle() == ":" and ln.get_color() != "k"]
    assert dotted == [pytest.approx(0.1 * (1 + GRAM_RISE))]


def test_emergence_figure_shows_each_concentrated_node(tmp_path):
    result = fake_result()
    fig_path = plot_emergence(result, str(tmp_path))
    assert fig_path and open(fig_path, "rb").read(4) == PNG
    result["features"]["nodes"]["emergence_epoch"] = [None] * 30
    assert plot_emergence(result, str(tmp_path)) is None


def test_plot_run_skips_absent_data(tmp_path):
    paths = plot_run({"metrics": {"epoch": [0, 1], "train_acc": [0, 1]}}, str(tmp_path))
    assert [p.split("/")[-1] for p in paths] == ["curves.png"]
    assert plot_run({}, str(tmp_path / "empty")) == []


def test_plot_sweep_writes_scaling_figure(tmp_path):
    rng = np.random.default_rng(0)
    runs = []
    for M in (11, 17, 23):
        for mult in (0.5, 0.8, 1.2, 2.0):
            n = round(mult * 2.7 * M * math.log(M))
            runs.append(
                {
                    "spec": {
                        "task": {"group": "cyclic", "order": M, "operands": 2},
                        "data": {"train_size": n, "train_fraction": None, "critical_multiple": None},
                    },
                    "summary": {"grokked": bool(mult > 1 or rng.random() < 0.2)},
                }
            )
    sweep = json.loads(json.dumps({"runs": runs, "scaling_law": fit_scaling_law(runs, bootstrap=50)}))
    paths = plot_sweep(sweep, str(tmp_path))
    assert len(paths) == 1 and open(paths[0], "rb").read(4) == PNG
    assert plot_sweep({"runs": [], "scaling_law": {}}, str(tmp_path)) == []
