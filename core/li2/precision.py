"""The arithmetic of a run's matrix products: `training.precision` ("fp32", "tf32" or "bf16").

Numerical precision is itself a factor studied in grokking (docs/precision.md), so it is a spec
field, part of the spec hash and of the batch key, never a host setting. What each value does:

* ``fp32`` (the default and the reference): float32 everywhere, IEEE products on every device.
* ``tf32``: float32 tensors, but on CUDA every float32 matrix product of the step (the network's
  products, their backward, Muon's orthogonalisation, the test forward) runs in TensorFloat-32
  (10 stored mantissa bits) through ``torch.backends.cuda.matmul.fp32_precision``. On the CPU it
  changes nothing: the CPU path keeps IEEE float32 products, so a tf32 run on the CPU equals the
  fp32 run bit for bit (the tests check it).
* ``bf16``: mixed precision. Parameters, optimizer state, losses and metrics stay float32; the
  forward pass runs under ``torch.autocast(dtype=bfloat16)``, so the matrix products (F·V, the
  residual layers, the trainable embedding) and their backward take bfloat16 inputs with float32
  accumulation. No loss scaling is needed (bfloat16 has float32's exponent range). The first
  layer's row gathers of W and its σ, and the loss, stay float32. Works on the CPU and on CUDA (on
  this project's CPU it brought no speed-up at K = 512: BENCHMARKS.md, "Precision").

The diagnostics (`li2.diagnostics`) are float64 and outside both scopes in every mode.

The trainer uses two scopes: `Precision.step()` around the whole training loop (the process-wide
tf32 switch, restored afterwards, so nothing leaks into a later batch of the same process), and
`Precision.forward()` around each forward pass (bf16 autocast; backward follows the dtypes autograd
recorded, and `li2.model._TopLayer` casts its own backward to match).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from li2.spec.schema import PRECISIONS, precision_of

__all__ = ["PRECISIONS", "Precision", "precision_of"]


class Precision:
    """The scopes for one batch's precision on one device."""

    def __init__(self, precision: str, device: torch.device):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.name, self.device = precision, torch.device(device)

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """tf32 on CUDA: float32 matrix products in TF32 inside, the previous setting restored after.
        Every other case: nothing (fp32, bf16 whose products autocast chooses, the CPU)."""
        if self.name != "tf32" or self.device.type != "cuda":
            yield
            return
        matmul = torch.backends.cuda.matmul
        before = matmul.fp32_precision
        matmul.fp32_precision = "tf32"
        try:
            yield
        finally:
            matmul.fp32_precision = before

    def forward(self) -> contextlib.AbstractContextManager:
        """bf16: autocast to bfloat16 for the forward pass; otherwise a no-op context."""
        if self.name == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()
