"""The Celery app: `make_celery(broker_url)` and the module-level `app` for `celery -A`.

Settings follow "Option A" of docs/workers.md: early ack and a
prefetch of one, so a long GPU job never holds its own message unacked for Redis' visibility
timeout to redeliver; crash recovery is the database reaper's job, not the broker's. JSON only (no pickle on
the wire), no result backend (states and results live in our database), one prefork child per
worker that is replaced after every task (a fresh CUDA context each time), and time limits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

from celery import Celery
from celery.signals import worker_shutting_down

from li2_store.producer import transport_options
from li2_worker.settings import load_settings

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://")
EMBEDDED_SCHEMES = ("sqla+", "sqlalchemy+")
EMBEDDED_POLL_S = 0.1  # seconds between the embedded broker's queue polls (kombu's default: 1)


def poll_embedded_broker(seconds: float) -> None:
    """Make kombu's SQLAlchemy transport (the embedded broker) poll its queue table every
    `seconds` in this process instead of every second: a released batch waited up to that second
    before its task started (BENCHMARKS.md, sweeps). Each poll is one indexed SELECT on a local
    SQLite file. Set as the transport's class default because kombu hands every transport option
    of this transport to SQLAlchemy's create_engine, which refuses `polling_interval`."""
    from kombu.transport import sqlalchemy as kombu_sqlalchemy

    kombu_sqlalchemy.Transport.polling_interval = seconds


def make_celery(broker_url: str | None = None) -> Celery:
    """A Celery app on `broker_url` (default: LI2_BROKER_URL, or the embedded SQLite transport)."""
    settings = load_settings()
    url = broker_url or settings.broker_url
    app = Celery("li2", broker=url, include=["li2_worker.tasks"])
    if url.startswith(EMBEDDED_SCHEMES):
        poll_embedded_broker(EMBEDDED_POLL_S)
    app.conf.update(
        # Wire format: JSON only (pickle from a reachable broker is code execution).
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # No result backend: status and results are rows in our database.
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        # Option A: ack when the task starts; the visibility timeout never applies to a running job.
        task_acks_late=False,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        # Off by default (docs/workers.md): with it on, we saw a worker stop fetching after a
        # replaced child (2 of ~15 loaded runs). With it off a busy worker holds at most one
        # message, and the reaper re-sends such runs for an idle worker (LI2_REQUEUE_AFTER_S).
        worker_disable_prefetch=settings.disable_prefetch and url.startswith(REDIS_SCHEMES),
        # One child, replaced after each task: GPU memory goes back to the driver between batches.
        worker_concurrency=1,
        worker_pool="prefork",
        worker_max_tasks_per_child=1,
        # Time limits (prefork only): soft raises inside the task, hard kills the child.
        task_time_limit=settings.time_limit_s,
        task_soft_time_limit=settings.soft_time_limit_s,
        # Never run the same job twice in parallel after a broker reconnect.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        # Cold shutdown first waits this long for the task to checkpoint and requeue itself.
        worker_soft_shutdown_timeout=settings.soft_shutdown_s,
        worker_hijack_root_logger=False,
        broker_transport_options=transport_options(url),
    )
    return app


@worker_shutting_down.connect
def _forward_shutdown_to_children(sig=None, how=None, **_kw) -> None:
    """Warm shutdown (SIGTERM to the worker): ask the running task to checkpoint and requeue.

    Celery's warm shutdown waits for the running task however long it takes, and a container stop
    kills it after a grace period. The task installs a SIGTERM handler (tasks.py) that stops its
    runs at the next epoch, keeps their checkpoints and puts them back in the queue; here, in the
    main process, we pass the signal on to the pool children so that happens now.
    """
    import billiard.process

    for child in billiard.process.active_children():
        if child.pid:
            log.info("li2: %s shutdown, asking pool child %s to checkpoint and requeue", how, child.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)


def __getattr__(name: str):
    """`app`, built on first use (``celery -A li2_worker.celery_app worker`` asks for it), so that
    importing this module for `make_celery` reads no environment and creates no broker file."""
    if name == "app":
        globals()["app"] = built = make_celery()
        return built
    raise AttributeError(name)
