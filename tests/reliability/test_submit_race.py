"""Concurrent identical submissions create exactly one run (the database's unique index decides).

Twenty threads release the same request at the same instant against the threaded API server on
PostgreSQL. Every answer names the same experiment; exactly one of them is the 202 that created it,
the others are 200 "cached"; the table holds one row. The same holds for a forced submit repeated
with one Idempotency-Key. No worker is needed: the runs stay queued.
"""

from __future__ import annotations

import threading

import pytest
from stack import small_spec

from li2_store import models

pytestmark = pytest.mark.slow

N = 20


def race(stack, token: str, body: dict, headers: dict | None = None) -> list:
    """POST the same body from N threads at once (each with its own connection); the answers."""
    barrier = threading.Barrier(N)
    answers: list = [None] * N

    def one(k: int) -> None:
        api = stack.api(token)
        barrier.wait()
        answers[k] = api.post("/experiments", json=body, headers=headers or {})

    threads = [threading.Thread(target=one, args=(k,)) for k in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


@pytest.mark.timeout(120)
def test_concurrent_identical_submits_make_one_run(stack):
    answers = race(stack, stack.create_user("alice"), small_spec(100, seed=11))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * (N - 1) + [202], codes
    ids = {r.json()["id"] for r in answers}
    assert len(ids) == 1
    assert [r.json()["cached"] for r in answers].count(False) == 1
    assert stack.count(models.Experiment) == 1


@pytest.mark.timeout(120)
def test_concurrent_forced_submits_with_one_idempotency_key_make_one_run(stack):
    token = stack.create_user("alice")
    api = stack.api(token)
    answers = race(stack, token, {"spec": small_spec(100, seed=12), "force": True}, {"Idempotency-Key": "retry-42"})
    assert all(r.status_code in (200, 202) for r in answers), [r.status_code for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert stack.count(models.Experiment) == 1
    # a forced submit without a key is a new run every time
    again = api.post("/experiments", json={"spec": small_spec(100, seed=12), "force": True})
    assert again.status_code == 202 and again.json()["id"] not in {r.json()["id"] for r in answers}
    assert stack.count(models.Experiment) == 2
