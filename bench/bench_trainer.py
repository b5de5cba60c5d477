"""Trainer throughput: run-epochs per second of li2's batched trainer vs a plain one-run PyTorch loop.

Both sides train the same algorithm: Z_M group addition, 2-layer net (σ = x², no biases), the
reference's class-centred MSE, full-batch Adam (lr 0.01, wd 1e-4, torch semantics), metrics
(train/test accuracy and loss) at the same epochs. The plain loop is what the paper's reference
script does: `nn.Linear` modules on concatenated one-hot inputs, `torch.optim.Adam`, one run at a
time. The batched side is `li2.trainer.BatchTrainer` with R runs (different seeds) in one stack.
The last row is the worker's automatic choice (li2.subbatch): R learned by short probes, then the
largest R's worth of runs trained as consecutive sub-batches of that size.

    python bench/bench_trainer.py                                  # CPU defaults: Z_23, K=128
    python bench/bench_trainer.py --order 97 --hidden 512 --runs 1,16,64,256 --device cuda
    python bench/bench_trainer.py ... --write BENCHMARKS.md        # add/replace the section

On CUDA the batched side uses the fused (torch.compile) step unless LI2_COMPILE=0. Timing excludes
one short warm-up, and so the compile time; each of `--repeats` rounds times every row once (plain
and batched alternating) and each row keeps its best round; `run-epochs/s` = runs × epochs / seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from pathlib import Path

import torch

SECTION = "## Trainer throughput"


def make_specs(args, count: int) -> list[dict]:
    from li2.spec import validate_spec

    return [
        validate_spec(
            {
                "task": {"group": "cyclic", "order": args.order},
                "data": {"train_fraction": args.fraction},
                "model": {"hidden": args.hidden, "activation": "sqr"},
                "training": {
                    "optimizer": "adam",
                    "lr": 0.01,
                    "weight_decay": 1e-4,
                    "epochs": args.epochs,
                    "loss": "mse",
                    "dense_until": 0,
                    "eval_every": args.eval_every,
                    "diagnostics": False,
                },
                "seed": seed,
            }
        )
        for seed in range(count)
    ]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_batched(args, runs: int) -> float:
    """Seconds for BatchTrainer to train `runs` runs for args.epochs epochs."""
    from li2.trainer import BatchTrainer

    warm = make_specs(args, runs)
    for s in warm:
        s["training"]["epochs"] = 3
    fuse = None if "LI2_COMPILE" in os.environ else args.device.startswith("cuda")  # steady-state speed
    BatchTrainer(warm, args.device, fuse=fuse).train()
    trainer = BatchTrainer(make_specs(args, runs), args.device, fuse=fuse)
    _sync(args.device)
    t0 = time.perf_counter()
    trainer.train()
    _sync(args.device)
    return time.perf_counter() - t0


def learn_size(args, runs: int) -> tuple[int, dict[int, float], float]:
    """What a worker does the first time it sees this shape (li2.subbatch): probe R = 1, 2, 4, ...
    up to `runs` and weigh plain and measured epochs by this schedule; returns (chosen R, the
    run-epochs/s the cost model predicts by R, seconds the probes took)."""
    from li2 import subbatch

    spec = make_specs(args, 1)[0]
    epochs, measured = spec["training"]["epochs"], subbatch.measured_epochs(spec["training"])

    def rate(r: int, cost: tuple[float, float]) -> float:
        return subbatch.run_rate(r, cost, epochs, measured)

    t0 = time.perf_counter()
    costs = subbatch.learn({}, runs, lambda r: subbatch.measure_cost(spec, r, args.device, args.probe_s), rate)
    rates = {r: rate(r, c) for r, c in costs.items()}
    return subbatch.choose(rates, runs), rates, time.perf_counter() - t0


def time_split(args, runs: int, size: int) -> float:
    """Seconds to train `runs` runs as consecutive sub-batches of `size` (the worker's way)."""
    from li2.trainer import BatchTrainer

    warm = make_specs(args, size)
    for s in warm:
        s["training"]["epochs"] = 3
    fuse = None if "LI2_COMPILE" in os.environ else args.device.startswith("cuda")
    BatchTrainer(warm, args.device, fuse=fuse).train()
    specs = make_specs(args, runs)
    trainers = [BatchTrainer(specs[i : i + size], args.device, fuse=fuse) for i in range(0, runs, size)]
    _sync(args.device)
    t0 = time.perf_counter()
    for trainer in trainers:
        trainer.train()
    _sync(args.device)
    return time.perf_counter() - t0


class PlainNet(torch.nn.Module):
    """The reference script's model: one-hot operands concatenated, W and V as nn.Linear, no bias."""

    def __init__(self, order: int, hidden: int):
        super().__init__()
        self.W = torch.nn.Linear(2 * order, hidden, bias=False)
        self.V = torch.nn.Linear(hidden, order, bias=False)

    def forward(self, x):
        return self.V(self.W(x) ** 2)


def plain_loop(args, spec: dict, epochs: int) -> None:
    """One run, trained the straightforward way (what the reference script does, minus logging)."""
    from li2.data import make_split
    from li2.groups import build_task
    from li2.spec import resolve_train_size

    dev, M = args.device, args.order
    task = build_task(spec["task"])
    split = make_split(task, 2, resolve_train_size(spec), spec["seed"])

    def onehot(x):
        hot = [torch.nn.functional.one_hot(torch.from_numpy(x[:, j]), M) for j in range(2)]
        return torch.cat(hot, 1).float().to(dev)  # (n, 2M) concatenated one-hots

    xtr, xte = onehot(split.x_train), onehot(split.x_test)
    ytr, yte = torch.from_numpy(split.y_train).to(dev), torch.from_numpy(split.y_test).to(dev)
    torch.manual_seed(spec["seed"])
    net = PlainNet(M, args.hidden).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=1e-4)

    def mse(out, y):
        target = torch.nn.functional.one_hot(y, M).float() - 1.0 / M
        return ((out - out.mean(1, keepdim=True) - target) ** 2).sum(1).mean()

    for epoch in range(epochs):
        out = net(xtr)
        loss = mse(out, ytr)
        if epoch % args.eval_every == 0 or epoch == epochs - 1:
            with torch.no_grad():
                out_te = net(xte)
                _ = [
                    (out.argmax(1) == ytr).float().mean().item(),
                    loss.item(),
                    (out_te.argmax(1) == yte).float().mean().item(),
                    mse(out_te, yte).item(),
                ]
        opt.zero_grad()
        loss.backward()
        opt.step()


def time_plain(args) -> float:
    """Seconds per run for the plain loop (mean over args.plain_runs runs)."""
    specs = make_specs(args, args.plain_runs)
    plain_loop(args, specs[0], 3)
    _sync(args.device)
    t0 = time.perf_counter()
    for spec in specs:
        plain_loop(args, spec, args.epochs)
    _sync(args.device)
    return (time.perf_counter() - t0) / len(specs)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    from li2.environment import cpu_name

    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--order", type=int, default=23, help="M of Z_M (default 23)")
    ap.add_argument("--hidden", type=int, default=128, help="K (default 128)")
    ap.add_argument("--fraction", type=float, default=0.4, help="train fraction (default 0.4)")
    ap.add_argument("--runs", default="1,16,64,256", help="comma-separated R values (default 1,16,64,256)")
    ap.add_argument("--epochs", type=int, default=200, help="epochs per timing (default 200)")
    ap.add_argument("--eval-every", type=int, default=50, help="metrics every this many epochs (default 50)")
    ap.add_argument("--plain-runs", type=int, default=1, help="runs per plain-loop timing (default 1)")
    ap.add_argument("--repeats", type=int, default=2, help="timings per R, best kept (default 2)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--auto",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the learned-R row (default on; --no-auto skips its probes and timing)",
    )
    ap.add_argument(
        "--probe-s", type=float, default=2.0, help="seconds per sub-batch-size probe (LI2_SUBBATCH_PROBE_S; 2)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default: torch's choice); 1 is steadier on a shared machine",
    )
    ap.add_argument("--write", metavar="FILE", help="add or replace the 'Trainer throughput' section of FILE")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    # Interleave plain and batched timings and keep the best of each: on a shared machine the
    # load changes between measurements, and the best time is the least disturbed one.
    # The automatic choice: learn R as a worker would (fresh, no cache); its row trains the largest
    # R's worth of runs in sub-batches of it. Every round times every row once (plain, each fixed R,
    # the learned R) and each row keeps its best round, so all rows sample the same load.
    sizes = [int(r) for r in args.runs.split(",")]
    most = max(sizes)
    if args.auto:
        chosen, rates, probe_s = learn_size(args, most)
        learned = ", ".join(f"{r}: {v:,.0f}" for r, v in sorted(rates.items()))
        print(f"learned R={chosen} from the probes' {learned} run-epochs/s", file=sys.stderr, flush=True)
    plain_best, best = float("inf"), {R: float("inf") for R in sizes}
    auto_best = float("inf")
    for round_ in range(args.repeats):
        for R in sizes:
            plain_best = min(plain_best, time_plain(args))
            best[R] = min(best[R], time_batched(args, R))
        if args.auto:
            auto_best = min(auto_best, time_split(args, most, chosen))
        print(f"round {round_ + 1}: plain so far {args.epochs / plain_best:,.0f} run-epochs/s", file=sys.stderr)
    rows = [("li2 BatchTrainer", R, R * args.epochs / best[R]) for R in sizes]
    if args.auto:
        label = f"li2, R learned ({most} runs as sub-batches; probes {probe_s:.1f} s once)"
        rows.append((label, chosen, most * args.epochs / auto_best))
    plain_rate = args.epochs / plain_best
    rows = [("plain loop (1 run at a time)", 1, plain_rate), *rows]
    rows = [(name, R, rate, rate / plain_rate) for name, R, rate in rows]

    given = list(argv if argv is not None else sys.argv[1:])
    if "--write" in given:  # the recorded command is the measurement itself, wherever it is written
        del given[given.index("--write") : given.index("--write") + 2]
    command = "python bench/bench_trainer.py " + " ".join(shlex.quote(a) for a in given)
    table = [
        f"Z_{args.order}, K={args.hidden}, {args.fraction:.0%} train, sqr, mse, Adam; {args.epochs} epochs, "
        f"metrics every {args.eval_every}; device: {args.device} ({device_name(args.device)}); "
        f"torch {torch.__version__}.",
        "",
        "| trainer | runs per batch R | run-epochs/s | vs plain loop |",
        "|---|---:|---:|---:|",
    ]
    table += [f"| {name} | {R} | {rate:,.0f} | {ratio:.1f}× |" for name, R, rate, ratio in rows]
    text = "\n".join(table)
    print(text)
    if args.write:
        write_section(Path(args.write), args, text, command)
    return 0


def write_section(path: Path, args, table: str, command: str) -> None:
    """Replace this configuration's block inside the 'Trainer throughput' section (or add it)."""
    doc = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    threads = f" threads={args.threads}" if args.threads else ""
    tag = f"<!-- bench_trainer {args.device.split(':')[0]} Z_{args.order} K={args.hidden}{threads} -->"
    block = f"{tag}\nCommand: `{command.strip()}`\n\n{table}\n{tag.replace('<!--', '<!-- end')}\n"
    if SECTION not in doc:
        doc = (
            doc.rstrip() + f"\n\n{SECTION}\n\nRun-epochs per second of `li2.trainer.BatchTrainer` vs a plain "
            "one-run PyTorch loop of the same algorithm (`bench/bench_trainer.py`).\n\n"
        )
    pattern = re.compile(re.escape(tag) + r".*?" + re.escape(tag.replace("<!--", "<!-- end")) + r"\n", re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: block, doc)
    else:
        start = doc.index(SECTION)
        nxt = doc.find("\n## ", start + len(SECTION))
        end = len(doc) if nxt < 0 else nxt + 1
        doc = doc[:end].rstrip() + "\n\n" + block + ("\n" + doc[end:] if nxt >= 0 else "")
    path.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
