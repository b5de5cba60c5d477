"""A run's resume state as safetensors bytes, and back; `Cadence`, when a batch writes them.

Compact: only what resuming needs and cannot recompute. Tensors: `param.*` (W, Vt, optional U, E),
`opt.*` (optimizer moments and the step count) and `track.*` (per-node emergence epochs). The
initial weights W₀, V₀ (for the drift metrics) are *not* stored: `li2.model.init_params` draws them
again, bit for bit, from the run's own seed when the trainer is built, as it does the data split.
(Older blobs that carry `init.*` still load; those values equal the regenerated ones.) Metadata
(strings, as safetensors requires): the format tag, the epoch the state belongs to (the next epoch
to measure and step; training is deterministic full-batch, so no RNG state is needed), the spec and
the metric history so far as JSON.

Only safetensors is ever read: no pickle, so a blob cannot run code.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from safetensors.torch import load, save

FORMAT = "li2-checkpoint-v1"


def _jsonable(history: dict[str, list]) -> dict[str, list]:
    return {k: [None if isinstance(v, float) and math.isnan(v) else v for v in vals] for k, vals in history.items()}


def dump(tensors: dict[str, torch.Tensor], history: dict[str, list], epoch: int, spec: dict) -> bytes:
    """Serialise one run's state (from `BatchTrainer.run_state`) to safetensors bytes."""
    meta = {
        "format": FORMAT,
        "epoch": str(int(epoch)),
        "spec": json.dumps(spec, sort_keys=True),
        "history": json.dumps(_jsonable(history)),
    }
    return save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=meta)


def read(blob: bytes) -> tuple[dict[str, torch.Tensor], dict[str, list], int, dict]:
    """(tensors, history, epoch, spec) from `dump`'s bytes; ValueError if it is not such a blob."""
    try:
        tensors = load(blob)
        meta = _metadata(blob)
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ValueError(f"not a li2 checkpoint: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise ValueError(f"not a li2 checkpoint (format {meta.get('format')!r}, expected {FORMAT})")
    history = {k: [math.nan if v is None else v for v in vals] for k, vals in json.loads(meta["history"]).items()}
    return tensors, history, int(meta["epoch"]), json.loads(meta["spec"])


def _metadata(blob: bytes) -> dict[str, str]:
    """The safetensors header's __metadata__ (8-byte little-endian length, then a JSON header)."""
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]).get("__metadata__", {})


@dataclass(frozen=True)
class State:
    """One run's state at `epoch`, already on the host and detached from training (its own tensor
    copies and history lists), so it can be serialised later, on another thread, while the run
    trains on. `dump()` gives the safetensors bytes `read` takes."""

    tensors: dict[str, torch.Tensor]  # "param.W" (d, K), "opt.W.exp_avg" (d, K), …: host copies
    history: dict[str, list]  # column -> values measured so far (a copy)
    epoch: int
    spec: dict

    def dump(self) -> bytes:
        return dump(self.tensors, self.history, self.epoch, self.spec)

    @property
    def nbytes(self) -> int:
        """Tensor bytes (the blob adds a header and the history's JSON)."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


class Cadence:
    """Whether a batch writes its runs' periodic resume checkpoints at an epoch.

    Due when `interval_s` seconds of `clock` have passed since the batch's last one (so the work a
    crash can lose is bounded by time, whatever the device's speed), and, if `every` is set, also at
    every multiple of `every` epochs (an extra bound on lost epochs; on a fast device it, not the
    interval, would set the write rate). Either may be None (off). Decided once per epoch for the
    whole batch, with one clock read, so every run of a batch is checkpointed at the same epoch and
    their resumes train together again. The epochs a user asked for, epoch 0 and the last are the
    runner's business, not this class's.
    """

    def __init__(
        self,
        interval_s: float | None,
        every: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.interval_s, self.every, self.clock = interval_s, every, clock
        self._last = clock() if interval_s is not None else 0.0
        self._epoch: int | None = None
        self._due = False

    def due(self, epoch: int) -> bool:
        if epoch != self._epoch:
            self._epoch = epoch
            now = self.clock() if self.interval_s is not None else 0.0
            timed = self.interval_s is not None and now - self._last >= self.interval_s
            counted = self.every is not None and self.every > 0 and epoch % self.every == 0
            self._due = timed or counted
            if self._due:
                self._last = now
        return self._due
