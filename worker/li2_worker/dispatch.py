"""Enqueue batches of runs: what the API (and the reaper) call. Imports neither torch nor li2.runner.

A message is ``li2.run_batch(items)`` with ``items = [[run_id, attempt], ...]``, all runs of one
shape_key. It carries no spec: the worker reads everything else from the database.
"""
from __future__ import annotations

import threading
from typing import Iterable

from celery import Celery

from li2_worker import TASK_NAME

_apps: dict[str | None, Celery] = {}
_lock = threading.Lock()


def celery_for(broker_url: str | None = None) -> Celery:
    """One cached app per broker URL (None = from the environment), so each call reuses connections."""
    with _lock:
        app = _apps.get(broker_url)
        if app is None:
            from li2_worker.celery_app import make_celery

            app = _apps[broker_url] = make_celery(broker_url)
        return app


def enqueue(items: Iterable[tuple[str, int]], broker_url: str | None = None) -> None:
    """Send one ``li2.run_batch`` message for `items` ((run_id, attempt) pairs); no-op when empty."""
    payload = [[str(run_id), int(attempt)] for run_id, attempt in items]
    if payload:
        celery_for(broker_url).send_task(TASK_NAME, args=[payload])
