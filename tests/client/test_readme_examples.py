"""The READMEs' examples do what they say, as written, against the real embedded service.

For README.md and client/README.md: every ``python`` block runs, in order, in one namespace (as a
reader pastes them into one session; the later blocks use the ``client`` and ``spec`` of earlier
ones), and every shell block that submits a run runs with bash. The only thing supplied is the
service's address and a token, through the variables the SDK and the blocks already read
(LI2_URL, LI2_TOKEN); nothing in a block is edited. A block "submits a run" when it calls
``client.submit``/``submit_sweep``, POSTs to ``/api/v1/experiments`` or runs ``li2 submit``.
(`make demo`, `docker compose` and `li2lab run` blocks are not run: they are not calls to a
running service; the demo is tested in tests/deploy/test_demo.py.)

The claims checked are the ones the README makes: every run a block submitted succeeded; each run
whose size the theory puts above the critical c·M ln M (``above_critical`` of its predictions)
reaches test accuracy ≥ 0.99; each below it does not grok. A shell block must exit 0 (it ends with
``li2 wait``, which exits 0 only for a succeeded run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBMITS = re.compile(r"client\.submit\(|\.submit_sweep\(|-X POST \S*/api/v1/experiments|\bli2 submit\b")
SHELLS = ("sh", "bash")
# The READMEs and how many blocks of each kind submit a run (so a block cannot silently drop out).
READMES = {"README.md": {"python": 2, "sh": 1}, "client/README.md": {"python": 2}}

pytestmark = pytest.mark.slow


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block as (language, code); an untagged block counts as shell."""
    return [(lang or "sh", code) for lang, code in re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M)]


def blocks_to_run(readme: str) -> list[tuple[str, str, bool]]:
    """(language, code, submits a run) of every python block and every shell block that submits."""
    out = []
    for lang, code in fenced_blocks((ROOT / readme).read_text()):
        submits = bool(SUBMITS.search(code))
        if lang == "python" or (lang in SHELLS and submits):
            out.append(("sh" if lang in SHELLS else lang, code, submits))
    return out


@pytest.mark.parametrize("readme", READMES)
def test_the_readmes_have_the_examples_this_test_expects(readme):
    langs = [lang for lang, _, submits in blocks_to_run(readme) if submits]
    assert {lang: langs.count(lang) for lang in set(langs)} == READMES[readme]


def check_runs(client, run_ids: set[str], block: str) -> int:
    """The README's claims about the runs a block submitted; returns how many were above critical."""
    assert run_ids, f"this block submitted no run:\n{block}"
    above = 0
    for run_id in sorted(run_ids):
        exp = client.get(run_id)
        assert exp.status == "succeeded", f"{run_id} {exp.status}: {exp.error}\n{block}"
        acc = exp.summary["test_acc"]
        if exp.predictions().above_critical:
            above += 1
            assert acc >= 0.99 and exp.summary["grokked"], f"{run_id} ended at test accuracy {acc}\n{block}"
        else:
            assert not exp.summary["grokked"], f"{run_id} below the critical size grokked\n{block}"
    return above


@pytest.mark.parametrize("readme", READMES)
def test_every_readme_block_that_submits_a_run_does_what_it_claims(readme, live_service, tmp_path, monkeypatch):
    from li2_client import Client

    token = live_service.create_user(f"reader-{readme.replace('/', '-').replace('.', '-').lower()}")
    monkeypatch.setenv("LI2_URL", live_service.url)
    monkeypatch.setenv("LI2_TOKEN", token)
    monkeypatch.delenv("LI2_PROFILE", raising=False)
    monkeypatch.delenv("LI2_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no config file of whoever runs the tests
    monkeypatch.chdir(tmp_path)
    client = Client(live_service.url, token, timeout=60)
    namespace: dict = {"__name__": "readme"}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"}
    for i, (lang, code, submits) in enumerate(blocks_to_run(readme)):
        before = {e.id for e in client.list()}
        if lang == "python":
            exec(compile(code, f"{readme} python block {i}", "exec"), namespace)  # this repository's own README
        else:
            done = subprocess.run(["bash", "-e", "-c", code], env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
            assert '"stages"' in done.stdout  # it printed the timeline it fetched
        new = {e.id for e in client.list()} - before
        if submits:
            assert check_runs(client, new, code) >= 1
        if re.search(r"cannot fit c|leave c unresolved", code):  # a sweep block's claim about its law
            assert not namespace["law"].fitted and namespace["law"].status != "fitted"
    plots = "plots" if readme == "README.md" else "out"
    assert any((tmp_path / plots).glob("*.png"))
