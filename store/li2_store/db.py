"""Database engine, sessions and the database's clock, shared by the API and the workers.

The database is the source of truth for every experiment (docs/design.md). PostgreSQL in
production, a SQLite file as the embedded default. SQLite gets WAL mode and a busy timeout so the
API and the embedded worker can write to the same file concurrently.

Time that several hosts compare (leases, heartbeats, queue ages) is the *database's* clock,
`db_now()`, never a host's: a worker whose clock is minutes off must not make its own live runs
look stale to another host's reaper. Timestamps are stored as naive UTC on both back ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.sql.functions import FunctionElement

from li2_store.config import load_config

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a worker keeps retrying a write the database cannot take right now (a restart, a
# failover, a network cut) before giving up on it; see `retrying`.
DB_RETRY_S = 300.0


def utcnow() -> datetime:
    """This host's UTC now, naive: only for stamps that no other host compares with its own time.

    That is creation times (``created_at`` column defaults) and the API's stamp on a partial fit,
    which are shown, never judged. Leases, heartbeats, claims, finish times, queue ages and the
    reaper's cutoffs use the database's clock (`db_now`, `database_now`) instead, because hosts'
    clocks drift: a worker five minutes behind would otherwise make its live runs look stale.
    """
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


def database_now(bind: Engine | Session) -> datetime:
    """The database server's current UTC time, read with one query (on its own connection for an
    engine; inside the session's transaction for a session, where PostgreSQL gives the time the
    transaction started). For a cutoff computed in Python, e.g. ``database_now(e) - lease``."""
    query = sa.select(db_now())
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            value = conn.execute(query).scalar_one()
    else:
        value = bind.execute(query).scalar_one()
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


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means "the database cannot answer right now" rather than a bug or bad data.

    True for the driver's OperationalError and InterfaceError as SQLAlchemy wraps them (server down,
    refusing connections while it starts or shuts down, a connection cut or terminated by an
    administrator, SQLite busy or locked, a deadlock or serialization failure), for any error after
    which SQLAlchemy invalidated the connection, and for the pool giving no connection in time.
    Constraint violations, bad SQL and bad values (IntegrityError, ProgrammingError, DataError)
    are not: repeating them cannot help. The API answers these 503 + Retry-After; workers retry.
    """
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    return isinstance(exc, sa.exc.TimeoutError)  # QueuePool: no connection within pool_timeout


def retrying(
    what: str,
    write: Callable[[], T],
    *,
    for_s: float = DB_RETRY_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `write()` until it succeeds, retrying while the database is unavailable, for `for_s` s.

    Waits 0.5 s, 1 s, 2 s, ... (at most 10 s) between tries and logs each failure naming `what`.
    Any other error, or unavailability past the deadline, is raised. `write` must be safe to
    repeat: a commit whose answer was lost may have happened, so every write a worker repeats is
    conditioned on its lease (a repeat after a successful commit changes nothing).
    """
    deadline = clock() + for_s
    delay = 0.5
    while True:
        try:
            return write()
        except Exception as exc:
            if not is_unavailable(exc) or clock() + delay > deadline:
                raise
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("%s: database unavailable (%s); retrying in %.1f s", what, first_line[:200], delay)
        sleep(delay)
        delay = min(10.0, 2 * delay)
