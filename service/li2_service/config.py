"""The API's configuration: the shared settings (`li2_store.config`) plus the API's own limits.

Every knob of the API is read here, once, so the rest of the package takes a plain dict and tests
can pass their own. The API never reads worker-only settings (leases, time limits): a worker
misconfiguration cannot stop the API from accepting and enqueueing runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from li2_store import config as shared


def load_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the LI2_* environment into the settings dict `create_app` understands."""
    env = os.environ if env is None else env
    return {
        **shared.load_config(env),
        # Abuse guards only; the quota that measures work is MAX_COMPUTE_PFLOP (li2_service.limits).
        "MAX_ACTIVE_PER_USER": shared.env_int(env, "LI2_MAX_ACTIVE_PER_USER", 10_000),
        "MAX_SWEEP_RUNS": shared.env_int(env, "LI2_MAX_SWEEP_RUNS", 10_000),
        "MAX_COMPUTE_PFLOP": shared.env_int(env, "LI2_MAX_COMPUTE_PFLOP", 50),
        "MAX_BODY_BYTES": shared.env_int(env, "LI2_MAX_BODY_BYTES", 1 << 20),
        "RETRY_AFTER_S": shared.env_int(env, "LI2_RETRY_AFTER_S", 30),
        "HIGH_ALLOWANCE": shared.env_int(env, "LI2_HIGH_ALLOWANCE", 8, lo=0),  # li2_service.priority
    }
