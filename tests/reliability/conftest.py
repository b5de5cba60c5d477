"""Fixtures for the fault tests: a fresh PostgreSQL database, a private Redis and the stack on them.

Every fault test gets its own database (tests/conftest.py's `postgres_url`), its own redis-server
on a free loopback port (never the shared one on 6379, which the tests stop and restart), and the
short recovery knobs of `stack.FAST_RECOVERY`, so a killed worker's lease expires in seconds instead of a minute.
A test that restarts the database gets a PostgreSQL server of its own (`private_postgres`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import stack` (pytest runs in importlib mode)

from stack import FAST_RECOVERY, RedisServer, Stack, missing, private_postgres

__all__ = ["private_postgres"]  # a fixture defined beside the server it starts (stack.py)


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server (the tests stop and restart it; the shared one on 6379 is never touched)."""
    if shutil.which("redis-server") is None:
        missing("redis-server on PATH")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(postgres_url, redis_server, tmp_path):
    """A started API (no worker yet) on a fresh database and a private Redis; tests add workers."""
    s = Stack(postgres_url, redis_server.url, tmp_path, **FAST_RECOVERY)
    s.start_api()
    yield s
    s.close()


@pytest.fixture
def stack_with(postgres_url, redis_server, tmp_path):
    """`stack_with(**LI2_settings)`: like `stack`, with settings of the test's own (e.g. limits)."""
    made: list[Stack] = []

    def make(**settings):
        s = Stack(postgres_url, redis_server.url, tmp_path, **{**FAST_RECOVERY, **settings})
        made.append(s)
        s.start_api()
        return s

    yield make
    for s in made:
        s.close()
