"""The compute quota (li2_service.limits.check_compute) with the default settings and a small one.

The real Fig. 5 grid of the paper — orders {23, 41, 71, 97, 127} × 8 training fractions × 20
seeds, K = 2048, 3000 epochs: 800 runs — is accepted as one sweep with the defaults; the same grid
against a quota below its estimate is a 422 naming the estimate and the limit; work that only
waiting frees is a 429 with Retry-After. Nothing is created by a refusal.
"""

from __future__ import annotations

from li2.compute import run_flops
from li2.spec import expand_sweep, validate_sweep
from li2_service.config import load_config
from li2_service.limits import PETA

FIG5 = {
    "base": {
        "task": {"group": "cyclic", "order": 23},
        "data": {"train_fraction": 0.5},
        "model": {"hidden": 2048},
        "training": {"epochs": 3000},
        "seed": 0,
    },
    "grid": {
        "task.order": [23, 41, 71, 97, 127],
        "data.train_fraction": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
        "seed": list(range(20)),
    },
}


def post_sweep(svc, body, who="alice"):
    return svc.client.post("/api/v1/sweeps", json=body, headers=svc.auth(who))


def test_the_defaults_admit_the_real_fig5_grid(service_factory, db_url):
    defaults = load_config({})
    estimate = sum(run_flops(s) for s in expand_sweep(validate_sweep(FIG5)))
    assert estimate < defaults["MAX_COMPUTE_PFLOP"] * PETA  # the quota, not the run count, decides
    svc = service_factory(
        db_url, **{k: defaults[k] for k in ("MAX_ACTIVE_PER_USER", "MAX_SWEEP_RUNS", "MAX_COMPUTE_PFLOP")}
    )
    r = post_sweep(svc, FIG5)
    assert r.status_code == 202, r.json
    assert svc.counts()["experiments"] == 800


def test_over_the_quota_names_the_estimate_and_the_limit(service_factory, db_url, make_spec):
    svc = service_factory(db_url, MAX_COMPUTE_PFLOP=5, RETRY_AFTER_S=9)
    before = svc.counts()
    r = post_sweep(svc, FIG5)
    assert r.status_code == 422 and "compute" in r.json["errors"], r.json
    assert "PFLOP" in r.json["message"] and "limit of 5 PFLOP" in r.json["message"]
    assert "estimated compute 9.7" in r.json["message"]  # the grid's estimate (about 9.8 PFLOP)
    assert svc.counts() == before
    half = {**FIG5, "grid": {**FIG5["grid"], "seed": list(range(8))}}  # ~3.9 PFLOP: admitted
    assert post_sweep(svc, half).status_code == 202
    again = post_sweep(svc, {**half, "grid": {**half["grid"], "seed": list(range(8, 16))}})
    assert again.status_code == 429 and again.headers["Retry-After"] == "9" and "compute" in again.json["errors"]
    assert post_sweep(svc, half, who="bob").status_code == 202  # bob's quota is his own
