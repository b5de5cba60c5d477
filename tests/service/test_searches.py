"""POST/GET /api/v1/searches: round 0, fan-in that plans each round exactly once, a whole search
driven through the database, cancel, bad input, and the law."""

from __future__ import annotations

import math
import threading

import sqlalchemy as sa

from li2.compute import run_flops
from li2_service.limits import PETA
from li2_store import models
from li2_store import searches as store
from li2_store import sweeps as sweeps_store

BASE = {"model": {"hidden": 16}, "training": {"epochs": 20}, "seed": 1}


def body(**over):
    out = {"base": BASE, "orders": [11, 17, 23], "seeds": 2, "tolerance": 0.05, "max_runs": 200}
    out.update(over)
    return out


def post(svc, payload, who="alice"):
    return svc.client.post("/api/v1/searches", json=payload, headers=svc.auth(who))


def queued_runs(svc, search_id):
    exp, sw = models.Experiment, models.Sweep
    with svc.engine.connect() as conn:
        return conn.execute(
            sa.select(exp.id, exp.spec_json, sw.search_round)
            .join(sw, exp.sweep_id == sw.id)
            .where(sw.search_id == search_id, exp.status == "queued")
        ).all()


def play_worker(svc, search_id, c=3.0):
    """Finish every queued run as a trainer with a sharp boundary at n* = c·M·ln M would."""
    done = 0
    for run_id, spec, _ in queued_runs(svc, search_id):
        M, n = spec["task"]["order"], spec["data"]["train_size"]
        ok = n > c * M * math.log(M)
        svc.update(run_id, status="succeeded", summary_json={"grokked": ok, "epoch_generalized": 10 if ok else None})
        done += 1
    return done


def rounds(svc, search_id):
    with svc.engine.connect() as conn:
        return conn.execute(
            sa.select(models.Sweep.search_round, models.Sweep.n_runs)
            .where(models.Sweep.search_id == search_id)
            .order_by(models.Sweep.search_round)
        ).all()


def test_round_zero_is_created_batched_and_listed(svc):
    r = post(svc, body())
    assert r.status_code == 202, r.json
    s = r.json
    assert s["status"] == "running" and s["round"] == 0 and s["n_runs"] == 3 * 5 * 2 and s["max_runs"] == 200
    assert [o["phase"] for o in s["orders"]] == ["initial"] * 3
    assert s["counts"]["queued"] == 30
    assert sum(len(b) for b in svc.enqueued) == 30 and len(svc.enqueued) == 3  # one ragged batch per M
    items = svc.client.get(f"/api/v1/searches/{s['id']}/runs", headers=svc.auth()).json["items"]
    assert len(items) == 30 and {i["round"] for i in items} == {0}
    spec_of = {i["id"]: i["spec"] for i in items}
    for batch in svc.enqueued:  # one order each, smallest training size first, early stopping on
        specs = [spec_of[run_id] for run_id, _ in batch]
        sizes = [sp["data"]["train_size"] for sp in specs]
        assert len({sp["task"]["order"] for sp in specs}) == 1 and sizes == sorted(sizes) and len(set(sizes)) == 5
        assert all(sp["training"]["early_stop"] is not None for sp in specs)
    assert all(i["spec"]["data"]["train_size"] is not None for i in items)
    listed = svc.client.get("/api/v1/searches", headers=svc.auth()).json
    assert [x["id"] for x in listed["items"]] == [s["id"]]
    assert svc.client.get("/api/v1/searches", headers=svc.auth("bob")).json["items"] == []
    assert svc.client.get(f"/api/v1/searches/{s['id']}", headers=svc.auth("bob")).status_code == 404
    doc = svc.client.get("/api/v1/openapi.json").json
    assert {"/api/v1/searches", "/api/v1/searches/{search_id}", "/api/v1/searches/{search_id}/scaling-law"} <= set(
        doc["paths"]
    )
    assert "SearchSubmit" in doc["components"]["schemas"]


def test_bad_input_is_a_422_naming_the_field_and_creates_nothing(db_url, service_factory):
    svc = service_factory(db_url, MAX_SWEEP_RUNS=100)
    before = svc.counts()
    for over, field in (
        ({"tolerance": 0}, "tolerance"),
        ({"tolerance": 1.0}, "tolerance"),
        ({"seeds": 0}, "seeds"),
        ({"order_kind": "torus"}, "order_kind"),
        ({"max_runs": 101}, "max_runs"),
        ({"orders": ["eleven"]}, "orders[0]"),
        ({"base": {"training": {"epochs": 0}}}, "base.training.epochs"),
    ):
        r = post(svc, body(**over))
        assert r.status_code == 422, (over, r.json)
        assert any(k.startswith(field) for k in r.json["errors"]), (field, r.json["errors"])
    assert svc.client.post("/api/v1/searches", json=[1], headers=svc.auth()).status_code in (400, 422)
    assert svc.counts() == before and svc.enqueued == []


def test_round_zero_over_the_active_quota_is_429_or_422(db_url, service_factory):
    """429 + Retry-After while finished runs would make room; 422 when round 0 alone exceeds the limit."""
    svc = service_factory(db_url, MAX_ACTIVE_PER_USER=10)
    before = svc.counts()
    r = post(svc, body())
    assert r.status_code == 422 and "Retry-After" not in r.headers and "active_runs" in r.json["errors"]
    assert svc.counts() == before
    svc.app.extensions["li2"].config["MAX_ACTIVE_PER_USER"] = 1000  # room for one search's round 0
    first = post(svc, body())
    assert first.status_code == 202
    svc.app.extensions["li2"].config["MAX_ACTIVE_PER_USER"] = 2 * first.json["n_runs"] - 1
    before = svc.counts()
    r = post(svc, body())
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert svc.counts() == before


def test_round_zero_is_admitted_by_estimated_compute_422_alone_429_beside_waiting_work(db_url, service_factory):
    """Round 0's estimated compute (li2.compute) counts against LI2_MAX_COMPUTE_PFLOP like any submit."""
    svc = service_factory(db_url)
    config = svc.app.extensions["li2"].config
    first = post(svc, body())
    assert first.status_code == 202
    round0 = sum(run_flops(spec) for _, spec, _ in queued_runs(svc, first.json["id"]))
    config["MAX_COMPUTE_PFLOP"] = 0.5 * round0 / PETA  # round 0 alone is over: never admitted
    before = svc.counts()
    r = post(svc, body())
    assert r.status_code == 422 and "Retry-After" not in r.headers and "compute" in r.json["errors"]
    assert svc.counts() == before
    config["MAX_COMPUTE_PFLOP"] = 1.5 * round0 / PETA  # alone it fits; beside the first search's: wait
    r = post(svc, body())
    assert r.status_code == 429 and "Retry-After" in r.headers and "compute" in r.json["errors"]
    assert svc.counts() == before


def test_fan_in_delivered_twice_or_concurrently_plans_the_next_round_once(svc):
    s = post(svc, body()).json
    play_worker(svc, s["id"])
    svc.enqueued.clear()
    with svc.engine.connect() as conn:
        sweep_id = conn.scalar(sa.select(models.Sweep.id).where(models.Sweep.search_id == s["id"]))
    outcomes = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(
                store.advance(
                    svc.engine, s["id"], svc.app.extensions["li2"].config, lambda i, u: svc.enqueued.append(i)
                )
            )
        )
        for _ in range(4)
    ]
    sweeps_store.finalize_sweep(
        svc.engine, sweep_id, svc.app.extensions["li2"].config, lambda i, u: svc.enqueued.append(i)
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sweeps_store.finalize_sweep(svc.engine, sweep_id)  # the same fan-in again, from another process's view
    store.advance_ready(svc.engine)  # and the reaper's pass
    assert [r for r, _ in rounds(svc, s["id"])] == [0, 1]
    n1 = rounds(svc, s["id"])[1][1]
    assert n1 > 0 and sum(len(b) for b in svc.enqueued) == n1  # its runs were sent once
    got = svc.client.get(f"/api/v1/searches/{s['id']}", headers=svc.auth()).json
    assert got["round"] == 1 and got["n_runs"] == 30 + n1 and got["counts"]["queued"] == n1
    assert all(o["phase"] == "narrowing" for o in got["orders"])


def test_a_search_driven_through_the_database_ends_with_its_law(svc):
    s = post(svc, body()).json
    for _ in range(10):
        if not play_worker(svc, s["id"]):
            break
        got = svc.client.get(f"/api/v1/searches/{s['id']}", headers=svc.auth()).json  # triggers the fan-in
    assert got["status"] == "succeeded" and got["stop_reason"] == "tolerance", got
    assert all(o["phase"] == "resolved" for o in got["orders"])
    items = svc.client.get(f"/api/v1/searches/{s['id']}/runs", headers=svc.auth()).json["items"]
    assert len(items) == got["n_runs"] == got["counts"]["succeeded"]
    keys = [(i["spec"]["task"]["order"], i["spec"]["data"]["train_size"], i["spec"]["seed"]) for i in items]
    assert len(set(keys)) == len(keys)  # no point trained twice
    law = svc.client.get(f"/api/v1/searches/{s['id']}/scaling-law", headers=svc.auth()).json
    assert law["status"] == "fitted" and law["ci95"][0] <= 3.0 <= law["ci95"][1] and law["partial"] is False
    # A round's sweep points to the search's law instead of fitting its own.
    with svc.engine.connect() as conn:
        sweep_id = conn.scalar(sa.select(models.Sweep.id).where(models.Sweep.search_id == s["id"]).limit(1))
    r = svc.client.get(f"/api/v1/sweeps/{sweep_id}/scaling-law", headers=svc.auth())
    assert r.status_code == 409 and f"searches/{s['id']}/scaling-law" in r.json["message"]


def test_scaling_law_409_while_running_then_partial(svc):
    s = post(svc, body()).json
    r = svc.client.get(f"/api/v1/searches/{s['id']}/scaling-law", headers=svc.auth())
    assert r.status_code == 409 and "partial=true" in r.json["message"]
    play_worker(svc, s["id"])
    law = svc.client.get(f"/api/v1/searches/{s['id']}/scaling-law?partial=true", headers=svc.auth()).json
    assert law["partial"] is True and law["n_runs_used"] == 30 and law["status"] in ("fitted", "unresolved")


def test_cancel_stops_the_search_and_no_round_follows(svc):
    s = post(svc, body()).json
    ids = [i["id"] for i in svc.client.get(f"/api/v1/searches/{s['id']}/runs", headers=svc.auth()).json["items"]]
    svc.update(ids[0], status="running")
    r = svc.client.post(f"/api/v1/searches/{s['id']}/cancel", headers=svc.auth())
    assert r.status_code == 202 and r.json == {"id": s["id"], "status": "cancelled", "cancelled": 29, "stopping": 1}
    svc.update(ids[0], status="cancelled")  # the worker stops it
    got = svc.client.get(f"/api/v1/searches/{s['id']}", headers=svc.auth()).json
    assert got["status"] == "cancelled" and got["stop_reason"] == "cancelled" and got["round"] == 0
    assert store.advance(svc.engine, s["id"]) == "closed" and [r for r, _ in rounds(svc, s["id"])] == [0]
    assert svc.client.post(f"/api/v1/searches/{s['id']}/cancel", headers=svc.auth()).status_code == 409
    assert svc.client.post(f"/api/v1/searches/{s['id']}/cancel", headers=svc.auth("bob")).status_code == 404


def test_a_round_whose_runs_all_failed_fails_the_search(svc):
    s = post(svc, body(orders=[11], max_runs=40)).json
    for run_id, _, _ in queued_runs(svc, s["id"]):
        svc.update(run_id, status="failed", error="CUDA out of memory")
    got = svc.client.get(f"/api/v1/searches/{s['id']}", headers=svc.auth()).json
    assert got["status"] == "failed" and got["stop_reason"] == "runs_failed"
