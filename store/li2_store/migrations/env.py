"""Alembic environment: our models' metadata, on the connection or URL the caller configured.

Called through li2_store.migrate (which passes an open connection) or the `alembic` command
with alembic.ini (which reads LI2_DATABASE_URL when sqlalchemy.url is not set).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from li2_store.config import load_config
from li2_store.db import make_engine
from li2_store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or load_config()["DATABASE_URL"],
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or load_config()["DATABASE_URL"])
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
