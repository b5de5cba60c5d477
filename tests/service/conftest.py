"""Fixtures for the API tests: the real app factory on SQLite and on PostgreSQL.

`svc` is parametrised over both stores (PostgreSQL through tests/conftest.py's `postgres_url`,
skipped when the server is absent outside CI). Enqueues are recorded instead of sent (the app
factory's ENQUEUE hook), so these tests check what the API hands the broker; the real Celery path
is covered by the worker and integration tests. Three accounts: alice, bob, and root (admin).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

SPEC = {
    "task": {"group": "cyclic", "order": 11},
    "data": {"train_fraction": 0.5},
    "model": {"hidden": 16},
    "training": {"epochs": 20},
    "seed": 1,
}
TABLES = (
    "users",
    "searches",
    "sweeps",
    "experiments",
    "results",
    "checkpoints",
    "metric_rows",
    "fair_shares",
    "worker_slots",
)


def spec(**changes) -> dict:
    """A copy of SPEC with dotted-path changes, e.g. spec(**{"training.epochs": 30})."""
    out = copy.deepcopy(SPEC)
    for path, value in changes.items():
        node = out
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


@dataclass
class Service:
    """One app under test: its client, engine, recorded enqueues and three tokens."""

    app: object
    engine: sa.Engine
    enqueued: list = field(default_factory=list)
    tokens: dict = field(default_factory=dict)

    @property
    def client(self):
        return self.app.test_client()

    def auth(self, who: str = "alice") -> dict:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}

    def update(self, exp_id: str, **values) -> None:
        """Play the worker's part on one row (status, summary, ...): test data, not a mock."""
        from li2_store import models

        with self.engine.begin() as conn:
            conn.execute(sa.update(models.Experiment).where(models.Experiment.id == exp_id).values(**values))


def make_service(db_url: str, tmp_path: Path, **config) -> Service:
    from li2_service import create_app
    from li2_service.auth import create_user
    from li2_store.db import init_db, make_engine, session_scope

    engine = make_engine(db_url)
    init_db(engine)
    svc = Service(app=None, engine=engine)

    def record(items, broker_url):
        svc.enqueued.append([tuple(i) for i in items])

    svc.app = create_app(
        {
            "DATABASE_URL": db_url,
            "ENGINE": engine,
            "ENQUEUE": record,
            "TESTING": True,
            "BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
            **config,
        }
    )
    with session_scope(engine) as session:
        for name, admin in (("alice", False), ("bob", False), ("root", True)):
            svc.tokens[name] = create_user(session, name, admin)
    return svc


@pytest.fixture(scope="session")
def shared_postgres_url():
    """One PostgreSQL database for the whole API suite, dropped at the end.

    tests/conftest.py's `postgres_url` makes a database per test, which costs over a second each on
    the shared 2-core machine; the API tests instead empty the tables between tests (`db_url`).
    Same server, same skip/fail rule (LI2_TEST_POSTGRES_URL, LI2_REQUIRE_SERVICES).
    """
    import os
    import socket
    import uuid
    from urllib.parse import urlparse

    server = os.environ.get("LI2_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    u = urlparse(server)
    try:
        socket.create_connection((u.hostname, u.port), timeout=1).close()
    except OSError:
        if os.environ.get("LI2_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL at {server} is required (LI2_REQUIRE_SERVICES=1) but not reachable")
        pytest.skip(f"PostgreSQL at {server} not reachable")
    name = f"li2_api_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"{server.rsplit('/', 1)[0]}/{name}"
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A store with empty tables: a fresh SQLite file, or the shared PostgreSQL database truncated."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'li2.sqlite'}"
    url = request.getfixturevalue("shared_postgres_url")
    from li2_store.db import init_db

    engine = sa.create_engine(url)
    init_db(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def svc(db_url, tmp_path):
    service = make_service(db_url, tmp_path)
    yield service
    service.engine.dispose()


@pytest.fixture
def sqlite_svc(tmp_path):
    """SQLite only, for tests about the HTTP layer rather than the store."""
    service = make_service(f"sqlite:///{tmp_path / 'li2.sqlite'}", tmp_path)
    yield service
    service.engine.dispose()


@pytest.fixture(name="make_spec")
def make_spec_fixture():
    """The `spec(**changes)` helper as a fixture (test modules cannot import conftest)."""
    return spec


@pytest.fixture
def service_factory(tmp_path):
    """make_service(db_url, **config) for tests that need their own settings (limits, enqueue)."""
    made = []

    def factory(db_url: str, **config) -> Service:
        made.append(make_service(db_url, tmp_path, **config))
        return made[-1]

    yield factory
    for service in made:
        service.engine.dispose()
