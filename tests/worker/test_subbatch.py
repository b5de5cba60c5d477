"""Sub-batch sizes by measured throughput (li2.subbatch, li2_worker.throughput).

The search and the cache file are tested with made-up rates (no timing is ever asserted); the
worker path trains real CPU runs through `BatchJob` and the real `li2.runner.run_batch`, with
probes forced short by LI2_SUBBATCH_PROBE_S.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from li2 import subbatch
from li2.batching import batch_limit
from li2.runner import run_batch
from li2.spec import validate_spec
from li2.spec.limits import resolve_train_size
from li2_store.config import ConfigError
from li2_store.db import session_scope
from li2_store.models import Result
from li2_worker import throughput
from li2_worker.tasks import BatchJob
from li2_worker.throughput import Entry, HostThroughput, cache_path, read_entries, store_entry
from li2lab.main import main as li2lab

from .helpers import add_run, add_user, new_engine, row, settings_for

W = "test@host/1"


def spec(seed: int = 0, epochs: int = 8, hidden: int = 256, order: int = 31) -> dict:
    """A larger-than-tiny CPU run (Z_31, K=256, 5 MB by li2.batching.run_memory_bytes), kept short."""
    return validate_spec(
        {
            "task": {"group": "cyclic", "order": order},
            "data": {"train_fraction": 0.4},
            "model": {"hidden": hidden},
            "seed": seed,
            "training": {"epochs": epochs, "eval_every": 4, "dense_until": 0, "diagnostics": False},
        }
    )


def same(_r: int, rate: float) -> float:
    """`learn`'s rate when the measured value is the rate itself."""
    return rate


def as_cost(r: int, rate: float) -> tuple[float, float]:
    """The (plain, measured) seconds per epoch of R stacked runs that train `rate` run-epochs/s."""
    return (r / rate, r / rate)


class Curve:
    """A made-up rate curve R -> run-epochs/s that records which R were measured."""

    def __init__(self, rates: dict[int, float]):
        self.rates, self.asked = rates, []

    def __call__(self, r: int) -> float:
        self.asked.append(r)
        return self.rates[r]


# -- the search (pure) -------------------------------------------------------------------------


def test_the_search_doubles_until_the_rate_clearly_drops_twice():
    curve = Curve({1: 10.0, 2: 18.0, 4: 30.0, 8: 25.0, 16: 20.0, 32: 40.0})
    rates = subbatch.learn({}, 64, curve, same)
    assert curve.asked == [1, 2, 4, 8, 16]  # 8 and 16 both below 0.9 × 30: 32 is never tried
    assert subbatch.choose(rates, 64) == 4


def test_one_disturbed_probe_does_not_end_the_search():
    curve = Curve({1: 10.0, 2: 4.0, 4: 30.0, 8: 35.0, 16: 20.0, 32: 10.0})
    rates = subbatch.learn({}, 64, curve, same)
    assert curve.asked == [1, 2, 4, 8, 16, 32] and subbatch.choose(rates, 64) == 8


def test_the_search_stops_at_the_cap_and_a_larger_batch_probes_on():
    curve = Curve({1: 10.0, 2: 18.0, 3: 24.0, 4: 30.0, 8: 50.0, 16: 20.0})
    rates = subbatch.learn({}, 3, curve, same)
    assert curve.asked == [1, 2, 3] and subbatch.choose(rates, 3) == 3
    rates = subbatch.learn(rates, 16, curve, same)  # a later, larger batch: known rates are kept
    assert curve.asked == [1, 2, 3, 4, 8, 16]
    assert subbatch.choose(rates, 16) == 8 and subbatch.choose(rates, 5) == 4  # never above the cap


def test_one_run_needs_no_measurement():
    assert subbatch.learn({}, 1, Curve({}), same) == {} and subbatch.choose({}, 1) == 1


def test_the_cost_model_weighs_plain_and_measured_epochs_by_the_schedule(tmp_path):
    """One shape class, one set of probes: R = 4 is twice as fast in plain epochs and half as fast in
    measured ones, so a run measured at every epoch trains alone and one measured every 50 stacks."""
    costs = {1: (1.0, 1.0), 2: (1.5, 4.0), 4: (2.0, 8.0), 8: (8.0, 32.0)}
    host = HostThroughput(settings(tmp_path), measure=lambda s, r, _t: costs[r])
    sparse = [spec(seed=i, epochs=200) for i in range(8)]
    for s in sparse:
        s["training"].update(eval_every=50, dense_until=0)
    dense = [spec(seed=i, epochs=200) for i in range(8)]
    for s in dense:
        s["training"].update(eval_every=1)
    assert subbatch.shape_class(sparse[0]) == subbatch.shape_class(dense[0])
    assert host.size(sparse) == 4
    # R = 1 twice (the 0.1 s first look, then at this batch's 2 s), then 2, 4 and 8
    assert host.measured == 5
    assert host.size(dense) == 1
    assert host.measured == 5  # the second batch reused the first one's probes


def test_subbatches_keep_batch_keys_apart_and_cover_every_run():
    specs = [spec(seed=s) for s in range(5)] + [spec(seed=s, hidden=128) for s in range(3)]
    chunks = subbatch.subbatches(specs, lambda members: 2)
    assert chunks == [[0, 1], [2, 3], [4], [5, 6], [7]]


# -- the host cache ----------------------------------------------------------------------------


def settings(tmp_path, **env):
    return settings_for(
        "sqlite://", "redis://unused", **{"LI2_SUBBATCH": "auto", "LI2_WORKER_DATA_DIR": tmp_path, **env}
    )


def seed_cache(tmp_path, spec_: dict, rates: dict[int, float]) -> None:
    host = HostThroughput(settings(tmp_path))
    costs = {r: as_cost(r, v) for r, v in rates.items()}
    store_entry(host.path, Entry(throughput.device_kind(host.device), subbatch.shape_class(spec_), costs, "test"))


def test_probe_length_is_a_share_of_the_stake_within_its_bounds():
    assert subbatch.probe_seconds(0.0, 16, 2.0) == subbatch.MIN_PROBE_S  # a trivial batch: the floor
    assert subbatch.probe_seconds(1e6, 16, 2.0) == 2.0  # hours at stake: LI2_SUBBATCH_PROBE_S
    # 100 s at stake, 5 probes (R = 1, 2, 4, 8, 16): 5 % of it spread over them
    assert subbatch.probe_seconds(100.0, 16, 2.0) == pytest.approx(subbatch.PROBE_SHARE * 100.0 / 5)
    assert subbatch.probe_seconds(100.0, 16, 0.05) == 0.05  # the operator's shorter setting wins


def test_probes_are_sized_to_the_batch_and_a_batch_with_more_at_stake_measures_again(tmp_path):
    """100 run-epochs/s one run at a time: 4 runs × 8 epochs are 0.3 s of work, so every probe is
    the 0.1 s floor; 4 runs × 20,000 epochs are 800 s, so its probes take the full 2 s and the
    short ones are measured again; after that a small batch trusts the long ones."""
    asked: list[tuple[int, float]] = []

    def measure(_spec, r, seconds):
        asked.append((r, seconds))
        return as_cost(r, 100.0 * r)

    host = HostThroughput(settings(tmp_path), measure=measure)
    small = [spec(seed=i, epochs=8) for i in range(4)]
    assert host.size(small) == 4
    assert [r for r, _ in asked] == [1, 2, 4] and {t for _, t in asked} == {subbatch.MIN_PROBE_S}
    asked.clear()
    big = [spec(seed=i, epochs=20_000) for i in range(4)]
    assert subbatch.shape_class(big[0]) == subbatch.shape_class(small[0])
    assert host.size(big) == 4
    assert asked == [(1, 2.0), (2, 2.0), (4, 2.0)]  # the 0.1 s probes were too short to trust here
    (entry,) = read_entries(cache_path(str(tmp_path)))[0].values()
    assert entry.probe_s == {1: 2.0, 2: 2.0, 4: 2.0}
    asked.clear()
    assert host.size(small) == 4 and asked == []  # long probes serve a small batch too


def test_a_file_written_before_probe_lengths_counts_them_as_full_length(tmp_path):
    path = cache_path(str(tmp_path))
    shape = subbatch.shape_class(spec())
    kind = throughput.device_kind(HostThroughput(settings(tmp_path)).device)
    doc = {"format": throughput.FORMAT, "entries": [{"device": kind, "shape": shape, "costs": {"1": [1, 1]}}]}
    path.write_text(json.dumps(doc))
    (entry,) = read_entries(path)[0].values()
    assert entry.length(1) == throughput.LEGACY_PROBE_S


def test_a_ragged_batch_is_measured_at_its_largest_training_size(tmp_path):
    """Every run of a ragged batch trains padded to its largest n (li2.runner), so that run's
    shape class, not the first run's, is the one probed and looked up."""
    sizes = [validate_spec({**spec(seed=i), "data": {"train_fraction": f}}) for i, f in enumerate((0.2, 0.7, 0.4))]
    seen: list[int] = []

    def measure(s, r, _seconds):
        seen.append(resolve_train_size(s))
        return as_cost(r, 10.0 * r)

    HostThroughput(settings(tmp_path), measure=measure).size(sizes)
    assert seen and set(seen) == {max(resolve_train_size(s) for s in sizes)}
    (entry,) = read_entries(cache_path(str(tmp_path)))[0].values()
    assert entry.shape == subbatch.shape_class(sizes[1]) != subbatch.shape_class(sizes[0])


@pytest.mark.parametrize(
    "content",
    [
        b"\x80\x04\x95 not json (a pickle header)",
        b'{"format": "something else", "entries": []}',
        b'{"format": "li2-throughput/2", "entries": [{"device": "x", "shape": "y", "costs": {"0": [1, 1]}}]}',
        b'{"format": "li2-throughput/2", "entries": [{"device": "x", "shape": "y", "costs": {"2": ["fast", 1]}}]}',
        b'{"format": "li2-throughput/2", "entries": [{"device": "x", "shape": "y", "costs": {"2": [0.1, -1]}}]}',
        b'{"format": "li2-throughput/2", "entries": [{"device": "x", "shape": "y", "costs": {"1": [1, 1]}, '
        b'"probe_s": {"2": 1}}]}',
        b'{"format": "li2-throughput/2", "entries": [{"device": "x", "shape": "y", "costs": {"1": [1, 1]}, '
        b'"probe_s": {"1": 0}}]}',
    ],
)
def test_a_corrupted_cache_is_measured_again_not_fatal(tmp_path, content):
    path = cache_path(str(tmp_path))
    path.write_bytes(content)
    assert read_entries(path)[0] == {} and read_entries(path)[1]  # nothing trusted, a problem named
    curve = Curve({1: 10.0, 2: 30.0, 4: 20.0})
    host = HostThroughput(settings(tmp_path), measure=lambda s, r, _t: as_cost(r, curve(r)))
    assert host.size([spec(seed=i) for i in range(4)]) == 2
    assert curve.asked == [1, 2, 4]
    doc = json.loads(path.read_text())  # rewritten as valid JSON
    (costs,) = [e["costs"] for e in doc["entries"] if e["shape"] == subbatch.shape_class(spec())]
    assert costs == {"1": [0.1, 0.1], "2": pytest.approx([2 / 30, 2 / 30], rel=1e-5), "4": [0.2, 0.2]}


def test_memory_and_max_batch_stay_hard_caps(tmp_path):
    limit = batch_limit(spec(), 64, 20 << 20)
    assert 1 < limit < 8, limit  # 20 MB holds a few of these runs, not eight
    seed_cache(tmp_path, spec(), {1: 1.0, 2: 2.0, 4: 4.0, 8: 8.0})
    calls = []

    def recorder(specs, device, **_):
        calls.append(len(specs))
        return [{"seed": s["seed"]} for s in specs]

    host = HostThroughput(settings(tmp_path, LI2_BATCH_MEMORY_MB=20), measure=lambda s, r, _t: as_cost(r, 1.0 * r))
    out = host.run(recorder, [spec(seed=i) for i in range(8)])
    assert max(calls) <= limit and sum(calls) == 8
    assert [r["seed"] for r in out] == list(range(8))  # input order
    host = HostThroughput(settings(tmp_path, LI2_MAX_BATCH=3), measure=lambda s, r, _t: as_cost(r, 1.0 * r))
    calls.clear()
    host.run(recorder, [spec(seed=i) for i in range(8)])
    assert calls == [3, 3, 2]
    calls.clear()
    HostThroughput(settings(tmp_path, LI2_SUBBATCH=5)).run(recorder, [spec(seed=i) for i in range(8)])
    assert calls == [5, 3]  # a fixed size, no measurement


def test_a_probe_the_device_cannot_run_is_never_chosen(tmp_path):
    def measure(_spec, r, _seconds):
        if r >= 4:
            raise RuntimeError("CUDA out of memory")
        return as_cost(r, 10.0 * r)

    host = HostThroughput(settings(tmp_path), measure=measure)
    assert host.size([spec(seed=i) for i in range(16)]) == 2
    assert host.measured == 4  # 1, 2, then 4 and 8 failed: the search stops
    again = HostThroughput(settings(tmp_path), measure=measure)
    assert again.size([spec(seed=i) for i in range(16)]) == 2 and again.measured == 0  # the failures are kept


@pytest.mark.parametrize("bad", ["0", "-1", "big", "2.5"])
def test_a_bad_subbatch_setting_is_named(bad):
    with pytest.raises(ConfigError, match="LI2_SUBBATCH"):
        settings_for("sqlite://", "redis://unused", LI2_SUBBATCH=bad)


# -- the worker ---------------------------------------------------------------------------------


class Spy:
    """The real li2.runner.run_batch, recording the size of every sub-batch it was given."""

    def __init__(self):
        self.sizes: list[int] = []

    def __call__(self, specs, device, **kw):
        self.sizes.append(len(specs))
        return run_batch(specs, device, **kw)


def claim_and_train(tmp_path, seeds) -> tuple[Spy, list[str], object]:
    tmp_path.mkdir(exist_ok=True)
    url = f"sqlite:///{tmp_path / 'li2.sqlite'}"
    engine = new_engine(url)
    user = add_user(engine, f"u{seeds[0]}")
    runs = [add_run(engine, user, spec(seed=s)) for s in seeds]
    spy = Spy()
    job_settings = settings_for(
        url, "redis://unused", LI2_SUBBATCH="auto", LI2_WORKER_DATA_DIR=str(tmp_path), LI2_SUBBATCH_PROBE_S="0.01"
    )
    BatchJob(engine, job_settings, W, run_batch=spy).run([(r, 1) for r in runs])
    return spy, runs, engine


def assert_each_equals_alone(engine, runs, seeds):
    for run_id, seed in zip(runs, seeds, strict=True):
        assert row(engine, run_id)["status"] == "succeeded"
        with session_scope(engine) as s:
            got = s.get(Result, run_id).metrics_json
        alone = run_batch([spec(seed=seed)], "cpu")[0]["metrics"]
        assert got["epoch"] == alone["epoch"]
        assert got["train_acc"] == alone["train_acc"] and got["test_acc"] == alone["test_acc"]
        np.testing.assert_allclose(got["test_loss"], alone["test_loss"], rtol=0, atol=1e-5)


def test_a_claimed_batch_trains_in_sub_batches_of_the_learned_size_and_a_restart_reuses_it(tmp_path, monkeypatch):
    seeds = list(range(8))
    spy, runs, engine = claim_and_train(tmp_path / "a", seeds)
    path = cache_path(str(tmp_path / "a"))
    (entry,) = read_entries(path)[0].values()
    assert entry.shape == subbatch.shape_class(spec()) and 1 in entry.costs  # measured, stored as JSON
    training = spec()["training"]
    measured = subbatch.measured_epochs(training)
    assert 0 < measured < training["epochs"]  # the cost model weighs both kinds of epoch
    rates = {r: subbatch.run_rate(r, c, training["epochs"], measured) for r, c in entry.costs.items()}
    learned = subbatch.choose(rates, 8)
    assert spy.sizes == [learned] * (8 // learned) + ([8 % learned] if 8 % learned else [])
    assert all(row(engine, r)["status"] == "succeeded" for r in runs)  # results: the next test
    engine.dispose()

    # a restart (new process state: new job, new cache object) with a batch of the same shape class
    # trains at the stored size without measuring again
    monkeypatch.setattr(subbatch, "measure_cost", lambda *a, **k: pytest.fail("measured again after a restart"))
    (tmp_path / "b").mkdir()
    path.rename(cache_path(str(tmp_path / "b")))
    spy, runs, engine = claim_and_train(tmp_path / "b", [10 + s for s in seeds])
    assert spy.sizes == [learned] * (8 // learned) + ([8 % learned] if 8 % learned else [])
    engine.dispose()


def test_a_batch_of_eight_splits_into_the_cached_size_and_each_run_equals_training_alone(tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    seed_cache(tmp_path / "c", spec(), {1: 10.0, 2: 30.0, 4: 20.0, 8: 15.0})  # what a slower host measured
    monkeypatch.setattr(subbatch, "measure_cost", lambda *a, **k: pytest.fail("the cached rates cover R <= 8"))
    seeds = [20 + s for s in range(8)]
    spy, runs, engine = claim_and_train(tmp_path / "c", seeds)
    assert spy.sizes == [2, 2, 2, 2]
    assert_each_equals_alone(engine, runs, seeds)
    engine.dispose()


def test_explain_prints_the_table_for_this_host(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LI2_WORKER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LI2_WORKER_DEVICE", "cpu")  # main() sets it; restored after the test
    seed_cache(tmp_path, spec(), {1: 10.0, 2: 30.0, 4: 20.0})
    assert li2lab(["worker", "--explain"]) == 0
    out = capsys.readouterr().out
    assert f"| {subbatch.shape_class(spec())} | 2 / 2 | 1: 10 / 10, 2: 30 / 30, 4: 20 / 20 |" in out
    cache_path(str(tmp_path)).write_text("{ broken")
    assert li2lab(["worker", "--explain"]) == 0
    assert "not readable JSON" in capsys.readouterr().out
