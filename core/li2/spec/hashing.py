"""The canonical hash of a normalised spec: equal experiments, equal hashes (dedup, batching)."""

from __future__ import annotations

import hashlib
import json

# Fields added after specs were first stored, with the default that means "as before". At that
# default a field is left out of the hash, so a spec hashes as it did before the field existed
# (stored results still dedup); any other value is hashed, since it changes the results.
LATER_DEFAULTS = {("training", "precision"): "fp32", ("training", "early_stop"): None}


def spec_hash(spec: dict) -> str:
    """sha256 of the canonical JSON of a *normalised* spec: equal experiments, equal hashes."""
    blob = json.dumps(_without_later_defaults(spec), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _without_later_defaults(spec: dict) -> dict:
    """`spec` without the LATER_DEFAULTS fields that hold their default (a shallow copy if any)."""
    out = spec
    for (section, name), default in LATER_DEFAULTS.items():
        part = out.get(section)  # out: a field removed before, in the same section, stays removed
        if isinstance(part, dict) and name in part and part[name] == default:
            if out is spec:
                out = dict(spec)
            out[section] = {k: v for k, v in part.items() if k != name}
    return out
