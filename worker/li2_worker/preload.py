"""Load the training stack once, in the worker's main process, before Celery forks its children.

Every batch trains in a fresh pool child (one task per child, `celery_app`), and a child that
imports torch itself pays for it on every batch: 1.6 s on this project's 2-core CPU machine, most
of a small batch's start-up (BENCHMARKS.md, "Per-batch start-up"). Imported here, in the parent,
the modules are already in every forked child's memory (copy-on-write), so a child starts in
milliseconds. This is the fork-server pattern PyTorch's own DataLoader workers rely on.

What keeps it safe:

- CUDA is never initialised in the parent. Importing torch does not touch the driver; nothing in
  the main process (Celery, the reaper, the dispatcher) calls torch. `preload` checks it after the
  imports and refuses to go on if something did, and torch itself makes a child whose parent had
  initialised CUDA fail loudly on its first CUDA call ("Cannot re-initialize CUDA in forked
  subprocess"), never silently. Each child still creates, and releases on exit, its own CUDA context.
- It runs in the main thread before the reaper's and dispatcher's threads start (a fork taken
  while another thread holds an import lock leaves the child stuck: `li2_worker.main`).
- It runs after `compile_cache.configure`, so inductor and Triton read the host cache folders
  whenever they are first used.
- The imported objects are frozen out of the garbage collector (`gc.freeze`, made for pre-fork
  servers): Celery collects before every fork, and children would otherwise copy shared pages.

`LI2_WORKER_PRELOAD=0` turns it off: each child imports torch itself, as before, and the main
process never maps torch (tests/worker/test_worker_process.py checks both ways).
"""

from __future__ import annotations

import gc
import importlib
import logging
import time

log = logging.getLogger(__name__)

# What a pool child imports to train a batch (li2_worker.tasks._load_runner and what it pulls in).
MODULES = ("torch", "li2.runner", "li2.subbatch", "li2.checkpoint")


def preload(modules: tuple[str, ...] = MODULES) -> float:
    """Import `modules` in this (parent) process; the seconds it took. Raises RuntimeError if CUDA
    is initialised afterwards: a fork of this process could then not use the GPU."""
    t0 = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    import torch

    if torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialised while preloading the worker's imports; set LI2_WORKER_PRELOAD=0")
    # Move everything imported so far out of the collector's reach: Celery runs gc.collect()
    # before every fork (80 ms over torch's objects here), and a collection in a child would
    # touch, and so copy, the pages it shares with this process.
    gc.freeze()
    seconds = time.perf_counter() - t0
    log.info("preloaded %s for the pool children in %.2f s (LI2_WORKER_PRELOAD)", ", ".join(modules), seconds)
    return seconds
