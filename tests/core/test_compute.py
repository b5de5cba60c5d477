"""li2.compute: the FLOP estimate follows the model's products and tracks measured training time.

The measured comparison trains two shapes that differ only in the hidden width, on one CPU thread
with evaluation rare, and checks that the ratio of their measured times is within a factor of 3 of
the ratio of their estimates (compute-bound sizes, so per-epoch overheads are small beside it).
"""

from __future__ import annotations

import time

import pytest

from li2.compute import flops_per_epoch, run_flops
from li2.spec import validate_spec


def spec(order: int, hidden: int, epochs: int = 40, fraction: float = 0.5, **model) -> dict:
    return validate_spec(
        {
            "task": {"group": "cyclic", "order": order},
            "data": {"train_fraction": fraction},
            "model": {"hidden": hidden, **model},
            "training": {"epochs": epochs, "eval_every": 1000},
            "seed": 1,
        }
    )


def test_the_estimate_scales_with_samples_width_order_and_epochs():
    base = flops_per_epoch(spec(47, 128))
    assert flops_per_epoch(spec(47, 256)) == pytest.approx(2 * base, rel=0.01)  # linear in K
    assert run_flops(spec(47, 128, epochs=80)) == pytest.approx(2 * run_flops(spec(47, 128, epochs=40)))
    assert run_flops(spec(47, 128, epochs=80), done_epochs=60) == pytest.approx(run_flops(spec(47, 128, epochs=20)))
    # n grows as M², the per-sample cost as M: about M³ overall
    assert flops_per_epoch(spec(94, 128)) / base == pytest.approx(8, rel=0.05)
    assert flops_per_epoch(spec(47, 128, extra_layers=1)) > 1.5 * base  # a residual K×K layer
    small, large = run_flops(spec(11, 32, epochs=1)), run_flops(spec(127, 2048, epochs=1))
    assert 1e4 < large / small < 1e6  # the "about 10^4" apart per epoch, and more with n


@pytest.mark.slow
def test_the_estimate_tracks_measured_training_time():
    torch = pytest.importorskip("torch")
    from li2.runner import run_batch

    torch.set_num_threads(1)
    narrow, wide = spec(47, 128), spec(47, 1024)

    def seconds(s: dict) -> float:
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            run_batch([s], "cpu")
            best = min(best, time.perf_counter() - t0)
        return best

    measured = seconds(wide) / seconds(narrow)
    estimated = run_flops(wide) / run_flops(narrow)
    assert estimated / 3 <= measured <= estimated * 3, (measured, estimated)
