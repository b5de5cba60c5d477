"""/healthz and /readyz: public, and readiness really probes the database and the broker."""

from __future__ import annotations


def _svc(service_factory, tmp_path, broker_url):
    return service_factory(f"sqlite:///{tmp_path / 'h.sqlite'}", BROKER_URL=broker_url)


def test_ready_with_a_real_redis_broker(service_factory, tmp_path, redis_url):
    r = _svc(service_factory, tmp_path, redis_url).client.get("/readyz")
    assert r.status_code == 200 and r.json == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_not_ready_when_the_broker_is_down(service_factory, tmp_path):
    svc = _svc(service_factory, tmp_path, "redis://127.0.0.1:1/0")
    assert svc.client.get("/healthz").status_code == 200  # alive, just not ready
    r = svc.client.get("/readyz")
    assert r.status_code == 503
    assert r.json["checks"]["database"] == "ok" and r.json["checks"]["broker"].startswith("unreachable")


def test_database_gone_is_503_not_500(service_factory, tmp_path):
    svc = _svc(service_factory, tmp_path, f"sqla+sqlite:///{tmp_path / 'b.sqlite'}")
    assert svc.client.get("/readyz").status_code == 200
    svc.engine.dispose()
    (tmp_path / "h.sqlite").unlink()
    (tmp_path / "h.sqlite").mkdir()  # the path is now a directory: SQLite cannot open it
    r = svc.client.get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["database"].startswith("unreachable")
    api = svc.client.get("/api/v1/experiments", headers=svc.auth())
    assert api.status_code == 503 and api.headers["Retry-After"] and api.json["code"] == 503
