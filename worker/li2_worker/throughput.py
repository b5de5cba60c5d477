"""The sub-batch sizes this worker host has learned, kept in a JSON file across restarts.

A claimed message trains as consecutive sub-batches of R runs, R chosen per device kind and shape
class (`li2.subbatch`) by measured run-epochs per second. The first batch of a shape class on a
device measures a few R: the seconds per plain and per measured epoch of the stack, which the
cost model `li2.subbatch.run_rate` weighs by each batch's schedule. Each probe times at most
`LI2_SUBBATCH_PROBE_S` (2 s) and at most a small share of what the batch itself will take
(`li2.subbatch.probe_seconds`, after a 0.1 s first look at R = 1), so a batch that trains in
seconds is not held up by probes ten times as long. They are stored, with how long each probe
timed, in ``<LI2_WORKER_DATA_DIR>/throughput-<host>.json``, and every later batch, in this process
or after a restart, reuses them. A larger batch than any measured one may probe further R, and a
batch with more at stake measures again an R whose probe was less than half as long as its own.
The file is JSON only, validated on load: a file that does not parse, or an entry that is
malformed, is logged and measured again, never trusted and never fatal.
Writes merge under a lock and replace the file atomically, so several pool processes on one host
may share it.

`LI2_SUBBATCH` = ``auto`` (default) learns R; a positive integer fixes it (no measurement). Either
way R is capped by the runs at hand, `LI2_MAX_BATCH` and `LI2_BATCH_MEMORY_MB`
(`li2.batching.batch_limit`), the rule the API packs messages by: a message may run as several
sub-batches, never as a larger one.

Nothing here imports torch at module level (the Celery parent imports this module).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from li2 import subbatch
from li2.batching import batch_limit
from li2.spec.limits import resolve_train_size
from li2_worker.settings import WorkerSettings

log = logging.getLogger(__name__)

FORMAT = "li2-throughput/2"
MAX_R = 1 << 20  # larger R in a file is malformed
FAILED_COST = (1e9, 1e9)  # seconds per epoch recorded for a probe that raised: never chosen
LEGACY_PROBE_S = 2.0  # how long probes timed before they were sized to their batch (files without probe_s)


def cache_path(data_dir: str, host: str | None = None) -> Path:
    """``<data_dir>/throughput-<host>.json``; the host name is reduced to safe characters."""
    host = host or socket.gethostname()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in host).strip(".") or "host"
    return Path(data_dir) / f"throughput-{safe}.json"


def _seconds(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _costs(raw) -> dict[int, tuple[float, float]] | None:
    """{"R": [plain s, measured s]} from the file as {R: (plain, measured)}, or None when anything
    is malformed."""
    if not isinstance(raw, dict) or not raw:
        return None
    out = {}
    for key, value in raw.items():
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= MAX_R):
            return None
        if not (isinstance(value, list) and len(value) == 2 and all(_seconds(v) for v in value)):
            return None
        out[int(key)] = (float(value[0]), float(value[1]))
    return out


def _lengths(raw, costs: dict[int, tuple[float, float]]) -> dict[int, float] | None:
    """{"R": seconds} (how long each probe timed) from the file, or None when malformed. A file
    written before probes were sized to their batch has none: its probes took LEGACY_PROBE_S."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return None
    out = {}
    for key, value in raw.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) in costs and _seconds(value)):
            return None
        out[int(key)] = float(value)
    return out


@dataclass
class Entry:
    device: str
    shape: str
    costs: dict[int, tuple[float, float]]  # R -> seconds per epoch of the stack: (plain, measured)
    updated: str
    probe_s: dict[int, float] = field(default_factory=dict)  # R -> seconds its probe timed

    def length(self, r: int) -> float:
        """Seconds the probe of R timed (LEGACY_PROBE_S for an entry of an older file)."""
        return self.probe_s.get(r, LEGACY_PROBE_S)

    def to_json(self) -> dict:
        return {
            "device": self.device,
            "shape": self.shape,
            "costs": {str(r): [float(f"{v:.6g}") for v in c] for r, c in sorted(self.costs.items())},
            "probe_s": {str(r): float(f"{v:.6g}") for r, v in sorted(self.probe_s.items())},
            "updated": self.updated,
        }


def read_entries(path: Path) -> tuple[dict[tuple[str, str], Entry], list[str]]:
    """The valid entries of the file at `path` by (device, shape), and a list of problems found
    (an unreadable or malformed file gives no entries; a malformed entry is skipped)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as exc:
        return {}, [f"{path}: not readable JSON ({exc}); measuring again"]
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
        return {}, [f"{path}: not a {FORMAT} file; measuring again"]
    entries, problems = {}, []
    for n, raw in enumerate(doc["entries"]):
        ok = isinstance(raw, dict) and all(isinstance(raw.get(k), str) and raw.get(k) for k in ("device", "shape"))
        costs = _costs(raw.get("costs")) if ok else None
        lengths = _lengths(raw.get("probe_s"), costs) if costs is not None else None
        if costs is None or lengths is None:
            problems.append(f"{path}: entry {n} is malformed; measuring it again")
            continue
        entries[(raw["device"], raw["shape"])] = Entry(
            raw["device"], raw["shape"], costs, str(raw.get("updated", "")), lengths
        )
    return entries, problems


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store_entry(path: Path, entry: Entry) -> None:
    """Merge `entry`'s costs into the file (newer measurements win) and replace it atomically."""
    with _locked(path):
        entries, _ = read_entries(path)
        old = entries.get((entry.device, entry.shape))
        if old is not None:
            lengths = {**{r: old.length(r) for r in old.costs}, **entry.probe_s}
            entry = Entry(entry.device, entry.shape, {**old.costs, **entry.costs}, entry.updated, lengths)
        entries[(entry.device, entry.shape)] = entry
        doc = {"format": FORMAT, "host": socket.gethostname(), "entries": [e.to_json() for e in entries.values()]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; `li2lab worker --explain` may run as another user
        os.replace(tmp, path)


def device_kind(device) -> str:
    """What a rate depends on besides the shape: the device type and model, CPU threads, and the
    torch version (an upgrade measures again)."""
    from li2.environment import describe

    env = describe(device)
    if device.type == "cpu":
        return f"cpu: {env['device_name']}, {env['threads']} threads, torch {env['torch']}"
    return f"{device.type}: {env['device_name']}, torch {env['torch']}"


class HostThroughput:
    """Chooses each sub-batch size for one worker process; `measure(spec, R, seconds)` is overridable."""

    def __init__(
        self, settings: WorkerSettings, measure: Callable[[dict, int, float], tuple[float, float]] | None = None
    ):
        self.settings = settings
        self.path = cache_path(settings.worker_data_dir)
        self.measure = measure or self._measure
        self.measured = 0  # probes run by this object (the tests count them)
        self._device: Any = None  # torch.device, resolved on first use

    @property
    def device(self):
        """The torch device LI2_WORKER_DEVICE resolves to (torch is imported only when asked)."""
        if self._device is None:
            from li2.environment import resolve_device

            self._device = resolve_device(self.settings.device)
        return self._device

    def _measure(self, spec: dict, runs: int, seconds: float) -> tuple[float, float]:
        return subbatch.measure_cost(spec, runs, self.device, seconds)

    def size(self, specs: list[dict]) -> int:
        """R for these runs of one batch_key: learned (or LI2_SUBBATCH), within the hard cap.
        The run with the most training samples stands for them all: a ragged batch trains every
        run padded to that size (li2.runner), so that is the shape whose cost decides R."""
        spec = max(specs, key=resolve_train_size)
        limit = min(len(specs), batch_limit(spec, self.settings.max_batch, self.settings.batch_memory_bytes))
        if self.settings.subbatch:
            return min(self.settings.subbatch, limit)
        if limit == 1:
            return 1
        kind, shape = device_kind(self.device), subbatch.shape_class(spec)
        entries, problems = read_entries(self.path)
        for problem in problems:
            log.warning("sub-batch cache: %s", problem)
        entry = entries.get((kind, shape)) or Entry(kind, shape, {}, "")
        epochs = spec["training"]["epochs"]
        measured = subbatch.measured_epochs(spec["training"])

        def rate(r: int, cost: tuple[float, float]) -> float:
            return subbatch.run_rate(r, cost, epochs, measured)

        costs, seconds, just = self._learn(entry, spec, len(specs), limit, rate)
        if just:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            store_entry(self.path, Entry(kind, shape, {r: costs[r] for r in just}, stamp, just))
        rates = {r: rate(r, c) for r, c in costs.items()}
        chosen = subbatch.choose(rates, limit)
        log.info(
            "sub-batch size R=%d for %d runs of [%s] on [%s]: %.0f run-epochs/s over %d epochs, %d measured "
            "(%s; run-epochs/s by R: %s)",
            chosen,
            len(specs),
            shape,
            kind,
            rates[chosen],
            epochs,
            measured,
            f"just measured, probes of {seconds:.2g} s" if just else "cached",
            ", ".join(f"{r}: {v:.0f}" for r, v in sorted(rates.items())),
        )
        return chosen

    def _learn(
        self, entry: Entry, spec: dict, runs: int, limit: int, rate: Callable[[int, tuple[float, float]], float]
    ) -> tuple[dict[int, tuple[float, float]], float, dict[int, float]]:
        """The costs to choose R from for a batch of `runs` copies of `spec`'s shape, the length of
        its probes (`li2.subbatch.probe_seconds` of its stake) and {R: seconds} of the probes run now.

        Known costs are reused unless their probe was less than half this batch's length; a class
        seen for the first time gets a short first look at R = 1 to estimate the stake."""
        just: dict[int, float] = {}
        costs: dict[int, tuple[float, float]] = {}

        def probe(r: int, seconds: float) -> tuple[float, float]:
            costs[r], just[r] = self._probe(spec, r, seconds), seconds
            return costs[r]

        known, longest = dict(entry.costs), self.settings.subbatch_probe_s
        if 1 not in known:  # what would this batch cost one run at a time?
            known[1] = probe(1, min(subbatch.MIN_PROBE_S, longest))
        epochs = spec["training"]["epochs"]
        seconds = subbatch.probe_seconds(runs * epochs / rate(1, known[1]), limit, longest)
        trusted = {r: c for r, c in known.items() if just.get(r, entry.length(r)) >= seconds / 2}
        learned = subbatch.learn(trusted, limit, lambda r: probe(r, seconds), rate)
        return learned, seconds, just

    def _probe(self, spec: dict, runs: int, seconds: float) -> tuple[float, float]:
        """One measurement of `seconds`; a probe the device cannot run (RuntimeError, e.g. out of
        memory) gets a prohibitive cost, so that R is never chosen and the search stops above it."""
        self.measured += 1
        try:
            cost = self.measure(spec, runs, seconds)
        except RuntimeError as exc:
            log.warning("sub-batch probe: R=%d failed (%s); not using it", runs, exc)
            return FAILED_COST
        log.info(
            "sub-batch probe: R=%d: %.0f run-epochs/s in plain epochs, %.0f in measured ones",
            runs,
            runs / cost[0],
            runs / cost[1],
        )
        return cost

    def run(self, run_batch: Callable[..., list[dict]], specs: list[dict], **callbacks) -> list[dict]:
        """`run_batch(specs, LI2_WORKER_DEVICE, **callbacks)` as consecutive sub-batches of the
        chosen sizes; results in the order of `specs`."""
        chunks = subbatch.subbatches(specs, lambda members: self.size([specs[i] for i in members]))
        if len(chunks) > 1:
            log.info("training %d runs as sub-batches of %s runs", len(specs), [len(c) for c in chunks])
        return subbatch.run_in_subbatches(run_batch, specs, self.settings.device, chunks, **callbacks)


def _figure(rate: float) -> str:
    """A rate for the table: whole numbers from 100 up, three significant digits below."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def explain(settings: WorkerSettings) -> str:
    """The table `li2lab worker --explain` prints: what this host has learned, and the rule."""
    path = cache_path(settings.worker_data_dir)
    entries, problems = read_entries(path)
    mode = f"fixed at {settings.subbatch} (LI2_SUBBATCH)" if settings.subbatch else "learned (LI2_SUBBATCH=auto)"
    lines = [
        f"Sub-batch sizes on {socket.gethostname()}: {mode}; cap: LI2_MAX_BATCH={settings.max_batch}, "
        f"LI2_BATCH_MEMORY_MB={settings.batch_memory_bytes >> 20}",
        f"cache: {path}" + ("" if path.exists() else " (nothing measured yet)"),
        *problems,
    ]
    if entries:
        lines += [
            "",
            "Run-epochs/s by R, in plain epochs / in measured ones; a batch's R weighs them by its schedule.",
            "",
            "| device | shape class | best R (plain / measured epochs) | run-epochs/s by R: plain / measured |",
            "|---|---|---:|---|",
        ]
        for e in sorted(entries.values(), key=lambda e: (e.device, e.shape)):
            plain = {r: r / c[0] for r, c in e.costs.items()}
            measured = {r: r / c[1] for r, c in e.costs.items()}
            best = f"{subbatch.choose(plain, MAX_R)} / {subbatch.choose(measured, MAX_R)}"
            by_r = ", ".join(f"{r}: {_figure(plain[r])} / {_figure(measured[r])}" for r in sorted(e.costs))
            lines.append(f"| {e.device} | {e.shape} | {best} | {by_r} |")
    return "\n".join(lines)
