"""Quickstart: one grokking experiment through the Li2 Lab Python SDK.

What it does, in the order a newcomer would do it by hand:

1. connects to the service named by LI2_URL / LI2_TOKEN (or ~/.config/li2lab/config.toml);
2. builds a small spec — modular addition on Z_23, 60 % of the pairs for training, 128 hidden
   nodes, Adam — and asks the theory what to expect (critical data size c·M·ln M);
3. submits it and waits with a progress bar (epoch, train and test accuracy);
4. prints the three-stage timeline (lazy → independent → interactive feature learning);
5. saves the curves (stages shaded), the irrep spectrum and the full metrics CSV to --out.

    python examples/quickstart.py --out demo-out          # after `make demo` started a service

Exits 0 when the run succeeded and the files were written, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from li2_client import Client, Li2Error, Spec


def build_spec(order: int, epochs: int, hidden: int):
    """Z_order, 60 % train pairs (above the critical size for M ≥ 11), square activation, Adam."""
    return (
        Spec.cyclic(order)
        .train_fraction(0.6)
        .model(hidden=hidden, activation="sqr")
        .adam(lr=0.02, weight_decay=1e-3)
        .epochs(epochs)
        .seed(5)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="demo-out", help="folder for plots and metrics (created)")
    ap.add_argument("--order", type=int, default=23, help="group order M of Z_M (23)")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for the run")
    args = ap.parse_args(argv)
    out = Path(args.out)

    try:
        client = Client()
        print(f"service: {client.url}  ({client.health().get('status', 'ready')})")
        exp = client.submit(build_spec(args.order, args.epochs, args.hidden))
        print(f"experiment {exp.id}: {exp.status}" + ("  (cached: you ran this spec before)" if exp.cached else ""))

        p = exp.predictions()
        print(
            f"theory: critical train size c·M·ln M = {p.critical_train_size:.0f} pairs; "
            f"this run trains on {p.train_size} → {'should' if p.above_critical else 'should not'} generalise"
        )

        exp.wait(timeout=args.timeout, progress=True)
        s = exp.summary
        print(
            f"\nfinished: train acc {s.get('train_acc'):.3f}, test acc {s.get('test_acc'):.3f}, "
            f"memorised at epoch {s.get('epoch_memorized')}, generalised at epoch {s.get('epoch_generalized')}"
        )

        timeline = exp.timeline()
        print("\nstage timeline:")
        for name, start, end, criterion in timeline.table():
            print(f"  {name:<12} epochs {start:>4} → {end:<12} boundary: {criterion}")
        print("  events: " + ", ".join(f"{k} {v}" for k, v in timeline.events.items()))

        paths = exp.plot(out)
        paths.append(exp.metrics_csv(out / f"metrics_{exp.id[:8]}.csv"))
    except Li2Error as exc:
        print(f"quickstart failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1

    print("\nfiles:")
    for path in paths:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
