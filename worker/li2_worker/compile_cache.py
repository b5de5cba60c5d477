"""A host's persistent compile cache, shared by its worker processes (LI2_CACHE_DIR).

Every batch trains in a fresh pool child (celery_app: one task per child), so whatever a batch
compiles with torch.compile (CUDA batches above `li2.trainer.FUSE_MIN_WORK`, or any batch with
LI2_COMPILE=1, on the CPU too) would be compiled again by the next child. Inductor and Triton keep
their compiled graphs and kernels on disk and reuse them in any process that points at the same
folders, so the worker's main process points them, before any child is forked, at folders under
one directory of the worker's own:

    <LI2_CACHE_DIR>/inductor   TORCHINDUCTOR_CACHE_DIR (FX graphs, AOT autograd, C++/Triton code)
    <LI2_CACHE_DIR>/triton     TRITON_CACHE_DIR (CUDA kernels)

The default is ./var/cache, next to the worker's other data (./var), so the cache survives worker
restarts (and, on a mounted volume, container restarts), unlike inductor's default under /tmp. A
variable the operator set already is kept. Nothing else is shared between children: each batch is
still its own process with its own CUDA context. What is cached is derived from our own code and
the batch's shapes only, never from user input; the folders are created 0700 and must be real
directories owned by this user (a symlink or someone else's folder is refused).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import MutableMapping
from pathlib import Path

from li2_store.config import ConfigError

log = logging.getLogger(__name__)

SUBDIRS = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}


def _safe_dir(path: Path) -> None:
    """Create `path` (0700) if missing; refuse a symlink, a non-directory or another user's folder."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise ConfigError(f"LI2_CACHE_DIR: cannot create {path}: {exc.strerror}") from None
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"LI2_CACHE_DIR: {path} must be a directory, not a link or a file")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"LI2_CACHE_DIR: {path} belongs to another user; give the worker a folder of its own")


def configure(cache_dir: str, env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Point the compile caches at folders under `cache_dir` (WorkerSettings.cache_dir, from
    LI2_CACHE_DIR) in `env` (default os.environ), creating them.

    Called by the worker's main process before Celery forks its children, which inherit `env`.
    Returns {variable: folder} as set (a variable already in `env` is kept as it is)."""
    env = os.environ if env is None else env
    root = Path(cache_dir).expanduser().absolute()
    _safe_dir(root)
    chosen = {}
    for var, sub in SUBDIRS.items():
        if not env.get(var):
            _safe_dir(root / sub)
            env[var] = str(root / sub)
        chosen[var] = env[var]
    return chosen


def counters() -> dict[str, int]:
    """This process's FX-graph cache hits and misses so far ({} when torch.compile never ran here)."""
    dynamo_utils = sys.modules.get("torch._dynamo.utils")
    if dynamo_utils is None:
        return {}
    inductor = dynamo_utils.counters.get("inductor", {})
    return {k: int(inductor.get(f"fxgraph_cache_{k}", 0)) for k in ("hit", "miss")}
