"""A real Li2 Lab service for end-to-end tests: ``li2lab serve`` in embedded mode as a subprocess.

Embedded mode = SQLite database + kombu SQLite broker + one worker subprocess, all started by
``li2lab serve`` when LI2_BROKER_URL is unset. Users are created with ``li2lab users create``
(which prints the token alone). Used by the SDK tests (tests/client) and the browser tests
(tests/browser); each imports it by putting this folder on sys.path (pytest's importlib mode).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

BIN = Path(sys.executable).parent
# The `li2lab` executable to run (default: the one beside this Python, i.e. the project's venv).
LI2LAB = os.environ.get("LI2_TEST_LI2LAB") or str(BIN / "li2lab")
READY_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveService:
    url: str
    env: dict
    workdir: Path
    log: Path

    def create_user(self, name: str, admin: bool = False) -> str:
        """``li2lab users create NAME [--admin]`` on the service's database; returns the token."""
        out = subprocess.run(
            [LI2LAB, "users", "create", name, *(["--admin"] if admin else [])],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"users create failed: {out.stderr}"
        return out.stdout.strip()

    @property
    def database_url(self) -> str:
        return self.env["LI2_DATABASE_URL"]

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def service_env(workdir: Path, **settings: object) -> dict:
    """The environment of the server: our LI2_* settings only (none inherited), CPU worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    env.update(
        {
            "LI2_DATABASE_URL": f"sqlite:///{workdir / 'li2.sqlite'}",
            "LI2_WORKER_DEVICE": "cpu",
            "LI2_HEARTBEAT_S": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: str(v) for k, v in settings.items()})
    return env


@contextlib.contextmanager
def running_service(workdir: Path, **settings: object) -> Iterator[LiveService]:
    """Start ``li2lab serve`` (embedded broker + worker) in `workdir`, wait for /readyz, stop it after."""
    if not Path(LI2LAB).exists():
        pytest.fail(f"{LI2LAB} is missing: install the project (pip install -e .)")
    env = service_env(workdir, **settings)
    port = free_port()
    log = workdir / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [LI2LAB, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = LiveService(url=f"http://127.0.0.1:{port}", env=env, workdir=workdir, log=log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"li2lab serve exited with {proc.returncode}:\n{service.log_tail()}")
            try:
                if requests.get(service.url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"li2lab serve not ready after {READY_TIMEOUT_S} s:\n{service.log_tail()}")
            time.sleep(0.5)
        yield service
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it and the embedded worker), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=10)
