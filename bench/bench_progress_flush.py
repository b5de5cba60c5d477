"""The worker's progress flush with live metric rows, against the flush it replaced (latest row only).

Once a second a worker writes, for each run of its batch, the rows measured since the last flush:
`li2_store.lease.write_progress` updates the run's progress and inserts the rows
(`li2_store.metric_rows.write`). The baseline, measured in the same script on the same database,
is the earlier flush: one guarded UPDATE of progress per run and no rows. Both run against a real
store with R claimed runs; the time is the median of `--repeats` flushes of `--rows` rows per run.

    python bench/bench_progress_flush.py                                   # SQLite file, R = 16, 256
    python bench/bench_progress_flush.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

import sqlalchemy as sa

from li2.trainer import COLUMNS
from li2_store import lease
from li2_store.db import init_db, make_engine, session_scope
from li2_store.models import Experiment, User


def claimed_runs(engine, count: int) -> list[lease.Claim]:
    with session_scope(engine) as s:
        user = User(name=uuid.uuid4().hex[:12], token_hash=uuid.uuid4().hex * 2)
        s.add(user)
        s.flush()
        ids = []
        for _ in range(count):
            exp = Experiment(user_id=user.id, spec_json={}, spec_hash="x", batch_key="x", status="queued", epochs=10**6)
            s.add(exp)
            s.flush()
            ids.append(exp.id)
    return [lease.claim(engine, run_id, 1, "bench/1") for run_id in ids]


def row(epoch: int) -> dict:
    return {name: (epoch if name == "epoch" else 0.5) for name in COLUMNS}  # one measurement, every column


def latest_only(engine, progress: dict) -> None:
    """The flush before live metric rows: each run's newest (epoch, metrics), nothing else."""
    with session_scope(engine) as s:
        for c, rows in progress.items():
            epoch, metrics = rows[-1]
            s.execute(
                sa.update(Experiment)
                .where(lease.owned(c.run_id, c.attempt, "bench/1"))
                .values(progress_epoch=epoch, latest_metrics_json=metrics)
            )


def median_ms(flush, engine, claims, rows_per_run: int, repeats: int, start: int) -> float:
    times = []
    for r in range(repeats):
        first = start + r * rows_per_run
        progress = {c: [(e, row(e)) for e in range(first, first + rows_per_run)] for c in claims}
        t0 = time.perf_counter()
        flush(engine, progress)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--runs", default="16,256", help="runs per batch, comma-separated")
    parser.add_argument("--rows", type=int, default=10, help="rows measured per run between two flushes")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    engine = make_engine(url)
    init_db(engine)
    print(f"store: {engine.dialect.name}; {args.rows} rows per run per flush; median of {args.repeats} flushes")
    print("| runs R | latest only (ms) | with metric rows (ms) | ratio |")
    print("|---:|---:|---:|---:|")
    for count in (int(x) for x in args.runs.split(",")):
        claims = claimed_runs(engine, count)
        base = median_ms(latest_only, engine, claims, args.rows, args.repeats, 0)
        live = median_ms(
            lambda e, p: lease.write_progress(e, p, "bench/1"), engine, claims, args.rows, args.repeats, 10**5
        )
        print(f"| {count} | {base:.1f} | {live:.1f} | {live / base:.1f}× |")
    engine.dispose()


if __name__ == "__main__":
    main()
