"""`li2lab users create|list|revoke|rotate`: API accounts and their tokens, on LI2_DATABASE_URL.

    li2lab users create alice [--admin]   # prints alice's new token, alone, on stdout
    li2lab users list [--json]            # name, admin, created, revoked, experiments
    li2lab users revoke alice             # alice's token is refused from her next request on
    li2lab users rotate alice             # prints a new token; the old one is refused at once

A token is shown exactly once (only its sha256 is stored). There are no default accounts: the
first admin is created with this command on the server. The service looks a token up in the
database on every request and caches nothing, so `revoke` and `rotate` take effect on the very
next request, on every API process. Revoking keeps the account and its runs; `rotate` re-admits a
revoked account with a new token. Works on LI2_DATABASE_URL and brings its schema to the newest
revision first (same as `li2lab serve`). Exit codes: 0 done, 1 no such user / name taken, 2 bad
arguments or configuration.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

import sqlalchemy as sa

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
NAME_HELP = "user name: letters, digits, _ . @ - (up to 100)"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `users` sub-command's arguments."""
    parser = parser or argparse.ArgumentParser(
        prog="li2lab users",
        description="manage API accounts and their tokens",
        epilog=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="users_command", required=True)
    create = sub.add_parser(
        "create", help="create a user and print its API token", epilog="example: li2lab users create alice --admin"
    )
    create.add_argument("name", help=NAME_HELP)
    create.add_argument("--admin", action="store_true", help="may see every user's runs")
    listing = sub.add_parser("list", help="every account (never its token)", epilog="example: li2lab users list --json")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = sub.add_parser(
        "revoke", help="refuse the user's token from its next request on", epilog="example: li2lab users revoke alice"
    )
    revoke.add_argument("name", help=NAME_HELP)
    rotate = sub.add_parser(
        "rotate",
        help="print a new token for the user; the old one is refused at once (also re-admits a revoked user)",
        epilog="example: li2lab users rotate alice > alice.token",
    )
    rotate.add_argument("name", help=NAME_HELP)
    return parser


def _parse(args) -> argparse.Namespace:
    if isinstance(args, argparse.Namespace):
        return args
    return build_parser().parse_args(list(args) if args is not None else None)


def _stamp(value) -> str | None:
    return None if value is None else value.isoformat(sep=" ", timespec="seconds")


def main(args=None) -> int:
    """Entry point; `args` is an argv list (without 'users') or an already-parsed Namespace."""
    from li2_store import models, users
    from li2_store.config import load_config
    from li2_store.db import session_scope
    from li2_store.migrate import prepared_engine

    ns = _parse(args)
    command = ns.users_command
    name: str = getattr(ns, "name", "")  # every command but `list` names a user
    if command != "list" and not NAME_RE.match(name):
        print(
            "error: NAME must be 1-100 characters: letters, digits, _ . @ - (starting with a letter or digit)",
            file=sys.stderr,
        )
        return 2
    engine = prepared_engine(load_config())
    with session_scope(engine) as session:
        if command == "list":
            return _print_users(users.list_users(session), as_json=ns.json)
        if command == "create":
            if session.scalar(sa.select(models.User.id).where(models.User.name == name)) is not None:
                print(f"error: a user named {name!r} already exists", file=sys.stderr)
                return 1
            out: str | None = users.create_user(session, name, admin=bool(ns.admin))
        elif command == "revoke":
            done = users.revoke_user(session, name)
            out = f"revoked {name}: its token is refused from now on (`li2lab users rotate {name}` re-admits it)"
            out = out if done else None
        else:  # rotate
            out = users.rotate_token(session, name)
    if out is None:
        print(f"error: no user named {name!r}", file=sys.stderr)
        return 1
    print(out)  # after the commit: a printed token always works
    return 0


def _print_users(rows, as_json: bool) -> int:
    records = [
        {
            "name": u.name,
            "admin": u.is_admin,
            "created_at": _stamp(u.created_at),
            "revoked_at": _stamp(u.revoked_at),
            "experiments": u.experiments,
        }
        for u in rows
    ]
    if as_json:
        print(json.dumps(records, indent=2))
        return 0
    headers = ["name", "admin", "created", "revoked", "experiments"]
    text = [[str(v if v is not None else "—") for v in r.values()] for r in records]
    widths = [max([len(h)] + [len(row[i]) for row in text]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"{len(records)} user(s)")
    return 0
