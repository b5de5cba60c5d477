"""Alembic migrations, run from Python: `python -m li2_service.migrate` upgrades LI2_DATABASE_URL.

The compose file runs this once before the API and workers start. `li2lab serve` and
`li2lab users create` call `prepare_database`, which does the same on their engine (and adopts a
database made by `init_db`'s create_all by stamping it, so either path leads to one schema).
"""
from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None, connection=None) -> Config:
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


def prepared_engine(config: dict):
    """The engine on config's DATABASE_URL, after the secrets check, with the schema at head.

    The one start-up path of every command that opens the database (serve, users, migrate).
    Raises ConfigError when a secret is still a placeholder.
    """
    from li2_service.config import check_secrets
    from li2_service.db import make_engine

    check_secrets(config)
    engine = make_engine(config["DATABASE_URL"])
    prepare_database(engine)
    return engine


def main(argv: list[str] | None = None) -> int:
    """`python -m li2_service.migrate`: upgrade LI2_DATABASE_URL to head."""
    from li2_service.config import ConfigError, load_config

    try:
        engine = prepared_engine(load_config())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"database at {engine.url.render_as_string(hide_password=True)} is at the newest revision")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
