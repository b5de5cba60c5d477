"""What `training.precision` changes: grokking epoch, final concentration and throughput.

For each configuration the script trains the same run (same seed, same split, same initial weights)
once per precision through `li2.runner.run_batch`, and reports the epoch at which it generalized
(`summary.epoch_generalized`), its final mean concentration (`features.mean_concentration`) and
final test accuracy. Throughput is measured separately and interleaved, so the machine's load hits
every precision alike: the best of `--repeats` timings of `--steps` unmeasured training steps of a
batch of `--runs` runs, as run-epochs per second, with its ratio to fp32 in the same process.

    python bench/bench_precision.py                                  # Z_23 reference + Z_47
    python bench/bench_precision.py --configs ref --precisions fp32,bf16
    python bench/bench_precision.py ... --write BENCHMARKS.md

Configurations: ``ref`` is examples/reference_z23.json (diagnostics off: they are float64 whatever
the precision, and only slow the comparison down); ``M:fraction:K:epochs`` a cyclic group with
the reference's optimizer settings otherwise. On the CPU tf32 is a no-op (li2.precision), so its
row equals fp32 and is there to show it; on CUDA bench/gpu_check.sh runs the same script.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch
from benchmd import command_line, publish

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Precision (training.precision)"
DEFAULT_CONFIGS = "ref,47:0.5:512:600"


def spec_for(config: str, precision: str) -> dict:
    from li2.spec import validate_spec

    raw = json.loads((ROOT / "examples" / "reference_z23.json").read_text())
    if config != "ref":
        M, fraction, K, epochs = config.split(":")
        raw["task"]["order"], raw["data"] = int(M), {"train_fraction": float(fraction)}
        raw["model"]["hidden"], raw["training"]["epochs"] = int(K), int(epochs)
    raw["training"].update(diagnostics=False, precision=precision)
    return validate_spec(raw)


def outcome(config: str, precision: str, device: str) -> dict:
    from li2.runner import run_batch

    result = run_batch([spec_for(config, precision)], device)[0]
    s, f = result["summary"], result.get("features") or {}
    return {
        "generalized": s.get("epoch_generalized"),
        "concentration": f.get("mean_concentration"),
        "test_acc": s.get("test_acc"),
    }


def throughput(config: str, precisions: list[str], device: str, runs: int, steps: int, repeats: int) -> dict:
    """Run-epochs/s of unmeasured steps per precision, best of `repeats`, interleaved."""
    from li2.trainer import BatchTrainer

    trainers = {}
    for p in precisions:
        base = spec_for(config, p)
        specs = [dict(copy.deepcopy(base), seed=s) for s in range(runs)]
        trainers[p] = BatchTrainer(specs, device)
        with trainers[p].precision.step():
            trainers[p]._step(0)  # warm-up
    best = dict.fromkeys(precisions, float("inf"))
    for _ in range(repeats):
        for p, tr in trainers.items():
            with tr.precision.step():
                sync(device)
                t = time.perf_counter()
                for e in range(steps):
                    tr._step(e)
                sync(device)
                best[p] = min(best[p], time.perf_counter() - t)
    return {p: runs * steps / best[p] for p in precisions}


def label(config: str) -> str:
    if config == "ref":
        return "Z_23 reference (K = 512, 1000 epochs)"
    M, fraction, K, epochs = config.split(":")
    return f"Z_{M}, train fraction {fraction} (K = {K}, {epochs} epochs)"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def describe(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads), torch {torch.__version__}"


def render(rows: list[dict], args, command: str) -> str:
    lines = [
        SECTION,
        "",
        "The same run (seed, split, initial weights) in each precision (`bench/bench_precision.py`):",
        "the epoch it generalized, its final mean concentration and test accuracy from full runs, and",
        f"the throughput of unmeasured steps at R = {args.runs} (best of {args.repeats} interleaved timings",
        f"of {args.steps} steps) with its ratio to fp32 measured in the same process, on {describe(args.device)}.",
        "The machine is shared and was loaded while this ran: read the ratios, not the absolute rates.",
        "",
        f"Command: `{command}`",
        "",
        "| configuration | precision | generalized at epoch | final concentration | final test acc "
        "| run-epochs/s | vs fp32 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gen = "never" if r["generalized"] is None else r["generalized"]
        conc = "–" if r["concentration"] is None else f"{r['concentration']:.3f}"
        lines.append(
            f"| {r['config']} | {r['precision']} | {gen} | {conc} | {r['test_acc']:.3f} "
            f"| {r['rate']:.0f} | {r['ratio']:.2f}× |"
        )
    if not args.device.startswith("cuda") and "tf32" in args.precisions.split(","):
        lines += [
            "",
            "On the CPU tf32 runs exactly the fp32 code path (li2.precision), so the tf32 rows' distance from",
            "1.00× is this run's measurement noise; a bf16 ratio inside that distance is no measured change.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help="ref and/or M:fraction:K:epochs, comma-separated")
    p.add_argument("--precisions", default="fp32,tf32,bf16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", type=int, default=4, help="batch size R of the throughput measurement")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--write", type=Path, help="add/replace the section in this markdown file")
    args = p.parse_args(argv)
    precisions = args.precisions.split(",")
    rows = []
    for config in args.configs.split(","):
        rates = throughput(config, precisions, args.device, args.runs, args.steps, args.repeats)
        for prec in precisions:
            row = {"config": label(config)}
            row.update(precision=prec, rate=rates[prec], ratio=rates[prec] / rates.get("fp32", rates[prec]))
            row.update(outcome(config, prec, args.device))
            print(row, flush=True)
            rows.append(row)
    publish(SECTION, render(rows, args, command_line("bench_precision.py", argv)), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
