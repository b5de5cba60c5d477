"""How validated specs become batches: which runs can train together, and how many fit a device.

Runs whose `batch_key`s are equal share tensor shapes and the algorithm, and differ only in the
per-run fields the trainer holds per run (seed and split, lr, weight decay, momentum, schedule,
init and output scales, ridge η). `BatchTrainer` takes exactly such a group; `pack_batches` cuts
a list of runs into groups within a count and a device-memory cap. The API packs sweeps with it
and the reaper packs re-sent runs, so both make the same batches, and the local `li2lab sweep`
uses it too. The message the API sends is one batch; the worker trains it as one stacked model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from li2.spec.hashing import spec_hash
from li2.spec.limits import resolve_train_size, task_order

Item = TypeVar("Item")


def batch_key(spec: dict) -> str:
    """The key under which normalised specs may train in one stacked batch (32 hex characters).

    Everything a batch must share: the task, n_train, the network's shape and activation, whether
    V is ridge-solved, the loss, the optimizer, the epoch budget and the measurement cadence.
    """
    t, m, tr = spec["task"], spec["model"], spec["training"]
    shared = [
        t,
        resolve_train_size(spec),
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
    return spec_hash({"batch": shared})[:32]


def run_memory_bytes(spec: dict) -> int:
    """Estimated device memory of one run inside a stacked batch (float32 training, float64 diagnostics).

    Parameters P = d·K + K·M + L·K² (+ M² for a trainable embedding), held six times over
    (value, gradient, two Adam moments, the initial copy for drift, the pre-step copy for the
    cosine step); training activations and their gradients (n, K) per layer and (n, M) outputs;
    the test forward; and the diagnostics' float64 K×K and n×K work arrays.
    """
    m, k = task_order(spec["task"]), spec["task"]["operands"]
    model = spec["model"]
    hidden, layers = model["hidden"], model["extra_layers"]
    n = resolve_train_size(spec)
    n_test = m**k - n
    params = k * m * hidden + hidden * m + layers * hidden * hidden + (m * m if model["embedding_trainable"] else 0)
    floats = 6 * params + n * hidden * (4 + 2 * layers) + 3 * n * m + n_test * (2 * hidden + m)
    return 4 * floats + 8 * (hidden * hidden + 2 * n * hidden)


def pack_batches(entries: Iterable[tuple[str, dict, Item]], max_batch: int, memory_bytes: int) -> list[list[Item]]:
    """Group (batch_key, spec, item) entries into batches of one batch_key each, in sorted key order.

    A batch holds at most `max_batch` runs and, by `run_memory_bytes`, at most `memory_bytes` of
    device memory (always at least one run). The API packs sweeps with it and the reaper packs
    re-sent runs, so both make the same batches.
    """
    groups: dict[str, list[Item]] = {}
    size: dict[str, int] = {}
    for key, spec, item in entries:
        if key not in groups:
            groups[key] = []
            size[key] = batch_limit(spec, max_batch, memory_bytes)
        groups[key].append(item)
    return [items[i : i + size[key]] for key, items in sorted(groups.items()) for i in range(0, len(items), size[key])]


def batch_limit(spec: dict, max_batch: int, memory_bytes: int) -> int:
    """Most runs shaped like `spec` in one batch: `max_batch`, and by `run_memory_bytes` within
    `memory_bytes` of device memory; always at least 1. `pack_batches` cuts messages by it and the
    worker's sub-batches (li2.subbatch) never exceed it."""
    return max(1, min(max_batch, memory_bytes // max(1, run_memory_bytes(spec))))
