"""Per-user run-count limits: 429 with Retry-After when waiting frees them, 422 when they can never
be met; either way nothing is created. (The compute quota: test_compute_quota.py.)"""

from __future__ import annotations


def test_active_run_limit_is_per_user_and_frees_up(db_url, service_factory, make_spec):
    svc = service_factory(db_url, MAX_ACTIVE_PER_USER=2, RETRY_AFTER_S=7)
    post = lambda body, who="alice": svc.client.post("/api/v1/experiments", json=body, headers=svc.auth(who))  # noqa: E731
    first = post(make_spec(seed=1)).json["id"]
    assert post(make_spec(seed=2)).status_code == 202
    over = post(make_spec(seed=3))
    assert over.status_code == 429 and over.headers["Retry-After"] == "7"
    assert "active_runs" in over.json["errors"] and "LI2_MAX_ACTIVE_PER_USER" in over.json["message"]
    assert svc.counts()["experiments"] == 2
    assert post(make_spec(seed=1)).status_code == 200  # a cached answer adds no run, so it is allowed
    assert post(make_spec(seed=3), who="bob").status_code == 202  # bob has his own budget
    svc.update(first, status="succeeded")
    assert post(make_spec(seed=3)).status_code == 202
    sweep = {"base": make_spec(), "grid": {"seed": [7, 8, 9]}}  # 3 runs > the limit of 2: never admitted
    never = svc.client.post("/api/v1/sweeps", json=sweep, headers=svc.auth("bob"))
    assert never.status_code == 422 and "active_runs" in never.json["errors"] and "Retry-After" not in never.headers


def test_sweep_limits(db_url, service_factory, make_spec):
    svc = service_factory(db_url, MAX_SWEEP_RUNS=4, MAX_ACTIVE_PER_USER=6)

    def post(grid):
        return svc.client.post(
            "/api/v1/sweeps",
            json={"base": make_spec(), "grid": grid},
            headers=svc.auth(),
        )

    too_big = post({"seed": [1, 2, 3, 4, 5]})
    assert too_big.status_code == 422 and "Retry-After" not in too_big.headers
    assert "grid" in too_big.json["errors"] and too_big.mimetype == "application/problem+json"
    assert post({"seed": [1, 2, 3, 4]}).status_code == 202
    over_active = post({"seed": [5, 6, 7]})  # 4 active + 3 > 6
    assert over_active.status_code == 429 and "active_runs" in over_active.json["errors"]
    counts = svc.counts()
    assert (counts["sweeps"], counts["experiments"]) == (1, 4)


def test_more_runs_than_the_active_limit_at_once_is_422_not_429(db_url, service_factory, make_spec):
    """Waiting can never make room for 3 runs under a limit of 2: retry logic must not loop on it."""
    svc = service_factory(db_url, MAX_SWEEP_RUNS=4, MAX_ACTIVE_PER_USER=2)
    r = svc.client.post("/api/v1/sweeps", json={"base": make_spec(), "grid": {"seed": [1, 2, 3]}}, headers=svc.auth())
    assert r.status_code == 422 and "Retry-After" not in r.headers, r.json
    assert "active_runs" in r.json["errors"] and svc.counts()["sweeps"] == 0
