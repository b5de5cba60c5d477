"""The README's examples do what they say, as written, against the real embedded service.

Every fenced block of README.md that submits a run to the service is run: ``python`` blocks
in order in one namespace (as a reader pastes them into one session), shell blocks with bash. The
only thing supplied is the service's address and a token, through the variables the SDK and the
blocks already read (LI2_URL, LI2_TOKEN); nothing in a block is edited. A block "submits a run"
when it calls ``client.submit``/``submit_sweep``, POSTs to ``/api/v1/experiments`` or runs
``li2 submit``. (`make demo` and `li2lab run` blocks are not service calls: the demo is tested in
tests/deploy/test_demo.py.)

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

README = Path(__file__).resolve().parents[2] / "README.md"
SUBMITS = re.compile(r"client\.submit\(|\.submit_sweep\(|-X POST \S*/api/v1/experiments|\bli2 submit\b")

pytestmark = pytest.mark.slow


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block as (language, code); an untagged block counts as shell."""
    return [(lang or "sh", code) for lang, code in re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M)]


def run_blocks() -> list[tuple[str, str]]:
    return [(lang, code) for lang, code in fenced_blocks(README.read_text()) if SUBMITS.search(code)]


def test_the_readme_has_the_examples_this_test_expects():
    langs = [lang for lang, _ in run_blocks()]
    assert langs.count("python") == 2 and langs.count("sh") == 1, langs  # headline, sweep, curl


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


def test_every_readme_block_that_submits_a_run_does_what_it_claims(live_service, tmp_path, monkeypatch):
    from li2_client import Client

    token = live_service.create_user("readme-reader")
    monkeypatch.setenv("LI2_URL", live_service.url)
    monkeypatch.setenv("LI2_TOKEN", token)
    monkeypatch.delenv("LI2_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    client = Client(live_service.url, token, timeout=60)
    namespace: dict = {"__name__": "readme"}
    env = {
        **os.environ,
        "LI2_URL": live_service.url,
        "LI2_TOKEN": token,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
    }
    for i, (lang, code) in enumerate(run_blocks()):
        before = {e.id for e in client.list()}
        if lang == "python":
            exec(compile(code, f"README.md python block {i}", "exec"), namespace)  # this repository's own README
        else:
            done = subprocess.run(["bash", "-e", "-c", code], env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
            assert '"stages"' in done.stdout  # it printed the timeline it fetched
        new = {e.id for e in client.list()} - before
        assert check_runs(client, new, code) >= 1
        if "cannot fit c" in code:  # the sweep block's claim about its law
            assert not namespace["law"].fitted and namespace["law"].status != "fitted"
    assert (tmp_path / "plots").is_dir() and any((tmp_path / "plots").glob("*.png"))
