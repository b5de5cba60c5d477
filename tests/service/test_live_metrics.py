"""GET /experiments/{id}/metrics while a run trains: the rows so far, ?since= for the new ones.

The worker's part (rows written as it measures) is played by `li2_store.metric_rows.write`, the
function the worker's progress flush calls; the real worker writing them is tested in
tests/worker/test_metric_rows.py and, through the browser, in tests/browser.
"""

from __future__ import annotations

import sqlalchemy as sa

from li2_store import metric_rows, models, results
from li2_store.db import session_scope


def submit(svc, body, who="alice") -> str:
    r = svc.client.post("/api/v1/experiments", json=body, headers=svc.auth(who))
    assert r.status_code == 202, r.json
    return r.json["id"]


def measure(svc, exp_id: str, epochs: list[int]) -> None:
    """What the worker's flush stores: one row per measured epoch."""
    rows = [(e, {"epoch": e, "train_acc": e / 100, "test_acc": None if e == 0 else e / 200}) for e in epochs]
    with session_scope(svc.engine) as s:
        metric_rows.write(s, [(exp_id, rows)])


def get(svc, exp_id: str, query: str = "", who: str = "alice"):
    return svc.client.get(f"/api/v1/experiments/{exp_id}/metrics{query}", headers=svc.auth(who))


def test_a_queued_run_has_no_rows_yet(svc, make_spec):
    exp_id = submit(svc, make_spec())
    r = get(svc, exp_id)
    assert r.status_code == 200
    assert r.json == {"columns": {}, "status": "queued", "complete": False, "last_epoch": None}
    assert r.headers["Cache-Control"] == "no-store"


def test_a_running_run_serves_its_rows_and_since_gives_only_new_ones(svc, make_spec):
    exp_id = submit(svc, make_spec())
    svc.update(exp_id, status="running")
    measure(svc, exp_id, [0, 1, 2])
    first = get(svc, exp_id).json
    assert first["columns"] == {"epoch": [0, 1, 2], "train_acc": [0.0, 0.01, 0.02], "test_acc": [None, 0.005, 0.01]}
    assert (first["status"], first["complete"], first["last_epoch"]) == ("running", False, 2)
    measure(svc, exp_id, [3, 4])
    more = get(svc, exp_id, f"?since={first['last_epoch']}").json
    assert more["columns"]["epoch"] == [3, 4] and more["last_epoch"] == 4
    nothing = get(svc, exp_id, "?since=4").json
    assert nothing["columns"] == {} and nothing["last_epoch"] == 4  # poll again with the same since
    csv = get(svc, exp_id, "?since=3&format=csv")
    assert csv.mimetype == "text/csv" and csv.data.decode().splitlines() == ["epoch,train_acc,test_acc", "4,0.04,0.02"]


def test_a_finished_run_serves_its_result_and_since_cuts_it(svc, make_spec):
    exp_id = submit(svc, make_spec())
    svc.update(exp_id, status="running")
    measure(svc, exp_id, [0, 1])
    full = {"epoch": [0, 1, 2, 4, 8], "train_acc": [0.0, 0.1, 0.2, 0.4, 1.0]}
    with session_scope(svc.engine) as s:
        results.add_result(s, exp_id, {"metrics": full})
    svc.update(exp_id, status="succeeded")
    r = get(svc, exp_id).json
    assert r["columns"] == full and r["complete"] is True and r["last_epoch"] == 8
    assert get(svc, exp_id, "?since=2").json["columns"] == {"epoch": [4, 8], "train_acc": [0.4, 1.0]}
    assert get(svc, exp_id, "?since=8").json["columns"] == {}
    with svc.engine.connect() as conn:  # the result holds the curves now: the live rows are gone
        assert conn.scalar(sa.select(sa.func.count()).select_from(models.MetricRow)) == 0


def test_a_failed_run_keeps_the_curves_it_measured(svc, make_spec):
    exp_id = submit(svc, make_spec())
    svc.update(exp_id, status="running")
    measure(svc, exp_id, [0, 1, 2])
    svc.update(exp_id, status="failed", error="CUDA out of memory")
    r = get(svc, exp_id).json
    assert r["columns"]["epoch"] == [0, 1, 2] and r["status"] == "failed" and r["complete"] is True


def test_others_runs_are_404_and_bad_since_is_422_naming_it(svc, make_spec):
    exp_id = submit(svc, make_spec())
    svc.update(exp_id, status="running")
    measure(svc, exp_id, [0])
    assert get(svc, exp_id, who="bob").status_code == 404
    assert get(svc, exp_id, who="root").json["columns"]["epoch"] == [0]  # admins see everyone's
    for bad in ("?since=-1", "?since=abc", "?since=99999999999"):
        r = get(svc, exp_id, bad)
        assert r.status_code == 422 and "since" in r.json["errors"], bad


def test_the_openapi_document_describes_since_and_the_live_answer(svc):
    doc = svc.client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/api/v1/experiments/{exp_id}/metrics"]["get"]
    assert "since" in {p["name"] for p in op["parameters"] if p["in"] == "query"}
    ok = op["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert ok["description"] and {"columns", "complete", "last_epoch"} <= set(
        doc["components"]["schemas"][ref]["properties"]
    )
