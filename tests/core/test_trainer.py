"""The batched trainer: batch independence, reproducibility, resume exactness, stopping, grokking."""

import math

import numpy as np
import pytest
import torch

from li2 import checkpoint
from li2.runner import run_batch
from li2.trainer import COLUMNS, BatchTrainer, is_measurement_epoch


def _curves(result):
    return result["metrics"]


def _assert_same_curves(a, b, loss_tol=1e-5):
    assert a["epoch"] == b["epoch"]
    assert a["train_acc"] == b["train_acc"] and a["test_acc"] == b["test_acc"]
    for col in ("train_loss", "test_loss"):
        np.testing.assert_allclose(a[col], b[col], rtol=0, atol=loss_tol)


def test_batched_runs_equal_individual_runs(make_spec):
    specs = [
        make_spec(seed=1, epochs=40),
        make_spec(seed=2, epochs=40, training={"lr": 0.003}),
        make_spec(seed=3, epochs=40, training={"weight_decay": 1e-2}, model={"top_init_scale": 0.5}),
    ]
    together = run_batch(specs, "cpu")
    for spec, batched in zip(specs, together, strict=False):
        alone = run_batch([spec], "cpu")[0]
        _assert_same_curves(_curves(batched), _curves(alone))
        assert batched["dataset"] == alone["dataset"]
    assert together[0]["dataset"]["hash"] != together[1]["dataset"]["hash"]  # own split per seed


@pytest.mark.parametrize(
    "variant",
    [
        {"diagnostics": True},  # mse, with each run's own (auto) diagnostic period
        {"training": {"loss": "nll"}},
        {"model": {"ridge_top": 0.5}},
    ],
    ids=["mse+diagnostics", "nll", "ridge_top"],
)
def test_a_ragged_batch_of_mixed_sizes_equals_each_run_alone(make_spec, variant):
    """Runs of different training sizes in one padded batch: each run's curves are its own."""
    specs = [
        make_spec(seed=1, epochs=30, fraction=0.3, **variant),
        make_spec(seed=2, epochs=30, fraction=0.7, **variant),
        make_spec(seed=3, epochs=30, fraction=0.5, **variant),
    ]
    trainer = BatchTrainer(specs)
    assert trainer.mask_train is not None and trainer.n_train == max(trainer.sizes)
    assert trainer.padding_share == pytest.approx(1 - sum(trainer.sizes) / (3 * trainer.n_train))
    together = run_batch(specs, "cpu")
    for spec, batched in zip(specs, together, strict=True):
        alone = run_batch([spec], "cpu")[0]
        _assert_same_curves(_curves(batched), _curves(alone))
        assert batched["dataset"] == alone["dataset"]
        assert batched["summary"]["batch"]["runs"] == 3 and alone["summary"]["batch"]["padding_share"] == 0
        for col in (
            ("gf_norm", "w_norm", "v_gap", "ftf_offdiag_ratio", "mean_concentration")
            if "diagnostics" in variant
            else ("gf_norm",)
        ):
            got, want = ([np.nan if v is None else v for v in r["metrics"][col]] for r in (batched, alone))
            np.testing.assert_allclose(got, want, rtol=1e-4, equal_nan=True)
    assert together[0]["summary"]["batch"]["padding_share"] > 0.2  # 36 and 85 of 121 samples, padded to 85


def test_early_stopping_ends_a_decided_run_and_leaves_its_batch_mates_alone(make_spec):
    # test accuracy of this Z_11 run: 0.12 at epochs 25-30, 0.08 at 35, then ≥ 0.12 from 40 on
    rule = {"threshold": 0.1, "patience_epochs": 15}
    fast = {"hidden": 64, "epochs": 80, "fraction": 0.8}
    early = make_spec(seed=1, **fast, training={"lr": 0.05, "early_stop": rule})
    plain = make_spec(seed=2, **{**fast, "fraction": 0.5}, training={"lr": 0.05})  # a ragged batch-mate
    full = make_spec(seed=1, **fast, training={"lr": 0.05})  # the early run without its stop
    stopped, mate = run_batch([early, plain], "cpu")
    s = stopped["summary"]
    assert s["stopped_early"] is True and s["stopped"] is False and not mate["summary"]["stopped_early"]
    stop = s["early_stop"]["epoch"]
    assert s["epochs_run"] == stop + 1 < 80 and stopped["metrics"]["epoch"][-1] == stop
    assert stop - s["early_stop"]["since"] >= 15 and "patience 15 epochs" in s["early_stop"]["reason"]
    m = stopped["metrics"]
    window = [a for e, a in zip(m["epoch"], m["test_acc"], strict=True) if e >= s["early_stop"]["since"]]
    assert min(window) >= 0.1 and mate["summary"]["epochs_run"] == 80
    # the batch-mate trains on exactly as alone; the stopped run's curves are the full run's, cut
    _assert_same_curves(mate["metrics"], run_batch([plain], "cpu")[0]["metrics"])
    whole = run_batch([full], "cpu")[0]["metrics"]
    _assert_same_curves(m, {c: v[: len(m["epoch"])] for c, v in whole.items()})


def test_early_stop_defaults_follow_the_success_rule(make_spec):
    spec = make_spec(epochs=300, training={"early_stop": {}})
    assert spec["training"]["early_stop"] == {"threshold": 0.99, "patience_epochs": 30}
    assert make_spec()["training"]["early_stop"] is None


def test_cpu_runs_are_reproducible_and_seed_dependent(make_spec):
    spec = make_spec(seed=4, epochs=15)
    a, b = run_batch([spec], "cpu")[0], run_batch([spec], "cpu")[0]
    assert a["metrics"] == b["metrics"]
    c = run_batch([make_spec(seed=5, epochs=15)], "cpu")[0]
    assert c["metrics"]["train_loss"] != a["metrics"]["train_loss"]


def test_measurement_cadence_and_columns(make_spec):
    spec = make_spec(epochs=23)  # dense_until 10, eval_every 5
    result = run_batch([spec], "cpu")[0]
    m = result["metrics"]
    assert m["epoch"] == [*list(range(10)), 10, 15, 20, 22]
    assert set(COLUMNS) <= set(m)
    assert all(len(v) == len(m["epoch"]) for v in m.values())
    assert m["w_drift"][0] == 0.0 and m["w_drift"][-1] > 0
    assert all(v > 0 for v in m["w_cos_step"]) and all(v > 0 for v in m["gf_norm"])
    assert m["lr"][0] == pytest.approx(0.01)
    assert result["dataset"]["train_size"] + result["dataset"]["test_size"] == 121
    assert is_measurement_epoch(spec["training"], 22) and not is_measurement_epoch(spec["training"], 21)


def test_gf_norm_is_the_papers_backpropagated_gradient(make_spec):
    """For mse, gf_norm = ‖(Y_c − P·out)·βVᵀ‖ computed by hand at epoch 0."""
    spec = make_spec(epochs=1, model={"output_scale": 2.0})
    trainer = BatchTrainer([spec])
    from li2 import model as nn

    with torch.no_grad():
        f = nn.hidden(trainer.params, trainer.rows_train, trainer.shape)
        out = nn.output(f, trainer.params["Vt"], trainer.beta)
        resid = nn.centered_targets(trainer.y_train, 11) - (out - out.mean(-1, keepdim=True))
        expected = torch.linalg.vector_norm(resid @ (2.0 * trainer.params["Vt"]).transpose(1, 2)).item()
    got = trainer.train()[0].metrics["gf_norm"][0]
    assert got == pytest.approx(expected, rel=1e-4)


def test_resume_from_a_checkpoint_continues_exactly(make_spec):
    spec = make_spec(epochs=60, seed=7)
    straight = run_batch([spec], "cpu")[0]
    blobs = {}
    run_batch([spec], "cpu", on_checkpoint=lambda i, e, st: blobs.__setitem__(e, st.dump()), checkpoint_every=30)
    assert {0, 30, 60} <= set(blobs)
    tensors, _history, epoch, saved_spec = checkpoint.read(blobs[30])
    assert epoch == 30 and saved_spec == spec and "param.W" in tensors and "opt.W.exp_avg" in tensors
    resumed = run_batch([spec], "cpu", resume=[blobs[30]])[0]
    assert resumed["metrics"] == straight["metrics"]


def test_resume_keeps_the_diagnostics_and_the_nodes_emergence(make_spec):
    """Emergence epochs are run state: a resumed run reports the same ones as a straight run."""
    spec = make_spec(epochs=40, seed=3, diagnostics=True, training={"diagnostics_every": 5})
    straight = run_batch([spec], "cpu")[0]
    blobs = {}
    run_batch([spec], "cpu", on_checkpoint=lambda i, e, st: blobs.__setitem__(e, st.dump()), checkpoint_every=20)
    resumed = run_batch([spec], "cpu", resume=[blobs[20]])[0]
    assert resumed["metrics"] == straight["metrics"]
    emergence = straight["features"]["nodes"]["emergence_epoch"]
    assert resumed["features"]["nodes"]["emergence_epoch"] == emergence
    assert any(e is not None for e in emergence) and straight["timeline"]["emergence"]["nodes"] > 0


def test_a_stopped_run_leaves_the_batch_and_says_so(make_spec):
    specs = [make_spec(seed=1, epochs=40), make_spec(seed=2, epochs=40)]
    asked = {"n": 0}

    def stop():
        asked["n"] += 1
        return {1} if asked["n"] >= 3 else set()

    blobs = {}
    res = run_batch(specs, "cpu", should_stop=stop, on_checkpoint=lambda i, e, st: blobs.__setitem__((i, e), st.dump()))
    assert res[1]["summary"]["stopped"] is True and res[1]["metrics"]["epoch"][-1] == 2
    assert res[0]["summary"]["stopped"] is False and res[0]["metrics"]["epoch"][-1] == 39
    alone = run_batch([specs[0]], "cpu")[0]
    _assert_same_curves(res[0]["metrics"], alone["metrics"])
    # the stop left a checkpoint at epoch 3; resuming from it finishes exactly like an unstopped run
    resumed = run_batch([specs[1]], "cpu", resume=[blobs[(1, 3)]])[0]  # epochs 0-2 ran in a batch of 2
    _assert_same_curves(resumed["metrics"], run_batch([specs[1]], "cpu")[0]["metrics"])


def test_progress_callback_sees_every_measurement(make_spec):
    seen = []
    run_batch([make_spec(epochs=12)], "cpu", on_progress=lambda i, e, m: seen.append((i, e, m["train_loss"])))
    assert [e for _, e, _ in seen] == [*list(range(10)), 10, 11]
    assert all(i == 0 and math.isfinite(v) for i, _, v in seen)


@pytest.mark.parametrize(
    "overrides",
    [
        {"training": {"optimizer": "sgd", "lr": 0.05}},
        {"training": {"optimizer": "adamw"}},
        {"training": {"optimizer": "muon", "lr": 0.02}},
        {"training": {"loss": "nll"}},
        {"training": {"schedule": "cosine"}},
        {"model": {"activation": "relu", "extra_layers": 1}},
        {"model": {"activation": "silu", "embedding_trainable": True}},
        {"model": {"activation": "relusqr", "top_init_scale": 0.0}},
        {"model": {"ridge_top": 0.1}},
    ],
    ids=lambda o: str(o),
)
def test_every_option_trains_and_lowers_the_training_loss(make_spec, overrides):
    spec = make_spec(epochs=25, **overrides)
    m = run_batch([spec], "cpu")[0]["metrics"]
    assert all(math.isfinite(v) for v in m["train_loss"])
    assert m["train_loss"][-1] < m["train_loss"][0]


def test_ridge_top_sets_v_to_the_ridge_solution(make_spec):
    """The trainer's own V, at every step after the first, solves the ridge normal equations
    (β²FᵀF + η)V = βFᵀY_c for the features of that step (checked in float64 against W as it was
    then), and the diagnostics measure it at the fixed point (v_gap ≈ 0) from epoch 0 on."""
    spec = make_spec(epochs=4, diagnostics=True, model={"ridge_top": 0.5, "output_scale": 2.0})
    trainer = BatchTrainer([spec])
    seen = []
    update = trainer._update

    def spy(grads, epoch):  # the parameters the step's forward used, just before the update
        seen.append({k: trainer.params[k].detach().double().clone() for k in ("W", "Vt")})
        update(grads, epoch)

    trainer._update = spy
    metrics = trainer.train()[0].metrics
    from li2 import model as nn

    for p in seen[1:]:  # W has moved by at least one step
        f = nn.hidden({"W": p["W"]}, trainer.rows_train, trainer.shape)  # (1, n, K)
        Y = nn.centered_targets(trainer.y_train, 11).double()
        lhs = 4.0 * f.transpose(1, 2) @ f @ p["Vt"] + 0.5 * p["Vt"]
        rhs = 2.0 * f.transpose(1, 2) @ Y
        torch.testing.assert_close(lhs, rhs, rtol=1e-3, atol=1e-3 * float(rhs.abs().max()))
    assert max(metrics["v_gap"]) < 1e-4


def test_reference_logged_run_groks(make_spec):
    """The reference code's own log: Z_23, K=512, sqr, mse, Adam 0.01, wd 1e-4, 90 % train, seed 5."""
    spec = make_spec(
        order=23,
        hidden=512,
        epochs=151,
        seed=5,
        fraction=0.9,
        training={"lr": 0.01, "weight_decay": 1e-4, "dense_until": 200},
    )
    res = run_batch([spec], "cpu")[0]
    m, s = res["metrics"], res["summary"]
    assert res["dataset"]["train_size"] == 476 and res["dataset"]["test_size"] == 53
    first_train = next(e for e, a in zip(m["epoch"], m["train_acc"], strict=False) if a == 1.0)
    first_test = next(e for e, a in zip(m["epoch"], m["test_acc"], strict=False) if a >= 0.99)
    assert first_train < first_test <= 150
    assert m["test_acc"][-1] >= 0.99 and s["grokked"]


def test_initial_parameters_come_from_the_seed_alone_extra_layers_and_embedding_included():
    """Resume and compact checkpoints redraw the initial weights from the seed: every parameter
    (the extra residual layers and a trainable embedding too) must be drawn from the run's own
    generator, so two draws with one seed are equal and another seed differs."""
    from li2.model import Shape, init_params

    shape = Shape(order=7, operands=2, hidden=16, activation="sqr", extra_layers=2, embedding_trainable=True)
    a, b = init_params(shape, [3], [1.0]), init_params(shape, [3], [1.0])
    other = init_params(shape, [4], [1.0])
    assert set(a) == {"W", "Vt", "U", "E"}
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
        assert not torch.equal(a[name], other[name]), name


def test_a_trainable_embedding_is_a_parameter_and_learns(make_spec):
    """model.embedding_trainable gives each run its own (M, M) embedding E that the optimizer moves;
    without it there is no E (the one-hot input is fixed)."""
    fixed = BatchTrainer([make_spec()], "cpu")
    assert "E" not in fixed.params
    trainer = BatchTrainer([make_spec(model={"embedding_trainable": True})], "cpu")
    start = trainer.params["E"].clone()  # (R, M, M)
    assert start.shape == (1, 11, 11)
    trainer.train()
    assert not torch.equal(trainer.params["E"], start)
