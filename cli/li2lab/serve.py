"""`li2lab serve [--host 127.0.0.1] [--port 8000]`: the API, and in embedded mode one worker too.

With LI2_BROKER_URL unset (embedded mode) the broker is kombu's SQLAlchemy transport on
./var/broker.sqlite and this command also starts one `li2lab worker` child with the same
environment and working directory, so both derive the same broker URL: the same Celery code path
as production, with no Redis. The child is restarted if it dies and terminated when serve exits.
The API runs on werkzeug's threaded server (production uses gunicorn: li2_service.wsgi:app).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger("li2lab.serve")

WORKER_CMD = [sys.executable, "-m", "li2_worker"]  # = `li2lab worker`, same interpreter and venv
STOP_GRACE_S = 15.0


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="li2lab serve", description="run the Li2 Lab API")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    return parser


class EmbeddedWorker:
    """One `li2lab worker` child process, restarted (with a pause) if it exits while we serve."""

    def __init__(self, cmd: list[str] | None = None, restart_pause_s: float = 5.0):
        self.cmd = cmd or WORKER_CMD
        self.restart_pause_s = restart_pause_s
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="li2-worker-watch", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(self.cmd, env=dict(os.environ), cwd=os.getcwd())
        log.info("embedded worker started (pid %d)", self.proc.pid)
        return self.proc

    def _watch(self) -> None:
        proc = self.proc
        while proc is not None and not self._stopping.is_set():
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.warning("embedded worker exited with %s; restarting in %.0f s", code, self.restart_pause_s)
            if self._stopping.wait(self.restart_pause_s):
                return
            proc = self._spawn()

    def stop(self) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL after STOP_GRACE_S; a killed run's lease
        expires and the reaper requeues it, so nothing is lost."""
        self._stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("embedded worker did not stop in %.0f s; killing it", STOP_GRACE_S)
            proc.kill()
            proc.wait()


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


def main(args=None) -> int:
    """Entry point; `args` is an argv list (without 'serve') or an already-parsed Namespace."""
    from werkzeug.serving import make_server

    from li2_service.app import create_app
    from li2_service.config import load_config
    from li2_store.migrate import prepared_engine

    ns = args if isinstance(args, argparse.Namespace) else build_parser().parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config()
    engine = prepared_engine(config)
    app = create_app({**config, "ENGINE": engine})
    server = make_server(ns.host, ns.port, app, threaded=True)

    worker = None
    if config["BROKER_EMBEDDED"]:
        Path("var").mkdir(exist_ok=True)  # the SQLite broker file lives in ./var
        worker = EmbeddedWorker()
        worker.start()
    signal.signal(signal.SIGTERM, _raise_exit)
    mode = "embedded broker + 1 worker" if worker else f"broker {config['BROKER_URL'].split('@')[-1]}"
    log.info("Li2 Lab API on http://%s:%d (%s); docs at /api/v1/docs", ns.host, server.port, mode)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if worker is not None:
            worker.stop()
    return 0
