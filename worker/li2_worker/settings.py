"""Worker settings read from the LI2_* environment, once, into one frozen dataclass.

The values shared with the API (database and broker URLs, LI2_MAX_ATTEMPTS, LI2_MAX_BATCH) come
from ``li2_service.config.load_config`` so both sides resolve them the same way (including the
embedded SQLite broker when LI2_BROKER_URL is unset). The rest are the worker's own knobs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from li2_store.config import ConfigError, load_config

DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
DEFAULT_CACHE_DIR = "./var/cache"  # next to the embedded database and broker (li2_worker.compile_cache)


@dataclass(frozen=True)
class WorkerSettings:
    database_url: str
    broker_url: str
    broker_embedded: bool  # True: kombu SQLAlchemy transport on ./var/broker.sqlite
    heartbeat_s: float  # lease refresh + cancel poll period (LI2_HEARTBEAT_S, 5)
    lease_s: float  # a running run whose heartbeat is older is requeued (LI2_LEASE_S, 60)
    requeue_after_s: float  # a queued run unclaimed this long is re-enqueued (LI2_REQUEUE_AFTER_S, 30)
    max_attempts: int  # LI2_MAX_ATTEMPTS (3)
    max_batch: int  # runs per re-enqueued message (LI2_MAX_BATCH, 64)
    batch_memory_bytes: int  # device memory per re-enqueued batch (LI2_BATCH_MEMORY_MB, 8192)
    checkpoint_interval_s: float  # seconds between a batch's "resume" checkpoints (LI2_CHECKPOINT_INTERVAL_S, 300)
    checkpoint_every: int  # also every N epochs; 0 = off (LI2_CHECKPOINT_EVERY, 0)
    checkpoint_keep: int  # per run, the newest checkpoints kept; 0 = all (LI2_CHECKPOINT_KEEP, 0; retention.py)
    checkpoint_max_age_days: float  # ended runs' checkpoints older: deleted; 0 = never (LI2_CHECKPOINT_MAX_AGE_DAYS)
    device: str  # auto | cpu | cuda | cuda:N (LI2_WORKER_DEVICE, auto)
    time_limit_s: int  # hard Celery limit: the child is killed (LI2_TASK_TIME_LIMIT_S, 6 h)
    soft_time_limit_s: int  # soft limit: the batch fails cleanly (LI2_TASK_SOFT_TIME_LIMIT_S)
    soft_shutdown_s: float  # grace for running tasks on cold shutdown (LI2_SOFT_SHUTDOWN_S, 60)
    disable_prefetch: bool  # Celery's worker_disable_prefetch on Redis (LI2_WORKER_DISABLE_PREFETCH, 0)
    cache_dir: str  # the host's compile cache, shared by its pool children (LI2_CACHE_DIR, ./var/cache)
    subbatch: int  # runs per sub-batch; 0 = learned by throughput (LI2_SUBBATCH, auto)
    subbatch_probe_s: float  # seconds one throughput probe times (LI2_SUBBATCH_PROBE_S, 2)
    worker_data_dir: str  # this host's files, e.g. the sub-batch cache (LI2_WORKER_DATA_DIR, ./var)
    preload: bool = True  # import torch + li2.runner in the main process before forking (LI2_WORKER_PRELOAD, 1)
    dispatch: str = "fair"  # fair | fifo (LI2_DISPATCH; li2_store.dispatch)
    lookahead: int = 0  # messages out beyond one per idle slot (LI2_LOOKAHEAD, 0)
    dispatch_interval_s: float = 0.5  # dispatcher pass period (LI2_DISPATCH_INTERVAL_S, 0.5)


def _number(env: Mapping[str, str], name: str, default: float, lo: float, cast=float):
    raw = env.get(name)
    if raw in (None, ""):
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= lo:  # also rejects NaN
        raise ConfigError(f"{name} must be >= {lo}, got {raw!r}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> WorkerSettings:
    """Settings from `env` (default os.environ); raises ConfigError naming a malformed variable."""
    env = os.environ if env is None else env
    shared = load_config(env)
    device = env.get("LI2_WORKER_DEVICE") or "auto"
    if not DEVICE_RE.match(device):
        raise ConfigError(f"LI2_WORKER_DEVICE must be auto, cpu, cuda or cuda:N, got {device!r}")
    hard = _number(env, "LI2_TASK_TIME_LIMIT_S", 6 * 3600, 60, int)
    soft = _number(env, "LI2_TASK_SOFT_TIME_LIMIT_S", max(hard - 300, hard * 0.9), 30, int)
    if soft >= hard:
        raise ConfigError(f"LI2_TASK_SOFT_TIME_LIMIT_S ({soft}) must be below LI2_TASK_TIME_LIMIT_S ({hard})")
    heartbeat = _number(env, "LI2_HEARTBEAT_S", 5, 0.1)
    lease = _number(env, "LI2_LEASE_S", 60, 0.5)
    if lease <= heartbeat:
        raise ConfigError(f"LI2_LEASE_S ({lease}) must be longer than LI2_HEARTBEAT_S ({heartbeat})")
    broker = shared["BROKER_URL"]
    subbatch = env.get("LI2_SUBBATCH") or "auto"
    if subbatch != "auto" and not (subbatch.isdigit() and int(subbatch) >= 1):
        raise ConfigError(f"LI2_SUBBATCH must be auto or a positive integer, got {subbatch!r}")
    return WorkerSettings(
        database_url=shared["DATABASE_URL"],
        broker_url=broker,
        broker_embedded=shared["BROKER_EMBEDDED"],
        heartbeat_s=heartbeat,
        lease_s=lease,
        requeue_after_s=_number(env, "LI2_REQUEUE_AFTER_S", 30, 0.5),
        max_attempts=shared["MAX_ATTEMPTS"],
        max_batch=shared["MAX_BATCH"],
        batch_memory_bytes=shared["BATCH_MEMORY_MB"] << 20,
        checkpoint_interval_s=_number(env, "LI2_CHECKPOINT_INTERVAL_S", 300, 0.1),
        checkpoint_every=_number(env, "LI2_CHECKPOINT_EVERY", 0, 0, int),
        checkpoint_keep=_number(env, "LI2_CHECKPOINT_KEEP", 0, 0, int),
        checkpoint_max_age_days=_number(env, "LI2_CHECKPOINT_MAX_AGE_DAYS", 0, 0),
        device=device,
        time_limit_s=hard,
        soft_time_limit_s=soft,
        soft_shutdown_s=_number(env, "LI2_SOFT_SHUTDOWN_S", 60, 0),
        disable_prefetch=_number(env, "LI2_WORKER_DISABLE_PREFETCH", 0, 0, int) > 0,
        cache_dir=env.get("LI2_CACHE_DIR") or DEFAULT_CACHE_DIR,
        dispatch=shared["DISPATCH"],
        lookahead=shared["LOOKAHEAD"],
        dispatch_interval_s=_number(env, "LI2_DISPATCH_INTERVAL_S", 0.5, 0.05),
        subbatch=0 if subbatch == "auto" else int(subbatch),
        subbatch_probe_s=_number(env, "LI2_SUBBATCH_PROBE_S", 2.0, 0),
        worker_data_dir=env.get("LI2_WORKER_DATA_DIR") or "./var",
        preload=_number(env, "LI2_WORKER_PRELOAD", 1, 0, int) > 0,
    )
