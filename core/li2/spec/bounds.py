"""The LI2_MAX_* bounds that protect a shared server, and the validators that enforce them.

`limits()` reads every bound (LI2_MAX_<NAME> overrides each default). `Limited` and `LimitedLength`
are marshmallow validators whose maximum *is* such a bound, read when used: the spec schemas
(li2.spec.schema) validate with them, and the API's OpenAPI document reads the same `max` when it
documents a field, so the documented and the enforced bound cannot drift apart.
"""

from __future__ import annotations

import os
from typing import Any

from marshmallow import validate

# name -> default; the environment variable is LI2_MAX_<NAME>.
DEFAULTS: dict[str, int] = {
    "order": 1024,  # M, number of elements / classes
    "samples": 1 << 20,  # M ** operands, the full data set
    "operands": 4,
    "hidden": 8192,  # K
    "extra_layers": 4,
    "epochs": 100_000,
    "table_order": 128,
    "grid": 1024,  # runs in one sweep expansion
    "grid_values": 256,  # values per grid axis
    "checkpoints": 100,
}


def limit(name: str) -> int:
    """One bound: LI2_MAX_<NAME> when set to an integer, else its default."""
    raw = os.environ.get(f"LI2_MAX_{name.upper()}")
    try:
        return int(raw) if raw else DEFAULTS[name]
    except ValueError:
        return DEFAULTS[name]


def limits() -> dict[str, int]:
    """Current bounds on specs and sweeps (read from the environment each call)."""
    return {name: limit(name) for name in DEFAULTS}


def env_name(name: str) -> str:
    return f"LI2_MAX_{name.upper()}"


class Limited(validate.Range):
    """min ≤ value ≤ limit(name) + offset; the maximum is read from the environment when used."""

    def __init__(self, lo: int, name: str, offset: int = 0) -> None:
        self.name, self.offset = name, offset
        super().__init__(min=lo, error=f"must be between {{min}} and {{max}} ({env_name(name)})")

    @property  # type: ignore[override]
    def max(self) -> int:
        return limit(self.name) + self.offset

    @max.setter
    def max(self, value: Any) -> None:  # Range.__init__ assigns it; the bound is the limit
        pass


class LimitedLength(validate.Length):
    """lo ≤ len(value) ≤ limit(name), read from the environment when used."""

    def __init__(self, lo: int, name: str) -> None:
        self.name = name
        super().__init__(min=lo, error=f"must have between {{min}} and {{max}} items ({env_name(name)})")

    @property  # type: ignore[override]
    def max(self) -> int:
        return limit(self.name)

    @max.setter
    def max(self, value: Any) -> None:
        pass
