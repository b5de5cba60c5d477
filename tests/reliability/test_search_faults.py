"""A search survives its worker being killed mid-round, an API restart and a Redis restart.

Two workers serve a private Redis and a fresh PostgreSQL database. While round 0 trains, the worker
holding one of its runs is killed with SIGKILL (its whole process group); the API is restarted;
during round 1 redis-server is restarted without persistence (every queued message is lost). The
search must still finish by its own rules, with every run counted once: one result per run, no
(M, n, seed) point trained twice, each round planned once, nothing left queued or running.
"""

from __future__ import annotations

import signal

import pytest
import sqlalchemy as sa
from stack import wait_until

from li2_store import models

pytestmark = pytest.mark.slow

BASE = {
    "model": {"hidden": 64, "activation": "sqr"},
    "training": {"optimizer": "adam", "lr": 0.05, "weight_decay": 1e-3, "epochs": 1000, "eval_every": 10},
    "seed": 1,
}


def search_row(stack, search_id):
    with stack.engine.connect() as c:
        return dict(c.execute(sa.select(models.Search.__table__).where(models.Search.id == search_id)).mappings().one())


def search_runs(stack, search_id):
    e, s = models.Experiment.__table__, models.Sweep.__table__
    with stack.engine.connect() as c:
        return [
            dict(r)
            for r in c.execute(
                sa.select(e.c.id, e.c.status, e.c.attempt, e.c.spec_json, e.c.claimed_by, s.c.search_round)
                .join(s, e.c.sweep_id == s.c.id)
                .where(s.c.search_id == search_id)
            ).mappings()
        ]


@pytest.mark.timeout(1500)
def test_search_finishes_with_every_run_once_after_worker_kill_api_and_redis_restarts(stack, redis_server):
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a")
    stack.start_worker("b")
    r = api.post(
        "/searches",
        json={
            "base": BASE,
            "orders": [11, 13],
            "seeds": 1,
            "tolerance": 0.25,
            "max_runs": 10,
            "initial_points": 3,
            "points_per_round": 2,
        },
    )
    assert r.status_code == 202, r.text
    search_id = r.json()["id"]

    # Round 0 in flight: kill the worker holding a running run, mid-training.
    def running_with_checkpoint():
        for run in search_runs(stack, search_id):
            if run["status"] == "running" and (stack.resume_checkpoint_epoch(run["id"]) or 0) >= 100:
                return run
        return None

    victim_run = wait_until(running_with_checkpoint, 180, "a round-0 run training with a checkpoint")
    victim = stack.worker_holding(victim_run["id"])
    stack.note(f"SIGKILL to worker {victim} holding run {victim_run['id']}")
    stack.workers[victim].kill_group(signal.SIGKILL)
    assert stack.workers[victim].wait(10) is not None

    stack.note("API restart")
    stack.stop_api()
    stack.start_api()
    stack.start_worker("c")  # a replacement for the dead worker

    # Round 1 in flight: restart Redis, losing every queued message.
    wait_until(lambda: search_row(stack, search_id)["round"] >= 1, 600, "round 1 to be planned")
    stack.note("redis restart")
    redis_server.stop()
    redis_server.start()

    def ended():
        api.get(f"/searches/{search_id}")  # reads also run the fan-in; the workers do it anyway
        row = search_row(stack, search_id)
        return row if row["status"] != "running" else None

    row = wait_until(ended, 900, "the search to end", 1.0)
    stack.note(f"search ended: {row['status']} ({row['stop_reason']}) after round {row['round']}")
    assert row["status"] == "succeeded" and row["stop_reason"] in ("tolerance", "max_runs", "max_rounds"), row

    runs = search_runs(stack, search_id)
    assert len(runs) == row["n_runs"] <= 10
    assert all(run["status"] == "succeeded" for run in runs), runs
    points = [
        (r["spec_json"]["task"]["order"], r["spec_json"]["data"]["train_size"], r["spec_json"]["seed"]) for r in runs
    ]
    assert len(set(points)) == len(points), "a point was trained twice"
    for run in runs:  # one result per run: nothing counted twice
        assert stack.count(models.Result, experiment_id=run["id"]) == 1
    assert next(r for r in runs if r["id"] == victim_run["id"])["attempt"] == 2
    with stack.engine.connect() as c:
        rounds = c.execute(
            sa.select(models.Sweep.search_round, models.Sweep.n_runs, models.Sweep.status)
            .where(models.Sweep.search_id == search_id)
            .order_by(models.Sweep.search_round)
        ).all()
    assert [r.search_round for r in rounds] == list(range(row["round"] + 1))  # each round once
    assert sum(r.n_runs for r in rounds) == len(runs) and all(r.status == "succeeded" for r in rounds)
    assert {r["search_round"] for r in runs} >= {0, 1}
    law = api.get(f"/searches/{search_id}/scaling-law").json()
    assert law["n_runs"] == len(runs) and law["status"] in ("fitted", "unresolved", "bounded")
    stack.assert_settled()
