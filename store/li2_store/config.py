"""Settings every Li2 Lab process shares, read from the LI2_* environment into one flat dict.

The API and the workers both need to know where the database and the broker are and how runs are
cut into batches; those settings are read here, once, so both sides resolve them the same way
(including the embedded SQLite broker when LI2_BROKER_URL is unset). Each side adds its own knobs
on top: `li2_service.config` (request limits) and `li2_worker.settings` (leases, time limits).
Spec bounds (LI2_MAX_ORDER, ...) belong to `li2.spec.limits`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///./var/li2.sqlite"
PLACEHOLDER = "CHANGE_ME"


class ConfigError(RuntimeError):
    """The configuration cannot be used (a placeholder secret, a malformed number)."""


def embedded_broker_url(var_dir: str | os.PathLike[str] = "./var") -> str:
    """The kombu SQLAlchemy transport on a SQLite file: a Celery broker that needs no server."""
    path = Path(var_dir).resolve() / "broker.sqlite"
    return f"sqla+sqlite:///{path}"


def env_int(env: Mapping[str, str], name: str, default: int, lo: int = 1) -> int:
    """The integer in `env[name]` (default when unset or empty); ConfigError when malformed or < lo."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < lo:
        raise ConfigError(f"{name} must be >= {lo}, got {value}")
    return value


def load_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The shared settings: DATABASE_URL, BROKER_URL, BROKER_EMBEDDED and the batch limits.

    BROKER_EMBEDDED is True when LI2_BROKER_URL is unset: `li2lab serve` then starts its own
    worker over the SQLite transport, and the API enqueues to the same URL.
    """
    env = os.environ if env is None else env
    broker = env.get("LI2_BROKER_URL") or ""
    return {
        "DATABASE_URL": env.get("LI2_DATABASE_URL") or DEFAULT_DATABASE_URL,
        "BROKER_URL": broker or embedded_broker_url(),
        "BROKER_EMBEDDED": not broker,
        "MAX_ATTEMPTS": env_int(env, "LI2_MAX_ATTEMPTS", 3),
        "MAX_BATCH": env_int(env, "LI2_MAX_BATCH", 64),
        # Device memory one batch may take (li2.batching.run_memory_bytes); the smallest worker GPU's.
        "BATCH_MEMORY_MB": env_int(env, "LI2_BATCH_MEMORY_MB", 8192),
        # Dispatch (li2_store.dispatch): "fair" holds waiting runs in the database and releases them
        # per-user round-robin; "fifo" sends every batch at submit (before fair-share existed).
        "DISPATCH": _choice(env, "LI2_DISPATCH", ("fair", "fifo")),
        # Messages kept in the broker beyond one per idle worker slot (0: only what idle workers take).
        "LOOKAHEAD": env_int(env, "LI2_LOOKAHEAD", 0, lo=0),
    }


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    """`env[name]` if one of `allowed` (default: the first); ConfigError naming the variable otherwise."""
    value = env.get(name) or allowed[0]
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_secrets(config: Mapping[str, object] | None = None) -> None:
    """Refuse to start with the placeholder credentials shipped in example files.

    Raises ConfigError naming the variable when LI2_DATABASE_URL or LI2_BROKER_URL still contains
    "CHANGE_ME". Called by `create_app`, the worker's entry point and every command that opens
    the database.
    """
    if config is None:
        config = load_config()
    for key, var in (("DATABASE_URL", "LI2_DATABASE_URL"), ("BROKER_URL", "LI2_BROKER_URL")):
        if PLACEHOLDER in str(config.get(key) or ""):
            raise ConfigError(f"{var} still contains the placeholder {PLACEHOLDER}; set a real secret")
