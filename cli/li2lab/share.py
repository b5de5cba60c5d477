"""`li2lab share NAME [--weight W] [--high N]`: an admin sets a user's fair-share standing.

`--weight` (> 0, default 1 for everyone): the user's share of dispatch turns; a weight-2 user gets
two batches released per round of the others' one (li2_store.dispatch). `--high`: how many
`priority: high` runs the user may have waiting (default LI2_HIGH_ALLOWANCE). Without options it
prints the current values. Works on LI2_DATABASE_URL, like `li2lab users`.
"""

from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = 0.0
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"--weight must be a number > 0, got {value!r}")
    return x


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"--high must be an integer >= 0, got {value!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="li2lab share", description=__doc__)
    p.add_argument("name", help="the user")
    p.add_argument("--weight", type=_positive_float, help="share of dispatch turns (default 1)")
    p.add_argument("--high", type=_count, help="waiting high-priority runs allowed")
    return p


def main(args: list[str] | None = None) -> int:
    from li2_store import dispatch, models
    from li2_store.config import load_config
    from li2_store.db import session_scope
    from li2_store.migrate import prepared_engine

    ns = build_parser().parse_args(args)
    engine = prepared_engine(load_config())
    with session_scope(engine) as s:
        uid = s.scalar(sa.select(models.User.id).where(models.User.name == ns.name))
        if uid is None:
            print(f"error: no user named {ns.name!r}", file=sys.stderr)
            return 1
        share = dispatch.set_share(s, uid, weight=ns.weight, high_allowance=ns.high)
        high = "LI2_HIGH_ALLOWANCE" if share.high_allowance is None else share.high_allowance
        print(f"{ns.name}: weight {share.weight:g}, high allowance {high}")
    return 0
