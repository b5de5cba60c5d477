"""A client generated from the live OpenAPI document works without hand edits.

openapi-python-client generates a package from /api/v1/openapi.json of the real embedded service;
generated_client_flow.py then drives the user flow with it in a separate Python process that has
only that package added (its dependencies, httpx and attrs, are the project's dev tools): submit,
wait, metrics, timeline, features, predictions, a sweep and its scaling law.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.mark.slow
def test_a_generated_client_completes_the_user_flow(live_service, alice, tmp_path):
    doc = requests.get(f"{live_service.url}/api/v1/openapi.json", timeout=30)
    assert doc.status_code == 200
    (tmp_path / "openapi.json").write_text(doc.text)
    # No formatter needed to generate; archives (gzip, zip) are bytes like any binary download.
    (tmp_path / "config.yaml").write_text(
        "post_hooks: []\ncontent_type_overrides:\n"
        "  application/gzip: application/octet-stream\n  application/zip: application/octet-stream\n"
    )
    generated = subprocess.run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--meta", "none", "--config", "config.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = generated.stdout + generated.stderr
    assert generated.returncode == 0 and "Warning" not in out and "Error" not in out, out
    assert (tmp_path / "li_2_lab_client" / "api" / "experiments" / "experiments_submit.py").exists()

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    flow = subprocess.run(
        [sys.executable, str(HERE / "generated_client_flow.py"), live_service.url, alice],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert flow.returncode == 0, flow.stdout[-3000:] + flow.stderr[-5000:]
    seen = json.loads(flow.stdout.strip().splitlines()[-1])
    assert seen["final_test_acc"] >= 0.99 and seen["epochs_measured"] > 1, seen
    assert seen["stages"] and seen["critical_train_size"] > 0, seen
    assert sorted(seen["law_orders"]) == [11, 13], seen
