"""Reading JSON request bodies defensively.

Only `Content-Type: application/json` (or a `+json` type) is read. Flask's `get_json` accepts
NaN/Infinity and lets a deeply nested body raise RecursionError; here both are 400s. The size
bound (LI2_MAX_BODY_BYTES) is Flask's MAX_CONTENT_LENGTH, enforced while reading, so an oversized
body is a 413 before any parsing.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request

from li2_service.errors import fail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def json_object() -> dict:
    """The request body as a JSON object, or stop with 415 (not JSON), 400 (malformed), 422 (not an object)."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        fail(
            415,
            "send the body as JSON with 'Content-Type: application/json'",
            errors={"Content-Type": [f"must be application/json, got {mimetype or 'none'}"]},
        )
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        fail(400, "the request body is empty; send a JSON object")
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        fail(400, "the JSON body is nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:
        fail(400, f"the request body is not valid JSON: {str(exc)[:200]}")
    if not isinstance(value, dict):
        fail(422, "the body must be a JSON object", errors={"_schema": ["must be a JSON object"]})
    return value
