"""The canonical hash of a normalised spec: equal experiments, equal hashes (dedup, batching)."""

from __future__ import annotations

import hashlib
import json


def spec_hash(spec: dict) -> str:
    """sha256 of the canonical JSON of a *normalised* spec: equal experiments, equal hashes."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()
