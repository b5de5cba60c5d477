"""Database engine and session helpers shared by the API and the workers.

The database is the source of truth for every experiment (docs/architecture.md). PostgreSQL in
production, a SQLite file as the embedded default. SQLite gets WAL mode and a busy timeout so the
API and the embedded worker can write to the same file concurrently.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///./var/li2.sqlite"


def utcnow() -> datetime:
    """Timezone-aware UTC now; stored as naive UTC so SQLite and PostgreSQL compare alike."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def database_url() -> str:
    return os.environ.get("LI2_DATABASE_URL") or DEFAULT_DATABASE_URL


def make_engine(url: str | None = None) -> Engine:
    """An engine for `url` (default LI2_DATABASE_URL); creates the SQLite file's folder if needed."""
    url = url or database_url()
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def init_db(engine: Engine) -> None:
    """Create all tables (SQLite, tests, embedded mode). Production runs Alembic migrations."""
    from li2_service.models import Base

    Base.metadata.create_all(engine)


_factories: dict[int, sessionmaker] = {}


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    factory = _factories.get(id(engine))
    if factory is None:
        factory = _factories[id(engine)] = sessionmaker(bind=engine, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
