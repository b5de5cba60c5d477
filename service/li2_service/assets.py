"""Third-party browser assets served by the API itself, from the installed packages that ship them.

Lab servers are often offline, so no page of ours loads anything from a CDN. The files are read
from the site-packages of two PyPI packages (never copied into this repo):

    plotly              plotly/package_data/plotly.min.js           the dashboard's charts
    openapi-ui-bundles  openapi_ui_bundles/{swagger_ui,redoc}/vendor  Swagger UI and ReDoc

Each URL name maps to one fixed file (`FILES`); no part of a request is used as a path. Public
(no token), like the API docs that use them; cached by browsers for a day, revalidated by ETag.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, request, send_file

bp = Blueprint("assets", __name__, url_prefix="/assets/vendor")

# URL name -> (package, path inside it). The package is located without importing it.
FILES = {
    "plotly.min.js": ("plotly", "package_data/plotly.min.js"),
    "swagger-ui/swagger-ui-bundle.js": ("openapi_ui_bundles", "swagger_ui/vendor/swagger-ui-bundle.js"),
    "swagger-ui/swagger-ui-standalone-preset.js": (
        "openapi_ui_bundles",
        "swagger_ui/vendor/swagger-ui-standalone-preset.js",
    ),
    "swagger-ui/swagger-ui.css": ("openapi_ui_bundles", "swagger_ui/vendor/swagger-ui.css"),
    "redoc/redoc.standalone.js": ("openapi_ui_bundles", "redoc/vendor/redoc.standalone.js"),
}
SWAGGER_UI_URL = "/assets/vendor/swagger-ui/"  # flask-smorest appends the file names above
REDOC_URL = "/assets/vendor/redoc/redoc.standalone.js"
MAX_AGE_S = 86400

# The docs pages (flask-smorest's templates, which hold an inline start-up script) may load from this
# origin only: ReDoc's sidebar asks a CDN for its logo and Swagger UI a validator for its badge;
# this keeps both requests from ever leaving the browser (they fail quietly, nothing else depends
# on them). ReDoc runs its search index in a worker made from a blob: URL.
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    )
)
SWAGGER_UI_CONFIG = {"validatorUrl": None}  # no badge fetched from validator.swagger.io


@cache
def package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without running its __init__ (None if absent)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def asset_path(name: str) -> Path | None:
    """The file behind URL name `name`, or None when the name is unknown or its package missing."""
    if name not in FILES:
        return None
    package, inner = FILES[name]
    base = package_dir(package)
    path = base / inner if base else None
    return path if path is not None and path.is_file() else None


@bp.get("/<path:name>")
def vendor(name: str):
    path = asset_path(name)
    if path is None:
        abort(404)
    return send_file(path, max_age=MAX_AGE_S, conditional=True)


def docs_only_from_here(response: Response) -> Response:
    """after_request hook: the API docs pages get DOCS_CSP (nothing leaves the browser)."""
    if (request.endpoint or "") in ("api-docs.openapi_swagger_ui", "api-docs.openapi_redoc"):
        response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
