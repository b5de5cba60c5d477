"""Sweeps against the real service: progress, runs as a DataFrame, the fitted scaling law, plot."""

from li2_client import ScalingLaw, Sweep


def test_sweep_finishes_with_every_run_counted(finished_sweep):
    assert isinstance(finished_sweep, Sweep) and finished_sweep.done
    assert finished_sweep.n_runs == 8
    assert sum(finished_sweep.counts.values()) == 8 and finished_sweep.counts.get("succeeded") == 8
    assert finished_sweep.progress == 1.0


def test_runs_dataframe_has_dotted_spec_columns_and_summaries(finished_sweep, limits):
    grid = limits["sweep_grid"]
    df = finished_sweep.runs()
    assert len(df) == 8
    for col in (
        "id",
        "status",
        "task.order",
        "data.train_fraction",
        "seed",
        "model.hidden",
        "summary.test_acc",
        "summary.grokked",
    ):
        assert col in df.columns, col
    grid_points = {(r["task.order"], r["data.train_fraction"], r["seed"]) for _, r in df.iterrows()}
    assert grid_points == {
        (m, f, s) for m in grid["task.order"] for f in grid["data.train_fraction"] for s in grid["seed"]
    }


def test_scaling_law_is_typed_and_says_plainly_that_two_sizes_are_not_a_fit(finished_sweep, tmp_path):
    """Each order was tried at 0.3 and 0.9 of its pairs only: n* is bracketed, c is not resolved."""
    law = finished_sweep.scaling_law()
    assert isinstance(law, ScalingLaw)
    assert {p.M for p in law.critical} == {11, 13}
    assert law.status == "unresolved" and not law.fitted and law.c is None and law.predict(13) is None
    assert "needs sizes between" in law.reason and law.missing
    lo, hi = law.ci95
    assert lo is not None and hi is not None and lo < law.c_mle < hi  # the range the data allow
    for p in law.critical:  # each order grokked at 0.9 and not at 0.3
        b = p.bracket
        assert b["largest_failing"] <= 0.3 * p.M**2 + 1 and b["smallest_succeeding"] >= 0.9 * p.M**2 - 1
        assert p.free_ci95[0] <= b["largest_failing"] and p.free_ci95[1] >= b["smallest_succeeding"]
        assert p.n_star is None and p.ci95[0] is not None
    assert law.converged in ("converged", "not_converged", "unknown")
    assert law.raw["partial"] is False


def test_scaling_law_plot(finished_sweep, tmp_path):
    paths = finished_sweep.plot(tmp_path)
    assert paths and all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    assert [p.name for p in paths] == [f"scaling_law_{finished_sweep.id[:8]}.png"]


def test_sweep_listing_and_handles(client, finished_sweep):
    assert finished_sweep.id in {s.id for s in client.list_sweeps()}
    runs = list(client.list(sweep_id=finished_sweep.id))
    assert len(runs) == 8 and all(e.data["sweep_id"] == finished_sweep.id for e in runs)
    assert {e.id for e in finished_sweep.experiments()} == {e.id for e in runs}
