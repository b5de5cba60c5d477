"""Pagination of list endpoints: one envelope {"items", "page", "page_size", "total"}.

The same numbers also go in the X-Pagination header, the way flask-smorest's own pagination
reports them, so clients written for either find what they expect.
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa
from flask import make_response

from li2_service import auth
from li2_service.errors import fail
from li2_store import models


def visible_rows(model, caller, user: str | None, status: str | None) -> sa.Select:
    """SELECT of `model` rows the caller may see: their own (admins: all, or one `user`'s by name),
    optionally of one status. Non-admins asking for `user` get 403."""
    stmt = sa.select(model).where(auth.visible_to(caller, model.user_id))
    if user is not None:
        if not caller.is_admin:
            fail(403, "only admins may filter by user", errors={"user": ["admins only"]})
        stmt = stmt.join(models.User, models.User.id == model.user_id).where(models.User.name == user)
    if status:
        stmt = stmt.where(model.status == status)
    return stmt


def fetch_page(session, stmt: sa.Select, page: int, page_size: int) -> tuple[list, int]:
    """Rows of `stmt` (already ordered) on `page` (1-based), and the total count."""
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.limit(page_size).offset((page - 1) * page_size)).all()
    return list(rows), total


def page_response(items: list[dict], page: int, page_size: int, total: int):
    """The envelope as a response with the X-Pagination header."""
    last = max(1, math.ceil(total / page_size))
    info = {"total": total, "total_pages": last, "first_page": 1, "last_page": last, "page": page}
    if page > 1:
        info["previous_page"] = min(page - 1, last)
    if page < last:
        info["next_page"] = page + 1
    response = make_response({"items": items, "page": page, "page_size": page_size, "total": total})
    response.headers["X-Pagination"] = json.dumps(info)
    return response
