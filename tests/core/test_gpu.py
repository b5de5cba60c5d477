"""CUDA agrees with the CPU (skipped without a GPU). Run with `pytest -m gpu tests/core`."""

import numpy as np
import pytest
import torch

from li2.runner import run_batch
from li2.trainer import BatchTrainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _close(a, b, loss_atol):
    assert a["epoch"] == b["epoch"]
    for col in ("train_loss", "test_loss"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-3, atol=loss_atol)
    for col in ("train_acc", "test_acc"):
        np.testing.assert_allclose(a[col], b[col], atol=0.02)  # a rare argmax tie may flip


@pytest.mark.parametrize("fuse", [False, True], ids=["eager", "compiled"])
def test_cuda_matches_cpu(make_spec, fuse):
    spec = make_spec(order=13, hidden=64, epochs=40)
    cpu = BatchTrainer([spec], "cpu", fuse=False).train()[0].metrics
    gpu = BatchTrainer([spec], "cuda", fuse=fuse).train()[0].metrics
    _close(cpu, gpu, loss_atol=1e-4)


def test_cuda_batch_equals_runs_alone(make_spec):
    specs = [
        make_spec(order=13, hidden=64, epochs=30, seed=s, training={"lr": lr})
        for s, lr in ((1, 0.01), (2, 0.003), (3, 0.02))
    ]
    together = run_batch(specs, "cuda")
    for spec, res in zip(specs, together, strict=False):
        _close(res["metrics"], run_batch([spec], "cuda")[0]["metrics"], loss_atol=1e-5)


def test_muon_and_ridge_on_cuda_match_cpu(make_spec):
    for over in ({"training": {"optimizer": "muon", "lr": 0.02}}, {"model": {"ridge_top": 0.1}}):
        spec = make_spec(order=11, hidden=32, epochs=20, **over)
        _close(run_batch([spec], "cpu")[0]["metrics"], run_batch([spec], "cuda")[0]["metrics"], loss_atol=1e-3)


def test_reference_run_groks_on_cuda(make_spec):
    spec = make_spec(
        order=23,
        hidden=512,
        epochs=151,
        seed=5,
        fraction=0.9,
        training={"lr": 0.01, "weight_decay": 1e-4, "dense_until": 200},
    )
    res = run_batch([spec], "cuda")[0]
    assert res["environment"]["device"].startswith("cuda") and res["environment"]["device_name"]
    assert res["metrics"]["test_acc"][-1] >= 0.99


def test_tf32_and_bf16_on_cuda_stay_close_to_fp32_and_tf32_is_scoped(make_spec):
    """tf32 switches cuBLAS to TF32 only while the batch trains; both stay near the fp32 curve."""
    seen = []

    def spy(_i, _e, _row):
        seen.append(torch.backends.cuda.matmul.fp32_precision)

    before = torch.backends.cuda.matmul.fp32_precision
    fp32 = BatchTrainer([make_spec(order=13, hidden=64, epochs=30)], "cuda", fuse=False).train()[0].metrics
    for precision in ("tf32", "bf16"):
        spec = make_spec(order=13, hidden=64, epochs=30, training={"precision": precision})
        metrics = BatchTrainer([spec], "cuda", fuse=False).train(on_measure=spy)[0].metrics
        np.testing.assert_allclose(metrics["train_loss"], fp32["train_loss"], rtol=0.05)
    assert set(seen[: len(seen) // 2]) == {"tf32"}
    assert torch.backends.cuda.matmul.fp32_precision == before
