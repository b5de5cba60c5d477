"""The local commands: `li2lab run`, `sweep`, `search` and `landscape` train and analyse on this machine.

They need no server: specs in (JSON or YAML files), result files out. torch is imported only inside
the commands, so `li2lab --help` and the service commands never load it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from li2.jsonsafe import json_safe


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


def write_json(path: Path, obj) -> None:
    """Write strict JSON atomically (a temp file renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class Progress:
    """A tqdm bar over run-epochs when stderr is a terminal; silent otherwise."""

    def __init__(self, specs: list[dict]):
        self.done = [0] * len(specs)
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=sum(s["training"]["epochs"] for s in specs), unit="run-epoch", dynamic_ncols=True)

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

    def save_checkpoint(index: int, epoch: int, state) -> None:  # state: li2.checkpoint.State
        (ckpt_dir / f"epoch_{epoch:05d}.safetensors").write_bytes(state.dump())

    progress = Progress([spec])
    try:
        result = run_batch([spec], device, on_progress=progress, on_checkpoint=save_checkpoint)[0]
    finally:
        progress.close()
    write_json(out / "result.json", result)
    if args.plots:
        _plots(result, out, "plot_run")
    s = result["summary"]
    print(
        f"wrote {out / 'result.json'}: train_acc {s['train_acc']:.3f}, test_acc {s['test_acc']:.3f}, "
        f"grokked {s['grokked']}"
    )
    return 0


def cmd_sweep(args) -> int:
    from li2.spec import expand_sweep, validate_sweep

    specs = expand_sweep(validate_sweep(load_document(args.sweep)))
    device = _device(args)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    progress = Progress(specs)
    try:
        results = _train_batches(specs, device, args, progress)
    finally:
        progress.close()
    for i, result in enumerate(results):
        write_json(out / "runs" / f"{i}.json", result)
    runs = [
        {"index": i, "spec": r["spec"], "summary": r["summary"], "dataset": r["dataset"]} for i, r in enumerate(results)
    ]
    from li2.scaling import fit_scaling_law

    sweep = {"runs": runs, "scaling_law": fit_scaling_law(runs)}
    write_json(out / "sweep.json", sweep)
    if args.plots:
        _plots(sweep, out, "plot_sweep")
    grokked = sum(1 for r in runs if r["summary"].get("grokked"))
    print(f"wrote {out / 'sweep.json'}: {len(runs)} runs, {grokked} grokked")
    return 0


def _host_throughput(device: str, args):
    """The worker's sub-batch rule on this machine (li2_worker.throughput): R learned by throughput
    per shape class and cached in LI2_WORKER_DATA_DIR, capped by --batch-size and --batch-memory-mb."""
    import dataclasses

    from li2_store.config import ConfigError
    from li2_worker.settings import load_settings
    from li2_worker.throughput import HostThroughput

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    return HostThroughput(
        dataclasses.replace(
            settings, device=device, max_batch=args.batch_size, batch_memory_bytes=args.batch_memory_mb << 20
        )
    )


def _train_batches(specs: list[dict], device: str, args, progress: Progress, on_result=None) -> list[dict]:
    """Train specs in li2.batching's batches, each as sub-batches of the size this machine trains
    fastest (`_host_throughput`, as a worker does); results in input order. `on_result(i, result)`
    is called as soon as spec i's batch has finished."""
    from li2.batching import batch_key, pack_batches
    from li2.runner import run_batch

    host = _host_throughput(device, args)
    results: list[dict] = [{} for _ in specs]
    entries = [(batch_key(spec), spec, i) for i, spec in enumerate(specs)]
    for batch in pack_batches(entries, args.batch_size, args.batch_memory_mb << 20):

        def report(j: int, epoch: int, metrics: dict, batch: list[int] = batch) -> None:
            progress(batch[j], epoch, metrics)

        trained = host.run(run_batch, [specs[i] for i in batch], on_progress=report)
        for i, result in zip(batch, trained, strict=True):
            results[i] = result
            if on_result is not None:
                on_result(i, result)
    return results


def cmd_search(args) -> int:
    """The adaptive search for n*(M) on this machine: the same planner the service runs at fan-in.

    Every trained run is kept as DIR/runs/<spec hash>.json, so running the command again with the
    same --out resumes: runs already there are read back, not trained again.
    """
    import time

    from li2.search import run_search, validate_search
    from li2.spec import spec_hash

    request = validate_search(load_document(args.search))
    device = _device(args)
    out = Path(args.out)
    run_dir = out / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    state: dict = {"request": request, "rounds": [], "trained": 0, "reused": 0}

    def train(specs: list[dict]) -> list[dict]:
        paths = [run_dir / f"{spec_hash(spec)}.json" for spec in specs]
        todo = [i for i, p in enumerate(paths) if not p.exists()]
        state["reused"] += len(specs) - len(todo)
        progress = Progress([specs[i] for i in todo])
        try:  # each result is kept as soon as its batch ends, so an interrupted round loses little
            _train_batches([specs[i] for i in todo], device, args, progress, lambda j, r: write_json(paths[todo[j]], r))
        finally:
            progress.close()
        state["trained"] += len(todo)
        return [json.loads(p.read_text(encoding="utf-8")) for p in paths]

    def on_round(plan, results) -> None:
        phases = ", ".join(f"M={o['order']}: {o['phase']}" for o in plan.orders)
        print(f"round {plan.round}: {len(results)} runs ({phases}); {time.monotonic() - started:.0f} s", flush=True)
        state["rounds"].append({"round": plan.round, "orders": plan.orders, "n_runs": len(results)})
        write_json(out / "search.json", {**state, "wall_s": time.monotonic() - started})

    result = run_search(request, train, on_round=on_round)
    doc = {**state, **result, "wall_s": time.monotonic() - started}
    write_json(out / "search.json", doc)
    if args.plots:
        _plots({"runs": result["runs"], "scaling_law": result["scaling_law"]}, out, "plot_sweep")
    law = result["scaling_law"]
    lo, hi = law["ci95"]
    c = "—" if law["c"] is None else f"{law['c']:.4g}"
    print(
        f"wrote {out / 'search.json'}: {result['n_runs']} runs in {len(result['rounds']) - 1} rounds, "
        f"stopped by {result['stop']}; c = {c} [{lo}, {hi}] ({law['status']})"
    )
    if law["status"] != "fitted":
        print(f"no fit: {law.get('note', '')}", file=sys.stderr)
        return 1
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
