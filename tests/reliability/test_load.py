"""bench/load_test.py, briefly: concurrent clients on a real stack get only correct answers.

The full run (50 clients, 30 s) writes BENCHMARKS.md; here 8 clients for 6 s prove the harness
works end to end: the script exits 0 only when every answer was checked and found right.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_load_test_runs_briefly_with_no_wrong_answers(tmp_path, postgres_url):
    # postgres_url: only to skip/fail like the other PostgreSQL tests when the server is absent
    out = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load_test.py"),
            "--clients",
            "8",
            "--duration",
            "6",
            "--q2s-samples",
            "2",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0, figures["error_samples"]
    for kind in ("submit", "submit (cached)", "status", "list"):
        stats = figures["latency_ms"][kind]
        assert stats["n"] > 0 and 0 < stats["p50"] <= stats["p99"] <= stats["max"], (kind, stats)
    q2s = figures["queue_to_start_s"]
    assert len(q2s["samples"]) == 2 and all(s >= 0 for s in q2s["samples"])


def test_write_section_replaces_only_its_own_markers(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("load_test", ROOT / "bench" / "load_test.py")
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    doc = tmp_path / "BENCHMARKS.md"
    other = (
        "# Benchmarks\n\n## Trainer throughput\n<!-- bench_trainer cpu -->\n| a | b |\n<!-- end bench_trainer cpu -->\n"
    )
    doc.write_text(other)
    load_test.write_section(doc, f"{load_test.START}\nfirst\n{load_test.END}")
    load_test.write_section(doc, f"{load_test.START}\nsecond\n{load_test.END}")
    text = doc.read_text()
    assert text.startswith(other) and "second" in text and "first" not in text
    assert text.count(load_test.START) == 1 and text.count(load_test.END) == 1
