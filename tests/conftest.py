"""Shared test settings: where the real Redis and PostgreSQL servers are.

Tests that need a server use the fixtures below. Outside CI a missing server skips those tests;
in CI (`LI2_REQUIRE_SERVICES=1`, set by `.ci/run`) it fails them, so a green CI run proves they ran.
"""

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

REDIS_URL = os.environ.get("LI2_TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("LI2_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("LI2_REQUIRE_SERVICES") == "1"


def _reachable(url: str) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname, u.port), timeout=1):
            return True
    except OSError:
        return False


def _need(url: str, what: str) -> None:
    if not _reachable(url):
        if REQUIRE_SERVICES:
            pytest.fail(f"{what} at {url} is required (LI2_REQUIRE_SERVICES=1) but not reachable")
        pytest.skip(f"{what} at {url} not reachable")


@pytest.fixture
def redis_url():
    """A Redis URL on a database number of its own, flushed before and after the test."""
    _need(REDIS_URL, "Redis")
    import redis

    db = 1 + (uuid.uuid4().int % 14)
    url = f"{REDIS_URL.rstrip('/')}/{db}"
    r = redis.Redis.from_url(url)
    r.flushdb()
    yield url
    r.flushdb()


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    _need(POSTGRES_URL, "PostgreSQL")
    import sqlalchemy as sa

    name = f"li2_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as c:
        c.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()
