"""`li2lab serve` in embedded mode, end to end: API + SQLite broker + a real worker child.

No LI2_BROKER_URL and no LI2_DATABASE_URL: everything lives under ./var of the working directory.
A tiny experiment (Z_11, K=16, 30 epochs) goes through the real Celery path and the real trainer;
then SIGTERM stops the server and its worker child. Takes tens of seconds (torch import, training).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow
PY = sys.executable


def _call(url, token=None, body=None, method="GET"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
        return r.status, (json.loads(raw) if r.headers.get_content_type() == "application/json" else raw.decode())


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead
        return f.read().split()[2] != "Z"


def test_embedded_serve_runs_an_experiment_end_to_end(tmp_path):
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    env["LI2_WORKER_DEVICE"] = "cpu"
    token = subprocess.run(
        [PY, "-m", "li2lab", "users", "create", "tess"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [PY, "-m", "li2lab", "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                if _call(base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < end, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.3)
        spec = {"task": {"group": "cyclic", "order": 11}, "model": {"hidden": 16}, "training": {"epochs": 30}}
        status, exp = _call(base + "/api/v1/experiments", token, spec, "POST")
        assert status == 202
        end = time.monotonic() + 240
        while exp["status"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < end, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.5)
            exp = _call(f"{base}/api/v1/experiments/{exp['id']}", token)[1]
        assert exp["status"] == "succeeded", exp["error"]
        assert exp["progress"]["epoch"] == 30 and exp["summary"] is not None
        metrics = _call(f"{base}/api/v1/experiments/{exp['id']}/metrics", token)[1]["columns"]
        assert metrics["epoch"][0] == 0 and len(metrics["test_acc"]) == len(metrics["epoch"]) > 1
        csv = _call(f"{base}/api/v1/experiments/{exp['id']}/metrics?format=csv", token)[1]
        assert csv.splitlines()[0].startswith("epoch,")
        stages = _call(f"{base}/api/v1/experiments/{exp['id']}/timeline", token)[1]["stages"]
        assert stages and {s["name"] for s in stages} <= {"lazy", "independent", "interactive"}
        assert (tmp_path / "var" / "li2.sqlite").exists() and (tmp_path / "var" / "broker.sqlite").exists()
        workers = _children(proc.pid)
        assert workers, "serve started no worker child"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    assert not any(_alive(pid) for pid in workers), "the worker child outlived serve"
