"""Organising runs through REST: filters and sorts, labels, archive, delete and the whole-run download.

Runs on SQLite and PostgreSQL (the `svc` fixture). Runs end the way a worker ends them: a claim, the
guarded final write with the summary (`li2_store.lease`), the result row and checkpoints
(`li2_store.results`), so the outcome columns are filled by the code the worker runs.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest
import sqlalchemy as sa

from li2_store import lease, metric_rows, models, results
from li2_store.db import session_scope

E = "/api/v1/experiments"
S = "/api/v1/sweeps"


def submit(svc, body, who="alice"):
    r = svc.client.post(E, json=body, headers=svc.auth(who))
    assert r.status_code == 202, r.json
    return r.json["id"]


def finish(svc, run_id: str, summary: dict, checkpoints=(0, 20)) -> None:
    """End a queued run as a worker does: claim, metric rows, checkpoints, final state and result."""
    claim = lease.claim(svc.engine, run_id, 1, "w-test")
    assert claim is not None
    with session_scope(svc.engine) as s:
        metric_rows.write(s, [(run_id, [(10, {"epoch": 10, "test_acc": 0.5})])])
        for epoch in checkpoints:
            results.add_checkpoint(s, run_id, epoch, f"blob-{run_id}-{epoch}".encode(), "snapshot")
        assert lease.finish(s, claim, "w-test", "succeeded", summary_json=summary, progress_epoch=20)
        results.add_result(s, run_id, {"summary": summary, "metrics": {"epoch": [0, 20]}})


def ids(svc, query="", who="alice", status=200):
    r = svc.client.get(f"{E}?{query}", headers=svc.auth(who))
    assert r.status_code == status, r.json
    return [item["id"] for item in r.json["items"]] if status == 200 else r.json


@pytest.fixture
def runs(svc, make_spec):
    """Four of alice's runs over order, optimizer, lr and outcome, and one of bob's."""
    made = {
        "a": submit(svc, make_spec(**{"task.order": 11, "training.lr": 0.01})),
        "b": submit(svc, make_spec(**{"task.order": 13, "training.optimizer": "sgd", "training.lr": 0.1})),
        "c": submit(svc, make_spec(**{"task": {"group": "dihedral", "n": 6}, "data.train_fraction": 0.75})),
        "d": submit(svc, make_spec(**{"task.order": 13, "seed": 7, "model.hidden": 32})),
        "bob": submit(svc, make_spec(**{"task.order": 13}), who="bob"),
    }
    finish(svc, made["a"], {"grokked": True, "epoch_generalized": 120, "test_acc": 0.997})
    finish(svc, made["b"], {"grokked": False, "epoch_generalized": None, "test_acc": 0.31})
    finish(svc, made["c"], {"grokked": True, "epoch_generalized": 40, "test_acc": 1.0})
    finish(svc, made["bob"], {"grokked": True, "epoch_generalized": 10, "test_acc": 1.0})
    return made


def test_filters_on_spec_fields_and_outcome(svc, runs):
    a, b, c, d = runs["a"], runs["b"], runs["c"], runs["d"]
    assert set(ids(svc, "order=13")) == {b, d}  # bob's order-13 run stays invisible
    assert set(ids(svc, "order=12")) == {c}  # M of the dihedral group D6 is 12
    assert set(ids(svc, "group=dihedral")) == {c}
    assert set(ids(svc, "order_min=12&order_max=13")) == {b, c, d}
    assert set(ids(svc, "optimizer=sgd")) == {b}
    assert set(ids(svc, "lr=0.1")) == {b} and set(ids(svc, "lr_max=0.05")) == {a, c, d}
    assert set(ids(svc, "hidden=32")) == {d} and set(ids(svc, "seed=7")) == {d}
    assert set(ids(svc, "train_fraction_min=0.7")) == {c}  # 0.75 of 144 pairs; the others 0.5
    assert set(ids(svc, "train_size=60")) == {a}  # n resolved from the fraction: 121 - ceil(60.5)
    assert set(ids(svc, "grokked=true")) == {a, c} and set(ids(svc, "grokked=false")) == {b}
    assert set(ids(svc, "final_test_acc_min=0.99")) == {a, c}
    assert set(ids(svc, "epoch_generalized_max=100")) == {c}
    assert set(ids(svc, "grokked=true&order=11&status=succeeded")) == {a}
    assert set(ids(svc, "user=bob&order=13", who="root")) == {runs["bob"]}


def test_sorts_with_missing_values_last(svc, runs):
    a, b, c, d = runs["a"], runs["b"], runs["c"], runs["d"]
    assert ids(svc, "sort=-final_test_acc") == [c, a, b, d]  # d has no result yet: last
    assert ids(svc, "sort=final_test_acc") == [b, a, c, d]
    assert ids(svc, "sort=epoch_generalized")[:2] == [c, a]
    assert ids(svc, "sort=-order")[-1] == a and ids(svc, "sort=order")[0] == a
    assert ids(svc, "sort=-lr&page_size=1") == [b] and ids(svc, "sort=lr")[-1] == b


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("colour=red", "colour"),
        ("order=0", "order"),
        ("order_min=abc", "order_min"),
        ("group=torus", "group"),
        ("optimizer=lion", "optimizer"),
        ("final_test_acc_max=1.5", "final_test_acc_max"),
        ("lr=nan", "lr"),
        ("sort=-spec_json", "sort"),
        ("grokked=maybe", "grokked"),
        ("tag=bad%20tag", "tag[0]"),
        ("train_fraction=0.5", "train_fraction"),  # only a range makes sense for a fraction
    ],
)
def test_bad_filters_are_422_naming_the_parameter(svc, query, field):
    body = ids(svc, query, status=422)
    assert field in body["errors"], body


def test_filters_are_documented_with_enums_and_bounds(svc):
    doc = svc.client.get("/api/v1/openapi.json").json
    params = {p["name"]: p for p in doc["paths"]["/api/v1/experiments"]["get"]["parameters"]}
    assert params["group"]["schema"]["enum"][0] == "cyclic"
    assert params["order_min"]["schema"]["minimum"] == 1
    assert params["final_test_acc_max"]["schema"]["maximum"] == 1.0
    assert "-final_test_acc" in params["sort"]["schema"]["enum"]
    assert params["grokked"]["schema"]["type"] == "boolean"
    assert params["tag"]["schema"]["type"] == "array"
    for path in (f"{E}/{{exp_id}}", f"{S}/{{sweep_id}}"):
        assert {"patch", "delete"} <= set(doc["paths"][path])
    assert "get" in doc["paths"][f"{E}/{{exp_id}}/archive"]
    for body in ("Submit", "SweepSubmit"):
        assert {"name", "tags", "note"} <= set(doc["components"]["schemas"][body]["properties"])
    assert doc["components"]["schemas"]["Patch"]["properties"]["tags"]["maxItems"] == 20


def test_labels_at_submit_patch_and_filters(svc, make_spec):
    r = svc.client.post(
        E,
        json={"spec": make_spec(), "name": "Baseline Z11", "tags": ["paper", "fig-3"], "note": "first\ntry"},
        headers=svc.auth(),
    )
    assert r.status_code == 202 and r.json["name"] == "Baseline Z11" and r.json["tags"] == ["fig-3", "paper"]
    first = r.json["id"]
    other = submit(svc, make_spec(seed=5))
    assert svc.client.get(f"{E}/{first}", headers=svc.auth()).json["note"] == "first\ntry"
    assert ids(svc, "tag=paper") == [first] and ids(svc, "name=line%20z") == [first]  # substring, any case
    assert ids(svc, "tag=paper&tag=fig-3") == [first] and ids(svc, "tag=paper&tag=nope") == []
    assert ids(svc, "name=%25") == []  # a LIKE wildcard is matched literally

    r = svc.client.patch(f"{E}/{other}", json={"tags": ["paper"], "name": "seed 5"}, headers=svc.auth())
    assert r.status_code == 200 and r.json["tags"] == ["paper"] and r.json["name"] == "seed 5"
    assert set(ids(svc, "tag=paper")) == {first, other}
    r = svc.client.patch(f"{E}/{other}", json={"tags": ["paper", "extra"]}, headers=svc.auth())  # keeps one
    assert r.status_code == 200 and r.json["tags"] == ["extra", "paper"] and r.json["name"] == "seed 5"
    r = svc.client.patch(f"{E}/{first}", json={"tags": [], "name": None}, headers=svc.auth())
    assert r.json["tags"] == [] and r.json["name"] is None and r.json["note"] == "first\ntry"
    assert ids(svc, "tag=paper") == [other]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 101}, "name"),
        ({"name": ""}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"tags": ["ok", "no spaces"]}, "tags[1]"),
        ({"tags": ["a"] * 2}, "tags"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"tags": "paper"}, "tags"),
        ({"note": "n" * 4001}, "note"),
        ({"archived": "yes please"}, "archived"),
        ({"owner": "bob"}, "owner"),
        ({"status": "succeeded"}, "status"),
    ],
)
def test_bad_labels_are_422_naming_the_field_and_change_nothing(svc, make_spec, body, field):
    exp = svc.client.post(E, json={"spec": make_spec(), "name": "keep", "tags": ["keep"]}, headers=svc.auth()).json
    before = svc.counts()
    r = svc.client.patch(f"{E}/{exp['id']}", json={"note": "changed", **body}, headers=svc.auth())
    assert r.status_code == 422 and field in r.json["errors"], r.json
    after = svc.client.get(f"{E}/{exp['id']}", headers=svc.auth()).json
    assert (after["name"], after["tags"], after["note"], after["status"]) == ("keep", ["keep"], None, "queued")
    bad_submit = svc.client.post(E, json={"spec": make_spec(seed=3), **body}, headers=svc.auth())
    assert bad_submit.status_code == 422 and svc.counts() == before and not svc.enqueued[1:]


def test_archive_hides_from_the_default_list_until_unarchived(svc, make_spec):
    kept, hidden = submit(svc, make_spec()), submit(svc, make_spec(seed=2))
    r = svc.client.patch(f"{E}/{hidden}", json={"archived": True}, headers=svc.auth())
    assert r.status_code == 200 and r.json["archived"] is True
    assert ids(svc) == [kept] and ids(svc, "archived=true") == [hidden]
    assert svc.client.get(f"{E}/{hidden}", headers=svc.auth()).status_code == 200  # still readable by id
    svc.client.patch(f"{E}/{hidden}", json={"archived": False}, headers=svc.auth())
    assert set(ids(svc)) == {kept, hidden}


def test_another_users_run_cannot_be_patched_deleted_or_downloaded(svc, runs):
    a = runs["a"]
    before = svc.counts()
    for method, url, body in (
        ("PATCH", f"{E}/{a}", {"name": "mine now"}),
        ("DELETE", f"{E}/{a}", None),
        ("GET", f"{E}/{a}/archive", None),
    ):
        r = svc.client.open(url, method=method, json=body, headers=svc.auth("bob"))
        assert r.status_code == 404 and r.json["message"] == "no experiment with this id", (method, url)
    assert svc.counts() == before
    assert svc.client.get(f"{E}/{a}", headers=svc.auth()).json["name"] is None


def test_delete_removes_the_run_and_everything_it_owns(svc, runs):
    a = runs["a"]
    svc.client.patch(f"{E}/{a}", json={"tags": ["gone"]}, headers=svc.auth())
    before = svc.counts()
    r = svc.client.delete(f"{E}/{a}", headers=svc.auth())
    assert r.status_code == 200, r.json
    assert r.json["deleted"] == {"experiments": 1, "results": 1, "checkpoints": 2, "metric_rows": 0, "tags": 1}
    after = svc.counts()
    assert (before["experiments"] - after["experiments"], before["checkpoints"] - after["checkpoints"]) == (1, 2)
    with svc.engine.connect() as c:
        for model in (models.Checkpoint, models.Result, models.MetricRow, models.ExperimentTag):
            assert c.scalar(sa.select(sa.func.count()).select_from(model).where(model.experiment_id == a)) == 0
    assert svc.client.get(f"{E}/{a}", headers=svc.auth()).status_code == 404
    assert svc.client.delete(f"{E}/{a}", headers=svc.auth()).status_code == 404


def test_delete_is_refused_while_the_run_is_active(svc, runs):
    queued = runs["d"]
    before = svc.counts()
    r = svc.client.delete(f"{E}/{queued}", headers=svc.auth())
    assert r.status_code == 409 and "queued" in r.json["message"]
    assert lease.claim(svc.engine, queued, 1, "w-test") is not None
    r = svc.client.delete(f"{E}/{queued}", headers=svc.auth())
    assert r.status_code == 409 and "running" in r.json["message"]
    assert svc.counts() == before


def _members(data: bytes, fmt: str) -> dict[str, bytes]:
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {n: zf.read(n) for n in zf.namelist()}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_archive_download_holds_result_and_every_checkpoint(svc, runs, fmt):
    a = runs["a"]
    r = svc.client.get(f"{E}/{a}/archive?format={fmt}", headers=svc.auth())
    assert r.status_code == 200 and r.is_streamed
    assert r.headers["Content-Disposition"] == f"attachment; filename={a}.{fmt}"
    members = _members(r.get_data(), fmt)
    assert sorted(members) == [
        f"{a}/checkpoints/epoch-0000000-snapshot.safetensors",
        f"{a}/checkpoints/epoch-0000020-snapshot.safetensors",
        f"{a}/experiment.json",
        f"{a}/result.json",
    ]
    assert members[f"{a}/checkpoints/epoch-0000020-snapshot.safetensors"] == f"blob-{a}-20".encode()
    assert json.loads(members[f"{a}/result.json"])["summary"]["test_acc"] == 0.997
    assert json.loads(members[f"{a}/experiment.json"])["status"] == "succeeded"
    assert svc.client.get(f"{E}/{runs['d']}/archive", headers=svc.auth()).status_code == 409
    assert svc.client.get(f"{E}/{a}/archive?format=rar", headers=svc.auth()).status_code == 422


def test_sweep_labels_filters_and_delete_only_when_every_run_ended(svc, make_spec):
    r = svc.client.post(
        S, json={"base": make_spec(), "grid": {"seed": [1, 2]}, "name": "seeds", "tags": ["grid"]}, headers=svc.auth()
    )
    assert r.status_code == 202 and r.json["name"] == "seeds" and r.json["tags"] == ["grid"], r.json
    sweep = r.json["id"]
    r = svc.client.post(S, json={"base": make_spec(), "grid": {"seed": [3]}, "tags": ["no space"]}, headers=svc.auth())
    assert r.status_code == 422 and "tags[0]" in r.json["errors"]
    listed = lambda q="": [s["id"] for s in svc.client.get(f"{S}?{q}", headers=svc.auth()).json["items"]]  # noqa: E731
    assert listed("tag=grid") == [sweep] and listed("name=SEED") == [sweep] and listed("tag=other") == []
    r = svc.client.patch(f"{S}/{sweep}", json={"note": "two seeds", "archived": True}, headers=svc.auth())
    assert r.status_code == 200 and r.json["note"] == "two seeds"
    assert listed() == [] and listed("archived=true") == [sweep]
    assert svc.client.delete(f"{S}/{sweep}", headers=svc.auth("bob")).status_code == 404

    run_ids = [i["id"] for i in svc.client.get(f"{S}/{sweep}/runs", headers=svc.auth()).json["items"]]
    r = svc.client.delete(f"{E}/{run_ids[0]}", headers=svc.auth())
    assert r.status_code == 409  # queued, and a sweep's run
    finish(svc, run_ids[0], {"grokked": True, "test_acc": 1.0})
    r = svc.client.delete(f"{E}/{run_ids[0]}", headers=svc.auth())
    assert r.status_code == 409 and "sweep" in r.json["message"]
    before = svc.counts()
    r = svc.client.delete(f"{S}/{sweep}", headers=svc.auth())
    assert r.status_code == 409 and "1 run(s)" in r.json["message"] and svc.counts() == before
    svc.client.post(f"{S}/{sweep}/cancel", headers=svc.auth())
    r = svc.client.delete(f"{S}/{sweep}", headers=svc.auth())
    assert r.status_code == 200, r.json
    assert r.json["deleted"]["experiments"] == 2 and r.json["deleted"]["sweeps"] == 1
    assert r.json["deleted"]["checkpoints"] == 2 and r.json["deleted"]["tags"] == 1
    after = svc.counts()
    assert before["experiments"] - after["experiments"] == 2 and before["sweeps"] - after["sweeps"] == 1
    assert svc.client.get(f"{S}/{sweep}", headers=svc.auth()).status_code == 404


def test_the_migration_backfills_the_catalogue_of_existing_rows(tmp_path):
    """A database of the release before, with a finished dihedral run: after the upgrade its
    spec fields and outcome are columns, so the new filters find it."""
    from alembic import command

    from li2_store.catalog import OUTCOME_COLUMNS, SPEC_COLUMNS
    from li2_store.migrate import alembic_config, prepare_database

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "0004_searches")
        conn.execute(
            sa.text(
                "INSERT INTO users (id, name, token_hash, is_admin, created_at) VALUES (1, 'a', 'h', 0, '2026-01-01')"
            )
        )
        spec = {
            "task": {"group": "dihedral", "n": 5, "operands": 2},
            "data": {"train_fraction": None, "train_size": 40, "critical_multiple": None},
            "model": {"hidden": 24, "activation": "relu"},
            "training": {"optimizer": "sgd", "lr": 0.2, "weight_decay": 0.001, "epochs": 5},
            "seed": 4,
        }
        summary = {"grokked": False, "epoch_generalized": None, "test_acc": 0.42}
        conn.execute(
            sa.text(
                "INSERT INTO experiments (id, user_id, spec_json, spec_hash, batch_key, status, attempt, max_attempts,"
                " progress_epoch, epochs, cancel_requested, created_at, summary_json)"
                " VALUES ('old', 1, :spec, 'h', 'b', 'succeeded', 1, 3, 5, 5, 0, '2026-01-01', :summary)"
            ),
            {"spec": json.dumps(spec), "summary": json.dumps(summary)},
        )
    prepare_database(engine)  # what every li2lab command does at start-up
    with engine.connect() as conn:
        row = conn.execute(sa.select(models.Experiment).where(models.Experiment.id == "old")).one()
    got = {c: getattr(row, c) for c in SPEC_COLUMNS + OUTCOME_COLUMNS}
    assert got == {
        "group_kind": "dihedral",
        "task_order": 10,
        "operands": 2,
        "train_size": 40,
        "train_fraction": 0.4,
        "hidden": 24,
        "activation": "relu",
        "optimizer": "sgd",
        "lr": 0.2,
        "weight_decay": 0.001,
        "seed": 4,
        "grokked": False,
        "epoch_generalized": None,
        "final_test_acc": 0.42,
    }
    assert row.archived is False and row.name is None
    engine.dispose()
