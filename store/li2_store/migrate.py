"""Alembic migrations, run from Python: `prepared_engine` brings LI2_DATABASE_URL to the newest schema.

`li2lab migrate` (which the compose file runs once before the API and workers start), `li2lab
serve` and `li2lab users` all open the database through `prepared_engine`. It adopts a database
made by `init_db`'s create_all by stamping it, so either path leads to one schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None, connection: sa.Connection | None = None) -> Config:
    """An Alembic Config for our migrations folder, on `url` or an open `connection`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def prepare_database(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (creating it in an empty database)."""
    with engine.begin() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        cfg = alembic_config(connection=conn)
        if "users" in tables and "alembic_version" not in tables:
            command.stamp(cfg, "head")  # made by create_all: already the newest schema
        else:
            command.upgrade(cfg, "head")


def prepared_engine(config: Mapping[str, Any]) -> sa.Engine:
    """The engine on config's DATABASE_URL, after the secrets check, with the schema at head.

    The one start-up path of every command that opens the database (serve, users, migrate).
    Raises ConfigError when a secret is still a placeholder.
    """
    from li2_store.config import check_secrets
    from li2_store.db import make_engine

    check_secrets(config)
    engine = make_engine(config["DATABASE_URL"])
    prepare_database(engine)
    return engine
