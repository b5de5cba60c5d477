"""Fixtures for the fault tests: a fresh PostgreSQL database, a private Redis and the stack on them.

Every fault test gets its own database (tests/conftest.py's `postgres_url`), its own redis-server
on a free loopback port (never the shared one on 6379, which the tests stop and restart), and the
short recovery knobs below, so a killed worker's lease expires in seconds instead of a minute.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import stack` (pytest runs in importlib mode)

from stack import RedisServer, Stack

# Recovery knobs of the fault tests (production defaults: 5 s, 60 s, 30 s, 50 epochs, 60 s).
FAST_RECOVERY = {
    "LI2_HEARTBEAT_S": 1,
    "LI2_LEASE_S": 4,
    "LI2_REQUEUE_AFTER_S": 3,
    "LI2_CHECKPOINT_EVERY": 100,
    "LI2_SOFT_SHUTDOWN_S": 20,
}


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server (the tests stop and restart it; the shared one on 6379 is never touched)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("LI2_REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is required (LI2_REQUIRE_SERVICES=1) but not on PATH")
        pytest.skip("redis-server not on PATH")
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
