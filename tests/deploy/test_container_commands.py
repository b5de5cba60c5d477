"""The compose files' commands, run for real outside Docker.

No Docker engine runs here, but the commands the containers run are ordinary programs: this runs
the `migrate` service's command against a fresh PostgreSQL database, then the `api` service's
gunicorn command, then the healthchecks of the api and worker services exactly as written in
docker-compose.yml, against a real Redis broker — healthy while the process runs, unhealthy once
it is gone. Only the port (8000 → a free one) and `python` (→ this venv's interpreter) change.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def compose_services() -> dict:
    """docker-compose.yml with YAML merges applied (variables are not needed for the commands)."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def local(argv: list[str], port: int) -> list[str]:
    """A container command for this machine: the venv's executables, the test's port."""
    exe = argv[0]
    path = sys.executable if exe == "python" else str(BIN / exe)
    return [path] + [a.replace("8000", str(port)).replace("0.0.0.0", "127.0.0.1") for a in argv[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} not within {limit_s:.0f} s")


def healthcheck(test: list[str], env: dict, port: int = 8000) -> int:
    assert test[0] == "CMD", "exec form, so no shell is needed inside the image"
    return subprocess.run(local(test[1:], port), env=env, capture_output=True, timeout=60).returncode


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def service_env(postgres_url, redis_url, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    env.update(LI2_DATABASE_URL=postgres_url, LI2_BROKER_URL=redis_url)
    return env


def test_migrate_then_gunicorn_then_the_api_healthcheck(service_env, tmp_path):
    services = compose_services()
    migrate = subprocess.run(
        local(services["migrate"]["command"], 0),
        env=service_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    api = subprocess.Popen(
        local(services["api"]["command"], port),
        env=service_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        test = services["api"]["healthcheck"]["test"]
        wait_until(
            lambda: api.poll() is not None or healthcheck(test, service_env, port) == 0,
            60,
            "the api healthcheck passing",
        )
        assert api.poll() is None, api.stderr.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            assert answer.status == 200, "PostgreSQL and Redis are both reachable"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=10) as answer:
            assert "/api/v1/experiments" in json.load(answer)["paths"]
    finally:
        stop(api)
    assert healthcheck(test, service_env, port) != 0, "a stopped API must fail its healthcheck"


def test_the_worker_healthcheck_tells_a_live_worker_from_a_dead_one(service_env, tmp_path):
    services = compose_services()
    subprocess.run(
        local(services["migrate"]["command"], 0), env=service_env, check=True, capture_output=True, timeout=120
    )
    worker_services = [s for s in services.values() if s.get("image", "").startswith("li2lab-worker:")]
    test = worker_services[0]["healthcheck"]["test"]
    assert healthcheck(test, service_env) != 0, "no worker is running yet"
    # The container's command with the CPU instead of the reserved GPU.
    command = [a if a != "cuda" else "cpu" for a in worker_services[0]["command"]]
    worker = subprocess.Popen(
        local(command, 0), env=service_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(
            lambda: worker.poll() is not None or healthcheck(test, service_env) == 0,
            90,
            "the worker healthcheck passing",
        )
        assert worker.poll() is None, worker.stderr.read()
    finally:
        stop(worker)
    assert healthcheck(test, service_env) != 0, "a stopped worker must fail its healthcheck"


def test_the_dockerfile_and_compose_files_share_one_worker_healthcheck():
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    worker_stage = text[text.index("AS worker") :]
    image_test = json.loads(re.search(r"HEALTHCHECK[^\n]*?CMD\s+(\[.*\])", worker_stage).group(1))
    for name in ("docker-compose.yml", "docker-compose.worker.yml"):
        doc = yaml.safe_load((ROOT / name).read_text())
        found = [s for s in doc["services"].values() if s.get("image", "").startswith("li2lab-worker:")]
        assert found, name
        for svc in found:
            assert svc["healthcheck"]["test"] == ["CMD", *image_test], name


def test_the_api_image_and_compose_run_the_same_gunicorn():
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    api_stage = text[text.index("AS api") : text.index("AS worker")]
    image_cmd = json.loads(re.search(r"^CMD\s+(\[.*\])", api_stage, re.M).group(1))
    assert compose_services()["api"]["command"] == image_cmd
