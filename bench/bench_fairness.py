"""B's queue-to-start while A's sweep waits: FIFO dispatch (before fair-share) against fair-share.

    .venv/bin/python bench/bench_fairness.py --batches 12

For each of LI2_DISPATCH=fifo and LI2_DISPATCH=fair it brings up its own stack
(tests/reliability/stack.py: a fresh PostgreSQL database, a private redis-server, the API and one
CPU worker, LI2_MAX_BATCH=1 so each run is a batch), lets user A submit a sweep of --batches
small runs, waits until A's first batch runs, then submits one run as user B and measures B's
queue-to-start (`started_at - created_at`, both stamped by the database) and how many of A's
batches finished before B's run started. A's remaining runs are then cancelled. Prints one line
per mode and the ratio fifo / fair (same machine, same script; noisy when others share the host).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))  # the stack harness shared with the fault tests
sys.path.insert(0, str(ROOT / "bench"))


def measure(mode: str, batches: int, epochs: int) -> dict:
    import os

    import sqlalchemy as sa
    from load_test import temporary_database
    from stack import RedisServer, Stack, small_spec, wait_until

    from li2_store.models import Experiment

    pg = os.environ.get("LI2_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with tempfile.TemporaryDirectory() as tmp, temporary_database(pg) as db_url:
        workdir = Path(tmp)
        redis = RedisServer(workdir)
        redis.start()
        stack = Stack(db_url, redis.url, workdir, LI2_DISPATCH=mode, LI2_MAX_BATCH=1)
        try:
            stack.start_api()
            a, b = stack.api(stack.create_user("a")), stack.api(stack.create_user("b"))
            worker = stack.start_worker("w")
            wait_until(lambda: "ready." in worker.log(), 120, "the worker to be ready", 0.2)
            sweep = a.post(
                "/sweeps", json={"base": small_spec(epochs, hidden=32), "grid": {"seed": list(range(batches))}}
            )
            assert sweep.status_code == 202, sweep.text
            wait_until(lambda: stack.count(Experiment, status="running"), 120, "A's first batch to start")
            r = b.post("/experiments", json=small_spec(epochs, hidden=32, seed=10_000))
            assert r.status_code == 202, r.text
            row = stack.wait_status(r.json()["id"], ("running", "succeeded"), 60 + 30 * batches)
            t = Experiment.__table__
            with stack.engine.connect() as c:
                ahead = c.scalar(
                    sa.select(sa.func.count()).where(
                        t.c.sweep_id == sweep.json()["id"], t.c.finished_at <= row["started_at"]
                    )
                )
            a.post(f"/sweeps/{sweep.json()['id']}/cancel")
            return {
                "mode": mode,
                "b_queue_to_start_s": (row["started_at"] - row["created_at"]).total_seconds(),
                "a_batches_before_b": int(ahead),
            }
        finally:
            stack.close()
            redis.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=12, help="A's sweep size, one run per batch (12)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per run (20)")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    rows = [measure(mode, args.batches, args.epochs) for mode in ("fifo", "fair")]
    for r in rows:
        print(
            f"{r['mode']:4s}  B queue-to-start {r['b_queue_to_start_s']:6.1f} s"
            f"   A batches finished first: {r['a_batches_before_b']}"
        )
    fifo, fair = (r["b_queue_to_start_s"] for r in rows)
    print(f"fifo / fair: {fifo / fair:.1f}x  ({args.batches} A batches, {time.monotonic() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
