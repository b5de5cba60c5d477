"""li2_worker: the Celery side of Li2 Lab — queue, claims, heartbeats, reaper.

A Celery message carries only ``[[run_id, attempt], ...]`` (one batch of same-shape runs). The
database is the record of truth: the worker's first act is an atomic claim of each
``(run_id, attempt)``, a heartbeat thread keeps the lease fresh and watches for cancels, and a
reaper requeues runs whose lease went stale. Training itself is ``li2.runner.run_batch``, imported
lazily inside the task so CUDA is never initialised in Celery's parent process.

Modules: ``settings`` (environment), ``celery_app`` (the app and its Option-A settings),
``dispatch`` (enqueue, for the API), ``lease`` (claim/heartbeat/finish SQL), ``heartbeat`` (the
lease thread), ``store`` (checkpoints and results), ``sweeps`` (fan-in and the scaling-law fit),
``tasks`` (the ``li2.run_batch`` task), ``reaper`` (stale leases, lost messages), ``main``
(``li2lab worker``). See docs/workers.md.
"""

TASK_NAME = "li2.run_batch"
