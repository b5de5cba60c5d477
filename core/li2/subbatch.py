"""How many runs to stack at once: the sub-batch size R that trains the most run-epochs per second.

Stacking R runs in one `BatchTrainer` pays only where the device has room to spare: small shapes
leave a CPU's cores idle between tiny matrix products and gain several times at R = 16, the
paper's sizes (Z_71, K = 2048) run *slower* stacked on a CPU, and a big GPU gains tens of times at
R = 256. So R is measured, per device kind and shape class, instead of fixed:

- `shape_class(spec)` names what decides the cost of one epoch (task, operands, K, layers, loss,
  optimizer, diagnostics on/off, n_train rounded up to a power of two); the epoch budget and the
  measurement cadence are left out (the cost model weighs them), so one measurement serves every
  sweep of that shape.
- `measure_cost(spec, R, device, seconds)` times R stacked copies of a run twice: plain epochs
  and measured ones (evaluation, and diagnostics when on), seconds per epoch of the stack each.
  `run_rate` is the cost model: run-epochs/s of R runs on a given schedule (how many of its
  epochs are measured, `measured_epochs`), so one measurement serves every epoch budget and
  cadence, from all-dense short runs to long runs measured every 50 epochs.
- `learn(costs, limit, measure, rate)` probes R = 1, 2, 4, ... (powers of two, and `limit`
  itself) and stops once the two newest R are clearly (`DROP`) below the best so far, or at
  `limit`; costs already known are reused, and a later, larger batch probes on from where it
  stopped. `choose(rates, limit)` is then the best R that fits.
- `probe_seconds(stake, limit, longest)` sizes the probes to what is at stake: at most
  `PROBE_SHARE` of the batch's estimated training time, between `MIN_PROBE_S` and `longest`.
- `run_in_subbatches` trains a list of specs as consecutive sub-batches (each through
  `li2.runner.run_batch`), mapping the runner's per-run callbacks back to the caller's indices.

`limit` is the hard cap: at most the runs at hand, `LI2_MAX_BATCH` and the device memory
(`li2.batching.batch_limit`), the same rule the API packs messages by, so a message may train as
several sub-batches but never as a larger one. Which R a host learned, and where it is kept, is
the worker's business (`li2_worker.throughput`). Nothing here imports torch at module level.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import TypeVar

from li2.batching import batch_key
from li2.spec.limits import resolve_train_size

DROP = 0.9  # a probe below DROP × the best rate so far ends the search (noise stays above it)
WARMUP_EPOCHS = 2  # untimed epochs before a probe's clock starts (allocation, first kernels)
WINDOWS = 3  # a probe keeps the best of this many timed windows (at least one epoch each)
PROBE_EPOCHS = 5000  # epoch budget of a probe (it usually stops long before)
PROBE_SHARE = 0.05  # a batch's probes take at most this share of its estimated training time...
MIN_PROBE_S = 0.1  # ...but each at least this long (a few epochs of a small shape)

Cost = TypeVar("Cost")  # what one probe of R measured (li2_worker.throughput: run_rate's cost pair)


def shape_class(spec: dict) -> str:
    """A readable key for everything that sets the cost of one epoch of `spec`'s run, e.g.
    ``cyclic/23 k=2 K=128 n<=256 L=0 sqr mse adam``."""
    t, m, tr = spec["task"], spec["model"], spec["training"]
    n = resolve_train_size(spec)
    parts = [
        f"{t['group']}/{t['order']}",
        f"k={t.get('operands', 2)}",
        f"K={m['hidden']}",
        f"n<={1 << max(0, math.ceil(math.log2(max(1, n))))}",
        f"L={m['extra_layers']}",
        m["activation"],
        tr["loss"],
        tr["optimizer"],
    ]
    if m["embedding_trainable"]:
        parts.append("embedding")
    if m["ridge_top"] is not None:
        parts.append("ridge")
    if tr["diagnostics"]:
        parts.append("diagnostics")
    return " ".join(parts)


def next_probe(rates: dict[int, float], limit: int) -> int | None:
    """The next R to measure given the `rates` measured so far (R -> run-epochs/s), or None when
    the best R ≤ `limit` is known: the two largest measured R are both clearly worse than the best
    (one bad probe on a busy machine does not end the search), or the search reached `limit`."""
    fitting = {r: v for r, v in rates.items() if r <= limit}
    if limit <= 1:
        return None
    if 1 not in fitting:
        return 1
    top, best = max(fitting), max(fitting.values())
    last_two = sorted(fitting)[-2:]
    if top >= limit or (len(last_two) == 2 and all(fitting[r] < DROP * best for r in last_two)):
        return None
    return min(1 << top.bit_length(), limit)  # the next power of two above top, or the cap


def choose(rates: dict[int, float], limit: int) -> int:
    """The measured R ≤ `limit` with the highest rate (1 when nothing fits)."""
    fitting = {r: v for r, v in rates.items() if r <= limit}
    return max(fitting, key=lambda r: (fitting[r], -r)) if fitting else 1


def learn(
    known: dict[int, Cost], limit: int, measure: Callable[[int], Cost], rate: Callable[[int, Cost], float]
) -> dict[int, Cost]:
    """`known` costs (R -> what `measure(R)` returned) extended by a measurement at every R that
    `next_probe` asks for, judged by `rate(R, cost)` (run-epochs/s); returns the new dict."""
    costs = dict(known)
    while (r := next_probe({k: rate(k, v) for k, v in costs.items()}, limit)) is not None:
        costs[r] = measure(r)
    return costs


def probe_seconds(stake_s: float, limit: int, longest: float) -> float:
    """How long each probe for a batch may time: `PROBE_SHARE` of `stake_s` (the batch's training
    time if its runs went one at a time, from the R = 1 probe) spread over the probes a search up
    to `limit` makes (R = 1, 2, 4, ..., limit), within [MIN_PROBE_S, `longest`]
    (LI2_SUBBATCH_PROBE_S). So a sweep whose batch trains in seconds is not held up by probes 10
    times as long, while a GPU batch of hours still gets full-length, steadier probes."""
    probes = math.ceil(math.log2(max(limit, 1))) + 1
    return min(longest, max(MIN_PROBE_S, PROBE_SHARE * stake_s / probes))


def measured_epochs(training: dict) -> int:
    """How many of the run's epochs are measurement epochs (dense phase, eval_every, the last)."""
    from li2.trainer import is_measurement_epoch

    return sum(1 for epoch in range(training["epochs"]) if is_measurement_epoch(training, epoch))


def run_rate(runs: int, cost: tuple[float, float], epochs: int, measured: int) -> float:
    """Run-epochs per second of `runs` stacked runs of `epochs` epochs, `measured` of them
    measurement epochs (`measured_epochs`), from `cost` = (seconds of a plain epoch, seconds of a
    measured epoch) of the stack: the cost model."""
    seconds = measured * cost[1] + (epochs - measured) * cost[0]
    return runs * epochs / max(seconds, 1e-12)


def probe_specs(spec: dict, runs: int, measured: bool) -> list[dict]:
    """`runs` copies of `spec` (seeds 0..runs-1) for a probe: every epoch a measurement epoch
    (`measured`) or none after epoch 0; no snapshots, a long epoch budget (`time_epochs` stops
    them itself)."""
    cadence = {"dense_until": PROBE_EPOCHS} if measured else {"dense_until": 0, "eval_every": PROBE_EPOCHS}
    out = []
    for seed in range(runs):
        s = copy.deepcopy(spec)
        s["seed"] = seed
        s["training"].update(epochs=PROBE_EPOCHS, checkpoint_epochs=[], schedule="none", **cadence)
        out.append(s)
    return out


def measure_cost(spec: dict, runs: int, device, seconds: float, fuse: bool = False) -> tuple[float, float]:
    """(seconds of a plain epoch, seconds of a measured epoch) of `runs` stacked copies of `spec`
    on `device`, each timed for half of `seconds` (`time_epochs`)."""
    plain = time_epochs(probe_specs(spec, runs, measured=False), device, seconds / 2, fuse)
    measured = time_epochs(probe_specs(spec, runs, measured=True), device, seconds / 2, fuse)
    return plain, measured


def time_epochs(specs: list[dict], device, seconds: float, fuse: bool = False) -> float:
    """Seconds per epoch of one BatchTrainer over `specs` on `device` (steady state).

    After WARMUP_EPOCHS untimed epochs, times WINDOWS windows of `seconds` / WINDOWS each (at
    least one epoch each) and returns the best window's time per epoch: on a shared machine the
    least disturbed window is the device's own speed. Probes run eager by default (`fuse`
    False): compiling each probed shape would cost tens of seconds per R on a GPU, more than the
    probe itself.
    """
    import torch

    from li2.trainer import BatchTrainer

    dev = torch.device(device)
    trainer = BatchTrainer(specs, dev, fuse=fuse)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    window_s = seconds / WINDOWS
    state = {"epoch": 0, "start": 0.0, "timed": 0}
    per_epoch: list[float] = []

    def tick() -> set[int]:  # called after every step; no sync per epoch (the host runs a queue ahead)
        state["epoch"] += 1
        if state["epoch"] < WARMUP_EPOCHS:
            return set()
        if state["epoch"] == WARMUP_EPOCHS:
            sync()
            state["start"] = time.perf_counter()
            return set()
        state["timed"] += 1
        if time.perf_counter() - state["start"] >= window_s:
            sync()
            now = time.perf_counter()
            per_epoch.append((now - state["start"]) / state["timed"])
            state["start"], state["timed"] = now, 0
            if len(per_epoch) >= WINDOWS:
                return set(range(len(specs)))
        return set()

    trainer.train(should_stop=tick)
    if state["timed"]:  # the epoch budget ran out inside a window
        sync()
        per_epoch.append((time.perf_counter() - state["start"]) / state["timed"])
    return max(min(per_epoch), 1e-12)


def subbatches(specs: list[dict], size_of: Callable[[list[int]], int]) -> list[list[int]]:
    """Indices of `specs` cut into sub-batches: runs of one batch_key together (in first-seen
    order), in consecutive slices of `size_of(indices of that key)` runs."""
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(batch_key(spec), []).append(i)
    out = []
    for members in groups.values():
        size = max(1, size_of(members))
        out += [members[j : j + size] for j in range(0, len(members), size)]
    return out


def run_in_subbatches(
    run_batch: Callable[..., list[dict]],
    specs: list[dict],
    device,
    chunks: list[list[int]],
    *,
    on_progress: Callable[[int, int, dict], None] | None = None,
    should_stop: Callable[[], set[int]] | None = None,
    on_checkpoint: Callable[[int, int, bytes], None] | None = None,
    resume: list[bytes | None] | None = None,
    **options,
) -> list[dict]:
    """`run_batch(specs, device, ...)` one sub-batch (`chunks`, lists of indices) after another.

    Callbacks see the caller's indices; `options` (e.g. checkpoint_every) go to every call.
    Results come back in the order of `specs`, as from one `run_batch` call.
    """
    results: list[dict | None] = [None] * len(specs)
    for chunk in chunks:
        local = {i: j for j, i in enumerate(chunk)}
        out = run_batch(
            [specs[i] for i in chunk],
            device,
            on_progress=(lambda j, e, row, chunk=chunk: on_progress(chunk[j], e, row)) if on_progress else None,
            should_stop=(lambda local=local: {local[i] for i in should_stop() if i in local}) if should_stop else None,
            on_checkpoint=(lambda j, e, blob, chunk=chunk: on_checkpoint(chunk[j], e, blob)) if on_checkpoint else None,
            resume=[resume[i] for i in chunk] if resume is not None else None,
            **options,
        )
        for i, result in zip(chunk, out, strict=True):
            results[i] = result
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise ValueError(f"the sub-batches did not cover runs {missing}")
    return results  # type: ignore[return-value]
