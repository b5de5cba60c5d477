"""training.precision through the API: a separate experiment with its own batch, and a clear 422."""

from __future__ import annotations

import sqlalchemy as sa

from li2_store import models


def _submit(svc, spec):
    return svc.client.post("/api/v1/experiments", json=spec, headers=svc.auth())


def test_a_bf16_run_is_its_own_experiment_in_its_own_batch(svc, make_spec):
    fp32 = _submit(svc, make_spec())
    bf16 = _submit(svc, make_spec(**{"training.precision": "bf16"}))
    assert fp32.status_code == bf16.status_code == 202, bf16.json
    assert fp32.json["spec"]["training"]["precision"] == "fp32"
    assert bf16.json["spec"]["training"]["precision"] == "bf16"
    assert bf16.json["spec_hash"] != fp32.json["spec_hash"]
    with svc.engine.connect() as conn:
        keys = dict(conn.execute(sa.select(models.Experiment.id, models.Experiment.batch_key)).all())
    assert keys[bf16.json["id"]] != keys[fp32.json["id"]]
    assert _submit(svc, make_spec(**{"training.precision": "fp32"})).json["cached"] is True  # fp32 = default


def test_an_unknown_precision_is_a_422_naming_the_field_and_the_choices(svc, make_spec):
    before = svc.counts()
    r = _submit(svc, make_spec(**{"training.precision": "fp16"}))
    assert r.status_code == 422
    assert r.json["errors"] == {"training.precision": ["Must be one of: fp32, tf32, bf16."]}
    assert svc.counts() == before and svc.enqueued == []
