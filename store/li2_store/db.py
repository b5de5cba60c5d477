"""Database engine, sessions and the database's clock, shared by the API and the workers.

The database is the source of truth for every experiment (docs/design.md). PostgreSQL in
production, a SQLite file as the embedded default. SQLite gets WAL mode and a busy timeout so the
API and the embedded worker can write to the same file concurrently.

Time that several hosts compare (leases, heartbeats, queue ages) is the *database's* clock,
`db_now()`, never a host's: a worker whose clock is minutes off must not make its own live runs
look stale to another host's reaper. Timestamps are stored as naive UTC on both back ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.sql.functions import FunctionElement

from li2_store.config import load_config


def utcnow() -> datetime:
    """This host's UTC now, naive: only for stamps no other host compares (creation times)."""
    return datetime.now(UTC).replace(tzinfo=None)


class db_now(FunctionElement[datetime]):  # noqa: N801 (named like the SQL function it stands for)
    """The database server's current UTC time as a SQL expression (naive, like our columns)."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(db_now, "postgresql")
def _db_now_postgresql(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"


@compiles(db_now, "sqlite")
def _db_now_sqlite(_element: Any, _compiler: Any, **_kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'; %f gives SS.SSS.
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


@compiles(db_now)
def _db_now_default(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


def database_now(engine: Engine) -> datetime:
    """The database server's current UTC time, read with one query."""
    with engine.connect() as conn:
        value = conn.execute(sa.select(db_now())).scalar_one()
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def changed(session: Session, statement: Executable) -> int:
    """Execute an UPDATE or DELETE in `session` and return how many rows it changed.

    Every conditional write (claim, heartbeat, finish, requeue, cancel) decides by this count
    whether it won, so two writers racing on one row never both think they did.
    """
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def make_engine(url: str | None = None) -> Engine:
    """An engine for `url` (default LI2_DATABASE_URL); creates the SQLite file's folder if needed."""
    url = url or load_config()["DATABASE_URL"]
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def init_db(engine: Engine) -> None:
    """Create all tables (SQLite, tests, embedded mode). Production runs Alembic migrations."""
    from li2_store.models import Base

    Base.metadata.create_all(engine)


_factories: dict[int, sessionmaker[Session]] = {}


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
