"""A real Li2 Lab service for the SDK tests: ``li2lab serve`` in embedded mode as a subprocess
(embedded_service.py), living in a temporary directory for the whole session.

Limits are set low so quota errors can be triggered for real and cheaply:
LI2_MAX_ACTIVE_PER_USER=10 and LI2_MAX_SWEEP_RUNS=10 (the sweep test uses 8 runs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import embedded_service` (importlib mode)

from embedded_service import running_service

MAX_ACTIVE = 10
MAX_SWEEP_RUNS = 10


@pytest.fixture(scope="session")
def live_service(tmp_path_factory):
    """Start ``li2lab serve`` (embedded broker + worker), wait for /readyz, stop it afterwards."""
    with running_service(
        tmp_path_factory.mktemp("li2-service"),
        LI2_MAX_ACTIVE_PER_USER=MAX_ACTIVE,
        LI2_MAX_SWEEP_RUNS=MAX_SWEEP_RUNS,
    ) as service:
        yield service


@pytest.fixture(scope="session")
def alice(live_service):
    """Token of user alice (the main test user)."""
    return live_service.create_user("alice")


@pytest.fixture(scope="session")
def client(live_service, alice):
    from li2_client import Client

    return Client(live_service.url, token=alice, timeout=30, retries=2)


# -- shared finished work (session-wide: each trains once) -----------------------------------------
TINY_EPOCHS = 150


def tiny_spec(seed: int = 1, epochs: int = TINY_EPOCHS, fraction: float = 0.9):
    """Z_11, K=64, Adam at a brisk rate: groks in ~50 epochs at fraction 0.9, seconds of CPU."""
    from li2_client import Spec

    return (
        Spec.cyclic(11)
        .train_fraction(fraction)
        .model(hidden=64, activation="sqr")
        .adam(lr=0.05, weight_decay=1e-3)
        .epochs(epochs)
        .seed(seed)
    )


@pytest.fixture(scope="session")
def finished_exp(client):
    """One tiny experiment, submitted through the SDK and waited for."""
    exp = client.submit(tiny_spec())
    return exp.wait(timeout=600, poll=0.5, progress=False)


SWEEP_GRID = {"task.order": [11, 13], "data.train_fraction": [0.3, 0.9], "seed": [1, 2]}


@pytest.fixture(scope="session")
def finished_sweep(client):
    """2 orders × 2 train sizes × 2 seeds = 8 short runs (two batches of equal shape): 0.3 of the
    pairs is below the critical size c·M·ln M, 0.9 above, so each order gets a critical size."""
    base = tiny_spec(epochs=100).eval_every(5).to_dict()
    return client.submit_sweep(base, SWEEP_GRID).wait(timeout=900, poll=1.0, progress=False)


@pytest.fixture(scope="session")
def tiny():
    """The spec factory ``tiny(seed=1, epochs=TINY_EPOCHS)`` as a fixture (tests cannot import conftest)."""
    return tiny_spec


@pytest.fixture(scope="session")
def limits():
    return {
        "max_active": MAX_ACTIVE,
        "max_sweep_runs": MAX_SWEEP_RUNS,
        "tiny_epochs": TINY_EPOCHS,
        "sweep_grid": SWEEP_GRID,
    }
