"""A real `li2lab worker` process for the integration tests (python -m li2_worker, same code).

Each worker runs in a session of its own so the tests can SIGKILL or SIGTERM it exactly as a
container runtime would, and writes its log to a file the tests read (claims, resumes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAST_LEASES = {
    "LI2_HEARTBEAT_S": "0.5",
    "LI2_LEASE_S": "4",
    "LI2_REQUEUE_AFTER_S": "2",
    "LI2_CHECKPOINT_EVERY": "50",
    "LI2_SOFT_SHUTDOWN_S": "30",
    "LI2_SUBBATCH_PROBE_S": "0.05",  # a multi-run batch's first sub-batch-size probes stay short
}


def worker_env(db_url: str, broker_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    # One torch thread: on this shared 2-core machine, thread oversubscription makes a tiny run ~20x slower.
    env.update(FAST_LEASES, LI2_DATABASE_URL=db_url, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    if broker_url:
        env["LI2_BROKER_URL"] = broker_url
    return env


class Worker:
    """`python -m li2_worker --device cpu` started in `cwd` with `env`; log at `<cwd>/<name>.log`."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path):
        self.log_path = Path(cwd) / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "li2_worker", "--device", "cpu", "--name", f"{name}@%h"],
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL the whole worker (main process and pool child) — a crashed host."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def terminate(self, timeout: float = 120) -> int:
        """SIGTERM to the main process only (what `docker stop` sends); wait for it to exit."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def close(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)
        self._log.close()
