"""A real Li2 Lab service for the SDK tests: ``li2lab serve`` in embedded mode as a subprocess.

Embedded mode = SQLite database + kombu SQLite broker + one worker subprocess, all started by
``li2lab serve`` when LI2_BROKER_URL is unset. The service lives in a temporary directory for the
whole session; users are created with ``li2lab users create`` (which prints the token alone).

Limits are set low so quota errors can be triggered for real and cheaply:
LI2_MAX_ACTIVE_PER_USER=10 and LI2_MAX_SWEEP_RUNS=10 (the sweep test uses 8 runs).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

BIN = Path(sys.executable).parent
# The `li2lab` executable to run (default: the one beside this Python, i.e. the project's venv).
LI2LAB = os.environ.get("LI2_TEST_LI2LAB") or str(BIN / "li2lab")
MAX_ACTIVE = 10
MAX_SWEEP_RUNS = 10
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

    def create_user(self, name: str) -> str:
        """``li2lab users create NAME`` on the service's database; returns the token."""
        out = subprocess.run(
            [LI2LAB, "users", "create", name],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"users create failed: {out.stderr}"
        return out.stdout.strip()

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def _service_env(workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    env.update(
        {
            "LI2_DATABASE_URL": f"sqlite:///{workdir / 'li2.sqlite'}",
            "LI2_MAX_ACTIVE_PER_USER": str(MAX_ACTIVE),
            "LI2_MAX_SWEEP_RUNS": str(MAX_SWEEP_RUNS),
            "LI2_WORKER_DEVICE": "cpu",
            "LI2_HEARTBEAT_S": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def live_service(tmp_path_factory):
    """Start ``li2lab serve`` (embedded broker + worker), wait for /readyz, stop it afterwards."""
    if not Path(LI2LAB).exists():
        pytest.fail(f"{LI2LAB} is missing: install the project (pip install -e .)")
    workdir = tmp_path_factory.mktemp("li2-service")
    env = _service_env(workdir)
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
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
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


@pytest.fixture(scope="session")
def alice(live_service):
    """Token of user alice (the main test user)."""
    return live_service.create_user("alice")


@pytest.fixture(scope="session")
def client(live_service, alice):
    from li2_client import Client

    return Client(live_service.url, token=alice, timeout=30, retries=2)


# -- shared finished work (session-wide: each trains once) -----------------------------------------
TINY_EPOCHS = 150


def tiny_spec(seed: int = 1, epochs: int = TINY_EPOCHS, fraction: float = 0.9):
    """Z_11, K=64, Adam at a brisk rate: groks in ~50 epochs at fraction 0.9, seconds of CPU."""
    from li2_client import Spec

    return (
        Spec.cyclic(11)
        .train_fraction(fraction)
        .model(hidden=64, activation="sqr")
        .adam(lr=0.05, weight_decay=1e-3)
        .epochs(epochs)
        .seed(seed)
    )


@pytest.fixture(scope="session")
def finished_exp(client):
    """One tiny experiment, submitted through the SDK and waited for."""
    exp = client.submit(tiny_spec())
    return exp.wait(timeout=600, poll=0.5, progress=False)


SWEEP_GRID = {"task.order": [11, 13], "data.train_fraction": [0.3, 0.9], "seed": [1, 2]}


@pytest.fixture(scope="session")
def finished_sweep(client):
    """2 orders × 2 train sizes × 2 seeds = 8 short runs (two batches of equal shape): 0.3 of the
    pairs is below the critical size c·M·ln M, 0.9 above, so each order gets a critical size."""
    base = tiny_spec(epochs=100).eval_every(5).to_dict()
    return client.submit_sweep(base, SWEEP_GRID).wait(timeout=900, poll=1.0, progress=False)


@pytest.fixture(scope="session")
def tiny():
    """The spec factory ``tiny(seed=1, epochs=TINY_EPOCHS)`` as a fixture (tests cannot import conftest)."""
    return tiny_spec


@pytest.fixture(scope="session")
def limits():
    return {
        "max_active": MAX_ACTIVE,
        "max_sweep_runs": MAX_SWEEP_RUNS,
        "tiny_epochs": TINY_EPOCHS,
        "sweep_grid": SWEEP_GRID,
    }
