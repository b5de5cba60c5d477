"""Typed exceptions: one class per kind of failure the service can answer with.

The service answers errors as RFC 7807 problem documents (``application/problem+json``):
``{"type", "title", "status", "detail", "errors": {field: [msgs]}}`` (plus ``code``/``message``, the
same as status/detail). ``error_from_response`` turns such an answer into the matching exception,
so callers can write ``except NotFound:`` instead of inspecting status codes. 422 means the request
can never succeed as sent (including a sweep larger than the server allows); 429 means "not now":
retry after ``retry_after`` seconds.
"""

from __future__ import annotations

from typing import Any

import requests


class Li2Error(Exception):
    """Base of every SDK error. ``status`` is the HTTP code (None for client-side errors)."""

    def __init__(
        self, message: str, *, status: int | None = None, errors: dict[str, list[str]] | None = None, body: Any = None
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors: dict[str, list[str]] = errors or {}
        self.body = body

    def __str__(self) -> str:
        text = self.message if self.status is None else f"{self.message} (HTTP {self.status})"
        for field, msgs in self.errors.items():
            text += f"\n  {field}: {'; '.join(msgs)}"
        return text


class AuthError(Li2Error):
    """401/403: the token is missing, wrong, or lacks the right."""


class NotFound(Li2Error):
    """404: unknown id, or an id that belongs to another user."""


class ValidationError(Li2Error):
    """400/413/422: bad input. ``errors`` maps dotted field paths to messages."""


class Conflict(Li2Error):
    """409: the resource is in the wrong state (e.g. metrics of a run that has not finished)."""


class QuotaExceeded(Li2Error):
    """429: over a quota that waiting frees (active runs, estimated compute). ``retry_after``: seconds (or None)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(Li2Error):
    """5xx, or the server could not be reached at all (``status`` is None then)."""


class WaitTimeout(Li2Error, TimeoutError):
    """``wait()`` gave up before the run reached a final state."""


class RunFailed(Li2Error):
    """``Experiment.wait()`` saw the run end ``failed`` or ``cancelled``; the message has the server's reason."""


def _flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow-style nested error dicts into ``{"a.b": [msgs]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            # flask-smorest nests by location ({"json": {...}}); drop that level.
            if not prefix and key in ("json", "query", "headers", "form") and isinstance(value, dict):
                path = ""
            out.update(_flatten_errors(value, path))
    elif isinstance(errors, list) and all(isinstance(m, str) for m in errors):
        out[prefix or "_"] = list(errors)
    elif isinstance(errors, list):
        for item in errors:
            out.update(_flatten_errors(item, prefix))
    elif errors is not None:
        out[prefix or "_"] = [str(errors)]
    return out


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (only the delta-seconds form; HTTP dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(resp: requests.Response) -> Li2Error:
    """Map a non-2xx ``requests.Response`` to the matching typed exception."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    status = resp.status_code
    if isinstance(body, dict):
        message = body.get("detail") or body.get("message") or body.get("title") or resp.reason or "error"
        errors = _flatten_errors(body.get("errors"))
    else:
        message = (resp.text or resp.reason or "error").strip()[:500]
        errors = {}
    kw = {"status": status, "errors": errors, "body": body}
    if status in (401, 403):
        return AuthError(message, **kw)
    if status == 404:
        return NotFound(message, **kw)
    if status in (400, 413, 422):
        return ValidationError(message, **kw)
    if status == 409:
        return Conflict(message, **kw)
    if status == 429:
        return QuotaExceeded(message, retry_after=parse_retry_after(resp.headers.get("Retry-After")), **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return Li2Error(message, **kw)
