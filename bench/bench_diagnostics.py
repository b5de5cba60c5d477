"""Cost of the Li2 stage diagnostics relative to training, at paper sizes (K = 2048).

For each configuration (group order M, training size n, width K) the script builds a real
`li2.trainer.BatchTrainer` (Z_M, σ = x², MSE, Adam lr 0.01, wd 1e-4, one run) and times, on the same
machine in the same process, alternating and taking the best of `--repeats`:

* an unmeasured training step (`_step`),
* a measured step without diagnostics (`_measured_step`, test forward included),
* one diagnostics call as the trainer makes it (`_diagnose`: the ridge solve, Fig. 3's Gram checks,
  the irrep columns and the emergence update).

From these it reports the diagnostics' share of a run's training time, diagnostics / (steps + measured
steps), for a run of `--epochs` epochs with the default cadence (measured every epoch below 200, every
10 after) and the diagnostic period the trainer picks by default (`li2.diagnostics.auto_every`), and
for comparison with a period of 5 epochs. The model's cost ratio `li2.diagnostics.cost_ratio`
(diagnostics over one training step), from which the default period is set, is printed next to the
measured one: where the model is at or above the clock, the default keeps the share within budget.

    python bench/bench_diagnostics.py                          # M=71 n=832,2016; M=127 n=1691
    python bench/bench_diagnostics.py --configs 23:476:512     # the reference Z_23 run
    python bench/bench_diagnostics.py ... --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from benchmd import command_line, publish

SECTION = "## Stage diagnostics at paper size"
DEFAULT_CONFIGS = "71:832:2048,71:2016:2048,127:1691:2048"


def make_trainer(M: int, n: int, K: int, epochs: int):
    from li2.spec import validate_spec
    from li2.trainer import BatchTrainer

    spec = validate_spec(
        {
            "task": {"group": "cyclic", "order": M},
            "data": {"train_size": n},
            "model": {"hidden": K, "activation": "sqr"},
            "training": {"optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "epochs": epochs, "loss": "mse"},
            "seed": 1,
        }
    )
    return BatchTrainer([spec], "cpu", fuse=False)


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(M: int, n: int, K: int, epochs: int, repeats: int) -> dict:
    from li2 import diagnostics as diag
    from li2.trainer import is_measurement_epoch

    tr = make_trainer(M, n, K, epochs)
    tr._step(0)  # warm-up (allocations, first-call overheads)
    W, Vt = tr.params["W"].detach(), tr.params["Vt"].detach()

    def diagnose():
        f = tr._forward_train()[0].detach()
        tr._diagnose(0, f, W, Vt)

    def forward_only():
        tr._forward_train()

    times = {"step": [], "measured": [], "diag": [], "forward": []}
    for _ in range(repeats):  # interleaved, so load changes hit all three alike
        times["step"].append(best_time(lambda: tr._step(1), 1))
        times["measured"].append(best_time(lambda: tr._measured_step(1, None), 1))
        times["diag"].append(best_time(diagnose, 1))
        times["forward"].append(best_time(forward_only, 1))
    t = {k: min(v) for k, v in times.items()}
    t["diag"] = max(t["diag"] - t["forward"], 0.0)  # the call itself, without the forward it reuses
    training = tr.training
    measured = [e for e in range(epochs) if is_measurement_epoch(training, e)]
    base = (epochs - len(measured)) * t["step"] + len(measured) * t["measured"]
    out = {"M": M, "n": n, "K": K, **t, "model_ratio": diag.cost_ratio(n, K, M)}
    out["measured_ratio"] = t["diag"] / t["step"]
    for label, every in (("auto", tr.diagnostics_every), ("every5", 5)):
        count = sum(1 for e in measured if e % every == 0 or e == epochs - 1)
        out[f"{label}_every"], out[f"{label}_share"] = every, count * t["diag"] / base
    return out


def render(rows: list[dict], args, command: str) -> str:
    lines = [
        SECTION,
        "",
        "Share of training time spent in `li2.diagnostics` (`bench/bench_diagnostics.py`): Z_M, σ = x², MSE,",
        f"Adam, one run, {args.epochs} epochs measured every epoch below 200 and every 10 after; diagnostics",
        "(float64) at the default period `auto_every` and, for comparison, every 5 epochs. Times are the",
        f"best of {args.repeats} interleaved repeats on {describe()}; the machine is shared, so ratios matter, not",
        "absolute times.",
        "",
        f"Command: `{command}`",
        "",
        "| M | n | K | step ms | measured step ms | diagnostics ms | diag / step (model) "
        "| default period | share (default) | share (every 5) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['M']} | {r['n']} | {r['K']} | {1e3 * r['step']:.0f} | {1e3 * r['measured']:.0f} | "
            f"{1e3 * r['diag']:.0f} | {r['measured_ratio']:.2f} ({r['model_ratio']:.2f}) | {r['auto_every']} | "
            f"{100 * r['auto_share']:.1f} % | {100 * r['every5_share']:.1f} % |"
        )
    below = [r for r in rows if r["model_ratio"] < r["measured_ratio"]]
    lines += [
        "",
        "`diag / step` is one diagnostics call over one unmeasured training step, measured and (in brackets)",
        "from the flop model `li2.diagnostics.cost_ratio` that sets the default period; the shares count",
        "measured epochs (test forward) at their own cost. "
        + (
            "The model is at or above the clock in every row, so the default period keeps the share"
            " within the 10 % budget."
            if not below
            else f"The model is below the clock in {len(below)} row(s); the share column says what that costs."
        ),
        "A period of 5 epochs (the former default) costs the share in the last column.",
    ]
    return "\n".join(lines) + "\n"


def describe() -> str:
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads), torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help="M:n:K,... (default %(default)s)")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--write", type=Path, help="add/replace the section in this markdown file")
    args = p.parse_args(argv)
    rows = []
    for item in args.configs.split(","):
        M, n, K = (int(x) for x in item.split(":"))
        r = measure(M, n, K, args.epochs, args.repeats)
        print(
            f"M={M} n={n} K={K}: step {1e3 * r['step']:.0f} ms, measured {1e3 * r['measured']:.0f} ms, "
            f"diag {1e3 * r['diag']:.0f} ms (ratio {r['measured_ratio']:.2f}, model {r['model_ratio']:.2f}); "
            f"default every {r['auto_every']}: {100 * r['auto_share']:.1f} %, every 5: {100 * r['every5_share']:.1f} %",
            flush=True,
        )
        rows.append(r)
    publish(SECTION, render(rows, args, command_line("bench_diagnostics.py", argv)), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
