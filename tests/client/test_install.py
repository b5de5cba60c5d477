"""`pip install ./client` into a fresh virtual environment: the SDK works there, alone.

It must pull no torch, flask, celery or SQLAlchemy (and, without extras, no pandas): a researcher's
laptop or notebook gets only ``requests``. The installed SDK then talks to the real test service.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "client"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"  # same pinned requests as `make install` (cache hit)
HEAVY = ("torch", "flask", "celery", "sqlalchemy", "kombu", "numpy", "pandas", "li2", "li2_service")

CHECK = """
import importlib.util, json, sys
import li2_client
from li2_client import Client
present = [m for m in sys.argv[3:] if importlib.util.find_spec(m) is not None]
exp = Client(sys.argv[1], token=sys.argv[2]).get(EXP_ID)
metrics = exp.metrics()                      # no pandas here: a dict of lists
print(json.dumps({"present": present, "status": exp.status, "metrics_type": type(metrics).__name__,
                  "columns": sorted(metrics)[:3], "file": li2_client.__file__}))
"""


@pytest.mark.slow
def test_client_installs_alone_and_works(tmp_path, live_service, alice, finished_exp):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", str(CONSTRAINTS), str(CLIENT_DIR)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    script = CHECK.replace("EXP_ID", repr(finished_exp.id))
    out = subprocess.run(
        [str(py), "-c", script, live_service.url, alice, *HEAVY],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["present"] == [], f"the light install pulled in {report['present']}"
    assert report["status"] == "succeeded" and report["metrics_type"] == "dict"
    assert "epoch" in report["columns"]
    assert report["file"].startswith(str(venv))  # the installed copy, not the source tree
    cli = subprocess.run(
        [str(venv / "bin" / "li2"), "--url", live_service.url, f"--token={alice}", "--json", "status", finished_exp.id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["status"] == "succeeded"
