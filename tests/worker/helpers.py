"""Shared helpers of the worker tests: rows through the lead's models, settings, a fake runner.

The fake runner is only for unit tests of claim / heartbeat / final-state logic (fast, no torch);
the integration tests in test_worker_process.py use the real li2.runner in a real worker process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from li2.batching import batch_key
from li2.spec import spec_hash, validate_spec
from li2_store.db import database_now, init_db, make_engine, session_scope
from li2_store.models import Experiment, Sweep, User
from li2_worker.settings import load_settings


def tiny_spec(epochs: int = 200, seed: int = 0, **training) -> dict:
    """Z_11, K=64: a CPU-friendly experiment (the brief's size)."""
    return validate_spec(
        {
            "task": {"group": "cyclic", "order": 11},
            "data": {"train_fraction": 0.5},
            "model": {"hidden": 64},
            "seed": seed,
            "training": {"epochs": epochs, "eval_every": 10, **training},
        }
    )


def new_engine(url: str):
    engine = make_engine(url)
    init_db(engine)
    return engine


def add_user(engine, name: str = "alice") -> int:
    with session_scope(engine) as s:
        user = User(name=name, token_hash=name.ljust(64, "0"))
        s.add(user)
        s.flush()
        return user.id


def add_run(
    engine, user_id: int, spec: dict, sweep_id: str | None = None, max_attempts: int = 3, released: bool = True
) -> str:
    """Insert a queued experiment row the way the API does (minus HTTP). `released`: as if its
    message were sent (the tests send it themselves); False leaves it to the fair-share dispatcher."""
    with session_scope(engine) as s:
        exp = Experiment(
            user_id=user_id,
            sweep_id=sweep_id,
            spec_json=spec,
            spec_hash=spec_hash(spec),
            batch_key=batch_key(spec),
            epochs=spec["training"]["epochs"],
            status="queued",
            max_attempts=max_attempts,
            enqueued_at=database_now(s),
        )
        if released:
            exp.released_at = exp.enqueued_at
        s.add(exp)
        s.flush()
        return exp.id


def add_sweep(engine, user_id: int, n_runs: int) -> str:
    with session_scope(engine) as s:
        sw = Sweep(user_id=user_id, base_json={}, grid_json={}, n_runs=n_runs)
        s.add(sw)
        s.flush()
        return sw.id


def row(engine, run_id: str) -> dict:
    with session_scope(engine) as s:
        return dict(s.execute(sa.select(Experiment.__table__).where(Experiment.id == run_id)).mappings().one())


def update(engine, run_id: str, **values) -> None:
    with session_scope(engine) as s:
        s.execute(sa.update(Experiment).where(Experiment.id == run_id).values(**values))


def settings_for(db_url: str, broker_url: str, **env: Any):
    base = {
        "LI2_DATABASE_URL": db_url,
        "LI2_BROKER_URL": broker_url,
        "LI2_HEARTBEAT_S": "0.2",
        "LI2_LEASE_S": "2",
        "LI2_REQUEUE_AFTER_S": "1",
        "LI2_CHECKPOINT_EVERY": "5",
        "LI2_SUBBATCH": "64",  # the whole message as one batch (test_subbatch.py tests the learned size)
    }
    base.update({k: str(v) for k, v in env.items()})
    return load_settings(base)


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `check` until truthy and return its value, or fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


class FakeState:
    """Stands in for li2.checkpoint.State: `dump()` gives its blob."""

    def __init__(self, blob: bytes):
        self.blob = blob

    def dump(self) -> bytes:
        return self.blob


class FakeRunner:
    """Stands in for li2.runner.run_batch in unit tests: same callbacks, no torch, no training.

    Each epoch it reports progress, asks should_stop(), and every `checkpoint_every` epochs hands a
    `FakeState` whose blob is b"state@<epoch>"; a resumed run starts after the epoch in its blob.
    `fail` raises inside. (The wall-time cadence is li2.runner's, tested with the real runner.)
    """

    def __init__(self, fail: Exception | None = None, between_epochs: Callable[[int], None] | None = None):
        self.fail, self.between_epochs = fail, between_epochs
        self.calls: list[dict] = []

    def __call__(
        self, specs, device, *, on_progress, should_stop, on_checkpoint, resume, checkpoint_every, checkpoint_interval_s
    ):
        self.calls.append({"n": len(specs), "device": device, "resume": list(resume)})
        starts = [int(b.split(b"@")[1]) + 1 if b else 0 for b in resume]
        stopped_at: dict[int, int] = {}
        epochs = max(s["training"]["epochs"] for s in specs)
        for epoch in range(min(starts), epochs + 1):
            if self.between_epochs:
                self.between_epochs(epoch)
            if self.fail and epoch == 3:
                raise self.fail
            stop = should_stop()
            for i, spec in enumerate(specs):
                if i in stopped_at or epoch < starts[i]:
                    continue
                if i in stop:
                    stopped_at[i] = epoch
                    continue
                on_progress(i, epoch, {"train_acc": epoch / epochs, "test_loss": float("nan")})
                if epoch % checkpoint_every == 0 or epoch == spec["training"]["epochs"]:
                    on_checkpoint(i, epoch, FakeState(b"state@%d" % epoch))
        return [
            {
                "spec": s,
                "metrics": {"epoch": list(range(stopped_at.get(i, epochs + 1)))},
                "summary": {"test_acc": 1.0, "stopped": i in stopped_at},
                "timeline": {"stages": []},
                "features": {},
                "predictions": {},
            }
            for i, s in enumerate(specs)
        ]
