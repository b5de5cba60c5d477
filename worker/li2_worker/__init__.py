"""li2_worker: the Celery side of Li2 Lab — the worker process, its task, heartbeats and the reaper.

A Celery message carries only ``[[run_id, attempt], ...]`` (one batch of runs). The database is the
record of truth: the worker's first act is an atomic claim of each ``(run_id, attempt)``
(`li2_store.lease`), a heartbeat thread keeps the lease fresh and watches for cancels, and a reaper
requeues runs whose lease went stale. Training itself is ``li2.runner.run_batch``, imported lazily
inside the task so CUDA is never initialised in Celery's parent process.

Modules: ``settings`` (environment), ``celery_app`` (the app and its Option-A settings),
``heartbeat`` (the lease thread), ``tasks`` (the ``li2.run_batch`` task), ``reaper`` (stale leases,
lost messages, sweep fan-in), ``main`` (``li2lab worker``). See docs/workers.md.
"""
