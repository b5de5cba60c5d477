"""`run_batch`: normalised specs in, result.json dicts out — the one entry point of the CLI and
the worker.

Specs are grouped by `li2.batching.batch_key` (and, when resuming, by the epoch their checkpoint
was taken at); each group trains as one stacked `BatchTrainer` (ragged when the training sizes
differ; the padding share is logged and kept in each run's `summary.batch`). Results come back in
input order. An early-stopped run (`training.early_stop`) ends as a finished run with
`summary.stopped_early` and `summary.early_stop` saying when and why.
After training, `li2.analysis.analyze_run` fills `summary`, `timeline` and `features`, and
`li2.predictions.predict` the `predictions` made from the spec alone.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

from li2 import checkpoint
from li2.analysis import analyze_run
from li2.batching import batch_key
from li2.environment import describe, resolve_device
from li2.jsonsafe import json_safe
from li2.predictions import predict
from li2.trainer import BatchTrainer, RunOutcome

log = logging.getLogger(__name__)


def _result(spec: dict, outcome: RunOutcome, trainer: BatchTrainer, environment: dict, batch: dict) -> dict:
    metrics = json_safe(outcome.metrics)
    split = outcome.split
    result = {
        "spec": spec,
        "environment": environment,
        "dataset": {
            "order": trainer.task.order,
            "train_size": len(split.train_idx),
            "test_size": len(split.test_idx),
            "hash": split.hash,
        },
        "metrics": metrics,
        **analyze_run(trainer.task, spec, outcome.params, metrics),  # summary, timeline, features
        "predictions": predict(spec),
    }
    result["summary"]["stopped"] = outcome.stopped
    result["summary"]["epochs_run"] = outcome.epoch
    result["summary"]["stopped_early"] = outcome.early_stop is not None  # training.early_stop ended it
    result["summary"]["early_stop"] = outcome.early_stop  # {"epoch", "since", "reason"} or None
    result["summary"]["batch"] = batch  # the stacked batch it trained in: runs, n_max, padding_share
    return result


def run_batch(
    specs: list[dict],
    device: str = "auto",
    *,
    on_progress: Callable[[int, int, dict], None] | None = None,
    should_stop: Callable[[], set[int]] | None = None,
    on_checkpoint: Callable[[int, int, checkpoint.State], None] | None = None,
    resume: list[bytes | None] | None = None,
    checkpoint_every: int | None = None,
    checkpoint_interval_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict]:
    """Train normalised `specs` (see module doc) and return their result dicts in order.

    on_progress(i, epoch, metrics) at each measurement; should_stop() -> indices to stop now;
    on_checkpoint(i, epoch, state) at epoch 0, the spec's checkpoint_epochs, after the last step,
    at a stop, and as `checkpoint.Cadence(checkpoint_interval_s, checkpoint_every, clock)` says
    (every interval of `clock` seconds; every `checkpoint_every` epochs); `state` is a host copy
    (`checkpoint.State`) whose `dump()` the caller may run on another thread; resume[i] such bytes.
    """
    dev = resolve_device(device)
    environment = describe(dev)
    states = [checkpoint.read(b) if b else None for b in (resume or [None] * len(specs))]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, spec in enumerate(specs):
        groups[(batch_key(spec), states[i][2] if states[i] else 0)].append(i)

    results: list[dict | None] = [None] * len(specs)
    for members in groups.values():
        trainer = BatchTrainer([specs[i] for i in members], dev)
        batch = {"runs": len(members), "n_max": trainer.n_train, "padding_share": round(trainer.padding_share, 6)}
        log.info(
            "batch of %d runs, n %d..%d: padding share %.1f %%",
            len(members),
            min(trainer.sizes),
            trainer.n_train,
            100 * trainer.padding_share,
        )
        for local, i in enumerate(members):
            if states[i]:
                tensors, history, epoch, _ = states[i]
                trainer.load_run_state(local, tensors, history, epoch)

        cadence = checkpoint.Cadence(checkpoint_interval_s, checkpoint_every, clock)

        def checkpoint_at(local: int, epoch: int, members=members, cadence=cadence) -> bool:
            tr = specs[members[local]]["training"]
            due = cadence.due(epoch)  # asked every epoch: one batch-wide decision per epoch
            return due or epoch == 0 or epoch == tr["epochs"] or epoch in tr["checkpoint_epochs"]

        def emit_checkpoint(local: int, epoch: int, members=members, trainer=trainer) -> None:
            tensors, history = trainer.run_state(local)  # host copies: the device→host copy happens here
            state = checkpoint.State(tensors, {k: list(v) for k, v in history.items()}, epoch, specs[members[local]])
            on_checkpoint(members[local], epoch, state)

        outcomes = trainer.train(
            on_measure=(lambda local, e, row, members=members: on_progress(members[local], e, row))
            if on_progress
            else None,
            should_stop=(lambda members=members: {members.index(i) for i in should_stop() if i in members})
            if should_stop
            else None,
            on_checkpoint=emit_checkpoint if on_checkpoint else None,
            checkpoint_at=checkpoint_at,
        )
        for outcome in outcomes:
            results[members[outcome.index]] = _result(
                specs[members[outcome.index]], outcome, trainer, environment, batch
            )
    return results
