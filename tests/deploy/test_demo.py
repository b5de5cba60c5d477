"""`make demo` (scripts/demo.sh), run for real: embedded service, SDK example, timeline, plots.

The slow test is the README's first command end to end (minus the install, which `make test`
has already done): it must end by printing the stage timeline and the paths of plots that exist,
and must leave no server behind. Its database, broker and output go to a temporary folder.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    env.update(DEMO_PORT=str(port), DEMO_OUT=str(tmp_path / "out"), DEMO_DIR=str(tmp_path / "demo"))
    return env


def test_the_demo_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(DEMO)], check=True)


def test_the_demo_refuses_a_port_that_is_already_taken(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            ["bash", str(DEMO)], cwd=ROOT, env=demo_env(tmp_path, port), capture_output=True, text=True, timeout=60
        )
    assert done.returncode != 0
    assert f"port {port} is already in use" in done.stderr
    assert not (tmp_path / "demo" / "li2.sqlite").exists(), "nothing may start on a busy port"


@pytest.mark.slow
def test_make_demo_ends_with_the_stage_timeline_and_plot_paths(tmp_path):
    port = free_port()
    done = subprocess.run(
        ["bash", str(DEMO)], cwd=ROOT, env=demo_env(tmp_path, port), capture_output=True, text=True, timeout=1200
    )
    log = tmp_path / "demo" / "server.log"
    assert done.returncode == 0, (
        done.stdout[-3000:] + done.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    )
    out = done.stdout
    assert f"dashboard: http://127.0.0.1:{port}/ " in out, "the dashboard's address is printed"
    assert re.search(r"\blazy\b", out), "the stage timeline is printed"
    tail = out.strip().splitlines()[-10:]
    plots = [Path(p) for line in tail for p in re.findall(r"(\S+\.png)\b", line)]
    assert plots, f"the demo must end by printing plot paths; it ended with: {tail}"
    for plot in plots:
        path = plot if plot.is_absolute() else ROOT / plot
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{plot} is not a PNG"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # server stopped
