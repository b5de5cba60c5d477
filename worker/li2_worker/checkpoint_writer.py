"""`CheckpointWriter`: serialises and stores a batch's checkpoints on a background thread.

The training thread only copies a run's state to the host (`li2.checkpoint.State`, in the runner)
and hands a write job to `submit`; the safetensors serialisation and the database transaction run
here, while training goes on. Guarantees:

- at most one write per run queued or in flight: `submit` for a run whose previous write is not
  done waits for it (back-pressure when the store is slower than the cadence), so the queue is
  bounded by the batch's run count and host memory by one state per run;
- one run's writes happen in submission order (one thread, FIFO);
- a failure is never swallowed: the first exception a job raises is re-raised on the training
  thread by the next `submit` or by `flush`, and the jobs still queued are dropped (the batch is
  about to fail; each run's previous checkpoint still stands, since a job is one transaction);
- `flush` waits until everything submitted is stored: the task calls it after training and before
  it writes final states or requeues (end of the batch, SIGTERM).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class CheckpointWriter:
    """One background thread draining a FIFO of (run key, write job) pairs."""

    def __init__(self, name: str = "li2-checkpoint-writer"):
        self._cond = threading.Condition()
        self._queue: deque[tuple[Hashable, Callable[[], None]]] = deque()
        self._pending: set[Hashable] = set()  # keys with a job queued or running
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, job: Callable[[], None]) -> None:
        """Queue `job` (serialise + store one checkpoint of run `key`); first wait while `key`'s
        previous job is queued or running. Raises the writer's first error, if any."""
        with self._cond:
            while key in self._pending and self._error is None:
                self._cond.wait()
            self._raise_error()
            if self._closing:
                raise RuntimeError("CheckpointWriter is closed")
            self._pending.add(key)
            self._queue.append((key, job))
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every submitted job is done; raise the writer's first error, if any."""
        with self._cond:
            while self._pending and self._error is None:
                self._cond.wait()
            self._raise_error()

    def close(self) -> None:
        """Stop the thread after the queued jobs (none are left after an error); does not raise."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"checkpoint write failed: {type(self._error).__name__}: {self._error}") from (
                self._error
            )

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                key, job = self._queue.popleft()
            try:
                job()
            except BaseException as exc:  # surfaced on the training thread, never swallowed
                log.exception("checkpoint write of %s failed", key)
                with self._cond:
                    if self._error is None:
                        self._error = exc
                    self._queue.clear()
                    self._pending.clear()
                    self._cond.notify_all()
                continue
            with self._cond:
                self._pending.discard(key)
                self._cond.notify_all()
