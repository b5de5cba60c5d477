"""The SDK against the real service: submit → wait → metrics, timeline, features, predictions,
checkpoints, plots; cached and forced resubmits; cancel; listing."""

import contextlib
import json
import struct

import pandas as pd
import pytest

from li2_client import Conflict, Experiment, Features, Predictions, RunFailed, Timeline, WaitTimeout

STAGES = ("lazy", "independent", "interactive")


def test_submit_wait_and_progress(finished_exp, limits):
    exp = finished_exp
    assert exp.status == "succeeded" and exp.done
    assert exp.progress["epoch"] == exp.progress["epochs"] == limits["tiny_epochs"]
    assert exp.spec["task"] == {"group": "cyclic", "order": 11, "operands": 2}  # normalised by the server
    assert 0.0 <= exp.summary["train_acc"] <= 1.0 and isinstance(exp.summary["grokked"], bool)


def test_metrics_are_full_curves_as_a_dataframe(finished_exp, tmp_path, limits):
    df = finished_exp.metrics()
    assert isinstance(df, pd.DataFrame)
    for col in ("epoch", "train_acc", "test_acc", "train_loss", "test_loss"):
        assert col in df.columns
    epochs = df["epoch"].tolist()
    assert epochs == sorted(set(epochs)) and epochs[0] == 0
    assert limits["tiny_epochs"] - 1 <= epochs[-1] <= limits["tiny_epochs"]  # trained to the end
    assert df["train_acc"].between(0, 1).all()
    csv_path = finished_exp.metrics_csv(tmp_path / "m.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == list(df.columns)
    assert len(lines) - 1 == len(df)  # the CSV export has every row too


def test_timeline_is_typed(finished_exp, limits):
    tl = finished_exp.timeline()
    assert isinstance(tl, Timeline) and tl.stages
    assert tl.stages[0].name == "lazy" and tl.stages[0].start_epoch == 0
    assert all(s.name in STAGES for s in tl.stages)
    for a, b in zip(tl.stages, tl.stages[1:], strict=False):
        assert a.end_epoch == b.start_epoch  # stages tile the run
    assert tl.stages[-1].end_epoch <= limits["tiny_epochs"]
    assert set(tl.events) >= {"memorized", "generalized"}
    assert tl.censored == (finished_exp.summary["grokked"] is False)


def test_features_and_predictions(finished_exp):
    f = finished_exp.features()
    assert isinstance(f, Features) and f.is_group
    nontrivial = [lab for lab in f.labels if lab != "trivial"]
    assert len(f.labels) == 6 and len(nontrivial) == 5  # Z_11: trivial + five frequency pairs
    assert 0 < len(f.power) <= 64 and all(len(row) == 6 for row in f.power)
    assert 0.0 <= f.coverage <= 1.0 and set(f.covered) | set(f.missing) == set(nontrivial)
    p = finished_exp.predictions()
    assert isinstance(p, Predictions) and p.order == 11
    assert p.critical_train_size == pytest.approx(2.7482 * 11 * 2.397895, rel=1e-3)
    assert abs(p.train_size - 0.9 * 121) <= 1 and p.above_critical


def test_checkpoint_download_is_safetensors(finished_exp, tmp_path):
    cks = finished_exp.checkpoints()
    assert cks, "a finished run keeps at least its final snapshot"
    last = max(cks, key=lambda c: c["epoch"])
    path = finished_exp.download_checkpoint(last["epoch"], tmp_path / "ck.safetensors")
    blob = path.read_bytes()
    assert len(blob) == last["size"]
    (header_len,) = struct.unpack("<Q", blob[:8])  # safetensors: u64 header size, JSON header
    assert isinstance(json.loads(blob[8 : 8 + header_len]), dict)


def test_plots_from_api_data(finished_exp, tmp_path):
    """The SDK's own, self-contained pictures, drawn from the API's JSON."""
    paths = finished_exp.plot(tmp_path / "plots")
    assert paths and all(p.exists() and p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    assert sorted(p.name for p in paths) == sorted(
        [f"curves_{finished_exp.id[:8]}.png", f"spectrum_{finished_exp.id[:8]}.png"]
    )


def test_same_spec_is_cached_and_get_list_find_it(client, finished_exp, tiny):
    again = client.submit(tiny())
    assert again.cached and again.id == finished_exp.id
    assert client.get(finished_exp.id).status == "succeeded"
    assert finished_exp.id in {e.id for e in client.list()}
    ok = list(client.list(status="succeeded"))
    assert finished_exp.id in {e.id for e in ok} and all(e.status == "succeeded" for e in ok)


def test_forced_run_times_out_then_cancels(client, finished_exp, tiny):
    exp = client.submit(tiny(epochs=20000), force=True)
    assert isinstance(exp, Experiment) and exp.id != finished_exp.id and not exp.cached
    assert exp.predictions().order == 11  # available before the run has started
    with pytest.raises(WaitTimeout, match=exp.id):
        exp.wait(timeout=0.5, poll=0.2, progress=False)
    with pytest.raises(Conflict, match="finished"):
        exp.timeline()
    exp.cancel()
    assert exp.status in ("cancelled", "running")
    with pytest.raises(RunFailed, match="cancelled"):
        exp.wait(timeout=120, poll=0.5, progress=False)
    assert exp.status == "cancelled"
    with pytest.raises(Conflict):
        client.cancel(exp.id)  # already final


def test_same_idempotency_key_gives_the_same_run_even_forced(client, tiny):
    """What makes submit retries safe: the server answers a repeated key with the first run."""
    first = client.submit(tiny(seed=7, epochs=20000), force=True, idempotency_key="retry-test-1")
    try:
        again = client.submit(tiny(seed=7, epochs=20000), force=True, idempotency_key="retry-test-1")
        assert again.id == first.id
        other = client.submit(tiny(seed=7, epochs=20000), force=True, idempotency_key="retry-test-2")
        assert other.id != first.id
        other.cancel().wait(timeout=120, poll=0.5, progress=False, raise_on_failure=False)
    finally:
        first.cancel().wait(timeout=120, poll=0.5, progress=False, raise_on_failure=False)
    assert first.status == "cancelled"


def test_follow_yields_the_rows_while_the_run_trains_and_they_are_its_curves(client, tiny):
    """Live metrics: rows arrive while the run is still running, each once, in epoch order, and
    together they are exactly the curves of the run's (here: cancelled) result."""
    exp = client.submit(tiny(epochs=20000, seed=7), force=True)
    rows, status_at = [], {}
    try:
        for row in exp.follow(poll=0.3, timeout=300):
            rows.append(row)
            if len(rows) in (1, 300):
                status_at[len(rows)] = client.get(exp.id).status
            if len(rows) == 300:
                exp.cancel()
    finally:  # never leave the long run to block the worker for the other tests
        with contextlib.suppress(Conflict):
            client.cancel(exp.id)
    assert status_at == {1: "running", 300: "running"}  # live, long before the 20000th epoch
    assert exp.status == "cancelled"
    epochs = [r["epoch"] for r in rows]
    assert epochs == sorted(set(epochs)) and epochs[0] == 0 and len(epochs) >= 300
    final = exp.metric_columns()  # the cancelled run's result
    assert final["epoch"] == epochs
    assert final["train_acc"] == [r["train_acc"] for r in rows]
    assert final["test_loss"] == [r["test_loss"] for r in rows]
