"""Service configuration: environment variables -> one flat dict of settings.

Every knob of the API (and the embedded `li2lab serve`) is read here, once, so the rest of the
package takes a plain dict and tests can pass their own. Spec bounds (LI2_MAX_ORDER, ...) belong to
`li2.spec` and are not repeated here.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

DEFAULT_DATABASE_URL = "sqlite:///./var/li2.sqlite"
PLACEHOLDER = "CHANGE_ME"


class ConfigError(RuntimeError):
    """The configuration cannot be used (a placeholder secret, a malformed number)."""


def embedded_broker_url(var_dir: str | os.PathLike = "./var") -> str:
    """The kombu SQLAlchemy transport on a SQLite file: a Celery broker that needs no server."""
    path = Path(var_dir).resolve() / "broker.sqlite"
    return f"sqla+sqlite:///{path}"


def _int(env: Mapping[str, str], name: str, default: int, lo: int = 1) -> int:
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


def load_config(env: Mapping[str, str] | None = None) -> dict:
    """Read the LI2_* environment into the settings dict `create_app` understands.

    BROKER_EMBEDDED is True when LI2_BROKER_URL is unset: `li2lab serve` then starts its own
    worker over the SQLite transport, and the API enqueues to the same URL.
    """
    env = os.environ if env is None else env
    broker = env.get("LI2_BROKER_URL") or ""
    return {
        "DATABASE_URL": env.get("LI2_DATABASE_URL") or DEFAULT_DATABASE_URL,
        "BROKER_URL": broker or embedded_broker_url(),
        "BROKER_EMBEDDED": not broker,
        "ARTIFACT_DIR": env.get("LI2_ARTIFACT_DIR") or "./var/artifacts",
        "MAX_ATTEMPTS": _int(env, "LI2_MAX_ATTEMPTS", 3),
        "MAX_ACTIVE_PER_USER": _int(env, "LI2_MAX_ACTIVE_PER_USER", 200),
        "MAX_SWEEP_RUNS": _int(env, "LI2_MAX_SWEEP_RUNS", 256),
        "MAX_BATCH": _int(env, "LI2_MAX_BATCH", 64),
        # Device memory one batch may take (li2.spec.run_memory_bytes); the smallest worker GPU's.
        "BATCH_MEMORY_MB": _int(env, "LI2_BATCH_MEMORY_MB", 8192),
        "MAX_BODY_BYTES": _int(env, "LI2_MAX_BODY_BYTES", 1 << 20),
        "RETRY_AFTER_S": _int(env, "LI2_RETRY_AFTER_S", 30),
    }


def check_secrets(config: Mapping[str, object] | None = None) -> None:
    """Refuse to start with the placeholder credentials shipped in example files.

    Raises ConfigError naming the variable when LI2_DATABASE_URL or LI2_BROKER_URL still contains
    "CHANGE_ME". Called by `create_app` and by the worker's entry point.
    """
    if config is None:
        config = load_config()
    for key, var in (("DATABASE_URL", "LI2_DATABASE_URL"), ("BROKER_URL", "LI2_BROKER_URL")):
        if PLACEHOLDER in str(config.get(key) or ""):
            raise ConfigError(f"{var} still contains the placeholder {PLACEHOLDER}; set a real secret")
