"""Fixtures shared by the worker tests."""

from __future__ import annotations

import pytest

from .helpers import new_engine


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    """A migrated engine on SQLite and on the real PostgreSQL (the two stores we support)."""
    url = (
        f"sqlite:///{tmp_path / 'li2.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    engine = new_engine(url)
    yield engine
    engine.dispose()
