"""Typed result views, the waiting loop (fake clock, no sleeping) and the offline plots."""

import pytest

from li2_client import Features, ScalingLaw, Timeline, WaitTimeout
from li2_client.plots import plot_curves, plot_scaling_law, plot_spectrum
from li2_client.polling import wait_for

TIMELINE = {
    "stages": [
        {
            "name": "lazy",
            "start_epoch": 0,
            "end_epoch": 40,
            "criterion": "memorized",
            "values": {"train_acc": 1.0},
            "open": False,
        },
        {
            "name": "independent",
            "start_epoch": 40,
            "end_epoch": 120,
            "criterion": "none fired (stage still open)",
            "values": {},
            "open": True,
        },
    ],
    "events": {"memorized": 40, "generalized": None, "grokking_delay": None},
    "censored": True,
    "stalled_in": "independent",
    "generalized_in": None,
}

FEATURES = {
    "group": True,
    "coverage": 0.8,
    "covered": ["1", "2", "3", "4"],
    "missing": ["5"],
    "mean_concentration": 0.91,
    "nodes": {"dominant": ["1", "2"], "concentration": [0.9, 0.95]},
    "spectrum": {
        "nodes": [3, 0],
        "labels": ["1", "2", "3", "4", "5"],
        "power": [[0.9, 0.1, 0.0, 0.0, 0.0], [0.1, 0.7, 0.2, 0.0, 0.0]],
    },
}

LAW = {
    "form": "c*M*ln(M)",
    "c": 2.7,
    "ci95": [2.5, 2.9],
    "r2": 0.98,
    "critical": [{"M": 11, "n_star": 70.0, "p_star": 0.58}, {"M": 13, "n_star": 92.0, "p_star": 0.54}],
    "alternatives": [{"form": "a*M^b", "aic": 3.2}],
}


def test_timeline_view():
    tl = Timeline.from_dict(TIMELINE)
    assert [s.name for s in tl.stages] == ["lazy", "independent"]
    assert tl.stage("lazy").end_epoch == 40 and not tl.stage("lazy").open
    assert tl.stage("interactive") is None
    assert tl.censored and tl.stalled_in == "independent" and tl.events["memorized"] == 40
    assert tl.table()[1] == ("independent", "40", "120 (open)", "none fired (stage still open)")


def test_features_view_and_layer_spectrum():
    f = Features.from_dict(FEATURES)
    assert f.is_group and f.coverage == 0.8 and f.missing == ["5"]
    assert f.layer_spectrum() == pytest.approx({"1": 0.5, "2": 0.4, "3": 0.1, "4": 0.0, "5": 0.0})
    assert Features.from_dict({"group": False, "note": "not a group"}).power == []


def test_scaling_law_view():
    law = ScalingLaw.from_dict(LAW)
    assert (law.c, law.ci95, law.r2) == (2.7, (2.5, 2.9), 0.98)
    assert [(p.M, p.n_star) for p in law.critical] == [(11, 70.0), (13, 92.0)]
    assert law.predict(11) == pytest.approx(2.7 * 11 * 2.3978952728)
    assert ScalingLaw.from_dict({"c": None}).predict(11) is None


def test_plots_write_pngs(tmp_path):
    cols = {
        "epoch": [0, 50, 100, 120],
        "train_acc": [0.1, 0.9, 1.0, 1.0],
        "test_acc": [0.0, 0.1, None, 0.3],
        "train_loss": [1.0, 0.3, 0.01, 0.005],
        "test_loss": [1.0, 0.9, 0.8, 0.7],
    }
    paths = [
        plot_curves(cols, Timeline.from_dict(TIMELINE), tmp_path / "c.png"),
        plot_spectrum(Features.from_dict(FEATURES), tmp_path / "s.png"),
        plot_scaling_law(ScalingLaw.from_dict(LAW), tmp_path / "sub" / "l.png"),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_wait_for_returns_terminal_status():
    clock, statuses = FakeClock(), iter(["queued", "running", "running", "succeeded"])
    seen = []
    out = wait_for(
        lambda: next(statuses),
        what="x",
        timeout=100,
        poll=1,
        on_update=lambda: seen.append(1),
        clock=clock,
        sleep=clock.sleep,
    )
    assert out == "succeeded" and len(seen) == 4 and clock.t == 3


@pytest.mark.parametrize("status, hint", [("queued", "is a worker running"), ("running", "wait longer")])
def test_wait_for_timeout_says_what_state_it_was_in(status, hint):
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=hint) as info:
        wait_for(lambda: status, what="experiment abc", timeout=5, poll=2, clock=clock, sleep=clock.sleep)
    assert "experiment abc" in str(info.value) and "5 s" in str(info.value)
    assert clock.t == 5  # never sleeps past the deadline


def test_progress_without_tqdm_prints_only_changes(monkeypatch, capsys):
    import sys

    from li2_client.polling import ProgressBar

    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm.auto` fail
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    bar = ProgressBar("abc", "epoch", enabled=True)
    for n in (0, 0, 5, 5):
        bar.update(n, 10, "running")
    bar.close()
    assert capsys.readouterr().err.splitlines() == ["abc: 0/10 epoch running", "abc: 5/10 epoch running"]
    silent = ProgressBar("abc", "epoch", enabled=False)
    silent.update(1, 10, "x")
    assert capsys.readouterr().err == ""
