"""Fixtures for the security tests: the real API app on a throw-away SQLite store and broker.

One app per test module: `li2_service.create_app` with its real enqueue (Celery `send_task` over
the embedded SQLite kombu transport, in the test's temp folder), so every request takes the
production code path; no worker runs, so submitted runs simply stay queued. Three accounts: alice and bob (users)
and root (admin). `world` holds one of alice's experiments with a finished result and stored
checkpoints, and one of alice's sweeps, so read/download routes have something to leak.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import security_specs` (importlib mode)

from security_specs import VALID_SPEC

COUNTED_TABLES = (
    "users",
    "searches",
    "sweeps",
    "experiments",
    "results",
    "checkpoints",
    "experiment_tags",
    "sweep_tags",
)


@dataclass
class World:
    """Tokens and the ids of alice's objects."""

    alice: str
    bob: str
    root: str
    experiment_id: str  # alice's, with a result and checkpoints
    sweep_id: str  # alice's
    checkpoint_epoch: int  # a snapshot epoch of experiment_id
    checkpoint_bytes: bytes
    search_id: str = ""  # alice's


def safetensors_blob() -> bytes:
    """A real safetensors file (what the worker stores), built without torch."""
    import numpy as np
    from safetensors.numpy import save

    return save({"W": np.arange(12, dtype=np.float32).reshape(3, 4), "epoch": np.array([5], dtype=np.int64)})


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app per test module (the hostile-input tests assert they change nothing, so sharing is safe)."""
    from li2_service import create_app
    from li2_store.db import init_db, make_engine

    tmp_path = tmp_path_factory.mktemp("security")
    engine = make_engine(f"sqlite:///{tmp_path / 'li2.sqlite'}")
    init_db(engine)
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'li2.sqlite'}",
            "ENGINE": engine,
            "BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
            "BROKER_EMBEDDED": True,
            "TESTING": True,
        }
    )
    yield app
    engine.dispose()


@pytest.fixture
def valid_spec() -> dict:
    """A fresh copy of VALID_SPEC to modify."""
    return copy.deepcopy(VALID_SPEC)


@pytest.fixture(scope="module")
def engine(app):
    return app.extensions["li2"].engine


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def row_counts(engine) -> dict[str, int]:
    """Rows per table: hostile requests must leave every count as it was."""
    with engine.connect() as c:
        return {t: int(c.scalar(sa.text(f"SELECT count(*) FROM {t}"))) for t in COUNTED_TABLES}


@pytest.fixture(scope="module")
def world(app, engine, client) -> World:
    from li2_service.auth import create_user
    from li2_store import models
    from li2_store.db import session_scope, utcnow

    with session_scope(engine) as s:
        alice, bob, root = create_user(s, "alice"), create_user(s, "bob"), create_user(s, "root", admin=True)

    r = client.post("/api/v1/experiments", json=VALID_SPEC, headers=bearer(alice))
    assert r.status_code == 202, r.get_json()
    exp_id = r.get_json()["id"]
    r = client.post("/api/v1/sweeps", json={"base": VALID_SPEC, "grid": {"seed": [2, 3]}}, headers=bearer(alice))
    assert r.status_code == 202, r.get_json()
    sweep_id = r.get_json()["id"]
    search = {"base": VALID_SPEC, "orders": [11], "seeds": 1, "max_runs": 6, "initial_points": 3}
    r = client.post("/api/v1/searches", json=search, headers=bearer(alice))
    assert r.status_code == 202, r.get_json()
    search_id = r.get_json()["id"]

    # Finish alice's experiment the way a worker would: a result row and stored checkpoints.
    blob = safetensors_blob()
    with session_scope(engine) as s:
        row = s.get(models.Experiment, exp_id)
        row.status, row.finished_at, row.progress_epoch = "succeeded", utcnow(), 20
        row.summary_json = {"train_acc": 1.0, "test_acc": 0.5}
        metrics = {"epoch": [0, 10, 20], "train_acc": [0.1, 0.6, 1.0], "test_acc": [0.1, 0.3, 0.5]}
        s.add(
            models.Result(
                experiment_id=exp_id,
                result_json={"metrics": metrics},
                metrics_json=metrics,
                timeline_json={
                    "stages": [{"name": "lazy", "start_epoch": 0, "end_epoch": 10, "open": False}],
                    "events": {"memorized": 10, "generalized": None},
                },
                features_json={"group": True, "nodes": {"dominant": ["k=1", "k=2"]}, "coverage": 1.0},
                predictions_json={},
            )
        )
        s.add(models.Checkpoint(experiment_id=exp_id, epoch=10, kind="snapshot", data=blob))
        s.add(models.Checkpoint(experiment_id=exp_id, epoch=20, kind="resume", data=blob))
    return World(alice, bob, root, exp_id, sweep_id, 10, blob, search_id)


@pytest.fixture(scope="module")
def counts(engine):
    """A function returning {table: row count}; hostile requests must leave it unchanged."""
    return lambda: row_counts(engine)
