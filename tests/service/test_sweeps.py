"""POST/GET /api/v1/sweeps: expansion, batching by shape, counts, runs, cancel, scaling law."""

from __future__ import annotations

import sqlalchemy as sa

from li2_store import models


def post_sweep(svc, body, who="alice"):
    return svc.client.post("/api/v1/sweeps", json=body, headers=svc.auth(who))


def test_sweep_creates_all_runs_and_enqueues_one_batch_per_shape(svc, make_spec):
    grid = {"task.order": [11, 13], "seed": [1, 2, 3]}
    r = post_sweep(svc, {"base": make_spec(), "grid": grid})
    assert r.status_code == 202, r.json
    sweep = r.json
    assert sweep["n_runs"] == 6 and sweep["status"] == "queued"
    assert sweep["counts"] == {"queued": 6, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    # Seeds share tensor shapes; orders do not: two batches of three.
    assert sorted(len(b) for b in svc.enqueued) == [3, 3]
    runs = svc.client.get(f"/api/v1/sweeps/{sweep['id']}/runs", headers=svc.auth()).json
    assert runs["total"] == 6
    assert {i["id"] for i in runs["items"]} == {run_id for b in svc.enqueued for run_id, _ in b}
    assert sorted((i["spec"]["task"]["order"], i["spec"]["seed"]) for i in runs["items"]) == [
        (o, s) for o in (11, 13) for s in (1, 2, 3)
    ]
    for batch in svc.enqueued:
        orders = {i["spec"]["task"]["order"] for i in runs["items"] if (i["id"], 1) in batch}
        assert len(orders) == 1


def test_training_sizes_share_a_batch_and_early_stop_is_a_sweep_option(svc, make_spec):
    grid = {"data.train_fraction": [0.8, 0.2, 0.6, 0.4], "seed": [1, 2]}
    r = post_sweep(svc, {"base": make_spec(), "grid": grid, "early_stop": {"patience_epochs": 7}})
    assert r.status_code == 202, r.json
    (batch,) = svc.enqueued  # one order: one ragged batch, smallest training size first
    runs = svc.client.get(f"/api/v1/sweeps/{r.json['id']}/runs", headers=svc.auth()).json["items"]
    spec_of = {i["id"]: i["spec"] for i in runs}
    assert [spec_of[rid]["data"]["train_fraction"] for rid, _ in batch] == [0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8]
    assert all(s["training"]["early_stop"]["patience_epochs"] == 7 for s in spec_of.values())
    bad = post_sweep(svc, {"base": make_spec(), "grid": {"seed": [1]}, "early_stop": {"patience": 7}})
    assert bad.status_code == 422 and "early_stop.patience" in str(bad.json)


def test_batches_respect_max_batch(db_url, service_factory, make_spec):
    svc = service_factory(db_url, MAX_BATCH=2)
    assert post_sweep(svc, {"base": make_spec(), "grid": {"seed": [1, 2, 3, 4, 5]}}).status_code == 202
    assert sorted(len(b) for b in svc.enqueued) == [1, 2, 2]


def test_sweep_progress_status_and_cancel(svc, make_spec):
    sweep = post_sweep(svc, {"base": make_spec(), "grid": {"seed": [1, 2, 3]}}).json
    ids = [i["id"] for i in svc.client.get(f"/api/v1/sweeps/{sweep['id']}/runs", headers=svc.auth()).json["items"]]
    svc.update(ids[0], status="succeeded")
    svc.update(ids[1], status="running")
    got = svc.client.get(f"/api/v1/sweeps/{sweep['id']}", headers=svc.auth()).json
    assert got["status"] == "running" and got["counts"]["succeeded"] == 1
    assert abs(got["progress"] - 1 / 3) < 1e-9
    r = svc.client.post(f"/api/v1/sweeps/{sweep['id']}/cancel", headers=svc.auth())
    assert r.status_code == 202 and r.json == {"id": sweep["id"], "cancelled": 1, "stopping": 1}
    svc.update(ids[1], status="cancelled")  # the worker stops it
    got = svc.client.get(f"/api/v1/sweeps/{sweep['id']}", headers=svc.auth()).json
    # Closed by the fan-in on this read; one run succeeded, so the sweep did (li2_store.sweeps rule).
    assert got["status"] == "succeeded" and got["finished_at"] is not None and got["has_scaling_law"]
    listed = svc.client.get("/api/v1/sweeps?status=succeeded", headers=svc.auth()).json
    assert [s["id"] for s in listed["items"]] == [sweep["id"]]


def test_scaling_law_409_until_runs_end_then_partial_then_stored(svc, make_spec):
    grid = {"task.order": [11, 13], "data.train_fraction": [0.2, 0.4, 0.6, 0.8]}
    sweep = post_sweep(svc, {"base": make_spec(), "grid": grid}).json
    url = f"/api/v1/sweeps/{sweep['id']}/scaling-law"
    none_ended = svc.client.get(url + "?partial=true", headers=svc.auth())
    assert none_ended.status_code == 409
    items = svc.client.get(f"/api/v1/sweeps/{sweep['id']}/runs", headers=svc.auth()).json["items"]
    for item in items[:4]:  # order 11: grokked above 40 % of the data
        grok = item["spec"]["data"]["train_fraction"] > 0.4
        svc.update(item["id"], status="succeeded", summary_json={"grokked": grok, "test_acc": 1.0 if grok else 0.1})
    assert svc.client.get(url, headers=svc.auth()).status_code == 409  # still running, not partial
    partial = svc.client.get(url + "?partial=true", headers=svc.auth())
    assert partial.status_code == 200, partial.json
    assert partial.json["partial"] is True and partial.json["n_runs_used"] == 4
    assert [c["order"] for c in partial.json["critical"]] == [11]
    for item in items[4:]:
        grok = item["spec"]["data"]["train_fraction"] > 0.2
        svc.update(item["id"], status="succeeded", summary_json={"grokked": grok, "test_acc": 1.0 if grok else 0.1})
    final = svc.client.get(url, headers=svc.auth())
    assert final.status_code == 200 and final.json["partial"] is False
    assert [c["order"] for c in final.json["critical"]] == [11, 13]
    with svc.engine.connect() as conn:
        stored = conn.execute(
            sa.select(models.Sweep.scaling_law_json, models.Sweep.status).where(models.Sweep.id == sweep["id"])
        ).one()
    assert stored.status == "succeeded" and stored.scaling_law_json["form"] == final.json["form"]


def test_bad_sweeps_are_422_naming_the_field_and_create_nothing(svc, make_spec):
    before = svc.counts()
    cases = [
        ({"base": make_spec(), "grid": {"task.colour": [1]}}, "grid.task.colour"),
        ({"base": make_spec(), "grid": {"seed": []}}, "grid.seed"),
        ({"base": make_spec(**{"task.order": -1}), "grid": {"seed": [1]}}, "base.task.order"),
        ({"base": make_spec(), "grid": {"seed": [1]}, "extra": 1}, "extra"),
        ({"grid": {"seed": [1]}}, "base"),
    ]
    for body, field in cases:
        r = post_sweep(svc, body)
        assert r.status_code == 422, body
        assert any(k.startswith(field) for k in r.json["errors"]), (field, r.json)
    bad_value = post_sweep(svc, {"base": make_spec(), "grid": {"model.hidden": [16, "wide"]}})
    assert bad_value.status_code == 422 and "model.hidden" in str(bad_value.json["errors"])
    assert svc.counts() == before and svc.enqueued == []


def test_cancelling_a_queued_sweep_closes_it_without_a_law(svc, make_spec):
    sweep = post_sweep(svc, {"base": make_spec(), "grid": {"seed": [1, 2]}}).json
    r = svc.client.post(f"/api/v1/sweeps/{sweep['id']}/cancel", headers=svc.auth())
    assert r.status_code == 202 and r.json["cancelled"] == 2
    got = svc.client.get(f"/api/v1/sweeps/{sweep['id']}", headers=svc.auth()).json
    assert got["status"] == "cancelled" and got["counts"]["cancelled"] == 2
    law = svc.client.get(f"/api/v1/sweeps/{sweep['id']}/scaling-law", headers=svc.auth())
    assert law.status_code == 409 and "cannot be fitted" in law.json["message"]
