"""`li2lab`: the command that runs Li2 Lab, locally or as a service.

    li2lab run SPEC --out DIR [--device auto|cpu|cuda] [--plots]        train one experiment here
    li2lab sweep SWEEP --out DIR [--device ...] [--plots] [--batch-size N]
    li2lab search SEARCH --out DIR [--device ...] [--plots]            the adaptive search for n*(M)
    li2lab landscape SPEC --out DIR [--starts N] [--device ...]
    li2lab serve [--host H] [--port P]        the HTTP API (li2lab.serve)
    li2lab worker [--device ...]              a Celery worker (li2_worker.main)
    li2lab users create|list|... NAME         accounts and tokens (li2lab.users)
    li2lab migrate                            bring the database to the newest schema (li2lab.migrate)

This package sits above every other one: it may import the core, the store, the API and the
worker, and none of them imports it. SPEC and SWEEP are JSON or YAML files. An invalid spec exits
with status 2 and one line per bad field (naming what is allowed) on stderr, before anything is
written.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from li2.errors import SpecError
from li2lab.local import BadInput, cmd_landscape, cmd_run, cmd_search, cmd_sweep

EXIT_BAD_INPUT = 2

DELEGATES = {  # subcommands whose options and help belong to another package
    "serve": ("li2lab.serve", "the HTTP API (see li2lab serve --help)"),
    "worker": ("li2_worker.main", "a Celery worker (see li2lab worker --help)"),
    "users": ("li2lab.users", "manage accounts: users create|list|revoke|rotate NAME"),
    "migrate": ("li2lab.migrate", "bring LI2_DATABASE_URL's schema to the newest revision"),
    "share": ("li2lab.share", "fair-share dispatch: share NAME [--weight W] [--high N]"),
}


def run_delegate(name: str, rest: list[str]) -> int:
    """Pass the argv after `name` to its owner's main (imported only when used).

    A configuration that cannot be used (a placeholder secret, a malformed LI2_* number) ends the
    command with status 2 and the reason, whichever subcommand found it.
    """
    from li2_store.config import ConfigError

    try:
        return int(importlib.import_module(DELEGATES[name][0]).main(list(rest)) or 0)
    except ConfigError as exc:
        print(f"li2lab {name}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _batch_size(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="most runs trained together (default 256); within it, sub-batches of the size this machine "
        "trains fastest (LI2_SUBBATCH, docs/workers.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="li2lab", description="Li2 Lab: grokking experiments, locally or as a service."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devices = ("auto", "cpu", "cuda")

    p = sub.add_parser("run", help="train one experiment; writes DIR/result.json and DIR/checkpoints/")
    p.add_argument("spec", help="experiment spec, JSON or YAML")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default="auto", choices=devices)
    p.add_argument("--plots", action="store_true", help="also write PNG figures (li2.plots)")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("sweep", help="train a grid of experiments in batches; writes DIR/sweep.json and DIR/runs/")
    p.add_argument("sweep", help='sweep file {"base": SPEC, "grid": {"dotted.path": [values]}}, JSON or YAML')
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default="auto", choices=devices)
    p.add_argument("--plots", action="store_true", help="also write PNG figures (li2.plots)")
    _batch_size(p)
    p.add_argument(
        "--batch-memory-mb",
        type=int,
        default=8192,
        help="device memory one batch may take, by li2.batching's estimate (default 8192)",
    )
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser(
        "search", help="find n*(M) by adaptive rounds of runs; writes DIR/search.json and DIR/runs/ (resumable)"
    )
    p.add_argument(
        "search", help='search file {"base": SPEC, "orders": [M, ...], "seeds", "tolerance", "max_runs", ...}'
    )
    p.add_argument("--out", required=True, help="output directory (run it again to resume)")
    p.add_argument("--device", default="auto", choices=devices)
    p.add_argument("--plots", action="store_true", help="also write the scaling-law figure (li2.plots)")
    _batch_size(p)
    p.add_argument("--batch-memory-mb", type=int, default=8192, help="device memory one batch may take (8192)")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("landscape", help="local maxima of one hidden node's energy; writes DIR/landscape.json")
    p.add_argument("spec", help="experiment spec, JSON or YAML")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--starts", type=int, default=64, help="random starting points (default 64)")
    p.add_argument("--device", default="auto", choices=devices)
    p.set_defaults(handler=cmd_landscape)

    for name, (_, help_text) in DELEGATES.items():  # listed for --help; main() routes them first
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATES:
        return run_delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SpecError as exc:
        print("li2lab: invalid input:", file=sys.stderr)
        for field, messages in sorted(exc.errors.items()):
            for message in messages:
                print(f"  {field}: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BadInput as exc:
        print(f"li2lab: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
