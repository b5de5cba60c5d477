"""Sending work to the workers: Celery messages by task name, from a producer that knows only the broker.

A message is ``li2.run_batch(items)`` with ``items = [[run_id, attempt], ...]``: one batch of runs
that train together. It carries no spec; the worker reads everything else from the database. The
API and the reaper send through `send_batch`. This module never imports the worker's code or its
settings: the task is named, not imported, so the API can enqueue even where the worker's own
configuration would not load.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from celery import Celery

TASK_NAME = "li2.run_batch"
"""The one task the workers run (`li2_worker.tasks`); the name is the contract, not the import."""

_apps: dict[str, Celery] = {}
_lock = threading.Lock()


def _forget_inherited_connections() -> None:
    """In a forked child: drop the parent's cached apps and kombu's cached SQLAlchemy engines.

    A broker connection must not cross a fork. A Redis socket shared by two processes interleaves
    their commands; an SQLite connection shared across a fork corrupts its lock state, and the
    child's copy of the parent's pool counts connections it can never get back (a worker's pool
    child once stalled on "QueuePool limit ... reached"). So the child builds its own: a new app
    on first use, and new connections from each engine kombu keeps per broker file
    (``dispose(close=False)`` leaves the parent's connections open for the parent).
    """
    global _lock
    _apps.clear()
    _lock = threading.Lock()
    transport = sys.modules.get("kombu.transport.sqlalchemy")
    for engine, _session in getattr(getattr(transport, "Channel", None), "_engines", {}).values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def transport_options(url: str) -> dict[str, Any]:
    """SQLite transport: create the file's folder; wait for its lock rather than fail at once."""
    if url.startswith(("sqla+sqlite:///", "sqlalchemy+sqlite:///")):
        Path(url.split("sqlite:///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"timeout": 30}}
    return {}


def producer_app(broker_url: str) -> Celery:
    """A minimal Celery app on `broker_url` (JSON only), cached per URL so connections are reused."""
    with _lock:
        app = _apps.get(broker_url)
        if app is None:
            app = Celery("li2-producer", broker=broker_url, set_as_current=False)
            app.conf.update(
                task_serializer="json",
                accept_content=["json"],
                task_ignore_result=True,
                broker_connection_retry_on_startup=True,
                broker_transport_options=transport_options(broker_url),
            )
            _apps[broker_url] = app
        return app


def send_batch(items: Iterable[tuple[str, int]], broker_url: str) -> None:
    """Send one ``li2.run_batch`` message for `items` ((run_id, attempt) pairs); no-op when empty."""
    payload = [[str(run_id), int(attempt)] for run_id, attempt in items]
    if payload:
        producer_app(broker_url).send_task(TASK_NAME, args=[payload])
