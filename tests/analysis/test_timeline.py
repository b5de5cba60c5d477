"""Stage timeline and summary on synthetic metric columns: each boundary test made to fire, or not,
on purpose. Diagnostics sit at every other measurement (NaN between), as the trainer writes them."""

import math

import numpy as np
import pytest

from li2.timeline import (
    FIXED_SIGNAL_MIN,
    GAP_CONVERGED,
    GRAM_RISE,
    PERSIST,
    build_timeline,
    emergence_summary,
    persistent_start,
    summarize,
)

EPOCHS = list(range(0, 200, 5))  # 40 measurements; diagnostics at every other one (epochs 0, 10, …)
DIAG = [e % 10 == 0 for e in EPOCHS]


def diag_col(fn):
    """A diagnostic column: fn(epoch) at diagnostic epochs, None between."""
    return [fn(e) if d else None for e, d in zip(EPOCHS, DIAG, strict=True)]


def metrics(gap_end=40, gram_end=120, signal=0.3, **over):
    """Stage I ends at gap_end (v_gap falls through GAP_CONVERGED), Stage II at gram_end."""
    m = {
        "epoch": EPOCHS,
        "train_acc": [0.5 if e < 15 else 1.0 for e in EPOCHS],
        "test_acc": [0.0 if e < 150 else 1.0 for e in EPOCHS],
        "v_gap": diag_col(lambda e: 0.9 if e < gap_end else 0.5 * GAP_CONVERGED),
        "gf_fixed_ratio": diag_col(lambda e: signal),
        "fft_dist_ideal": diag_col(lambda e: 0.1 if e < gram_end else 0.1 * (1 + 2 * GRAM_RISE)),
        "mean_concentration": diag_col(lambda e: 0.2 + e / 400),
    }
    m.update(over)
    return m


def spans(tl):
    return [(s["name"], s["start_epoch"], s["end_epoch"], s["criterion"], s["open"]) for s in tl["stages"]]


def test_three_stages_in_order_with_their_criteria():
    tl = build_timeline(metrics())
    assert spans(tl) == [
        ("lazy", 0, 40, "top_layer_converged", False),
        ("independent", 40, 120, "gram_departs_from_ideal", False),
        ("interactive", 120, 195, "gram_departs_from_ideal", True),
    ]
    lazy, indep, _ = tl["stages"]
    assert lazy["values"]["v_gap"] == pytest.approx(0.5 * GAP_CONVERGED)
    assert indep["values"]["at_end"]["fft_dist_ideal"] == pytest.approx(0.1 * (1 + 2 * GRAM_RISE))
    assert tl["events"] == {"memorized": 15, "generalized": 150, "grokking_delay": 135}
    assert tl["censored"] is False and tl["generalized_in"] == "interactive"
    assert tl["thresholds"]["persist"] == PERSIST


def test_a_single_converged_sample_does_not_end_stage_one():
    """v_gap dips below the threshold at one diagnostic epoch (20) and comes back: the boundary is
    where it stays below for PERSIST diagnostics (60), not the dip."""
    m = metrics(gap_end=60)
    m["v_gap"] = diag_col(lambda e: 0.01 if e == 20 or e >= 60 else 0.9)
    tl = build_timeline(m)
    assert tl["stages"][0]["end_epoch"] == 60


def test_a_single_kernel_spike_does_not_end_stage_two():
    m = metrics(gram_end=150)
    m["fft_dist_ideal"] = diag_col(lambda e: 0.2 if e == 80 or e >= 150 else 0.1)
    assert build_timeline(m)["stages"][1]["end_epoch"] == 150


def test_boundaries_are_the_first_epoch_of_the_window_and_need_a_full_window():
    assert persistent_start(np.array([0, 1, 1, 0, 1, 1, 1, 1], bool)) == 4
    assert persistent_start(np.array([1, 1], bool)) is None  # run ended before the window filled
    m = metrics(gap_end=180)  # the last diagnostics are 180, 190: one short of a window
    tl = build_timeline(m)
    assert [s["name"] for s in tl["stages"]] == ["lazy"] and tl["stages"][0]["open"]


def test_no_fixed_point_gradient_keeps_the_run_lazy():
    """Prop. 3: V converged, but G* = 0 (η = 0, interpolating features): no independent stage."""
    tl = build_timeline(metrics(signal=FIXED_SIGNAL_MIN / 100, test_acc=[0.0] * len(EPOCHS)))
    assert spans(tl) == [("lazy", 0, 195, tl["stages"][0]["criterion"], True)]
    assert "Prop. 3" in tl["stages"][0]["criterion"]
    assert tl["censored"] and tl["stalled_in"] == "lazy"


def test_gram_test_is_relative_to_the_first_diagnostic():
    m = metrics()
    m["fft_dist_ideal"] = diag_col(lambda e: 0.3)  # high but flat: never above 1.2 × its start
    tl = build_timeline(m)
    assert [s["name"] for s in tl["stages"]] == ["lazy", "independent"] and tl["stages"][1]["open"]
    assert tl["stalled_in"] is None and tl["generalized_in"] == "independent"


def test_stage_two_can_be_empty_when_the_kernel_moved_during_stage_one():
    tl = build_timeline(metrics(gap_end=100, gram_end=40))
    assert spans(tl)[1][:3] == ("independent", 100, 100)


def test_missing_and_nan_columns_degrade_gracefully():
    m = {"epoch": EPOCHS, "train_acc": [None] * 5 + [1.0] * 35, "test_acc": [math.nan] * 40}
    tl = build_timeline(m)
    assert [s["name"] for s in tl["stages"]] == ["lazy"] and tl["stages"][0]["open"]
    assert tl["censored"] is True and tl["events"]["memorized"] == 25
    assert build_timeline({"epoch": []})["stages"] == []
    assert build_timeline({})["censored"] is True


def test_summary_keys():
    ramp = lambda start, a, b: [a if e < start else b for e in EPOCHS]  # noqa: E731
    s = summarize({"epoch": EPOCHS, "train_acc": ramp(10, 0.1, 0.995), "test_acc": ramp(30, 0.2, 0.991)})
    assert s == {
        "train_acc": 0.995,
        "test_acc": 0.991,
        "epoch_memorized": 10,
        "epoch_generalized": 30,
        "grokking_delay": 20,
        "grokked": True,
    }
    s = summarize({"epoch": EPOCHS, "train_acc": [1.0] * 40, "test_acc": [0.5] * 39 + [math.nan]})
    assert s["grokked"] is False and s["test_acc"] == 0.5 and s["grokking_delay"] is None


def test_emergence_summary():
    assert emergence_summary(None) is None
    assert emergence_summary([None, None])["nodes"] == 0
    s = emergence_summary([None, *range(10, 110, 10)])
    assert s == {"nodes": 10, "first": 10, "p10": 10, "median": 50, "p90": 90, "last": 100}


def test_first_and_last_finite_helpers_at_the_edges():
    """The boundary scans start at index 0 unless told otherwise, and read the last finite value."""
    from li2.timeline import _first, _last_finite

    assert _first(np.array([True, False, True])) == 0
    assert _first(np.array([True, False, True]), start=1) == 2
    assert _first(np.array([False, False])) is None
    assert _last_finite(np.array([1.0, 2.0, np.nan])) == 2.0
    assert _last_finite(np.array([5.0])) == 5.0
    assert _last_finite(np.array([np.nan])) is None
