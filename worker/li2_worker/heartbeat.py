"""The lease thread: refreshes heartbeat_at of every held run and watches for cancel and takeover.

It runs beside the training loop in the task's process. Every LI2_HEARTBEAT_S it refreshes the
lease (one guarded UPDATE per run) and records which runs had a cancel requested and which leases
were lost (the reaper requeued them, or a newer attempt took over). The runner's ``should_stop``
reads those sets, so a cancel stops a run within about one heartbeat period.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

from li2_store import lease

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    def __init__(self, engine: Engine, claims: list[lease.Claim], worker_id: str, interval_s: float):
        super().__init__(name="li2-heartbeat", daemon=True)
        self.engine, self.claims, self.worker_id, self.interval_s = engine, claims, worker_id, interval_s
        self.cancelled: set[str] = set()  # run ids whose cancel was requested
        self.lost: set[str] = set()  # run ids whose lease is no longer ours
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def beat(self) -> None:
        """One lease refresh; a database error is logged and retried at the next period."""
        try:
            cancel, lost = lease.heartbeat(self.engine, self.claims, self.worker_id)
        except Exception as exc:
            log.warning("heartbeat failed (will retry): %s", exc)
            return
        with self._lock:
            self.cancelled |= cancel
            self.lost |= lost
        for run_id in lost:
            log.warning("lease on run %s lost (requeued or superseded); stopping it", run_id)

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            self.beat()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=max(5.0, 2 * self.interval_s))

    def stopped_ids(self) -> set[str]:
        """Run ids to stop now: cancelled or no longer ours."""
        with self._lock:
            return self.cancelled | self.lost
