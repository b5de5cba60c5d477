"""Service latency under a bounded concurrent load on loopback, every answer checked for correctness.

    .venv/bin/python bench/load_test.py --clients 50 --duration 30 --write BENCHMARKS.md

It brings up its own stack with tests/reliability/stack.py: a fresh PostgreSQL
database (on LI2_TEST_POSTGRES_URL, dropped afterwards), a private redis-server, the API under
gunicorn (2 processes × 8 threads) and one CPU worker. Two phases:

1. queue-to-start, worker idle: submit small runs one at a time; for each, `started_at -
   created_at` from the API (both stamped by the server: row created → worker claimed it);
2. load: each client thread is its own user and loops until the deadline: submit a new spec
   (202), submit it again (200, cached, same id), poll its status three times, list its own runs.
   Every answer is checked: status code, body shape, ids, ownership (a list holds exactly the
   client's runs), so a fast wrong answer counts as an error, not as a latency sample.

Prints p50/p95/p99/max per request kind; --write replaces only the text between the markers
`<!-- service-latency:start -->` and `<!-- service-latency:end -->` in the given file;
--json writes the figures for tests. Exit status 1 when any answer was wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))  # the stack harness shared with the fault tests

START, END = "<!-- service-latency:start -->", "<!-- service-latency:end -->"
STATUSES = {"queued", "running", "succeeded", "failed", "cancelled"}
KINDS = ("submit", "submit (cached)", "status", "list")


def tiny_spec(seed: int) -> dict:
    """A valid, cheap experiment (the load is on the API; the worker trains what it can)."""
    return {
        "task": {"group": "cyclic", "order": 11},
        "data": {"train_fraction": 0.5},
        "model": {"hidden": 16},
        "training": {"epochs": 50, "eval_every": 10, "diagnostics": False},
        "seed": seed,
    }


class Recorder:
    """Latencies per request kind and every wrong answer, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    def timed(self, kind: str, session: requests.Session, method: str, url: str, **kw) -> requests.Response | None:
        t0 = time.perf_counter()
        try:
            r = session.request(method, url, timeout=30, **kw)
        except requests.RequestException as exc:
            self.error(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        with self.lock:
            self.latency[kind].append(time.perf_counter() - t0)
        return r

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message[:300])

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.error(message)
        return ok


def client_loop(base: str, token: str, deadline: float, rec: Recorder, seed_base: int) -> None:
    """One simulated user: submit, resubmit, poll, list, until the deadline; check every answer."""
    api = f"{base}/api/v1"
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    mine: set[str] = set()
    i = 0
    while time.monotonic() < deadline:
        i += 1
        spec = tiny_spec(seed_base + i)
        r = rec.timed("submit", s, "POST", f"{api}/experiments", json=spec)
        if r is None or not rec.check(r.status_code == 202, f"submit: {r.status_code} {r.text[:200]}"):
            continue
        body = r.json()
        exp_id = body.get("id", "")
        if not rec.check(
            re.fullmatch(r"[0-9a-f]{32}", exp_id) is not None
            and body.get("status") == "queued"
            and body.get("cached") is False
            and body.get("spec", {}).get("seed") == spec["seed"]
            and re.fullmatch(r"[0-9a-f]{64}", body.get("spec_hash", "")) is not None,
            f"submit body: {str(body)[:200]}",
        ):
            continue
        mine.add(exp_id)
        r = rec.timed("submit (cached)", s, "POST", f"{api}/experiments", json=spec)
        if r is not None:
            rec.check(
                r.status_code == 200 and r.json().get("id") == exp_id and r.json().get("cached") is True,
                f"cached submit: {r.status_code} {r.text[:200]}",
            )
        for _ in range(3):
            r = rec.timed("status", s, "GET", f"{api}/experiments/{exp_id}")
            if r is not None:
                b = r.json() if r.status_code == 200 else {}
                rec.check(
                    r.status_code == 200
                    and b.get("id") == exp_id
                    and b.get("status") in STATUSES
                    and b.get("spec") == body["spec"]
                    and 0 <= b.get("progress", {}).get("fraction", -1) <= 1,
                    f"status: {r.status_code} {r.text[:200]}",
                )
        r = rec.timed("list", s, "GET", f"{api}/experiments", params={"page_size": 500})
        if r is not None:
            b = r.json() if r.status_code == 200 else {}
            ids = {item.get("id") for item in b.get("items", [])}
            rec.check(
                r.status_code == 200 and b.get("total") == len(mine) and ids == mine,
                f"list: {r.status_code} total={b.get('total')} want {len(mine)}; foreign ids {list(ids - mine)[:3]}",
            )


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.rstrip("Z"))


def queue_to_start(base: str, token: str, samples: int) -> list[float]:
    """Seconds from row creation to the worker's claim, one run at a time on an idle worker."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    out = []
    for k in range(samples):
        r = s.post(f"{base}/api/v1/experiments", json=tiny_spec(10_000_000 + k), timeout=30)
        r.raise_for_status()
        exp_id = r.json()["id"]
        deadline = time.monotonic() + 180
        while True:
            body = s.get(f"{base}/api/v1/experiments/{exp_id}", timeout=30).json()
            if body["status"] in ("succeeded", "failed", "cancelled"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {exp_id} did not finish in 180 s: {body['status']}")
            time.sleep(0.2)
        if body["started_at"] is None:
            raise RuntimeError(f"run {exp_id} ended {body['status']} without starting")
        out.append((parse_ts(body["started_at"]) - parse_ts(body["created_at"])).total_seconds())
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    xs = sorted(values)
    if not xs:
        return {}

    def q(p: float) -> float:
        return xs[min(len(xs) - 1, max(0, round(p * (len(xs) - 1))))]

    return {"n": len(xs), "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": xs[-1]}


def run_load(base: str, tokens: list[str], duration: float) -> Recorder:
    rec = Recorder()
    deadline = time.monotonic() + duration
    threads = [
        threading.Thread(target=client_loop, args=(base, tok, deadline, rec, 1000 * (n + 1)), daemon=True)
        for n, tok in enumerate(tokens)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 120)
    return rec


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of `server_url`, dropped afterwards."""
    import sqlalchemy as sa

    name = f"li2_load_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def own_stack(workdir: Path) -> Iterator:
    """Postgres + private Redis + gunicorn API + one CPU worker, all torn down afterwards."""
    from stack import RedisServer, Stack, wait_until

    pg = os.environ.get("LI2_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with temporary_database(pg) as db_url:
        redis = RedisServer(workdir)
        redis.start()
        stack = Stack(db_url, redis.url, workdir, LI2_MAX_ACTIVE_PER_USER=10_000)
        try:
            stack.start_api(server="gunicorn")
            worker = stack.start_worker("load")
            wait_until(lambda: "ready." in worker.log(), 120, "the worker to be ready", 0.2)
            yield stack
        finally:
            stack.close()
            redis.stop()


def report(args, q2s: list[float], rec: Recorder, elapsed: float, load_before: float) -> dict:
    total = sum(len(v) for v in rec.latency.values())
    return {
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "requests": total,
        "throughput_rps": round(total / elapsed, 1) if elapsed else 0.0,
        "errors": len(rec.errors),
        "error_samples": rec.errors[:10],
        "latency_ms": {
            k: {m: (round(v * 1000, 1) if m != "n" else v) for m, v in percentiles(rec.latency[k]).items()}
            for k in KINDS
        },
        "queue_to_start_s": {
            "samples": [round(x, 3) for x in q2s],
            "median": round(statistics.median(q2s), 3) if q2s else None,
            "max": round(max(q2s), 3) if q2s else None,
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, 1-min load average {load_before:.1f} before the test",
    }


def markdown(figures: dict, command: str) -> str:
    lines = [
        START,
        "## Service latency",
        "",
        f"Command: `{command}`",
        "",
        f"{figures['clients']} client threads (one user each) for {figures['duration_s']} s against the API "
        "under gunicorn (2 processes × 8 threads) with PostgreSQL and Redis on loopback, one CPU worker "
        f"training the submitted runs meanwhile; {figures['machine']}. "
        f"{figures['requests']} requests ({figures['throughput_rps']}/s), "
        f"**{figures['errors']} wrong answers** (each answer checked: status, body, ids, ownership).",
        "",
        "| request | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, p in figures["latency_ms"].items():
        if p:
            lines.append(f"| {kind} | {p['n']} | {p['p50']} | {p['p95']} | {p['p99']} | {p['max']} |")
    q = figures["queue_to_start_s"]
    lines += [
        "",
        f"Queue-to-start with an idle worker (row created → worker claimed it, server timestamps): "
        f"median {q['median']} s, max {q['max']} s over {len(q['samples'])} runs.",
        "",
        "The machine is shared (other jobs run at the same time), so absolute figures are pessimistic; "
        "see docs/reliability.md for what they mean.",
        END,
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace only our marked section (append it when absent); other sections are left byte for byte."""
    doc = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if START in doc and END in doc:
        head, rest = doc.split(START, 1)
        doc = head + text + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50, help="concurrent client threads, one user each (50)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (30)")
    ap.add_argument("--q2s-samples", type=int, default=5, help="queue-to-start samples on an idle worker (5)")
    ap.add_argument("--write", metavar="FILE", help="replace the 'Service latency' section of FILE")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = ap.parse_args(argv)
    if not (1 <= args.clients <= 500 and 1 <= args.duration <= 600):
        ap.error("--clients must be 1..500 and --duration 1..600 seconds")
    command = "python bench/load_test.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )

    import tempfile

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="li2-load-") as tmp, own_stack(Path(tmp)) as stack:
        q2s = queue_to_start(stack.base_url, stack.create_user("q2s"), args.q2s_samples)
        tokens = [stack.create_user(f"load{n}") for n in range(args.clients)]
        t0 = time.monotonic()
        rec = run_load(stack.base_url, tokens, args.duration)
        figures = report(args, q2s, rec, time.monotonic() - t0, load_before)

    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    if args.write:
        write_section(Path(args.write), markdown(figures, command))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
