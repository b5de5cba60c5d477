"""Bearer-token accounts: tokens are shown once and stored only as sha256 hashes.

Every request is authenticated in one `before_request` hook unless its endpoint is listed in
PUBLIC_ENDPOINTS (health, readiness, API docs), so a new route is protected by default. The caller
is `g.user` (a detached snapshot: id, name, is_admin). Ownership: `visible_to(user)` is the one
rule — admins see everything, everyone else only their own rows; others' ids answer 404, exactly
like unknown ids, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn, TypeVar

import sqlalchemy as sa
from flask import current_app, g, request
from sqlalchemy.orm import Session

from li2_service.errors import fail
from li2_store import models
from li2_store.db import session_scope
from li2_store.users import create_user, hash_token, user_for_token

__all__ = ["create_user", "hash_token"]  # re-exported: the account functions live in li2_store.users

# Endpoints reachable without a token. flask-smorest names its docs endpoints "api-docs.*"; the
# vendored docs/chart scripts ("assets.*") and the dashboard's pages ("dashboard.*", shells that
# hold no data: their scripts call the API with the signed-in user's token) are public too.
PUBLIC_ENDPOINTS = {"health.healthz", "health.readyz", "static", "openapi_json_alias"}
PUBLIC_PREFIXES = ("api-docs.", "assets.", "dashboard.")


@dataclass(frozen=True)
class Caller:
    """Who is calling; a plain value so views never hold a session-bound ORM object."""

    id: int
    name: str
    is_admin: bool


Row = TypeVar("Row", models.Experiment, models.Sweep, models.Search)


def is_public(endpoint: str | None) -> bool:
    return endpoint in PUBLIC_ENDPOINTS or (endpoint or "").startswith(PUBLIC_PREFIXES)


def _unauthorized(message: str) -> NoReturn:
    fail(401, message, headers={"WWW-Authenticate": 'Bearer realm="li2lab"'})


def authenticate() -> None:
    """before_request hook: resolve `Authorization: Bearer TOKEN` into g.user or answer 401."""
    if request.routing_exception is not None or is_public(request.endpoint):
        return  # unknown route / wrong method: let routing answer 404/405; public: no token
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        _unauthorized("missing bearer token: send 'Authorization: Bearer TOKEN'")
    if len(token) > 512:
        _unauthorized("invalid token")
    with session_scope(current_app.extensions["li2"].engine) as session:
        user = user_for_token(session, token)  # every request asks the database: revocation is immediate
        if user is None:
            _unauthorized("invalid token")
        g.user = Caller(id=user.id, name=user.name, is_admin=bool(user.is_admin))


def current_user() -> Caller:
    return g.user


def visible_to(user: Caller, column) -> sa.ColumnElement[bool]:
    """SQL condition: rows with this user_id column that `user` may see."""
    return sa.true() if user.is_admin else column == user.id


def get_visible(session: Session, model: type[Row], row_id: str, user: Caller, what: str) -> Row:
    """Load one row the caller may see, or answer 404 (for unknown and for others' ids alike)."""
    row = session.get(model, row_id) if isinstance(row_id, str) and len(row_id) <= 64 else None
    if row is None or not (user.is_admin or row.user_id == user.id):
        fail(404, f"no {what} with this id")
    return row
