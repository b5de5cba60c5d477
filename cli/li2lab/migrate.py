"""`li2lab migrate`: bring LI2_DATABASE_URL's schema to the newest Alembic revision.

The compose file runs it once before the API and the workers start. It is safe to run again: a
database already at the newest revision is left as it is.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Upgrade the database (a ConfigError reaches li2lab.main, which exits 2 with the reason)."""
    from li2_store.config import load_config
    from li2_store.migrate import prepared_engine

    if argv:
        print(f"li2lab migrate takes no arguments, got {' '.join(argv)}", file=sys.stderr)
        return 2
    engine = prepared_engine(load_config())
    print(f"database at {engine.url.render_as_string(hide_password=True)} is at the newest revision")
    return 0
