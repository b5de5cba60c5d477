"""A run's full training state as safetensors bytes, and back.

Tensors: `param.*` (W, Vt, optional U, E), `init.*` (W₀, V₀ for the drift metrics) and `opt.*`
(optimizer moments and the step count). Metadata (strings, as safetensors requires): the format
tag, the epoch the state belongs to (the next epoch to measure and step; training is deterministic
full-batch, so no RNG state is needed), the spec and the metric history so far as JSON.

Only safetensors is ever read: no pickle, so a blob cannot run code.
"""

from __future__ import annotations

import json
import math

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
