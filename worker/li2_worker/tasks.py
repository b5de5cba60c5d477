"""The ``li2.run_batch`` task: claim, train with the core, stream progress, write results.

Flow of one message ``[[run_id, attempt], ...]`` (runs of one li2.batching.batch_key):

1. claim each pair atomically (lease.claim); pairs already claimed, finished, cancelled or
   superseded by a newer attempt are skipped, so duplicate and late messages are harmless;
2. load each run's newest "resume" checkpoint when its attempt is > 1 (the reaper requeued it);
3. start the heartbeat thread and a SIGTERM handler, take li2.runner (preloaded by the parent,
   li2_worker.preload, or imported here; CUDA is only ever initialised in this pool child), and
   run the batch, as consecutive sub-batches of the size this host learned for the shape
   (li2_worker.throughput); every measured row is written, batched at most about once a second,
   as progress and live metric rows (li2_store.metric_rows), so the API can serve a running
   run's curves;
   checkpoints come at the cadence `li2.checkpoint.Cadence` sets (every LI2_CHECKPOINT_INTERVAL_S
   seconds, plus epoch 0, the requested epochs, the end and a stop) and are serialised and stored
   by a background `CheckpointWriter`, which is flushed before step 4;
4. write each run's final state, guarded by its lease: succeeded (+ result row), cancelled
   (stopped on request; partial result kept), failed (the core raised: the error text is stored,
   a run is never silently lost), or back to queued with attempt+1 when the worker is being shut
   down (SIGTERM) — the message is re-sent and another worker resumes from the checkpoint;
5. fan in: close any sweep whose runs have all ended (sweeps.finalize_sweep);
6. hand over: in fair dispatch, release the next batch for the slot this child frees
   (`dispatcher.dispatch_once`), so its message waits in the broker while the next child forks.

The database may restart or be cut off under a running batch. Training goes on meanwhile:
heartbeats and progress are retried at their next period, and every other write (claim,
checkpoint, final state, sweep fan-in) is retried with backoff for up to li2_store.db.DB_RETRY_S
(`retrying`) instead of failing the batch. Each of them is conditioned on the lease, so a repeat
of a commit whose answer was lost changes nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from functools import partial

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from li2.jsonsafe import json_safe
from li2_store import lease, results, sweeps
from li2_store.db import db_now, is_unavailable, make_engine, retrying, session_scope
from li2_store.producer import TASK_NAME, send_batch
from li2_worker import compile_cache
from li2_worker.checkpoint_writer import CheckpointWriter
from li2_worker.dispatcher import dispatch_once
from li2_worker.heartbeat import Heartbeat
from li2_worker.settings import WorkerSettings, load_settings
from li2_worker.throughput import HostThroughput

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # at most ~one progress write per second per batch


def parse_items(items) -> list[tuple[str, int]]:
    """Validate the message body: a list of [run_id (str), attempt (int >= 1)] pairs."""
    if not isinstance(items, list):
        raise ValueError("li2.run_batch expects a list of [run_id, attempt] pairs")
    pairs = []
    for item in items:
        if not (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], int)
            and not isinstance(item[1], bool)
            and item[1] >= 1
        ):
            raise ValueError(f"bad item {item!r}: expected [run_id (string), attempt (integer >= 1)]")
        pairs.append((item[0], item[1]))
    return pairs


class TermFlag:
    """SIGTERM inside the pool child: remember it, so the runs stop at the next epoch and requeue."""

    def __init__(self):
        self.fired = False
        self._previous = None

    def install(self) -> None:
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, _signum, _frame) -> None:
        if not self.fired:
            log.warning("SIGTERM: stopping the batch at the next epoch to checkpoint and requeue")
        self.fired = True


def _load_runner() -> Callable:
    from li2.runner import run_batch  # preloaded by the parent (li2_worker.preload), else imported here

    return run_batch


class BatchJob:
    """One execution of a message by one worker process (`worker_id` = celery host/pid)."""

    def __init__(self, engine, settings: WorkerSettings, worker_id: str, run_batch: Callable | None = None):
        self.engine, self.settings, self.worker_id = engine, settings, worker_id
        self._run_batch = run_batch
        self.claims: list[lease.Claim] = []
        self.heartbeat: Heartbeat | None = None
        self.term = TermFlag()
        self._pending: dict[lease.Claim, list[tuple[int, dict]]] = {}  # rows measured since the last flush
        self._last_progress = 0.0
        self.writer: CheckpointWriter | None = None  # while training: serialises + stores checkpoints

    # -- the task -------------------------------------------------------------------------
    def run(self, pairs: list[tuple[str, int]]) -> None:
        self.claims = [c for c in (self._claim(rid, att) for rid, att in pairs) if c]
        log.info(
            "li2.run_batch: claimed %d of %d runs %s",
            len(self.claims),
            len(pairs),
            [f"{c.run_id}#{c.attempt}" for c in self.claims],
        )
        if not self.claims:
            return
        retrying("marking sweeps running", self._mark_sweeps_running)
        self.heartbeat = Heartbeat(self.engine, self.claims, self.worker_id, self.settings.heartbeat_s)
        self.heartbeat.start()
        self.term.install()
        try:
            outcomes = self._train()
        except SoftTimeLimitExceeded:
            self._fail_all(
                f"time limit exceeded: the batch ran longer than {self.settings.soft_time_limit_s} s "
                "(LI2_TASK_SOFT_TIME_LIMIT_S)"
            )
        except Exception as exc:
            log.exception("batch failed")
            self._fail_all(f"{type(exc).__name__}: {exc}")
        else:
            self._record(outcomes)
        finally:
            self.term.restore()
            self.heartbeat.stop()
        for sweep_id in self._sweep_ids():
            retrying(f"sweep {sweep_id} fan-in", partial(sweeps.finalize_sweep, self.engine, sweep_id))
        self._hand_over()

    def _hand_over(self) -> None:
        """Fair dispatch: release the next batch for the slot this task is about to free, now,
        instead of at the dispatcher's next pass (up to LI2_DISPATCH_INTERVAL_S later), so its
        message is in the broker while the pool forks the next child. The pass's own rules decide
        whether and what (li2_store.dispatch: the budget, the fair order); a failure only logs,
        and the dispatcher's next pass does it then."""
        if self.settings.dispatch != "fair":
            return
        try:
            dispatch_once(self.engine, self.settings)
        except Exception as exc:
            log.warning("hand-over dispatch pass failed; the dispatcher's next pass releases: %s", exc)

    def _claim(self, run_id: str, attempt: int) -> lease.Claim | None:
        return retrying(
            f"claim of run {run_id}#{attempt}", lambda: lease.claim(self.engine, run_id, attempt, self.worker_id)
        )

    def _sweep_ids(self) -> set[str]:
        return {c.sweep_id for c in self.claims if c.sweep_id}

    def _mark_sweeps_running(self) -> None:
        with session_scope(self.engine) as s:
            for sweep_id in self._sweep_ids():
                sweeps.mark_running(s, sweep_id)

    def _train(self) -> list[dict]:
        resume = [self._resume_blob(c) for c in self.claims]
        run_batch = self._run_batch or _load_runner()
        self.writer = writer = CheckpointWriter()
        try:
            outcomes = HostThroughput(self.settings).run(  # sub-batches of the learned size (li2_worker.throughput)
                run_batch,
                [c.spec for c in self.claims],
                on_progress=self.on_progress,
                should_stop=self.should_stop,
                on_checkpoint=self.on_checkpoint,
                resume=resume,
                checkpoint_every=self.settings.checkpoint_every or None,
                checkpoint_interval_s=self.settings.checkpoint_interval_s,
            )
            writer.flush()  # every checkpoint stored before any final state or requeue
        finally:
            writer.close()
        return outcomes

    def _resume_blob(self, c: lease.Claim) -> bytes | None:
        if c.attempt == 1:
            return None
        found = retrying(f"loading run {c.run_id}'s checkpoint", lambda: results.load_resume(self.engine, c.run_id))
        if found is None:
            log.info("run %s attempt %d: no checkpoint, starting over", c.run_id, c.attempt)
            return None
        log.info("run %s attempt %d: resuming from epoch %d", c.run_id, c.attempt, found[0])
        return found[1]

    # -- runner callbacks ---------------------------------------------------------------------
    def on_progress(self, index: int, epoch: int, metrics: dict) -> None:
        """Keep every measured row; flush them all (progress + live metric rows) at most once a second."""
        self._pending.setdefault(self.claims[index], []).append((int(epoch), json_safe(dict(metrics))))
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._flush_progress()

    def _flush_progress(self) -> None:
        pending, self._pending = self._pending, {}
        self._last_progress = time.monotonic()
        if pending:
            try:
                lease.write_progress(self.engine, pending, self.worker_id)
            except Exception as exc:  # the database is away: keep the rows for the next flush
                log.warning("progress write failed: %s", exc)
                for claim, rows in self._pending.items():
                    pending.setdefault(claim, []).extend(rows)
                self._pending = pending

    def should_stop(self) -> set[int]:
        if self.term.fired:
            return set(range(len(self.claims)))
        stop = self.heartbeat.stopped_ids() if self.heartbeat else set()
        return {i for i, c in enumerate(self.claims) if c.run_id in stop}

    def on_checkpoint(self, index: int, epoch: int, state) -> None:
        """Hand one run's checkpoint (a host copy, `li2.checkpoint.State`) to the background writer:
        serialised and stored there, with the lease refreshed in the same transaction, while
        training goes on. If the database stays unavailable past DB_RETRY_S this checkpoint is
        skipped (the run goes on; the previous one still stands); any other error fails the batch."""
        c = self.claims[index]
        training = c.spec.get("training", {})
        snapshot = epoch in {0, training.get("epochs", c.epochs), *training.get("checkpoint_epochs", [])}

        def job() -> None:
            blob = state.dump()

            def write() -> None:
                with session_scope(self.engine) as s:
                    if not lease.touch(s, c, self.worker_id):
                        return  # not ours any more: the newer attempt owns the checkpoints
                    results.add_checkpoint(s, c.run_id, int(epoch), blob, "resume")
                    if snapshot:
                        results.add_checkpoint(s, c.run_id, int(epoch), blob, "snapshot")

            try:
                retrying(f"checkpoint of run {c.run_id} at epoch {epoch}", write)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                log.error("run %s: checkpoint at epoch %d not stored, the database stayed unavailable", c.run_id, epoch)

        assert self.writer is not None, "_train starts the writer before training"
        self.writer.submit(c.run_id, job)

    # -- final states -------------------------------------------------------------------------
    def _record(self, outcomes: list[dict]) -> None:
        self._flush_progress()
        heartbeat = self.heartbeat
        assert heartbeat is not None, "run() starts the heartbeat before training"
        heartbeat.beat()  # the newest cancel/lost view before deciding
        requeued = []
        for c, result in zip(self.claims, outcomes, strict=False):
            if retrying(f"final state of run {c.run_id}", partial(self._write_final, c, result)):
                requeued.append((c.run_id, c.attempt + 1))
        if requeued:
            log.warning("requeued %d runs after SIGTERM: %s", len(requeued), requeued)
            send_batch(requeued, self.settings.broker_url)

    def _write_final(self, c: lease.Claim, result: dict) -> bool:
        """One run's final state (and result row) in one transaction; True if it was requeued."""
        heartbeat = self.heartbeat
        assert heartbeat is not None
        summary = json_safe(result.get("summary") or {})
        epoch = self._epochs_run(summary, result, c)
        with session_scope(self.engine) as s:
            if c.run_id in heartbeat.lost:
                log.warning("run %s: lease lost, result discarded", c.run_id)
            elif not summary.get("stopped"):
                if lease.finish(s, c, self.worker_id, "succeeded", summary_json=summary, progress_epoch=epoch):
                    results.add_result(s, c.run_id, result)
            elif self.term.fired and c.run_id not in heartbeat.cancelled:
                return lease.finish(
                    s,
                    c,
                    self.worker_id,
                    "queued",
                    attempt=c.attempt + 1,
                    max_attempts=lease.E.max_attempts + 1,  # a graceful stop costs no retry
                    claimed_by=None,
                    heartbeat_at=None,
                    enqueued_at=db_now(),
                )
            elif c.run_id in heartbeat.cancelled:
                if lease.finish(s, c, self.worker_id, "cancelled", summary_json=summary, progress_epoch=epoch):
                    results.add_result(s, c.run_id, result)
            else:
                lease.finish(
                    s,
                    c,
                    self.worker_id,
                    "failed",
                    summary_json=summary,
                    error="the core stopped the run without a cancel request",
                )
        return False

    @staticmethod
    def _epochs_run(summary: dict, result: dict, c: lease.Claim) -> int:
        """Epochs trained (the runner's summary.epochs_run; else the last measured epoch)."""
        if summary.get("epochs_run") is not None:
            return int(summary["epochs_run"])
        epochs = (result.get("metrics") or {}).get("epoch") or []
        return int(epochs[-1]) if epochs else c.epochs

    def _fail_all(self, message: str) -> None:
        self._flush_progress()

        def write() -> None:
            with session_scope(self.engine) as s:
                for c in self.claims:
                    lease.finish(s, c, self.worker_id, "failed", error=message)

        retrying("marking the batch failed", write)


@shared_task(name=TASK_NAME, bind=True)
def run_batch_task(self, items) -> None:
    """Celery entry point: validate the message, then one BatchJob in this (fresh) pool child."""
    try:
        pairs = parse_items(items)
    except ValueError as exc:
        log.error("dropping malformed li2.run_batch message: %s", exc)
        return
    settings = load_settings()
    worker_id = f"{self.request.hostname or socket.gethostname()}/{os.getpid()}"
    engine = make_engine(settings.database_url)
    try:
        BatchJob(engine, settings, worker_id).run(pairs)
        cache = compile_cache.counters()
        if cache:  # torch.compile ran in this child: did the host's cache serve it (LI2_CACHE_DIR)?
            log.info("li2.run_batch: compile cache %d hits, %d misses", cache["hit"], cache["miss"])
    finally:
        engine.dispose()
