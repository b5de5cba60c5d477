"""What resume checkpoints cost: through the worker here, and the store's capacity at GPU rates.

Part 1, `overhead` — the same batch through the worker's own path (`li2_worker.tasks.BatchJob`:
claim, real `li2.runner`, background `CheckpointWriter`, one transaction per checkpoint, final
states) on a real store, with checkpointing off (the runner gets no on_checkpoint: the baseline)
and on at an interval much shorter than the 300 s default (`--interval`, so the batch writes many)
and at the old rate (every 50 epochs). Configurations alternate, `--repeats` times each; the figure
is the median wall time of each against the baseline of the same script. A batch here lasts
seconds, far less than the 300 s default interval, so the script also derives the overhead at the
default: the extra time per round (every run of the batch checkpointed once) over 300 s.

Part 2, `store` — the sustained write rate of real checkpoint blobs (`li2.checkpoint.State` of a
real trainer: Z_97 K=512, Z_127 K=2048) through the writer's job (safetensors serialisation + the
lease-checked `resume` transaction) on SQLite and PostgreSQL, in MB/s and checkpoints/s, against
the rate an H200 trainer would produce (22,391 run-epochs/s at R = 256 for Z_97 K = 512,
BENCHMARKS.md) under the old cadence (every 50 epochs) and the new one (every interval).

    python bench/bench_checkpoints.py overhead [--database URL] [--device cpu|cuda]
    python bench/bench_checkpoints.py store --database postgresql+psycopg://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

from li2 import checkpoint
from li2.batching import batch_key
from li2.runner import run_batch
from li2.spec import spec_hash, validate_spec
from li2.trainer import BatchTrainer
from li2_store import lease, results
from li2_store.db import database_now, init_db, make_engine, session_scope
from li2_store.models import Experiment, User
from li2_worker.settings import load_settings
from li2_worker.tasks import BatchJob

H200_RUN_EPOCHS_PER_S = 22_391  # Z_97, K = 512, R = 256, fused step (BENCHMARKS.md, Trainer throughput)
H200_RUNS = 256
OLD_EVERY = 50  # the old LI2_CHECKPOINT_EVERY default
NEW_INTERVAL_S = 300.0  # the LI2_CHECKPOINT_INTERVAL_S default


def spec_for(order: int, hidden: int, epochs: int, seed: int) -> dict:
    return validate_spec(
        {
            "task": {"group": "cyclic", "order": order},
            "data": {"train_fraction": 0.4},
            "model": {"hidden": hidden},
            "seed": seed,
            "training": {"epochs": epochs, "eval_every": 50, "dense_until": 10},
        }
    )


def queued_runs(engine, specs: list[dict]) -> list[str]:
    """Experiment rows as the API inserts them (queued, attempt 1)."""
    with session_scope(engine) as s:
        user = User(name=uuid.uuid4().hex[:12], token_hash=uuid.uuid4().hex * 2)
        s.add(user)
        s.flush()
        ids = []
        for spec in specs:
            exp = Experiment(
                user_id=user.id,
                spec_json=spec,
                spec_hash=spec_hash(spec),
                batch_key=batch_key(spec),
                epochs=spec["training"]["epochs"],
                status="queued",
                enqueued_at=database_now(s),
            )
            s.add(exp)
            s.flush()
            ids.append(exp.id)
    return ids


def without_checkpoints(*args, on_checkpoint, **kwargs):
    """run_batch with checkpointing off: the runner gets no on_checkpoint at all."""
    return run_batch(*args, on_checkpoint=None, **kwargs)


def counting(counter: list[int]):
    """run_batch that counts the checkpoints it hands to the worker."""

    def runner(*args, on_checkpoint, **kwargs):
        def count(i, epoch, state):
            counter[0] += 1
            on_checkpoint(i, epoch, state)

        return run_batch(*args, on_checkpoint=count, **kwargs)

    return runner


def overhead(args) -> None:
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    engine = make_engine(url)
    init_db(engine)
    configs = {
        "off": ({"LI2_CHECKPOINT_INTERVAL_S": 1e9}, True),
        f"every {args.interval:g} s": ({"LI2_CHECKPOINT_INTERVAL_S": args.interval}, False),
        f"every {OLD_EVERY} epochs": ({"LI2_CHECKPOINT_INTERVAL_S": 1e9, "LI2_CHECKPOINT_EVERY": OLD_EVERY}, False),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    written: dict[str, int] = {}
    seed = 0
    for _ in range(args.repeats):
        for name, (env, off) in configs.items():
            seed += 1
            specs = [spec_for(args.order, args.hidden, args.epochs, seed * 1000 + i) for i in range(args.runs)]
            ids = queued_runs(engine, specs)
            settings = load_settings(
                {"LI2_DATABASE_URL": url, "LI2_WORKER_DEVICE": args.device, **{k: str(v) for k, v in env.items()}}
            )
            counter = [0]
            runner = without_checkpoints if off else counting(counter)
            t0 = time.perf_counter()
            BatchJob(engine, settings, "bench/1", run_batch=runner).run([(i, 1) for i in ids])
            times[name].append(time.perf_counter() - t0)
            written[name] = counter[0]
    base = statistics.median(times["off"])
    print(
        f"store: {engine.dialect.name}; device {args.device}; Z_{args.order}, K={args.hidden}, R={args.runs}, "
        f"{args.epochs} epochs; median of {args.repeats} (configurations alternate)"
    )
    print(
        "| checkpoints | checkpoints written | batch wall time (s), median [min, max] | overhead | "
        f"per round of {args.runs} (s) | derived: one round per {NEW_INTERVAL_S:.0f} s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, ts in times.items():
        t = statistics.median(ts)
        spread = f"{t:.2f} [{min(ts):.2f}, {max(ts):.2f}]"
        if name == "off":
            print(f"| {name} | 0 | {spread} | baseline | | |")
            continue
        per_round = (t - base) / (written[name] / args.runs)  # a round: every run of the batch once
        print(
            f"| {name} | {written[name]} | {spread} | {100 * (t / base - 1):+.1f} % | {per_round:+.3f} | "
            f"{100 * per_round / NEW_INTERVAL_S:+.2f} % |"
        )
    engine.dispose()


def state_of(order: int, hidden: int, history_rows: int) -> checkpoint.State:
    """A real run's compact state of this shape, with `history_rows` measured rows."""
    spec = spec_for(order, hidden, 10_000, 1)
    trainer = BatchTrainer([spec], "cpu")
    tensors, history = trainer.run_state(0)
    history = {c: [0.5] * history_rows for c in history}
    return checkpoint.State(tensors, history, 5_000, spec)


def store(args) -> None:
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    engine = make_engine(url)
    init_db(engine)
    runs = [lease.claim(engine, i, 1, "bench/1") for i in queued_runs(engine, [spec_for(11, 8, 10, 0)] * args.runs)]
    print(
        f"store: {engine.dialect.name}; {args.writes} checkpoints per shape over {args.runs} runs, one transaction "
        "each (lease touch + resume row), serialised in the loop"
    )
    print(
        "| shape | blob (MB) | serialise (MB/s) | serialise + store (MB/s) | checkpoints/s | "
        "H200 demand, every 50 epochs | every 300 s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for order, hidden in ((97, 512), (127, 2048)):
        state = state_of(order, hidden, args.history)
        blob = state.dump()
        mb = len(blob) / 1e6
        t0 = time.perf_counter()
        for _ in range(5):
            state.dump()
        dump_rate = 5 * mb / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for n in range(args.writes):
            c = runs[n % len(runs)]
            data = state.dump()
            with session_scope(engine) as s:
                lease.touch(s, c, "bench/1")
                results.add_checkpoint(s, c.run_id, n, data, "resume")
        elapsed = time.perf_counter() - t0
        rate = args.writes / elapsed
        if (order, hidden) == (97, 512):
            old = H200_RUN_EPOCHS_PER_S / OLD_EVERY
            new = H200_RUNS / NEW_INTERVAL_S
            demand_old = f"{old:.0f}/s = {old * mb:.0f} MB/s ({old / rate:.0f}× capacity)"
            demand_new = f"{new:.2f}/s = {new * mb:.1f} MB/s ({100 * new / rate:.1f} % of capacity)"
        else:  # no H200 trainer rate measured at this shape; the new cadence does not depend on it
            new = H200_RUNS / NEW_INTERVAL_S
            demand_old = "not measured"
            demand_new = f"{new:.2f}/s = {new * mb:.1f} MB/s ({100 * new / rate:.1f} % of capacity)"
        print(
            f"| Z_{order}, K={hidden} | {mb:.2f} | {dump_rate:.0f} | {rate * mb:.1f} | {rate:.1f} | "
            f"{demand_old} | {demand_new} |"
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["overhead", "store"])
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--order", type=int, default=23, help="overhead: the group order")
    parser.add_argument("--hidden", type=int, default=128, help="overhead: K")
    parser.add_argument("--runs", type=int, default=8, help="runs per batch (overhead) / runs written (store)")
    parser.add_argument("--epochs", type=int, default=1500, help="overhead: epochs per run")
    parser.add_argument("--interval", type=float, default=2.0, help="overhead: LI2_CHECKPOINT_INTERVAL_S when on")
    parser.add_argument("--repeats", type=int, default=3, help="overhead: batches per configuration")
    parser.add_argument("--writes", type=int, default=30, help="store: checkpoints written per shape")
    parser.add_argument("--history", type=int, default=400, help="store: measured rows in each checkpoint")
    args = parser.parse_args()
    overhead(args) if args.part == "overhead" else store(args)


if __name__ == "__main__":
    main()
