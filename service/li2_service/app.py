"""The Flask app factory: `create_app(config)` wires settings, database, auth, errors and routes.

    app = create_app()                                   # settings from LI2_* environment
    app = create_app({"DATABASE_URL": "sqlite:///t.db",  # tests: override any key, and
                      "ENQUEUE": record_calls})          # record enqueues instead of sending

The OpenAPI document is generated (li2_service.openapi): errors are problem documents, every
operation has an operationId, create operations link to the operations that take their ids.

Routes: /api/v1/experiments..., /api/v1/sweeps..., /api/v1/searches..., /healthz, /readyz; the OpenAPI 3 document at
/api/v1/openapi.json (also /openapi.json), Swagger UI at /api/v1/docs and ReDoc at /api/v1/redoc
(their scripts from /assets/vendor, out of installed packages: no CDN); the researchers' dashboard
at / (li2_service.dashboard). Every API route except health, readiness and the docs needs
`Authorization: Bearer TOKEN`; the dashboard's pages are empty shells whose scripts call the API
with the token the user signed in with.
"""

from __future__ import annotations

from flask import Flask

from li2.search.request import SearchRequestSchema
from li2.spec import ExperimentSpecSchema
from li2_service import assets, auth, dashboard, errors, schemas
from li2_service.blueprints import experiments, health, searches, sweeps
from li2_service.blueprints import queue as queue_blp
from li2_service.config import load_config
from li2_service.openapi import Li2Api, OperationsPlugin, range_exclusivity, split_task_kinds
from li2_service.runs import ServiceState
from li2_store.config import check_secrets
from li2_store.db import make_engine
from li2_store.dispatch import enqueue_for

API_PREFIX = "/api/v1"
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "a token from `li2lab users create NAME`: Authorization: Bearer TOKEN",
}


def _openapi_settings() -> dict:
    return {
        "API_TITLE": "Li2 Lab",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": API_PREFIX,
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": assets.SWAGGER_UI_URL,  # served by this process: the docs work offline
        "OPENAPI_SWAGGER_UI_CONFIG": assets.SWAGGER_UI_CONFIG,
        "OPENAPI_REDOC_PATH": "redoc",
        "OPENAPI_REDOC_URL": assets.REDOC_URL,
        "API_SPEC_OPTIONS": {
            "security": [{"bearerAuth": []}],
            "info": {
                "description": "Experiments as a service for the Li2 theory of grokking (Tian, arXiv 2509.21519)."
            },
        },
    }


def create_app(config: dict | None = None) -> Flask:
    """Build the API. `config` overrides keys of `load_config()` (and may set ENQUEUE, TESTING)."""
    settings = {**load_config(), **(config or {})}
    check_secrets(settings)
    app = Flask(__name__)
    app.config.update(_openapi_settings())
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_BODY_BYTES"]
    app.config["TESTING"] = bool(settings.get("TESTING"))
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider's setting

    engine = settings.get("ENGINE") or make_engine(settings["DATABASE_URL"])
    app.extensions["li2"] = ServiceState(
        engine=engine, config=settings, enqueue=settings.get("ENQUEUE") or enqueue_for(settings)
    )

    api = Li2Api(app, spec_kwargs={"extra_plugins": [OperationsPlugin()]})
    api.ma_plugin.converter.add_attribute_function(range_exclusivity)
    api.spec.components.security_scheme("bearerAuth", BEARER)
    api.spec.components.schema("ExperimentSpec", schema=ExperimentSpecSchema)
    api.spec.components.schema("Submit", {"example": schemas.SUBMIT_EXAMPLE}, schema=schemas.SubmitSchema)
    api.spec.components.schema("SweepSubmit", {"example": schemas.SWEEP_EXAMPLE}, schema=schemas.SweepSubmitSchema)
    api.spec.components.schema("SearchSubmit", {"example": searches.SEARCH_EXAMPLE}, schema=SearchRequestSchema)
    for blueprint in (experiments.blp, sweeps.blp, searches.blp, queue_blp.blp, health.blp):
        api.register_blueprint(blueprint)
    split_task_kinds(api.spec.components.schemas)

    @app.get("/openapi.json", endpoint="openapi_json_alias")
    def openapi_json_alias():
        """The OpenAPI document outside the prefix too (docs/design.md names both)."""
        return api.spec.to_dict()

    app.register_blueprint(assets.bp)
    app.register_blueprint(dashboard.bp)
    app.after_request(assets.docs_only_from_here)

    app.before_request(auth.authenticate)
    errors.register_error_handlers(app)
    return app
