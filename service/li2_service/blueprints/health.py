"""/healthz (the process answers) and /readyz (the database and the broker are reachable).

Both are public: load balancers and compose health checks call them without a token.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app
from flask_smorest import Blueprint

from li2_service import schemas
from li2_service.errors import DATABASE_RETRY_AFTER_S

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Liveness and readiness (no token needed).")


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, schemas.HealthSchema)
def healthz():
    """Liveness: the API process is up."""
    return {"status": "ok", "checks": {}}


def _check_database(engine) -> str:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return "ok"


def _check_broker(url: str) -> str:
    """Open (and close) one broker connection, failing fast."""
    from kombu import Connection

    with Connection(url, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=0, timeout=2)
    return "ok"


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, schemas.HealthSchema)
@blp.alt_response(503, schema=schemas.HealthSchema, description="a dependency is unreachable")
def readyz():
    """Readiness: the database and the broker both answer."""
    state = current_app.extensions["li2"]
    checks = {}
    for name, check, arg in (
        ("database", _check_database, state.engine),
        ("broker", _check_broker, state.config["BROKER_URL"]),
    ):
        try:
            checks[name] = check(arg)
        except Exception as exc:
            log.warning("readiness check %s failed: %s", name, exc)
            checks[name] = f"unreachable: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    if ok:
        return {"status": "ok", "checks": checks}, 200
    return {"status": "unavailable", "checks": checks}, 503, {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
