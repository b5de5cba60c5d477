"""Live metric rows: the worker stores every measured row while a run trains, the store serves them.

SQLite and the real PostgreSQL (the two stores we support); the training core is the FakeRunner of
helpers.py, so the rows' values are known exactly. The API's use of them is tested in
tests/service/test_live_metrics.py and, end to end in a browser, in tests/browser.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from li2_store import lease, metric_rows, results
from li2_store.db import session_scope
from li2_store.migrate import alembic_config, prepare_database
from li2_store.models import MetricRow
from li2_worker import tasks
from li2_worker.tasks import BatchJob

from .helpers import FakeRunner, add_run, add_user, new_engine, row, settings_for, tiny_spec, update

W = "test@host/1"


def columns(engine, run_id: str, since: int | None = None) -> dict:
    with session_scope(engine) as s:
        return metric_rows.columns_since(s, run_id, since)


def test_rows_come_back_as_columns_in_epoch_order_and_since_filters(engine):
    run = add_run(engine, add_user(engine), tiny_spec())
    with session_scope(engine) as s:
        metric_rows.write(s, [(run, [(0, {"epoch": 0, "train_acc": 0.1}), (1, {"epoch": 1, "train_acc": 0.2})])])
    with session_scope(engine) as s:  # a later flush, with a column measured only now and a NaN
        metric_rows.write(s, [(run, [(5, {"epoch": 5, "train_acc": 0.5, "coverage": float("nan"), "gf": 2.0})])])
    assert columns(engine, run) == {
        "epoch": [0, 1, 5],
        "train_acc": [0.1, 0.2, 0.5],
        "coverage": [None, None, None],  # NaN is stored as JSON null; unmeasured earlier is None too
        "gf": [None, None, 2.0],
    }
    assert columns(engine, run, since=1) == {"epoch": [5], "train_acc": [0.5], "coverage": [None], "gf": [2.0]}
    assert columns(engine, run, since=5) == {}


def test_a_resumed_attempt_replaces_the_rows_from_its_first_epoch_on(engine):
    run = add_run(engine, add_user(engine), tiny_spec())
    with session_scope(engine) as s:  # attempt 1 got to epoch 30 and was lost; its checkpoint was at 20
        metric_rows.write(s, [(run, [(e, {"epoch": e, "attempt": 1}) for e in (0, 10, 20, 30)])])
    with session_scope(engine) as s:  # attempt 2 resumes at 20 and measures 20 and 25 (another cadence)
        metric_rows.write(s, [(run, [(e, {"epoch": e, "attempt": 2}) for e in (20, 25)])])
    assert columns(engine, run) == {"epoch": [0, 10, 20, 25], "attempt": [1, 1, 2, 2]}


def test_progress_writes_rows_only_for_a_lease_still_held(engine):
    user = add_user(engine)
    a, b = add_run(engine, user, tiny_spec(seed=1)), add_run(engine, user, tiny_spec(seed=2))
    ca, cb = lease.claim(engine, a, 1, W), lease.claim(engine, b, 1, W)
    update(engine, b, status="queued", attempt=2)  # the reaper took b away
    rows = [(0, {"epoch": 0, "train_acc": 0.0}), (10, {"epoch": 10, "train_acc": 0.7})]
    lease.write_progress(engine, {ca: rows, cb: rows}, W)
    assert row(engine, a)["progress_epoch"] == 10 and row(engine, a)["latest_metrics_json"]["train_acc"] == 0.7
    assert columns(engine, a) == {"epoch": [0, 10], "train_acc": [0.0, 0.7]}
    assert columns(engine, b) == {} and row(engine, b)["progress_epoch"] == 0


def test_the_result_replaces_the_rows(engine):
    run = add_run(engine, add_user(engine), tiny_spec())
    with session_scope(engine) as s:
        metric_rows.write(s, [(run, [(0, {"epoch": 0})])])
    with session_scope(engine) as s:
        results.add_result(s, run, {"metrics": {"epoch": [0, 10]}})
    with session_scope(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(MetricRow)) == 0


def test_a_training_batch_streams_every_row_and_a_failed_run_keeps_its_curves(tmp_path, redis_url, monkeypatch):
    """The worker's flush writes every measured row (not only the newest) while the run trains."""
    url = f"sqlite:///{tmp_path / 'li2.sqlite'}"
    engine = new_engine(url)
    monkeypatch.setattr(tasks, "PROGRESS_EVERY_S", 0.0)  # flush at every measurement
    run = add_run(engine, add_user(engine), tiny_spec(epochs=10))
    seen = {}

    def look(epoch: int) -> None:  # what the API would serve while the run trains
        seen[epoch] = columns(engine, run).get("train_acc", [])  # the fake measures train_acc = epoch/10

    BatchJob(engine, settings_for(url, redis_url), W, run_batch=FakeRunner(RuntimeError("boom"), look)).run([(run, 1)])
    assert seen[2] == [0.0, 0.1] and seen[3] == [0.0, 0.1, 0.2]  # live: every row of the epochs before
    assert row(engine, run)["status"] == "failed"
    assert columns(engine, run) == {"train_acc": [0.0, 0.1, 0.2], "test_loss": [None, None, None]}
    engine.dispose()


def test_a_succeeded_batch_leaves_the_curves_to_its_result(tmp_path, redis_url, monkeypatch):
    url = f"sqlite:///{tmp_path / 'li2.sqlite'}"
    engine = new_engine(url)
    monkeypatch.setattr(tasks, "PROGRESS_EVERY_S", 0.0)
    run = add_run(engine, add_user(engine), tiny_spec(epochs=6))
    BatchJob(engine, settings_for(url, redis_url), W, run_batch=FakeRunner()).run([(run, 1)])
    assert row(engine, run)["status"] == "succeeded" and columns(engine, run) == {}
    engine.dispose()


def test_the_migration_adds_the_table_the_model_describes_to_an_existing_database(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    with engine.begin() as conn:  # a database of the release before
        command.upgrade(alembic_config(connection=conn), "0002_batch_key")
    assert "metric_rows" not in sa.inspect(engine).get_table_names()
    prepare_database(engine)  # what every li2lab command does at start-up
    got = {c["name"]: str(c["type"]) for c in sa.inspect(engine).get_columns("metric_rows")}
    want = {c.name: c.type.compile(engine.dialect) for c in MetricRow.__table__.columns}
    assert got == want == {"experiment_id": "VARCHAR(32)", "epoch": "INTEGER", "row_json": "JSON"}
    pk = sa.inspect(engine).get_pk_constraint("metric_rows")["constrained_columns"]
    assert sorted(pk) == ["epoch", "experiment_id"]
    engine.dispose()
