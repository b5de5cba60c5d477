"""`li2lab users create NAME [--admin]`: create an account and print its token, alone, on stdout.

The token is shown exactly once (only its sha256 is stored). There are no default accounts: the
first admin is created with this command on the server. Works on LI2_DATABASE_URL and creates the
tables first if the database is empty (same as `li2lab serve`).
"""

from __future__ import annotations

import argparse
import re
import sys

import sqlalchemy as sa

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `users` sub-command's arguments."""
    parser = parser or argparse.ArgumentParser(prog="li2lab users", description="manage API accounts")
    sub = parser.add_subparsers(dest="users_command", required=True)
    create = sub.add_parser("create", help="create a user and print its API token")
    create.add_argument("name", help="user name: letters, digits, _ . @ - (up to 100)")
    create.add_argument("--admin", action="store_true", help="may see every user's runs")
    return parser


def _parse(args) -> argparse.Namespace:
    if isinstance(args, argparse.Namespace):
        return args
    return build_parser().parse_args(list(args) if args is not None else None)


def main(args=None) -> int:
    """Entry point; `args` is an argv list (without 'users') or an already-parsed Namespace."""
    from li2_service.auth import create_user
    from li2_store import models
    from li2_store.config import load_config
    from li2_store.db import session_scope
    from li2_store.migrate import prepared_engine

    ns = _parse(args)
    if getattr(ns, "users_command", "create") != "create":
        print(f"unknown users command {ns.users_command!r}; use: create NAME [--admin]", file=sys.stderr)
        return 2
    name = ns.name
    if not NAME_RE.match(name):
        print(
            "error: NAME must be 1-100 characters: letters, digits, _ . @ - (starting with a letter or digit)",
            file=sys.stderr,
        )
        return 2
    engine = prepared_engine(load_config())
    with session_scope(engine) as session:
        if session.scalar(sa.select(models.User.id).where(models.User.name == name)) is not None:
            print(f"error: a user named {name!r} already exists", file=sys.stderr)
            return 1
        token = create_user(session, name, admin=bool(ns.admin))
    print(token)
    return 0
