"""A real Li2 Lab stack on loopback for the fault and load tests: API, workers, Redis, PostgreSQL.

Every part is a real process started the way production starts it (`li2lab serve`, `li2lab worker`,
`redis-server`), each in its own session so a test can kill one with SIGKILL or SIGTERM exactly as a
container runtime would. Nothing is mocked: the tests observe the system only through the HTTP API
and the database, which is the service's record of truth.

Used by tests/reliability (fixtures in its conftest.py) and by bench/load_test.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# Recovery knobs of the fault tests (production defaults: 5 s, 60 s, 30 s, 300 s, 60 s). Checkpoints
# by wall time, as in production, only every second instead of every 5 minutes.
FAST_RECOVERY = {
    "LI2_HEARTBEAT_S": 1,
    "LI2_LEASE_S": 4,
    "LI2_REQUEUE_AFTER_S": 3,
    "LI2_CHECKPOINT_INTERVAL_S": 1,
    "LI2_SOFT_SHUTDOWN_S": 20,
}


def missing(what: str) -> NoReturn:
    """Skip the test for lack of `what`; in CI (LI2_REQUIRE_SERVICES=1) fail it instead."""
    if os.environ.get("LI2_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (LI2_REQUIRE_SERVICES=1)")
    pytest.skip(f"{what} is not available")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; return it, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (requests.ConnectionError, requests.Timeout) as exc:  # a server restarting
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def small_spec(epochs: int, seed: int = 1, order: int = 11, hidden: int = 64, **training: Any) -> dict:
    """A CPU-sized experiment: Z_order, K=hidden, full-batch Adam for `epochs` epochs."""
    return {
        "task": {"group": "cyclic", "order": order},
        "data": {"train_fraction": 0.5},
        "model": {"hidden": hidden},
        "training": {"epochs": epochs, "eval_every": 10, **training},
        "seed": seed,
    }


def run_locally(spec: dict, workdir: Path) -> dict:
    """The same spec trained uninterrupted by `li2lab run` (no server), single-threaded like a worker."""
    import json

    spec_path = workdir / "reference-spec.json"
    spec_path.write_text(json.dumps(spec))
    out = workdir / "reference"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [PYTHON, "-m", "li2lab", "run", str(spec_path), "--out", str(out), "--device", "cpu"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"li2lab run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return json.loads((out / "result.json").read_text())


def curves_mismatch(got: dict[str, list], want: dict[str, list], upto_epoch: int | None = None) -> list[str]:
    """Metric columns that differ between two runs (rows with epoch <= upto_epoch, or all rows).

    Values are compared exactly (NaN and null count as equal): the training is deterministic
    full-batch arithmetic on one CPU thread, so a resumed run must reproduce the same numbers.
    """
    import numpy as np

    def column(cols, name):
        return np.array([np.nan if v is None else v for v in cols[name]], dtype=float)

    g_ep, w_ep = column(got, "epoch"), column(want, "epoch")
    keep_g = g_ep <= upto_epoch if upto_epoch is not None else np.ones_like(g_ep, bool)
    keep_w = w_ep <= upto_epoch if upto_epoch is not None else np.ones_like(w_ep, bool)
    if not np.array_equal(g_ep[keep_g], w_ep[keep_w]):
        return [f"epoch rows differ: {g_ep[keep_g][:5]}... vs {w_ep[keep_w][:5]}..."]
    bad = []
    for name in sorted(set(got) | set(want)):
        if name not in got or name not in want:
            bad.append(f"{name}: only in one run")
        elif not np.array_equal(column(got, name)[keep_g], column(want, name)[keep_w], equal_nan=True):
            bad.append(name)
    return bad


# Installed as `sitecustomize` in a process whose host clock must be wrong by LI2_TEST_CLOCK_OFFSET_S
# seconds: Python runs it at start-up, before any application import, so every reader of the wall
# clock (time.time, time.time_ns, datetime.now/utcnow/today, logging) in the process and in its
# forked pool children sees the skewed time. Monotonic clocks are left alone, like NTP would.
SKEWED_CLOCK = """
import datetime as _dt
import os as _os
import time as _time

_offset = float(_os.environ["LI2_TEST_CLOCK_OFFSET_S"])
_real_time, _real_time_ns = _time.time, _time.time_ns
_time.time = lambda: _real_time() + _offset
_time.time_ns = lambda: _real_time_ns() + int(_offset * 1e9)


class _SkewedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.fromtimestamp(_time.time(), tz)

    @classmethod
    def utcnow(cls):
        return cls.fromtimestamp(_time.time(), _dt.timezone.utc).replace(tzinfo=None)

    @classmethod
    def today(cls):
        return cls.fromtimestamp(_time.time())


_dt.datetime = _SkewedDatetime
"""


def skewed_clock_env(workdir: Path, offset_s: float, env: dict[str, str]) -> dict[str, str]:
    """`env` for a process whose host clock is `offset_s` seconds off (see SKEWED_CLOCK)."""
    folder = workdir / f"clock{offset_s:+g}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SKEWED_CLOCK)
    path = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, "LI2_TEST_CLOCK_OFFSET_S": str(offset_s)}


class Proc:
    """One child process in a session of its own (so a signal reaches its whole process group)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, sig: int) -> None:
        """Send `sig` to the main process only (what `docker stop` does to PID 1)."""
        if self.alive():
            os.kill(self.pid, sig)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to every process of the group (a container being killed takes all of them)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL for whatever of the group is left after `grace` seconds."""
        if self.alive():
            self.kill_group(signal.SIGTERM)
            self.wait(grace)
        self.kill_group(signal.SIGKILL)
        self.wait(5)
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


class RedisServer:
    """A private redis-server on a free loopback port (never the shared one on 6379).

    No persistence (`--save "" --appendonly no`): a restart loses every queued message, which is the
    worst case the service must survive by re-enqueueing from the database.
    """

    def __init__(self, workdir: Path):
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Proc | None = None

    def start(self) -> None:
        argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--maxmemory-policy",
            "noeviction",
        ]
        self.proc = Proc(f"redis-{self.port}", argv, dict(os.environ), self.dir)
        wait_until(self.ping, 10, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


class PostgresServer:
    """A private PostgreSQL server on a free loopback port (never the shared one on 5432).

    `initdb` into a fresh folder under the system temp dir, then `pg_ctl start`/`stop`, so a test
    can stop and restart the database under a running stack. PostgreSQL refuses to run as root;
    as root the commands run as the `postgres` OS user (`runuser`), which owns the folder. fsync is
    off: the tests restart the server cleanly (`pg_ctl stop -m fast`, which ends every session at
    once, as a restart or failover does), they do not test the disk.
    """

    def __init__(self) -> None:
        import glob
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(bins[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="li2-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self._as_postgres, str(self.bin / tool), *args], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown: every session is terminated at once, then the server exits."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def create_database(self, name: str) -> str:
        """A new database on this server; its URL."""
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def close(self) -> None:
        import shutil

        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of the test's own on a free port (the test may stop and restart it).

    A fixture (import it into a conftest or a test module), kept beside the server it starts.
    """
    try:
        server = PostgresServer()
    except (FileNotFoundError, KeyError) as exc:  # no server binaries, no `postgres` OS user
        missing(f"a PostgreSQL server install ({exc})")
    server.start()
    yield server
    server.close()


class Api:
    """A minimal HTTP client for /api/v1 (the tests check raw status codes, so not the SDK)."""

    def __init__(self, base_url: str, token: str | None):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.request(method, f"{self.base}/api/v1{path}", **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)


class Stack:
    """Database + broker + API + workers, all real, all on 127.0.0.1, all stopped by `close()`.

    `env` holds the LI2_* settings every process of the stack shares; the fault tests shorten the
    heartbeat, lease and re-enqueue intervals so recovery happens within seconds.
    """

    def __init__(self, database_url: str, broker_url: str, workdir: Path, **settings: Any):
        from li2_store.db import make_engine
        from li2_store.migrate import prepare_database

        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.broker_url = broker_url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
        self.env.update(
            {
                "LI2_DATABASE_URL": database_url,
                "LI2_BROKER_URL": broker_url,
                "LI2_WORKER_DEVICE": "cpu",
                "LI2_WORKER_DATA_DIR": str(workdir / "var"),  # the learned sub-batch sizes, per test
                "LI2_SUBBATCH_PROBE_S": "0.05",  # a multi-run batch's first probes stay short
                "PYTHONUNBUFFERED": "1",
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            }
        )
        self.env.update({k: str(v) for k, v in settings.items()})
        self.engine = make_engine(database_url)
        prepare_database(self.engine)  # the Alembic migrations, as production runs them
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_proc: Proc | None = None
        self.workers: dict[str, Proc] = {}
        self._api_starts = 0

    # ---- processes -------------------------------------------------------------------------

    def start_api(self, server: str = "serve") -> Proc:
        """Start the API on this stack's fixed port and wait until /healthz answers.

        server="serve" runs `li2lab serve` (the werkzeug-based server the README uses);
        server="gunicorn" runs gunicorn (2 processes × 8 threads), the production layout.
        """
        self._api_starts += 1
        if server == "gunicorn":
            argv = [
                PYTHON,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "8",
                "--worker-class",
                "gthread",
                "--timeout",
                "60",
                "li2_service.wsgi:app",
            ]
        else:
            argv = [PYTHON, "-m", "li2lab", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.api_proc = Proc(f"api-{self._api_starts}", argv, self.env, self.logs)
        wait_until(self._healthy, 60, f"the API on port {self.port} (log: {self.api_proc.log_path})", 0.2)
        return self.api_proc

    def _healthy(self) -> bool:
        if self.api_proc is not None and not self.api_proc.alive():
            raise AssertionError(f"the API exited early:\n{self.api_proc.log()[-3000:]}")
        return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200

    def stop_api(self) -> None:
        if self.api_proc is not None:
            self.api_proc.stop()
            self.api_proc = None

    def start_worker(self, name: str, clock_offset_s: float | None = None, **extra_env: Any) -> Proc:
        """Start one `li2lab worker` (Celery, prefork, concurrency 1) on the CPU.

        `clock_offset_s`: the worker's host clock is that many seconds off (SKEWED_CLOCK).
        """
        env = dict(self.env)
        env.update({k: str(v) for k, v in extra_env.items()})
        if clock_offset_s is not None:
            env = skewed_clock_env(self.workdir, clock_offset_s, env)
        argv = [PYTHON, "-m", "li2lab", "worker", "--device", "cpu"]
        proc = Proc(f"worker-{name}", argv, env, self.logs)
        self.workers[name] = proc
        return proc

    def worker_holding(self, exp_id: str) -> str:
        """Name of the worker whose lease holds the run (claimed_by is "li2-<main pid>@host/<child pid>")."""
        claimed = self.experiment(exp_id)["claimed_by"] or ""
        for name, proc in self.workers.items():
            if claimed.startswith(f"li2-{proc.pid}@"):
                return name
        raise AssertionError(f"run {exp_id} is claimed by {claimed!r}, none of {list(self.workers)}")

    def close(self) -> None:
        for proc in self.workers.values():
            proc.stop(grace=5)
        self.stop_api()
        self.engine.dispose()

    def note(self, event: str) -> None:
        """Append a timestamped line to logs/events.log (the test's own actions, next to the process logs)."""
        from datetime import datetime

        with open(self.logs / "events.log", "a") as f:
            f.write(f"[{datetime.now(UTC).isoformat(timespec='milliseconds')}] {event}\n")

    # ---- accounts and HTTP -----------------------------------------------------------------

    def create_user(self, name: str, admin: bool = False) -> str:
        """A new account; returns its token (the database keeps only the hash)."""
        from li2_service.auth import create_user
        from li2_store.db import session_scope

        with session_scope(self.engine) as session:
            return create_user(session, name, admin=admin)

    def api(self, token: str | None) -> Api:
        return Api(self.base_url, token)

    # ---- the database, read directly (the record of truth) ---------------------------------

    def experiment(self, exp_id: str) -> dict:
        """The experiments row as a dict."""
        from li2_store import models

        with self.engine.connect() as c:
            row = (
                c.execute(sa.select(models.Experiment.__table__).where(models.Experiment.id == exp_id)).mappings().one()
            )
            return dict(row)

    def count(self, model, **where: Any) -> int:
        """Rows of `model` matching the equality filters."""
        table = model.__table__
        stmt = sa.select(sa.func.count()).select_from(table)
        for col, val in where.items():
            stmt = stmt.where(table.c[col] == val)
        with self.engine.connect() as c:
            return int(c.scalar(stmt))

    def resume_checkpoint_epoch(self, exp_id: str) -> int | None:
        """Epoch of the newest "resume" checkpoint of a run (None when it has none yet)."""
        from li2_store import models

        t = models.Checkpoint.__table__
        with self.engine.connect() as c:
            return c.scalar(sa.select(sa.func.max(t.c.epoch)).where(t.c.experiment_id == exp_id, t.c.kind == "resume"))

    def assert_settled(self) -> None:
        """The resource invariant after a fault (Ray's chaos tests): no run is left queued or running."""
        from li2_store import models

        t = models.Experiment.__table__
        with self.engine.connect() as c:
            left = c.execute(
                sa.select(t.c.id, t.c.status, t.c.claimed_by).where(t.c.status.in_(("queued", "running")))
            ).all()
        assert not left, f"runs left active after the test: {left}\n{self.tail_logs()}"

    def status(self, exp_id: str) -> str:
        return self.experiment(exp_id)["status"]

    def wait_status(self, exp_id: str, statuses: tuple[str, ...], timeout: float) -> dict:
        """Wait until the run's DB status is one of `statuses`; return the row."""

        def check():
            row = self.experiment(exp_id)
            return row if row["status"] in statuses else None

        try:
            return wait_until(check, timeout, f"run {exp_id} to reach {statuses}", 0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nrow: {self.experiment(exp_id)}\n{self.tail_logs()}") from None

    def tail_logs(self, chars: int = 2500) -> str:
        """The end of every process log, for failure messages."""
        out = []
        for path in sorted(self.logs.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)
