"""The service's processes: no torch in the API, migrations = models, users CLI, serve, gunicorn.

These start real subprocesses (a few seconds each) against throw-away SQLite files.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

PY = sys.executable


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    env.update(
        {
            "LI2_DATABASE_URL": f"sqlite:///{tmp_path / 'li2.sqlite'}",
            "LI2_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        },
        **extra,
    )
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None, timeout: float = 2.0):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def _wait_until_up(url: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


def test_api_process_never_imports_torch(tmp_path):
    code = (
        "import sys\n"
        "from li2_service import create_app\n"
        "import li2_service.wsgi\n"
        "app = create_app()\n"
        "c = app.test_client()\n"
        "assert c.get('/api/v1/openapi.json').status_code == 200\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'li2.runner', 'li2.trainer'))]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([PY, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_placeholder_secrets_refuse_to_start(tmp_path):
    from li2_service import create_app
    from li2_store.config import ConfigError

    with pytest.raises(ConfigError, match="LI2_DATABASE_URL"):
        create_app({"DATABASE_URL": "postgresql+psycopg://li2:CHANGE_ME@db/li2"})
    env = _env(tmp_path, LI2_BROKER_URL="redis://:CHANGE_ME@redis:6379/0")
    done = subprocess.run([PY, "-m", "li2lab", "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "LI2_BROKER_URL" in done.stderr


def _schema_diff(url: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from li2_store.models import Base

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    return diff


def test_migration_builds_exactly_the_models_schema(db_url, tmp_path):
    if db_url.startswith("postgresql"):  # the shared database was made by create_all: start empty
        engine = sa.create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    done = subprocess.run(
        [PY, "-m", "li2lab", "migrate"],
        env={**_env(tmp_path), "LI2_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _schema_diff(db_url) == []
    again = subprocess.run(
        [PY, "-m", "li2lab", "migrate"],
        env={**_env(tmp_path), "LI2_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr  # idempotent


def test_users_create_prints_only_the_token_once(tmp_path):
    env = _env(tmp_path)

    def run(*a):
        return subprocess.run(
            [PY, "-m", "li2lab", "users", *a],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = run("create", "ada", "--admin")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and len(token) >= 40
    assert run("create", "ada").returncode == 1  # names are unique
    assert run("create", "../etc").returncode == 2
    from li2_service.auth import hash_token

    engine = sa.create_engine(env["LI2_DATABASE_URL"])
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT name, token_hash, is_admin FROM users")).one()
    engine.dispose()
    assert row == ("ada", hash_token(token), True)


def test_serve_answers_and_stops_on_sigterm(tmp_path):
    """`li2lab serve` with a broker URL set (no embedded worker): health, auth, submit, clean exit."""
    env = _env(tmp_path)
    token = subprocess.run(
        [PY, "-m", "li2lab", "users", "create", "eve"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    port = _free_port()
    proc = subprocess.Popen(
        [PY, "-m", "li2lab", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base + "/healthz", proc)
        assert _get(base + "/readyz") == (200, {"status": "ok", "checks": {"database": "ok", "broker": "ok"}})
        with pytest.raises(urllib.error.HTTPError) as no_token:
            _get(base + "/api/v1/experiments")
        assert no_token.value.code == 401
        assert _get(base + "/api/v1/experiments", token)[1]["total"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode in (0, 128 + signal.SIGTERM)


def test_embedded_worker_is_restarted_and_stopped(tmp_path):
    from li2lab.serve import EmbeddedWorker

    worker = EmbeddedWorker(cmd=[PY, "-c", "import time; time.sleep(600)"], restart_pause_s=0.1)
    worker.start()
    first = worker.proc
    first.kill()
    end = time.monotonic() + 20
    while worker.proc is first and time.monotonic() < end:
        time.sleep(0.05)
    second = worker.proc
    assert second is not first and second.poll() is None
    worker.stop()
    assert second.poll() is not None and first.poll() is not None


def test_gunicorn_serves_the_wsgi_app(tmp_path):
    env = _env(tmp_path)
    subprocess.run([PY, "-m", "li2lab", "migrate"], env=env, check=True, capture_output=True, timeout=60)
    port = _free_port()
    gunicorn = Path(PY).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "1", "li2_service.wsgi:app"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/healthz", proc)
        status, doc = _get(f"http://127.0.0.1:{port}/api/v1/openapi.json")
        assert status == 200 and "/api/v1/experiments" in doc["paths"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
