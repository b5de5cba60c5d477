"""POST/GET /api/v1/experiments: submit, dedup, idempotency, lists, detail, cancel, results.

Runs on SQLite and PostgreSQL (the `svc` fixture). The worker's writes (status, result rows,
checkpoints) are made directly in the database, which is exactly how the worker reports back.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from li2_store import models


def submit(svc, body, who="alice", **headers):
    return svc.client.post("/api/v1/experiments", json=body, headers={**svc.auth(who), **headers})


def test_submit_creates_row_then_enqueues_run_and_attempt(svc, make_spec):
    r = submit(svc, make_spec())
    assert r.status_code == 202, r.json
    body = r.json
    assert body["status"] == "queued" and body["cached"] is False and len(body["spec_hash"]) == 64
    assert body["spec"]["model"]["activation"] == "sqr"  # normalised: defaults filled in
    assert body["progress"] == {
        "epoch": 0,
        "epochs": 20,
        "fraction": 0.0,
        "latest": {"train_acc": None, "test_acc": None, "train_loss": None, "test_loss": None},
    }
    assert svc.enqueued == [[(body["id"], 1)]]
    with svc.engine.connect() as conn:
        row = conn.execute(sa.select(models.Experiment).where(models.Experiment.id == body["id"])).one()
    assert row.status == "queued" and row.dedup_key == body["spec_hash"] and row.enqueued_at is not None


def test_identical_spec_is_cached_in_either_body_form_unless_forced(svc, make_spec):
    first = submit(svc, make_spec()).json
    again = submit(svc, {"spec": make_spec(), "force": False})
    assert again.status_code == 200 and again.json["cached"] is True and again.json["id"] == first["id"]
    # Spelling the defaults out is the same experiment.
    explicit = make_spec(**{"model.activation": "sqr", "training.optimizer": "adam"})
    assert submit(svc, explicit).json["id"] == first["id"]
    forced = submit(svc, {"spec": make_spec(), "force": True})
    assert forced.status_code == 202 and forced.json["id"] != first["id"]
    assert len(svc.enqueued) == 2  # the cached answers sent nothing


def test_idempotency_key_replays_a_forced_submit(svc, make_spec):
    body = {"spec": make_spec(), "force": True}
    a = submit(svc, body, **{"Idempotency-Key": "retry-1"})
    b = submit(svc, body, **{"Idempotency-Key": "retry-1"})
    c = submit(svc, body, **{"Idempotency-Key": "retry-2"})
    assert a.status_code == b.status_code == 202
    assert a.json["id"] == b.json["id"] != c.json["id"]
    assert len(svc.enqueued) == 2
    reused = submit(svc, {"spec": make_spec(seed=9), "force": True}, **{"Idempotency-Key": "retry-1"})
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json["errors"]
    assert svc.counts()["experiments"] == 2


def test_concurrent_identical_submits_make_one_run(svc, make_spec):
    results = []

    def go():
        results.append(submit(svc, make_spec(seed=7)))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status_code for r in results} <= {200, 202}
    assert len({r.json["id"] for r in results}) == 1
    assert sum(r.status_code == 202 for r in results) == 1
    assert svc.counts()["experiments"] == 1


def test_failed_run_is_retired_and_the_spec_runs_again(svc, make_spec):
    first = submit(svc, make_spec()).json
    svc.update(first["id"], status="failed", error="boom")
    again = submit(svc, make_spec())
    assert again.status_code == 202 and again.json["id"] != first["id"]
    assert svc.client.get(f"/api/v1/experiments/{first['id']}", headers=svc.auth()).json["error"] == "boom"


def test_broker_down_still_answers_202_and_the_row_stays_queued(db_url, service_factory, make_spec):
    def broker_down(items, url):
        raise ConnectionRefusedError("broker unreachable")

    down = service_factory(db_url, ENQUEUE=broker_down)
    r = submit(down, make_spec())
    assert r.status_code == 202 and r.json["status"] == "queued"
    with down.engine.connect() as conn:
        status = conn.execute(
            sa.select(models.Experiment.status).where(models.Experiment.id == r.json["id"])
        ).scalar_one()
    assert status == "queued"  # the worker side's reconciler re-enqueues it from the database


def test_list_paginates_filters_and_validates(svc, make_spec):
    ids = [submit(svc, make_spec(seed=s)).json["id"] for s in range(5)]
    svc.update(ids[0], status="succeeded")
    r = svc.client.get("/api/v1/experiments?page=2&page_size=2", headers=svc.auth())
    assert r.status_code == 200
    assert (r.json["page"], r.json["page_size"], r.json["total"], len(r.json["items"])) == (2, 2, 5, 2)
    assert '"total_pages": 3' in r.headers["X-Pagination"]
    all_ids = [
        i["id"]
        for p in (1, 2, 3)
        for i in svc.client.get(f"/api/v1/experiments?page={p}&page_size=2", headers=svc.auth()).json["items"]
    ]
    assert sorted(all_ids) == sorted(ids)
    done = svc.client.get("/api/v1/experiments?status=succeeded", headers=svc.auth()).json
    assert [i["id"] for i in done["items"]] == [ids[0]] and done["total"] == 1
    for query, field in (
        ("page=0", "page"),
        ("page_size=501", "page_size"),
        ("page=x", "page"),
        ("status=done", "status"),
        ("sweep_id=../../etc", "sweep_id"),
        ("colour=red", "colour"),
    ):
        bad = svc.client.get(f"/api/v1/experiments?{query}", headers=svc.auth())
        assert bad.status_code == 422, query
        assert field in bad.json["errors"], (query, bad.json)


def test_detail_shows_progress_and_summary(svc, make_spec):
    exp_id = submit(svc, make_spec()).json["id"]
    # SQLite's JSON can hold a NaN written by a careless writer; PostgreSQL's refuses it outright.
    undefined = float("nan") if svc.engine.dialect.name == "sqlite" else None
    svc.update(
        exp_id,
        status="running",
        progress_epoch=5,
        latest_metrics_json={
            "train_acc": 0.5,
            "test_acc": undefined,
            "train_loss": 0.1,
            "test_loss": 0.2,
            "gf_norm": 3.0,
        },
    )
    d = svc.client.get(f"/api/v1/experiments/{exp_id}", headers=svc.auth()).json
    assert d["status"] == "running"
    assert d["progress"]["epoch"] == 5 and d["progress"]["fraction"] == pytest.approx(0.25)
    assert d["progress"]["latest"]["train_acc"] == 0.5
    assert d["progress"]["latest"]["test_acc"] is None  # NaN never reaches the client


def test_cancel_queued_at_once_running_by_request_finished_is_409(svc, make_spec):
    queued = submit(svc, make_spec(seed=1)).json["id"]
    running = submit(svc, make_spec(seed=2)).json["id"]
    svc.update(running, status="running")
    r = svc.client.post(f"/api/v1/experiments/{queued}/cancel", headers=svc.auth())
    assert r.status_code == 202 and r.json["status"] == "cancelled"
    d = svc.client.get(f"/api/v1/experiments/{queued}", headers=svc.auth()).json
    assert d["status"] == "cancelled" and d["finished_at"] is not None
    r = svc.client.post(f"/api/v1/experiments/{running}/cancel", headers=svc.auth())
    assert r.status_code == 202 and r.json == {"id": running, "status": "running", "cancel_requested": True}
    assert svc.client.get(f"/api/v1/experiments/{running}", headers=svc.auth()).json["cancel_requested"] is True
    again = svc.client.post(f"/api/v1/experiments/{queued}/cancel", headers=svc.auth())
    assert again.status_code == 409 and "cancelled" in again.json["message"]


def _finish(svc, exp_id, metrics):
    svc.update(exp_id, status="succeeded", summary_json={"grokked": True, "test_acc": 1.0})
    with svc.engine.begin() as conn:
        conn.execute(
            sa.insert(models.Result).values(
                experiment_id=exp_id,
                result_json={"metrics": metrics},
                metrics_json=metrics,
                timeline_json={"stages": [{"name": "lazy", "start_epoch": 0, "end_epoch": 10}]},
                features_json={"nodes": []},
                predictions_json={"n_star": 12.5},
            )
        )
        conn.execute(
            sa.insert(models.Checkpoint).values(experiment_id=exp_id, epoch=10, kind="snapshot", data=b"\x01\x02\x03")
        )
        conn.execute(
            sa.insert(models.Checkpoint).values(experiment_id=exp_id, epoch=20, kind="resume", data=b"\x09" * 5)
        )


def test_results_are_409_until_finished_then_served(svc, make_spec):
    exp_id = submit(svc, make_spec()).json["id"]
    for what in ("timeline", "features"):  # metrics are served while a run trains: test_live_metrics.py
        r = svc.client.get(f"/api/v1/experiments/{exp_id}/{what}", headers=svc.auth())
        assert r.status_code == 409 and "queued" in r.json["message"]
    metrics = {"epoch": [0, 10], "train_acc": [0.1, 1.0], "test_acc": [0.0, None], "gf_key_cos": [None, 0.5]}
    _finish(svc, exp_id, metrics)
    r = svc.client.get(f"/api/v1/experiments/{exp_id}/metrics", headers=svc.auth())
    assert r.status_code == 200 and r.json["columns"] == metrics and r.json["complete"] is True
    csv = svc.client.get(f"/api/v1/experiments/{exp_id}/metrics?format=csv", headers=svc.auth())
    assert csv.mimetype == "text/csv"
    assert csv.data.decode().splitlines() == ["epoch,train_acc,test_acc,gf_key_cos", "0,0.1,0.0,", "10,1.0,,0.5"]
    bad = svc.client.get(f"/api/v1/experiments/{exp_id}/metrics?format=xml", headers=svc.auth())
    assert bad.status_code == 422 and "format" in bad.json["errors"]
    tl = svc.client.get(f"/api/v1/experiments/{exp_id}/timeline", headers=svc.auth()).json
    assert tl["stages"][0]["name"] == "lazy"
    assert svc.client.get(f"/api/v1/experiments/{exp_id}/predictions", headers=svc.auth()).json == {"n_star": 12.5}
    cks = svc.client.get(f"/api/v1/experiments/{exp_id}/checkpoints", headers=svc.auth()).json
    assert cks == [{"epoch": 10, "kind": "snapshot", "size": 3}, {"epoch": 20, "kind": "resume", "size": 5}]
    blob = svc.client.get(f"/api/v1/experiments/{exp_id}/checkpoints/10", headers=svc.auth())
    assert blob.mimetype == "application/octet-stream" and blob.data == b"\x01\x02\x03"
    assert svc.client.get(f"/api/v1/experiments/{exp_id}/checkpoints/11", headers=svc.auth()).status_code == 404


def test_predictions_exist_right_after_submit(svc, make_spec):
    exp_id = submit(svc, make_spec()).json["id"]
    r = svc.client.get(f"/api/v1/experiments/{exp_id}/predictions", headers=svc.auth())
    assert r.status_code == 200 and isinstance(r.json, dict) and r.json
