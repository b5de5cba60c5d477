"""Per-batch start-up of a fresh worker process, and what the host's compile cache saves.

Every batch trains in a fresh pool child (li2_worker.celery_app), so each one pays: the process,
the imports (torch), building the data and the stacked model (`BatchTrainer.__init__`), and on its
first epoch any torch.compile (CUDA batches above li2.trainer.FUSE_MIN_WORK by default; LI2_COMPILE=1
forces it, on the CPU too). This script starts one fresh Python process per measurement, as the
worker does, and reads each phase's time from the child:

* ``eager``: LI2_COMPILE=0 (the CPU default);
* ``compile, cold cache``: LI2_COMPILE=1 with an empty TORCHINDUCTOR_CACHE_DIR: what every batch
  paid when nothing persisted between processes;
* ``compile, warm cache``: LI2_COMPILE=1 again, in a *new* process on the same folder: what a batch
  pays once the host's cache holds the shape (li2_worker.compile_cache, LI2_CACHE_DIR);
* ``eager, forked from a preloaded worker``: LI2_COMPILE=0 in a child forked from this process
  after `li2_worker.preload`, as `li2lab worker` starts each batch by default: no imports left.

Start-up = process + imports + data/model + (first epoch − a steady epoch, when positive). Steady epochs are the
mean of `--steps` further unmeasured steps, reported for scale.

    python bench/bench_startup.py                         # Z_97, K = 512, R = 4, CPU
    python bench/bench_startup.py --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmd import command_line, publish

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Per-batch start-up and the compile cache"


def child(args) -> None:
    """In the fresh process: time the phases and print them as one JSON line."""
    t0 = time.perf_counter()
    import torch

    from li2.runner import run_batch  # noqa: F401  (what the worker's task imports)
    from li2.spec import validate_spec
    from li2.trainer import BatchTrainer

    t1 = time.perf_counter()
    spec = validate_spec(
        {
            "task": {"group": "cyclic", "order": args.order},
            "data": {"train_fraction": args.fraction},
            "model": {"hidden": args.hidden},
            "training": {"epochs": args.steps + 2, "diagnostics": False},
        }
    )
    trainer = BatchTrainer([dict(spec, seed=s) for s in range(args.runs)], args.device)
    t2 = time.perf_counter()
    trainer._step(0)
    t3 = time.perf_counter()
    for e in range(1, args.steps + 1):
        trainer._step(e)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t4 = time.perf_counter()
    print(
        json.dumps(
            {
                "imports": t1 - t0,
                "data": t2 - t1,
                "first": t3 - t2,
                "steady": (t4 - t3) / args.steps,
                "fuse": trainer.fuse,
                "threads": torch.get_num_threads(),
            }
        )
    )


def fresh(args, env_extra: dict) -> dict:
    """One fresh process: its phases, and the process start (wall − what the child timed)."""
    env = {
        **os.environ,
        **env_extra,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, __file__, "--child", "--order", str(args.order), "--hidden", str(args.hidden)]
    cmd += ["--runs", str(args.runs), "--fraction", str(args.fraction), "--steps", str(args.steps)]
    cmd += ["--device", args.device]
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["process"] = wall - r["imports"] - r["data"] - r["first"] - r["steady"] * args.steps
    r["startup"] = r["process"] + r["imports"] + r["data"] + max(r["first"] - r["steady"], 0.0)
    return r


def forked(args, env_extra: dict) -> dict:
    """One child forked from this process after `li2_worker.preload` (LI2_WORKER_PRELOAD), as the
    worker forks each batch's process: its phases, and the fork (wall − what the child timed)."""
    from li2_worker.preload import preload

    preload()
    saved = {k: os.environ.get(k) for k in env_extra}
    os.environ.update(env_extra)
    read_fd, write_fd = os.pipe()
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: time the phases as a fresh process does, print them to the pipe
        os.close(read_fd)
        with os.fdopen(write_fd, "w") as out:
            sys.stdout = out
            child(args)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as inp:
        text = inp.read()
    os.waitpid(pid, 0)
    wall = time.perf_counter() - t
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    r = json.loads(text.strip().splitlines()[-1])
    r["process"] = wall - r["imports"] - r["data"] - r["first"] - r["steady"] * args.steps
    r["startup"] = r["process"] + r["imports"] + r["data"] + max(r["first"] - r["steady"], 0.0)
    return r


def render(rows: list[tuple[str, dict]], args, command: str) -> str:
    base = rows[0][1]["startup"]
    lines = [
        SECTION,
        "",
        "One new process per row, as the worker runs each batch (`bench/bench_startup.py`): a fresh Python",
        "process, or (last row) a child forked from a process that preloaded torch and the runner, as",
        f"`li2lab worker` forks each batch's process with LI2_WORKER_PRELOAD on (the default). Z_{args.order},",
        f"K = {args.hidden}, R = {args.runs}, train fraction {args.fraction}, on {args.device}"
        f" ({os.cpu_count()} cores). Seconds per phase; start-up = process + imports + data/model",
        "+ (first epoch − a steady epoch, when positive). The machine is shared, so the absolute seconds",
        "vary from run to run; compare rows of the same run.",
        "",
        f"Command: `{command}`",
        "",
        "| mode | process | imports | data + model | first epoch | steady epoch | start-up | vs eager |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['process']:.2f} | {r['imports']:.2f} | {r['data']:.2f} | {r['first']:.2f} "
            f"| {r['steady']:.3f} | {r['startup']:.1f} | {r['startup'] / base:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--order", type=int, default=97)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--fraction", type=float, default=0.4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--write", type=Path, help="add/replace the section in this markdown file")
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="li2-bench-cache-") as cache:
        modes = [
            ("eager (LI2_COMPILE=0)", {"LI2_COMPILE": "0"}),
            ("compile, cold cache", {"LI2_COMPILE": "1", "TORCHINDUCTOR_CACHE_DIR": cache}),
            ("compile, warm cache (new process)", {"LI2_COMPILE": "1", "TORCHINDUCTOR_CACHE_DIR": cache}),
        ]
        for name, env in modes:
            r = fresh(args, {**env, "TRITON_CACHE_DIR": os.path.join(cache, "triton")})
            print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
            rows.append((name, r))
        name = "eager, forked from a preloaded worker (LI2_WORKER_PRELOAD=1)"
        r = forked(args, {"LI2_COMPILE": "0"})
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
        rows.append((name, r))
    publish(SECTION, render(rows, args, command_line("bench_startup.py", argv)), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
