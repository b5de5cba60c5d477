"""Each typed exception, triggered for real by the running service."""

import pytest

from li2_client import AuthError, Client, NotFound, QuotaExceeded, Spec, ValidationError


def test_bad_token_is_auth_error(live_service):
    with pytest.raises(AuthError) as info:
        Client(live_service.url, token="not-a-token").get("abc")
    assert info.value.status == 401 and "argument" in str(info.value)


def test_missing_token_says_how_to_configure_one(live_service, monkeypatch, tmp_path):
    monkeypatch.delenv("LI2_TOKEN", raising=False)
    monkeypatch.delenv("LI2_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(AuthError, match="LI2_TOKEN"):
        list(Client(live_service.url).list())


def test_bad_spec_is_validation_error_naming_fields(client):
    bad = Spec.cyclic(1).train_fraction(0.5).model(hidden=64, activation="tanh").to_dict()
    with pytest.raises(ValidationError) as info:
        client.submit(bad)
    errors = info.value.errors
    assert info.value.status in (400, 422)
    assert "task.order" in errors, errors
    assert "model.activation" in errors and "sqr" in " ".join(errors["model.activation"])


def test_unknown_field_is_rejected(client, tiny):
    spec = tiny().to_dict()
    spec["training"]["lr_warmup"] = 5
    with pytest.raises(ValidationError) as info:
        client.submit(spec)
    assert any("lr_warmup" in k for k in info.value.errors)


def test_unknown_and_foreign_ids_are_not_found(client, live_service, finished_exp):
    with pytest.raises(NotFound):
        client.get("0" * 32)
    bob = Client(live_service.url, token=live_service.create_user("bob_nf"))
    with pytest.raises(NotFound):
        bob.get(finished_exp.id)  # alice's run is invisible to bob
    with pytest.raises(NotFound):
        bob.get_sweep("f" * 32)


def test_sweep_too_large_is_a_validation_error_not_a_quota(live_service, tiny, limits):
    """Waiting can never shrink a sweep: 422 (ValidationError), never a 429 that retry logic would loop on."""
    carol = Client(live_service.url, token=live_service.create_user("carol-sweep-limit"), retries=0)
    with pytest.raises(ValidationError) as info:
        carol.submit_sweep(tiny(), {"seed": list(range(limits["max_sweep_runs"] + 1))})
    assert info.value.status == 422 and not isinstance(info.value, QuotaExceeded)
    assert "grid" in info.value.errors and "LI2_MAX_SWEEP_RUNS" in info.value.message


def test_too_many_active_runs_is_quota_exceeded(live_service, tiny, limits):
    dave = Client(live_service.url, token=live_service.create_user("dave"))
    sweep = dave.submit_sweep(tiny(epochs=20000), {"seed": list(range(limits["max_active"]))})
    try:
        with pytest.raises(QuotaExceeded) as info:
            dave.submit(tiny(seed=99))
        assert "active_runs" in info.value.errors and info.value.retry_after
    finally:
        sweep.cancel()
    sweep.wait(timeout=120, poll=0.5, progress=False)
    assert sweep.counts.get("cancelled") == limits["max_active"]
