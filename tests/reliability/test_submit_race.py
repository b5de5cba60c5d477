"""Concurrent submissions: identical ones create exactly one run, and distinct ones never take a
user past the active-run limit (the database's unique index and the per-user lock decide).

Twenty threads release their requests at the same instant against the threaded API server on
PostgreSQL, each on its own connection. For identical bodies every answer names the same experiment;
exactly one of them is the 202 that created it, the others are 200 "cached"; the table holds one
row. The same holds for a forced submit repeated with one Idempotency-Key. For distinct bodies with
LI2_MAX_ACTIVE_PER_USER=5, exactly five are accepted and the rest answered 429 with Retry-After.
No worker is needed: the runs stay queued.
"""

from __future__ import annotations

import threading

import pytest
from stack import small_spec

from li2_store import models

pytestmark = pytest.mark.slow

N = 20


def race(stack, token: str, bodies: list[dict], headers: dict | None = None, path: str = "/experiments") -> list:
    """POST bodies[k] from thread k, all released at once (each with its own connection); the answers."""
    barrier = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def one(k: int) -> None:
        api = stack.api(token)
        barrier.wait()
        answers[k] = api.post(path, json=bodies[k], headers=headers or {})

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


@pytest.mark.timeout(120)
def test_concurrent_identical_submits_make_one_run(stack):
    answers = race(stack, stack.create_user("alice"), [small_spec(100, seed=11)] * N)
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
    body = {"spec": small_spec(100, seed=12), "force": True}
    answers = race(stack, token, [body] * N, {"Idempotency-Key": "retry-42"})
    assert all(r.status_code in (200, 202) for r in answers), [r.status_code for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert stack.count(models.Experiment) == 1
    # a forced submit without a key is a new run every time
    again = api.post("/experiments", json={"spec": small_spec(100, seed=12), "force": True})
    assert again.status_code == 202 and again.json()["id"] not in {r.json()["id"] for r in answers}
    assert stack.count(models.Experiment) == 2


def assert_refused_for_quota(answers: list) -> None:
    for r in answers:
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) > 0
        assert "LI2_MAX_ACTIVE_PER_USER" in r.json()["message"]


@pytest.mark.timeout(120)
def test_racing_distinct_submits_hold_the_active_limit_exactly(stack_with):
    stack = stack_with(LI2_MAX_ACTIVE_PER_USER=5)
    token = stack.create_user("alice")
    answers = race(stack, token, [small_spec(100, seed=100 + k) for k in range(N)])
    accepted = [r for r in answers if r.status_code == 202]
    assert len(accepted) == 5, sorted(r.status_code for r in answers)
    assert_refused_for_quota([r for r in answers if r.status_code != 202])
    # nothing lost, nothing extra: exactly the accepted runs exist, queued, one per distinct spec
    ids = {r.json()["id"] for r in accepted}
    assert len(ids) == 5
    assert stack.count(models.Experiment) == 5
    assert all(stack.status(i) == "queued" for i in ids)
    # another user is not limited by alice's runs
    other = stack.api(stack.create_user("bob")).post("/experiments", json=small_spec(100, seed=1))
    assert other.status_code == 202, other.text


@pytest.mark.timeout(120)
def test_racing_sweeps_hold_the_active_limit_exactly(stack_with):
    stack = stack_with(LI2_MAX_ACTIVE_PER_USER=5)
    token = stack.create_user("alice")
    sweeps = [{"base": small_spec(100, seed=200 + k), "grid": {"seed": [k, 50 + k]}} for k in range(10)]
    answers = race(stack, token, sweeps, path="/sweeps")
    accepted = [r for r in answers if r.status_code == 202]
    assert len(accepted) == 2, sorted(r.status_code for r in answers)  # 2 + 2 runs; a third would make 6
    assert_refused_for_quota([r for r in answers if r.status_code != 202])
    assert stack.count(models.Sweep) == 2
    assert stack.count(models.Experiment) == 4
