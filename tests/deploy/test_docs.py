"""The README and docs/deployment.md say only what is true of the code next to them.

- The configuration table lists every LI2_* variable the code reads (service, worker, SDK, spec
  bounds) and no other, with the defaults the code really uses.
- The quickstart is exactly two commands.
- Every file they link to or name (compose files, scripts, examples) exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CODE_DIRS = ("core", "store", "service", "worker", "cli", "client")


def variables_in_code() -> set[str]:
    """LI2_* names in the Python sources, plus the spec bounds li2.spec builds as LI2_MAX_<NAME>."""
    from li2.spec import limits

    found = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"LI2_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_])", path.read_text()))
    return found | {f"LI2_MAX_{name.upper()}" for name in limits()}


def config_table() -> dict[str, list[str]]:
    """{variable: [default, used by, meaning]} from the README's configuration table."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(LI2_[A-Z0-9_]+)`", cells[0]) if len(cells) == 4 else None
        if m:
            rows[m.group(1)] = cells[1:]
    return rows


def test_the_configuration_table_lists_every_variable_the_code_reads():
    missing = variables_in_code() - set(config_table())
    assert not missing, f"add to the README configuration table: {sorted(missing)}"


def test_the_configuration_table_lists_nothing_the_code_does_not_read():
    invented = set(config_table()) - variables_in_code()
    assert not invented, f"the README documents variables no code reads: {sorted(invented)}"


def _number(cell: str) -> float | None:
    m = re.fullmatch(r"`?(\d+(?:\.\d+)?)`?", cell)
    return float(m.group(1)) if m else None


def test_documented_defaults_are_the_defaults_in_the_code():
    from li2.spec import limits
    from li2_service.config import load_config
    from li2_worker.settings import load_settings

    service = load_config({})
    worker = vars(load_settings({}))
    spec = limits()
    checked = 0
    for var, (default, _, _) in config_table().items():
        want = _number(default)
        if want is None:
            continue
        key = var.removeprefix("LI2_")
        actual = [
            service.get(key),
            worker.get(key.lower()),
            spec.get(key.removeprefix("MAX_").lower()) if key.startswith("MAX_") else None,
        ]
        actual = [a for a in actual if a is not None]
        if actual:
            checked += 1
            assert all(float(a) == want for a in actual), f"{var}: README says {default}, code uses {actual}"
    assert checked >= 15


def test_database_and_broker_defaults_match_the_code():
    from li2_store.config import DEFAULT_DATABASE_URL

    assert config_table()["LI2_DATABASE_URL"][0] == f"`{DEFAULT_DATABASE_URL}`"
    assert "embedded" in config_table()["LI2_BROKER_URL"][0]


def test_the_quickstart_is_exactly_two_commands():
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    assert block.split("\n")[:-1] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "scripts/demo.sh" in makefile


@pytest.mark.parametrize("name", ["README.md", "docs/deployment.md"])
def test_linked_and_named_files_exist(name):
    text = (ROOT / name).read_text()
    base = (ROOT / name).parent
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    named = re.findall(r"(?<![\w/.-])((?:deploy|scripts|examples|docs)/[\w./-]+\.\w+|docker-compose[\w.]*\.yml)", text)
    for target in links:
        assert (base / target).exists(), f"{name} links to {target}, which does not exist"
    for target in named:
        assert (ROOT / target).exists(), f"{name} names {target}, which does not exist"


def test_env_example_only_suggests_real_variables():
    names = set(re.findall(r"^#? ?(LI2_[A-Z0-9_]+)=", (ROOT / "deploy" / "env.example").read_text(), re.M))
    assert names and names <= variables_in_code()
