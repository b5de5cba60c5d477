"""training.precision: the spec field, its place in the hash and the batch key, and what it does."""

import copy

import numpy as np
import pytest
import torch

from li2 import model as nn
from li2.batching import batch_key, pack_batches
from li2.errors import SpecError
from li2.precision import Precision
from li2.runner import run_batch
from li2.spec import spec_hash, validate_spec
from li2.trainer import BatchTrainer


def _without_precision(spec: dict) -> dict:
    """The spec as stored before training.precision existed."""
    old = copy.deepcopy(spec)
    del old["training"]["precision"]
    return old


def test_precision_defaults_to_fp32_and_a_bad_value_names_the_field_and_the_choices(make_spec):
    assert make_spec()["training"]["precision"] == "fp32"
    with pytest.raises(SpecError) as err:
        validate_spec({"task": {"group": "cyclic", "order": 5}, "training": {"precision": "fp16"}})
    assert err.value.errors == {"training.precision": ["Must be one of: fp32, tf32, bf16."]}


def test_fp32_keeps_old_hashes_and_batch_keys_other_precisions_change_both(make_spec):
    fp32 = make_spec()
    old = _without_precision(fp32)
    assert spec_hash(fp32) == spec_hash(old) and batch_key(fp32) == batch_key(old)
    others = [make_spec(training={"precision": p}) for p in ("tf32", "bf16")]
    assert len({spec_hash(s) for s in [fp32, *others]}) == 3
    assert len({batch_key(s) for s in [fp32, *others]}) == 3
    entries = [(batch_key(s), s, i) for i, s in enumerate([fp32, *others, make_spec(seed=2)])]
    assert sorted(map(sorted, pack_batches(entries, 64, 1 << 30))) == [[0, 3], [1], [2]]


def test_a_stored_spec_without_the_field_trains_as_fp32(make_spec):
    spec = make_spec(epochs=12)
    assert run_batch([_without_precision(spec)], "cpu")[0]["metrics"] == run_batch([spec], "cpu")[0]["metrics"]


def test_tf32_on_the_cpu_is_fp32_bit_for_bit_and_leaves_the_global_setting_alone(make_spec):
    before = torch.backends.cuda.matmul.fp32_precision
    fp32 = run_batch([make_spec(epochs=25)], "cpu")[0]["metrics"]
    tf32 = run_batch([make_spec(epochs=25, training={"precision": "tf32"})], "cpu")[0]["metrics"]
    assert tf32 == fp32
    assert torch.backends.cuda.matmul.fp32_precision == before


def test_bf16_changes_the_arithmetic_within_a_bounded_error(make_spec):
    """bf16 products (8 mantissa bits, relative rounding 2⁻⁸ per operand) differ from fp32 but
    stay close over a short run: training loss within 5 % at every measurement."""
    fp32 = run_batch([make_spec(epochs=30)], "cpu")[0]["metrics"]
    bf16 = run_batch([make_spec(epochs=30, training={"precision": "bf16"})], "cpu")[0]["metrics"]
    assert bf16["epoch"] == fp32["epoch"]
    assert bf16["train_loss"] != fp32["train_loss"]  # it really changes the products
    np.testing.assert_allclose(bf16["train_loss"], fp32["train_loss"], rtol=0.05)
    assert bf16["train_loss"][-1] < bf16["train_loss"][0]  # and it still trains


def test_bf16_losses_are_float32_for_both_losses(make_spec):
    """The outputs are bfloat16 under bf16; the losses are still taken in float32 (li2.model.loss_per_run)."""
    for loss in ("mse", "nll"):
        tr = BatchTrainer([make_spec(training={"precision": "bf16", "loss": loss})], "cpu")
        _, out, losses = tr._forward_train()
        assert out.dtype == torch.bfloat16 and losses.dtype == torch.float32
        exact = nn.loss_per_run(out.detach().float(), tr.y_train, loss)
        torch.testing.assert_close(losses.detach(), exact, rtol=1e-6, atol=0)


def test_bf16_batched_runs_equal_runs_alone(make_spec):
    specs = [make_spec(seed=s, epochs=20, training={"precision": "bf16"}) for s in (1, 2)]
    together = run_batch(specs, "cpu")
    for spec, batched in zip(specs, together, strict=True):
        alone = run_batch([spec], "cpu")[0]["metrics"]
        assert batched["metrics"]["train_acc"] == alone["train_acc"]
        np.testing.assert_allclose(batched["metrics"]["train_loss"], alone["train_loss"], rtol=0, atol=1e-5)


def test_bf16_top_layer_gradients_are_autograds_own_under_autocast():
    """_TopLayer's hand-written backward under autocast equals autograd's bmm backward under autocast."""
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(2, 7, 5, generator=gen, requires_grad=True)  # (R, n, K)
    Vt = torch.randn(2, 5, 3, generator=gen, requires_grad=True)  # (R, K, M)
    w = torch.randn(2, 7, 3, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = nn.output(f, Vt, None)
        ref = torch.bmm(f, Vt)
    assert ours.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), ref.float(), rtol=0, atol=0)
    g_ours = torch.autograd.grad((ours.float() * w).sum(), [f, Vt])
    g_ref = torch.autograd.grad((ref.float() * w).sum(), [f, Vt])
    for a, b in zip(g_ours, g_ref, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


def test_precision_scopes():
    with pytest.raises(ValueError, match="fp32, tf32, bf16"):
        Precision("fp16", torch.device("cpu"))
    with Precision("bf16", torch.device("cpu")).forward():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    for name in ("fp32", "tf32"):
        with Precision(name, torch.device("cpu")).forward():
            assert not torch.is_autocast_enabled("cpu")


def test_trainer_reads_precision_from_the_spec(make_spec):
    assert BatchTrainer([make_spec(training={"precision": "bf16"})], "cpu").precision.name == "bf16"
