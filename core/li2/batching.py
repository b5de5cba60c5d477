"""How validated specs become batches: which runs can train together, and how many fit a device.

Runs whose `batch_key`s are equal share tensor shapes and the algorithm, and differ only in the
per-run fields the trainer holds per run (seed and split, training size, lr, weight decay,
momentum, schedule, init and output scales, ridge η, early stopping). `BatchTrainer` takes exactly
such a group, padding runs of different training sizes to the largest (a ragged batch);
`pack_batches` cuts a list of runs into groups within a count and a device-memory cap, ordered by
size so that the padding stays small. The API packs sweeps with it and the reaper packs re-sent
runs, so both make the same batches, and the local `li2lab sweep` uses it too. The message the API
sends is one batch; the worker trains it as one stacked model.

LI2_RAGGED_BATCHES=0 makes the packer keep one training size per batch (the packing before
ragged batches, kept for comparison in bench/bench_sweep.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from li2.spec.hashing import spec_hash
from li2.spec.limits import resolve_train_size, task_order
from li2.spec.schema import PRECISION_DEFAULT, precision_of

Item = TypeVar("Item")
RAGGED_ENV = "LI2_RAGGED_BATCHES"


def batch_key(spec: dict) -> str:
    """The key under which normalised specs may train in one stacked batch (32 hex characters).

    Everything a batch must share: the task, the network's shape and activation, whether V is
    ridge-solved, the loss, the optimizer, the epoch budget, the measurement cadence and the matrix
    products' precision (added to the key only when not fp32). Not the training size: runs of
    different n train in one ragged batch.
    """
    t, m, tr = spec["task"], spec["model"], spec["training"]
    shared = [
        t,
        m["hidden"],
        m["activation"],
        m["extra_layers"],
        m["embedding_trainable"],
        m["ridge_top"] is None,
        tr["loss"],
        tr["optimizer"],
        tr["epochs"],
        tr["eval_every"],
        tr["dense_until"],
        bool(tr["diagnostics"]),
        tr["diagnostics_every"],
    ]
    if precision_of(spec) != PRECISION_DEFAULT:
        shared.append(precision_of(spec))
    return spec_hash({"batch": shared, "ragged": True})[:32]


def run_memory_bytes(spec: dict, n: int | None = None, n_test: int | None = None) -> int:
    """Estimated device memory of one run inside a stacked batch (float32 training, float64 diagnostics).

    Parameters P = d·K + K·M + L·K² (+ M² for a trainable embedding), held six times over
    (value, gradient, two Adam moments, the initial copy for drift, the pre-step copy for the
    cosine step); training activations and their gradients (n, K) per layer and (n, M) outputs;
    the test forward; and the diagnostics' float64 K×K and n×K work arrays. In a ragged batch
    every run takes the batch's padded sizes: `n` the largest training size, `n_test` the largest
    test size (default: the spec's own).
    """
    m, k = task_order(spec["task"]), spec["task"]["operands"]
    model = spec["model"]
    hidden, layers = model["hidden"], model["extra_layers"]
    n = resolve_train_size(spec) if n is None else n
    n_test = m**k - n if n_test is None else n_test
    params = k * m * hidden + hidden * m + layers * hidden * hidden + (m * m if model["embedding_trainable"] else 0)
    floats = 6 * params + n * hidden * (4 + 2 * layers) + 3 * n * m + n_test * (2 * hidden + m)
    return 4 * floats + 8 * (hidden * hidden + 2 * n * hidden)


def ragged_packing() -> bool:
    """Whether the packer mixes training sizes in a batch (LI2_RAGGED_BATCHES, default on)."""
    return os.environ.get(RAGGED_ENV, "1") != "0"


def pack_batches(entries: Iterable[tuple[str, dict, Item]], max_batch: int, memory_bytes: int) -> list[list[Item]]:
    """Group (batch_key, spec, item) entries into batches of one batch_key each, in sorted key order.

    Within a key the runs are ordered by training size (stable), and cut greedily: a batch holds at
    most `max_batch` runs and, by `run_memory_bytes` at the batch's padded sizes, at most
    `memory_bytes` of device memory (always at least one run). Sorting keeps the sizes in a batch
    close, so padding stays small. With `ragged_packing()` off each batch has one training size.
    The API packs sweeps with it and the reaper packs re-sent runs, so both make the same batches.
    """
    ragged = ragged_packing()
    groups: dict[tuple[str, int], list[tuple[int, dict, Item]]] = {}
    for key, spec, item in entries:
        n = resolve_train_size(spec)
        groups.setdefault((key, 0 if ragged else n), []).append((n, spec, item))
    batches: list[list[Item]] = []
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda e: e[0])
        batch: list[tuple[int, dict, Item]] = []
        for entry in members:
            if batch and (len(batch) >= max_batch or _memory([*batch, entry]) > memory_bytes):
                batches.append([item for _, _, item in batch])
                batch = []
            batch.append(entry)
        batches.append([item for _, _, item in batch])
    return batches


def _memory(batch: list[tuple[int, dict, Item]]) -> int:
    """Estimated device memory of a size-ordered batch of (n, spec, item): every run at the padded sizes."""
    (n_min, first, _), (n_max, last, _) = batch[0], batch[-1]
    n_test = task_order(first["task"]) ** first["task"]["operands"] - n_min
    return len(batch) * run_memory_bytes(last, n_max, n_test)


def batch_limit(spec: dict, max_batch: int, memory_bytes: int) -> int:
    """Most runs shaped like `spec` in one batch: `max_batch`, and by `run_memory_bytes` within
    `memory_bytes` of device memory; always at least 1. The same caps `pack_batches` applies (there
    at a ragged batch's padded sizes); the worker's sub-batches (li2.subbatch) never exceed it."""
    return max(1, min(max_batch, memory_bytes // max(1, run_memory_bytes(spec))))
