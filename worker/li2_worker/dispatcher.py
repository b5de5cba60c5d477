"""The dispatcher loop: a thread of `li2lab worker`'s main process, beside the reaper.

Every LI2_DISPATCH_INTERVAL_S it registers this worker's pool slots and, in fair mode, releases
as many batches as idle slots can take (li2_store.dispatch.release_pass). Several workers may
each run one: on PostgreSQL an advisory lock lets one pass run at a time, on SQLite the write lock
does, and the guarded release UPDATE never releases a run twice. Errors are logged, not fatal.

Celery forks a fresh pool child after every task, from this same process. A fork taken while this
thread (or the reaper's) is mid-pass would copy its held locks — a module being imported lazily by
the database driver, a connection pool's mutex — into the child, which then hangs on them (we saw
a child stuck importing torch). So both loops run each pass under `pass_lock`, and `guard_forks`
(called by `li2lab worker` before its threads start) makes every fork wait for the pass in progress.
"""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy.engine import Engine

from li2_store.dispatch import release_pass
from li2_worker.settings import WorkerSettings

log = logging.getLogger(__name__)

pass_lock = threading.Lock()
"""Held by the dispatcher's and the reaper's passes; every fork waits for it (module docstring)."""
_fork_guarded = False


def guard_forks() -> None:
    """Make every fork of this process wait for the pass in progress (module docstring); once."""
    global _fork_guarded
    if not _fork_guarded:
        os.register_at_fork(
            before=pass_lock.acquire, after_in_parent=pass_lock.release, after_in_child=pass_lock.release
        )
        _fork_guarded = True


def dispatch_config(settings: WorkerSettings) -> dict:
    """The shared settings release_pass reads, from the worker's settings."""
    return {
        "DISPATCH": settings.dispatch,
        "MAX_BATCH": settings.max_batch,
        "BATCH_MEMORY_MB": settings.batch_memory_bytes >> 20,
        "BROKER_URL": settings.broker_url,
    }


def dispatch_once(engine: Engine, settings: WorkerSettings, worker: tuple[str, int, str] | None = None) -> int:
    """One pass; returns the number of batches released."""
    done = release_pass(
        engine, dispatch_config(settings), lookahead=settings.lookahead, within_s=settings.lease_s, worker=worker
    )
    for batch in done:
        log.info("dispatch: released %d run(s) of user %d", len(batch.items), batch.user_id)
    return len(done)


def run_forever(engine: Engine, settings: WorkerSettings, stop: threading.Event, worker: tuple[str, int, str]) -> None:
    """Pass after pass until `stop` is set; `worker` is (name, pool slots, device) of this process."""
    while not stop.wait(settings.dispatch_interval_s):
        with pass_lock:
            try:
                dispatch_once(engine, settings, worker)
            except Exception as exc:
                log.warning("dispatch pass failed (will retry): %s", exc)
