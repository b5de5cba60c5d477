"""Stage timeline and summary on synthetic metric columns (each criterion made to fire on purpose)."""

import math

from li2.timeline import build_timeline, summarize

EPOCHS = list(range(0, 100, 5))  # 20 measurements


def metrics(**cols):
    base = {"epoch": EPOCHS}
    base.update(cols)
    return base


def ramp(start, value_before, value_after):
    return [value_before if e < start else value_after for e in EPOCHS]


def test_three_stages_in_order_with_their_criteria():
    m = metrics(
        train_acc=ramp(15, 0.5, 1.0),  # memorized at 15
        test_acc=ramp(60, 0.1, 1.0),  # generalized at 60
        w_cos_step=[1e-4] * 20,
        v_cos_step=[1e-2] * 20,  # V dominates throughout
        gf_key_cos=[0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9, 0.85, 0.3] + [0.2] * 11,  # drops at 40
        coverage=[0.0] * 20,
        mean_concentration=[0.2] * 20,
        ftf_offdiag_ratio=[0.05] * 20,
    )
    tl = build_timeline(m)
    assert [s["name"] for s in tl["stages"]] == ["lazy", "independent", "interactive"]
    lazy, indep, inter = tl["stages"]
    assert (lazy["start_epoch"], lazy["end_epoch"], lazy["criterion"]) == (0, 15, "memorized")
    assert (indep["start_epoch"], indep["end_epoch"], indep["criterion"]) == (15, 40, "key_alignment_lost")
    assert inter["start_epoch"] == 40 and inter["end_epoch"] == 95 and inter["open"]
    assert tl["events"] == {"memorized": 15, "generalized": 60, "grokking_delay": 45}
    assert tl["censored"] is False and tl["generalized_in"] == "interactive"
    assert lazy["values"]["train_acc"] == 1.0


def test_w_motion_and_coverage_criteria():
    m = metrics(
        train_acc=ramp(50, 0.5, 1.0),
        test_acc=ramp(70, 0.0, 1.0),
        w_cos_step=ramp(20, 1e-4, 1e-2),
        v_cos_step=[5e-3] * 20,  # W overtakes at 20
        coverage=ramp(35, 0.5, 1.0),
        mean_concentration=ramp(45, 0.3, 0.7),  # bulk at 45
        gf_key_cos=[0.9] * 20,
        ftf_offdiag_ratio=[0.05] * 20,
    )
    tl = build_timeline(m)
    lazy, indep, inter = tl["stages"]
    assert (lazy["end_epoch"], lazy["criterion"]) == (20, "w_overtakes_v")
    assert (indep["end_epoch"], indep["criterion"]) == (45, "coverage_saturated")
    assert inter["start_epoch"] == 45


def test_gram_growth_criterion():
    m = metrics(train_acc=ramp(10, 0.0, 1.0), test_acc=[0.0] * 20, ftf_offdiag_ratio=ramp(50, 0.04, 0.1))
    tl = build_timeline(m)
    assert tl["stages"][1]["criterion"] == "gram_off_diagonal"
    assert tl["stages"][2]["start_epoch"] == 50


def test_never_generalizing_run_is_censored_and_shows_where_it_stalled():
    m = metrics(
        train_acc=ramp(10, 0.2, 1.0),
        test_acc=[0.02] * 20,
        gf_key_cos=[0.9] * 20,
        coverage=[0.1] * 20,
        mean_concentration=[0.25] * 20,
        ftf_offdiag_ratio=[0.05] * 20,
    )
    tl = build_timeline(m)
    assert tl["censored"] is True
    assert [s["name"] for s in tl["stages"]] == ["lazy", "independent"]
    assert tl["stalled_in"] == "independent" and tl["stages"][-1]["open"]
    assert tl["events"]["generalized"] is None and tl["generalized_in"] is None


def test_run_stuck_in_lazy_stage():
    tl = build_timeline(metrics(train_acc=[0.3] * 20, test_acc=[0.0] * 20))
    assert [s["name"] for s in tl["stages"]] == ["lazy"]
    assert tl["stalled_in"] == "lazy" and tl["stages"][0]["open"]


def test_missing_and_nan_columns_degrade_gracefully():
    m = metrics(train_acc=[None] * 5 + [1.0] * 15, test_acc=[float("nan")] * 20, gf_key_cos=[None] * 20)
    tl = build_timeline(m)
    assert tl["stages"][0]["criterion"] == "memorized"
    assert tl["censored"] is True
    assert build_timeline({"epoch": []})["stages"] == []
    assert build_timeline({})["censored"] is True


def test_summary_keys():
    s = summarize(metrics(train_acc=ramp(10, 0.1, 0.995), test_acc=ramp(30, 0.2, 0.991)))
    assert s == {
        "train_acc": 0.995,
        "test_acc": 0.991,
        "epoch_memorized": 10,
        "epoch_generalized": 30,
        "grokking_delay": 20,
        "grokked": True,
    }
    s = summarize(metrics(train_acc=[1.0] * 20, test_acc=[0.5] * 19 + [math.nan]))
    assert s["grokked"] is False and s["test_acc"] == 0.5 and s["grokking_delay"] is None
