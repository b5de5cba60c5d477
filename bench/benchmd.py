"""Shared by the bench scripts that write BENCHMARKS.md sections: the command line and the section."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path


def command_line(script: str, argv: list[str] | None) -> str:
    """`python bench/<script> <args>` as the user typed it (argv None: sys.argv)."""
    args = argv if argv is not None else sys.argv[1:]
    return " ".join(["python", f"bench/{script}", *(shlex.quote(a) for a in args)])


def write_section(path: Path, section: str, text: str) -> None:
    """Replace the `section` heading's block in the markdown file `path` with `text`, or append it."""
    body = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(body):
        body = pattern.sub(lambda _m: text + "\n", body)
    else:
        body = body.rstrip("\n") + "\n\n" + text
    path.write_text(body)


def publish(section: str, text: str, path: Path | None) -> None:
    """Print a rendered section and, when `path` is given (--write), put it into that file."""
    print(text)
    if path is not None:
        write_section(path, section, text)
