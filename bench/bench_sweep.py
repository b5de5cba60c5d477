"""Submit → fitted law: a Fig. 5-shaped scaling-law sweep through the real service, end to end.

A sweep of orders × training sizes × seeds (Z_M addition, σ = x², mse, Adam lr 0.01, wd 1e-4) is
submitted with the SDK to `li2lab serve` in embedded mode (SQLite database and broker, one worker
subprocess, every batch in a fresh pool process, as tests/client/embedded_service.py starts it;
or, with --broker, Redis as the broker and one `li2lab worker` process beside the API);
the clock runs from the POST until the sweep's stored scaling law has been read back. Reported:

- efficiency: the sweep's run-epochs / wall time, against the trainer's own rate on the same
  runs in this process (`li2.trainer.BatchTrainer`, one ragged batch per order, as the packer
  makes them; only the training is timed): the share of the trainer's speed a user gets;
- speed-up: the same runs one by one with a plain one-run PyTorch loop (`bench_trainer.plain_loop`,
  the reference script's way) in this process, against the service's submit → law time;
- old against new packing in the same script: the service once with LI2_RAGGED_BATCHES=0 (one
  training size per batch, the packing before ragged batches) and once with ragged batches.

Every side runs with one torch thread (the worker with OMP_NUM_THREADS=1), so that the numbers
compare like with like on a shared machine.

    python bench/bench_sweep.py                                    # CPU defaults (a few minutes)
    python bench/bench_sweep.py --orders 11,17,23 --fractions 0.2,0.3,0.4,0.5,0.6,0.7 --seeds 2 --epochs 1000
    python bench/bench_sweep.py --broker redis://127.0.0.1:6379/15   # Redis + a separate worker
    python bench/bench_sweep.py --device cuda --hidden 512 ...     # a GPU worker (not measured yet)
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "client")]

from bench_trainer import device_name, make_specs, plain_loop  # noqa: E402
from embedded_service import running_service, stop  # noqa: E402

ROWS = ("trainer", "subbatched", "cold", "before", "old", "new", "early", "plain")
"""The measurements, in the table's order (`--rows`): see the module docstring."""


def base_spec(args) -> dict:
    """The sweep's base: bench_trainer's spec (the algorithm its plain loop trains), diagnostics off."""
    shape = SimpleNamespace(order=11, fraction=0.5, hidden=args.hidden, epochs=args.epochs, eval_every=args.eval_every)
    spec = make_specs(shape, 1)[0]
    return {**spec, "training": {**spec["training"], "lr": args.lr, "weight_decay": args.weight_decay}}


def grid(args) -> dict:
    return {
        "task.order": [int(m) for m in args.orders.split(",")],
        "data.train_fraction": [float(f) for f in args.fractions.split(",")],
        "seed": list(range(1, args.seeds + 1)),
    }


def sweep_specs(args) -> list[dict]:
    from li2.spec import expand_sweep, validate_sweep

    return expand_sweep(validate_sweep({"base": base_spec(args), "grid": grid(args)}))


def trainer_seconds(specs: list[dict], device: str, host_dir: Path | None = None) -> float:
    """Seconds of BatchTrainer.train() over the sweep, one ragged batch per order (after a warm-up).

    With `host_dir`, each order's batch is cut into the sub-batch sizes that worker host learned
    (li2_worker.throughput, read from its cache there; the service's first sweep filled it), so
    the trainer trains exactly the batches the worker does. Only training is timed."""
    from li2.batching import batch_key
    from li2.subbatch import subbatches
    from li2.trainer import BatchTrainer

    groups: dict[str, list[dict]] = {}
    for s in specs:
        groups.setdefault(batch_key(s), []).append(s)
    chunks = list(groups.values())
    if host_dir is not None:
        from li2_worker.settings import load_settings
        from li2_worker.throughput import HostThroughput

        host = HostThroughput(load_settings({"LI2_WORKER_DATA_DIR": str(host_dir), "LI2_WORKER_DEVICE": device}))
        chunks = [
            [members[i] for i in part]
            for members in chunks
            for part in subbatches(members, lambda idx, members=members: host.size([members[i] for i in idx]))
        ]
        print(f"trainer in the host's sub-batches: {[len(c) for c in chunks]} runs", file=sys.stderr, flush=True)
    warm = [{**s, "training": {**s["training"], "epochs": 3}} for s in specs[:2]]
    BatchTrainer(warm, device).train()
    total = 0.0
    for members in chunks:
        trainer = BatchTrainer(members, device)
        t0 = time.perf_counter()
        trainer.train()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        total += time.perf_counter() - t0
    return total


def plain_seconds(specs: list[dict], args) -> float:
    """Seconds for the plain one-run loop to train every run of the sweep, one after another."""

    def loop_args(spec: dict) -> SimpleNamespace:
        return SimpleNamespace(
            device=args.device, order=spec["task"]["order"], hidden=args.hidden, eval_every=args.eval_every
        )

    plain_loop(loop_args(specs[0]), specs[0], 3)  # warm-up: torch's lazy first-call costs
    total = 0.0
    for s in specs:
        t0 = time.perf_counter()
        plain_loop(loop_args(s), s, args.epochs)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        total += time.perf_counter() - t0
    return total


def flush_redis(url: str) -> None:
    """Empty the bench's Redis database: every service starts with no message left over."""
    import redis

    redis.Redis.from_url(url).flushdb()


@contextlib.contextmanager
def separate_worker(svc, wanted: bool):
    """With a broker URL, `li2lab serve` starts no worker: run one `li2lab worker` beside it (the
    deployment's topology), in the service's folder and environment, until the sweep is done."""
    if not wanted:
        yield
        return
    with open(svc.workdir / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "li2_worker", "--device", svc.env["LI2_WORKER_DEVICE"]],
            env=svc.env,
            cwd=svc.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "ready." not in worker_log(svc.workdir):  # Celery's "celery@... ready." line
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"li2lab worker did not start:\n{worker_log(svc.workdir)[-3000:]}")
            time.sleep(0.2)
        yield
    finally:
        stop(proc)


def worker_log(workdir: Path) -> str:
    path = workdir / "worker.log"
    return path.read_text(errors="replace") if path.exists() else ""


def service_run(args, ragged: bool, host_dir: Path, early_stop: bool = False, preload: bool = True) -> dict:
    """Submit the sweep to a fresh embedded service; seconds from the POST to the stored law read back.
    `host_dir`: the worker host's own files (LI2_WORKER_DATA_DIR: the sub-batch sizes it learned),
    kept across services as on a real host. `early_stop`: with the sweep option early_stop = {}
    (the defaults: held success stops a run). `preload`: LI2_WORKER_PRELOAD (off: every batch's
    process imports torch itself, as the worker did before)."""
    from li2_client import Client

    with tempfile.TemporaryDirectory(prefix="li2-bench-sweep-") as tmp:
        workdir = Path(tmp)
        settings = {
            "OMP_NUM_THREADS": "1",
            "LI2_WORKER_DEVICE": args.device,
            "LI2_WORKER_DATA_DIR": str(host_dir),
            "LI2_RAGGED_BATCHES": "1" if ragged else "0",
            "LI2_WORKER_PRELOAD": "1" if preload else "0",
            # no re-sends of messages the worker already holds (prefetch): this measures throughput,
            # and in embedded mode such a re-send was seen to stall the SQLite database for minutes
            "LI2_REQUEUE_AFTER_S": "3600",
        }
        if args.broker:
            settings["LI2_BROKER_URL"] = args.broker
            flush_redis(args.broker)
        with running_service(workdir, **settings) as svc, separate_worker(svc, bool(args.broker)):
            client = Client(svc.url, svc.create_user("bench"))
            t0 = time.perf_counter()
            sweep = client.submit_sweep(base_spec(args), grid(args), early_stop={} if early_stop else None)
            sweep.wait(timeout=args.timeout, poll=0.5, progress=False)
            law = client.scaling_law(sweep.id)
            seconds = time.perf_counter() - t0
            items = sweep.run_items()
            log = svc.log.read_text(errors="replace") + worker_log(workdir)
    summaries = [item.get("summary") or {} for item in items]
    return {
        "seconds": seconds,
        "tasks": len(re.findall(r"li2\.run_batch: claimed [1-9]\d* of", log)),
        "runs": len(items),
        "statuses": sorted({item["status"] for item in items}),
        "law": law.status,
        "c": law.c,
        "grokked": sum(bool(s.get("grokked")) for s in summaries),
        "epochs_run": sum(int(s.get("epochs_run") or 0) for s in summaries),
        "padding": max((s["batch"]["padding_share"] for s in summaries if s.get("batch")), default=0.0),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", default="11,17,23", help="comma-separated M (default 11,17,23)")
    ap.add_argument("--fractions", default="0.2,0.3,0.4,0.5,0.6,0.7", help="training fractions (default 6 sizes)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per (M, size) (default 2)")
    ap.add_argument("--hidden", type=int, default=64, help="K (default 64)")
    ap.add_argument("--epochs", type=int, default=1000, help="epoch budget (default 1000)")
    ap.add_argument("--eval-every", type=int, default=50, help="metrics every this many epochs (default 50)")
    ap.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (default 0.01; Fig. 5: 5e-4)")
    ap.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (default 1e-4; Fig. 5: 2e-4)")
    ap.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"which measurements to take, comma-separated (default all: {','.join(ROWS)}); a GPU-sized sweep "
        "may skip the slow baselines, e.g. trainer,new,early",
    )
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: the worker, trainer and plain loop")
    ap.add_argument(
        "--broker",
        default="",
        help="a Redis URL: the service on that broker with one `li2lab worker` beside it (its database is "
        "flushed); default: the embedded SQLite broker and worker of `li2lab serve`",
    )
    ap.add_argument("--repeats", type=int, default=2, help="alternated measurements, best kept (default 2)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for one sweep (default 1800)")
    args = ap.parse_args(argv)
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    if unknown := sorted(set(wanted) - set(ROWS)):
        ap.error(f"--rows: unknown {','.join(unknown)}; allowed: {','.join(ROWS)}")
    if not {"trainer", "new"} <= set(wanted):
        ap.error("--rows: trainer and new are required (the efficiency compares them)")
    torch.set_num_threads(1)  # on CUDA too: the host side stays comparable with the worker's

    specs = sweep_specs(args)
    run_epochs = len(specs) * args.epochs
    print(f"{len(specs)} runs × {args.epochs} epochs = {run_epochs:,} run-epochs", file=sys.stderr, flush=True)
    host_dir = Path(tempfile.mkdtemp(prefix="li2-bench-host-"))
    # A fresh worker host first: its first sweep of each packing learns the sub-batch sizes of the
    # sweep's shapes (li2_worker.throughput) and keeps them in `host_dir`; every later service
    # below starts on that host, as a lab server does after its first sweep of these shapes.
    best: dict[str, dict] = {"cold": service_run(args, ragged=True, host_dir=host_dir)}
    print(f"cold new: {best['cold']}", file=sys.stderr, flush=True)
    if {"old", "before"} & set(wanted):
        print(f"cold old: {service_run(args, ragged=False, host_dir=host_dir)}", file=sys.stderr, flush=True)
    measures = {
        "trainer": lambda: {"seconds": trainer_seconds(specs, args.device)},
        "subbatched": lambda: {"seconds": trainer_seconds(specs, args.device, host_dir)},
        "new": lambda: service_run(args, ragged=True, host_dir=host_dir),
        "old": lambda: service_run(args, ragged=False, host_dir=host_dir),
        "before": lambda: service_run(args, ragged=False, host_dir=host_dir, preload=False),
        "early": lambda: service_run(args, ragged=True, host_dir=host_dir, early_stop=True),
        "plain": lambda: {"seconds": plain_seconds(specs, args)},
    }
    # Alternate every measurement, `--repeats` times, and keep the best of each: on a shared machine
    # the load changes from minute to minute, and the best time is the least disturbed one.
    for _ in range(args.repeats):
        for name in (n for n in measures if n in wanted):
            got = measures[name]()
            print(f"{name}: {got}", file=sys.stderr, flush=True)
            if name not in best or got["seconds"] < best[name]["seconds"]:
                best[name] = got
    new = best["new"]
    # The trainer's best rate on these runs: one batch per order, or the host's learned sub-batches.
    trainer_rate = run_epochs / min(best[n]["seconds"] for n in ("trainer", "subbatched") if n in best)

    def law(r: dict) -> str:
        c = "—" if r["c"] is None else f"{r['c']:.2f}"
        return f"{r['law']}, c = {c}, {r['grokked']}/{r['runs']} grokked"

    titles = {
        "plain": "plain loop, one run after another (in process)",
        "trainer": "li2 BatchTrainer alone, one ragged batch per order (in process)",
        "subbatched": "li2 BatchTrainer alone, in the sub-batches the worker host learned (in process)",
        "cold": "service, ragged batches, first sweep on a fresh worker host (learns sub-batch sizes)",
        "before": "service, old packing, each batch importing torch itself (LI2_WORKER_PRELOAD=0)",
        "old": "service, one training size per batch (old packing)",
        "new": "service, ragged batches (new packing)",
        "early": "service, ragged batches + sweep option early_stop {}",
    }
    rows = []
    for name, title in titles.items():
        if name not in best:
            continue
        r = best[name]
        if name in ("plain", "trainer", "subbatched"):
            rows.append((title, "—", r["seconds"], run_epochs, "—", "—"))
        else:
            rows.append((title, r["tasks"], r["seconds"], r["epochs_run"], f"{r['padding']:.0%}", law(r)))
    command = "python bench/bench_sweep.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    lines = [
        f"Command: `{command.strip()}`",
        "",
        f"{len(specs)} runs: Z_M for M ∈ {{{args.orders}}} × training fractions {{{args.fractions}}} × "
        f"{args.seeds} seeds; K={args.hidden}, sqr, mse, Adam lr {args.lr:g} wd {args.weight_decay:g}, "
        f"{args.epochs} epochs, metrics "
        f"every {args.eval_every}, diagnostics off; {run_epochs:,} run-epochs. "
        f"Device: {args.device} ({device_name(args.device)}); "
        f"torch {torch.__version__}. Service: `li2lab serve` "
        + ("with Redis as the broker and one `li2lab worker` process" if args.broker else "embedded")
        + " (SQLite database, one worker, fresh process "
        "per batch, on a worker host that has run one sweep of each packing before, except the "
        "fresh-host row); seconds from POST /sweeps to the stored law read back; every row the best of "
        f"{args.repeats}, alternated. run-epochs/s = the sweep's budget (runs × epochs) / seconds.",
        "",
        "| how | Celery tasks | seconds | run-epochs trained | run-epochs/s | largest padding share | law |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {name} | {tasks} | {sec:.1f} | {trained:,} | {run_epochs / sec:,.0f} | {pad} | {fit} |"
        for name, tasks, sec, trained, pad, fit in rows
    ]

    def ratio_line(text: str, slow: str, fast: str, extras: list[tuple[str, str, str]]) -> str | None:
        """ "text: slow/fast×" with "(label a/b×; …)" for each extra (label, a, b) measured; None
        when `slow` or `fast` was not measured (`--rows`)."""

        def ratio(a: str, b: str) -> float | None:
            return best[a]["seconds"] / best[b]["seconds"] if a in best and b in best else None

        main = ratio(slow, fast)
        if main is None:
            return None
        more = [f"{label} {r:.1f}×" for label, a, b in extras if (r := ratio(a, b)) is not None]
        return f"- {text}: {main:.1f}×" + (f" ({'; '.join(more)})" if more else "")

    old_eff = (
        f"; with the old packing {run_epochs / best['old']['seconds'] / trainer_rate:.0%}" if "old" in best else ""
    )
    summary = [
        f"- efficiency (service with ragged batches vs the trainer alone, the faster of its rows): "
        f"{run_epochs / new['seconds'] / trainer_rate:.0%}{old_eff}",
        ratio_line(
            "speed-up over the plain loop",
            "plain",
            "new",
            [("old packing", "plain", "old"), ("ragged + early_stop", "plain", "early")],
        ),
        ratio_line("new packing vs old, end to end", "old", "new", [("with early_stop", "old", "early")]),
        ratio_line(
            "new packing and preload vs old packing with torch imported in every batch's process "
            "(LI2_WORKER_PRELOAD=0)",
            "before",
            "new",
            [("with early_stop", "before", "early")],
        ),
        f"- first sweep on a fresh worker host (learning sub-batch sizes, once per host and shape): "
        f"efficiency {run_epochs / best['cold']['seconds'] / trainer_rate:.0%}",
    ]
    lines += [""] + [line for line in summary if line]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
