"""Every failure is an RFC 7807 problem document (Content-Type: application/problem+json):

    {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
     "detail": "invalid experiment spec; see errors",
     "errors": {"model.hidden": ["must be between 1 and 8192 (LI2_MAX_HIDDEN)"]},
     "code": 422, "message": "invalid experiment spec; see errors"}

`errors` names each bad field (dotted path) with messages that say what is allowed; `code` and
`message` repeat `status` and `detail` for clients written before the problem format. The schema
is li2_service.schemas.ProblemSchema, the document's `Problem` component.

One handler formats every HTTPException (ours from `fail`, webargs' 422s, werkzeug's 404/405/413);
`SpecError` from the core becomes 422 with its field messages; a database that cannot answer
(down, restarting, connection cut, pool exhausted, SQLite locked: `li2_store.db.is_unavailable`)
becomes 503 with Retry-After on every route, authentication included; anything else is logged and
answered with a JSON 500 that leaks nothing. Bad input must never reach that last handler: tests
send hostile bodies and require 4xx.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from flask import Flask, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError, default_exceptions

from li2.errors import SpecError
from li2.spec.schema import flatten_errors as flatten_marshmallow
from li2_store.db import is_unavailable

log = logging.getLogger(__name__)

# webargs keys its messages by location ({"query": {"page": [...]}}); clients want the field.
_LOCATIONS = {"json", "query", "querystring", "headers", "view_args", "path", "form", "files", "cookies"}


def flatten_errors(errors: Any) -> dict[str, list[str]]:
    """Nested marshmallow/webargs messages -> {"dotted.field": ["message", ...]}.

    webargs keys its messages by location first; that level is dropped, the rest is
    li2.spec.schema.flatten_errors (the one flattening of marshmallow messages).
    """
    if not isinstance(errors, dict):
        return flatten_marshmallow(errors)
    out: dict[str, list[str]] = {}
    for key, val in errors.items():
        part = flatten_marshmallow(val if key in _LOCATIONS and isinstance(val, dict) else {key: val})
        for path, msgs in part.items():
            out.setdefault(path, []).extend(msgs)
    return out


PROBLEM_JSON = "application/problem+json"


def _payload(code: int, title: str, message: str, errors: dict | None = None) -> dict:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": code, "detail": message}
    if errors:
        body["errors"] = errors
    body.update(code=code, message=message)
    return body


def problem(code: int, title: str, message: str, errors: dict | None = None):
    """The problem-document response (status set, Content-Type application/problem+json)."""
    response = jsonify(_payload(code, title, message, errors))
    response.status_code = code
    response.mimetype = PROBLEM_JSON
    return response


def handle_http_exception(exc: HTTPException):
    """Format any HTTPException (fail, webargs validation, routing, body size) as a problem document."""
    data = getattr(exc, "data", None) or {}
    raw_errors = data.get("errors", data.get("messages"))
    errors = flatten_errors(raw_errors) if raw_errors else None
    message = data.get("message")
    if not message:
        message = "invalid input; see errors" if errors else (exc.description or exc.name)
    headers = dict(data.get("headers") or {})
    if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    if exc.code == 413:
        message = "request body too large"
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None and "Retry-After" not in headers:
        headers["Retry-After"] = str(retry_after)
    response = problem(exc.code or 500, exc.name, message, errors)
    response.headers.update(headers)
    return response


def handle_spec_error(exc: SpecError):
    """Bad experiment input from li2.spec / li2.groups: 422 naming each field."""
    return problem(422, "Unprocessable Entity", "invalid experiment spec; see errors", exc.errors)


DATABASE_RETRY_AFTER_S = 5


def handle_database_error(exc: SQLAlchemyError):
    """The database cannot answer right now: 503 + Retry-After (a temporary condition). Any other
    database error is a bug, answered like one (500)."""
    if not is_unavailable(exc):
        return handle_unexpected(exc)
    log.error("database unavailable: %s", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    response = problem(503, "Service Unavailable", "the database is unavailable; retry shortly")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def handle_unexpected(exc: Exception):
    """A bug, not bad input: log the traceback, answer a problem 500 without internals."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error")
    return handle_http_exception(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    """Install the handlers above; call after flask-smorest's Api so ours replace its default."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(SpecError, handle_spec_error)
    app.register_error_handler(SQLAlchemyError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)


def fail(status: int, message: str, **data: Any) -> NoReturn:
    """Stop the request with `status`; `handle_http_exception` turns it into a problem document.

    `data` may add `errors` ({field: [messages]}) and `headers` (e.g. Retry-After). The one way
    views and helpers end a request early.
    """
    exc = default_exceptions[status]()
    exc.data = {"message": message, **data}  # type: ignore[attr-defined]
    raise exc


def unprocessable(field: str, message: str) -> NoReturn:
    """Stop the request with 422 naming one field."""
    fail(422, f"{field}: {message}", errors={field: [message]})
