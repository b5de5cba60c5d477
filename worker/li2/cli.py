"""`li2lab`: run experiments, sweeps and energy landscapes locally; start the service parts.

    li2lab run SPEC --out DIR [--device auto|cpu|cuda] [--plots]
    li2lab sweep SWEEP --out DIR [--device ...] [--plots] [--batch-size N]
    li2lab landscape SPEC --out DIR [--starts N] [--device ...]
    li2lab serve [--host H] [--port P]        -> li2_service.serve.main
    li2lab worker [--device ...]              -> li2_worker.main.main
    li2lab users create NAME [--admin]        -> li2_service.users_cli.main

SPEC and SWEEP are JSON or YAML files. An invalid spec exits with status 2 and one line per bad
field (naming what is allowed) on stderr, before anything is written. torch is imported only by
the subcommands that train, so `li2lab --help`, `serve` and `users` never load it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import yaml

from li2.errors import SpecError

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """A problem with the command's input files (not a spec field)."""


def load_document(path: str) -> dict:
    """A JSON or YAML mapping from `path` (YAML's safe loader: plain data only)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise BadInput(f"{path} is not valid {'JSON' if path.endswith('.json') else 'YAML/JSON'}: {exc}") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{path} must hold a mapping (a JSON object), got {type(doc).__name__}")
    return doc


def _plain(obj):
    """JSON-ready copy: numpy scalars/arrays to Python, NaN/inf to null."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):          # numpy arrays and scalars, torch tensors
        return _plain(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj) -> None:
    """Write strict JSON atomically (a temp file renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_plain(obj), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class Progress:
    """A tqdm bar over run-epochs when stderr is a terminal; silent otherwise."""

    def __init__(self, specs: list[dict]):
        self.done = [0] * len(specs)
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=sum(s["training"]["epochs"] for s in specs), unit="run-epoch",
                            dynamic_ncols=True)

    def __call__(self, index: int, epoch: int, metrics: dict) -> None:
        if self.bar is None:
            return
        self.bar.update(epoch + 1 - self.done[index])
        self.done[index] = epoch + 1
        self.bar.set_postfix(train=f"{metrics['train_acc']:.3f}", test=f"{metrics['test_acc']:.3f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _plots(result_or_results, out: Path, kind: str) -> list[str]:
    """Draw the run's or sweep's PNGs with li2.plots (`kind`: plot_run or plot_sweep)."""
    import li2.plots as plots  # matplotlib: loaded only when --plots asks for it

    return getattr(plots, kind)(result_or_results, str(out))


def _device(args) -> str:
    from li2.environment import resolve_device  # imports torch

    try:
        return str(resolve_device(args.device))
    except ValueError as exc:
        raise BadInput(str(exc)) from None


# ----------------------------------------------------------------------------- subcommands

def cmd_run(args) -> int:
    from li2.spec import validate_spec

    spec = validate_spec(load_document(args.spec))
    device = _device(args)
    from li2.runner import run_batch

    out = Path(args.out)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    def save_checkpoint(index: int, epoch: int, blob: bytes) -> None:
        (ckpt_dir / f"epoch_{epoch:05d}.safetensors").write_bytes(blob)

    progress = Progress([spec])
    try:
        result = run_batch([spec], device, on_progress=progress, on_checkpoint=save_checkpoint)[0]
    finally:
        progress.close()
    write_json(out / "result.json", result)
    if args.plots:
        _plots(result, out, "plot_run")
    s = result["summary"]
    print(f"wrote {out / 'result.json'}: train_acc {s['train_acc']:.3f}, test_acc {s['test_acc']:.3f}, "
          f"grokked {s['grokked']}")
    return 0


def pack_batches(specs: list[dict], batch_size: int) -> list[list[int]]:
    """Indices grouped by li2.spec.shape_key (grid order kept), cut into batches of ≤ batch_size."""
    from li2.spec import shape_key

    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(shape_key(spec), []).append(i)
    return [idx[j:j + batch_size] for idx in groups.values() for j in range(0, len(idx), batch_size)]


def cmd_sweep(args) -> int:
    from li2.spec import expand_sweep, validate_sweep

    specs = expand_sweep(validate_sweep(load_document(args.sweep)))
    device = _device(args)
    from li2.runner import run_batch

    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    results: list[dict | None] = [None] * len(specs)
    progress = Progress(specs)
    try:
        for batch in pack_batches(specs, args.batch_size):
            local = run_batch([specs[i] for i in batch], device,
                              on_progress=lambda j, e, m, batch=batch: progress(batch[j], e, m))
            for i, result in zip(batch, local):
                results[i] = result
                write_json(out / "runs" / f"{i}.json", result)
    finally:
        progress.close()
    runs = [{"index": i, "spec": r["spec"], "summary": r["summary"], "dataset": r["dataset"]}
            for i, r in enumerate(results)]
    from li2.scaling import fit_scaling_law

    sweep = {"runs": runs, "scaling_law": fit_scaling_law(runs)}
    write_json(out / "sweep.json", sweep)
    if args.plots:
        _plots(sweep, out, "plot_sweep")
    grokked = sum(1 for r in runs if r["summary"].get("grokked"))
    print(f"wrote {out / 'sweep.json'}: {len(runs)} runs, {grokked} grokked")
    return 0


def cmd_landscape(args) -> int:
    from li2.spec import validate_spec

    spec = validate_spec(load_document(args.spec))
    if args.starts < 1:
        raise BadInput(f"--starts must be a positive integer, got {args.starts}")
    device = _device(args)
    from li2.energy import landscape

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "landscape.json", landscape(spec, starts=args.starts, device=device))
    print(f"wrote {out / 'landscape.json'}")
    return 0


DELEGATES = {  # subcommands whose options and help belong to another package
    "serve": ("li2_service.serve", "the HTTP API (see li2lab serve --help)"),
    "worker": ("li2_worker.main", "a Celery worker (see li2lab worker --help)"),
    "users": ("li2_service.users_cli", "manage users: users create NAME [--admin]"),
}


def run_delegate(name: str, rest: list[str]) -> int:
    """Pass the argv after `name` to its owner's main (imported only when used)."""
    import importlib

    return int(importlib.import_module(DELEGATES[name][0]).main(list(rest)) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="li2lab",
                                     description="Li2 Lab: grokking experiments, locally or as a service.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devices = ("auto", "cpu", "cuda")

    p = sub.add_parser("run", help="train one experiment; writes DIR/result.json and DIR/checkpoints/")
    p.add_argument("spec", help="experiment spec, JSON or YAML")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default="auto", choices=devices)
    p.add_argument("--plots", action="store_true", help="also write PNG figures (li2.plots)")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("sweep", help="train a grid of experiments in batches; writes DIR/sweep.json and DIR/runs/")
    p.add_argument("sweep", help='sweep file {"base": SPEC, "grid": {"dotted.path": [values]}}, JSON or YAML')
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default="auto", choices=devices)
    p.add_argument("--plots", action="store_true", help="also write PNG figures (li2.plots)")
    p.add_argument("--batch-size", type=int, default=256, help="most runs trained together (default 256)")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("landscape", help="local maxima of one hidden node's energy; writes DIR/landscape.json")
    p.add_argument("spec", help="experiment spec, JSON or YAML")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--starts", type=int, default=64, help="random starting points (default 64)")
    p.add_argument("--device", default="auto", choices=devices)
    p.set_defaults(handler=cmd_landscape)

    for name, (_, help_text) in DELEGATES.items():  # listed for --help; main() routes them first
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATES:
        return run_delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SpecError as exc:
        print("li2lab: invalid input:", file=sys.stderr)
        for field, messages in sorted(exc.errors.items()):
            for message in messages:
                print(f"  {field}: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BadInput as exc:
        print(f"li2lab: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
