"""Pagination of list endpoints: one envelope {"items", "page", "page_size", "total"}.

The same numbers also go in the X-Pagination header, the way flask-smorest's own pagination
reports them, so clients written for either find what they expect.
"""
from __future__ import annotations

import json
import math

import sqlalchemy as sa
from flask import make_response


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
