"""What the experiment, sweep and search views share: the app's state, and the bodies of the
organise routes (PATCH labels, DELETE) and of the scaling-law answer.

Each route keeps its own decorators and docstring (they are its OpenAPI operation); only the work
that is the same for a run, a sweep and a search lives here, so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, current_app
from sqlalchemy.orm import Session

from li2_service import auth, organise, runs, schemas
from li2_service.body import json_object
from li2_service.errors import fail
from li2_service.listing import fetch_page, page_response
from li2_store import models
from li2_store.db import session_scope

Row = TypeVar("Row", models.Experiment, models.Sweep)


def app_state() -> runs.ServiceState:
    """The engine, settings and sender of the running app (set by `create_app`)."""
    return current_app.extensions["li2"]


def page_of(stmt: sa.Select, page: int, page_size: int, view: Callable[[Session, Any], dict]) -> Response:
    """One page of `stmt`'s rows (already filtered and ordered), each shown by `view`, as the paged
    envelope with its X-Pagination header: the body of every list route."""
    with session_scope(app_state().engine) as session:
        rows, total = fetch_page(session, stmt, page, page_size)
        items = [view(session, r) for r in rows]
    return page_response(items, page, page_size, total)


def patch_visible(model: type[Row], row_id: str, what: str, view: Callable[[Session, Row], dict]) -> dict:
    """PATCH one of the caller's rows with the request's labels body; the row's view after it."""
    body = json_object()
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, model, row_id, auth.current_user(), what)
        organise.patch(session, row, body)
        session.refresh(row)
        return view(session, row)


def delete_visible(model: type[Row], row_id: str, what: str, delete: Callable[[Session, Row], dict[str, int]]) -> dict:
    """DELETE one of the caller's rows with `delete`; {"id", "deleted": counts by table}."""
    with session_scope(app_state().engine) as session:
        row = auth.get_visible(session, model, row_id, auth.current_user(), what)
        found = row.id
        deleted = delete(session, row)
    return {"id": found, "deleted": deleted}


def law_answer(law: dict, fitted_at: datetime | None, partial: bool) -> dict:
    """A scaling-law body: 409 naming the fit's error, else the law with `partial` and `fitted_at`."""
    if "error" in law:
        fail(409, f"the scaling law cannot be fitted: {str(law['error'])[:300]}")
    return {**law, "partial": partial, "fitted_at": schemas.iso(fitted_at)}
