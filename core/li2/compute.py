"""Estimated compute of a run, from its spec alone: FLOPs per epoch × epochs (no torch here).

The cost of a run is dominated by the top layer, F·V with F of shape (n, K) and V of (K, M): per
training sample 2·K·M multiply-adds forward and twice that backward, so 6·K·M FLOPs; each residual
layer adds 6·K²; the bottom layer is a gather of `operands` rows of W (3·k·K adds with its
backward). Evaluation runs the forward pass over all M^k pairs every `eval_every` epochs, 2·K·M
each. A ridge top adds one K×K solve per epoch (K³/3). The constants match li2.model's products;
tests/core/test_compute.py checks the estimate against measured times on small shapes.

The service limits a user's queued and running work by the sum of these estimates
(li2_service.limits), so a Z_11, K=32 run and a Z_127, K=2048 run count for what they cost.
"""

from __future__ import annotations

from li2.spec.limits import resolve_train_size, task_order


def flops_per_epoch(spec: dict) -> float:
    """Estimated FLOPs of one training epoch of a validated spec (evaluation averaged in)."""
    m = task_order(spec["task"])
    k = spec["task"]["operands"]
    model, training = spec["model"], spec["training"]
    hidden = model["hidden"]
    n = resolve_train_size(spec)
    per_sample = 6.0 * hidden * m + 6.0 * model.get("extra_layers", 0) * hidden * hidden + 3.0 * k * hidden
    evaluation = 2.0 * hidden * m * float(m) ** k / max(1, training.get("eval_every", 10))
    ridge = hidden**3 / 3.0 if model.get("ridge_top") else 0.0
    return n * per_sample + evaluation + ridge


def run_flops(spec: dict, done_epochs: int = 0) -> float:
    """Estimated FLOPs of the epochs a run has still to train (all of them by default)."""
    return max(0, int(spec["training"]["epochs"]) - done_epochs) * flops_per_epoch(spec)
