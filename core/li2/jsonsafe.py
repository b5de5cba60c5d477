"""`json_safe`: the one conversion of analysis output into strict JSON.

Results hold numpy scalars and arrays, torch tensors and NaN/±inf (a diagnostic that was not
measured at an epoch). Strict JSON, PostgreSQL's json type and our result files accept none of
those, so every writer (the runner, the store, the `li2lab` command) passes its output through here.
"""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """A copy of `value` that strict JSON accepts: arrays and scalars to Python, NaN/±inf to None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars, torch tensors
        return json_safe(value.tolist())
    return value
