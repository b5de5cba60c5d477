"""The api image holds only the base dependencies (no `worker` extra): can it do its job?

The Dockerfile's api target installs `.` without the `worker` extra, so torch, scipy, matplotlib,
safetensors and tqdm are absent there. This runs what the api container runs — the migration,
`li2lab users create`, and requests through the WSGI app (submit, predictions, status, readiness) —
in a Python that refuses to import those packages, against real PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import contextlib, importlib.abc, io, sys

BLOCKED = set(sys.argv[1].split(","))

class NotInApiImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (the api image has no worker extra)")
        return None

sys.meta_path.insert(0, NotInApiImage())

from li2lab.migrate import main as migrate
assert migrate([]) == 0, "migration failed"

from li2lab.main import main as li2lab          # `docker compose exec api li2lab users create alice`
out = io.StringIO()
with contextlib.redirect_stdout(out):
    assert li2lab(["users", "create", "alice"]) in (0, None)
token = out.getvalue().strip()
assert token, "no token printed"

from li2_service.wsgi import app            # what gunicorn serves
client = app.test_client()
auth = {"Authorization": f"Bearer {token}"}
spec = {"task": {"group": "cyclic", "order": 23}, "data": {"train_fraction": 0.4},
        "model": {"hidden": 64}, "training": {"optimizer": "adam", "epochs": 50}, "seed": 1}
answer = client.post("/api/v1/experiments", json=spec, headers=auth)
assert answer.status_code == 202, (answer.status_code, answer.get_data(as_text=True))
run = answer.get_json()["id"]
for path in (f"/api/v1/experiments/{run}", f"/api/v1/experiments/{run}/predictions", "/readyz"):
    got = client.get(path, headers=auth)
    assert got.status_code == 200, (path, got.status_code, got.get_data(as_text=True))
search = client.post("/api/v1/searches", json={"base": {"model": {"hidden": 16}, "training": {"epochs": 20}},
                     "orders": [11, 13], "seeds": 1, "max_runs": 40}, headers=auth)
assert search.status_code == 202, (search.status_code, search.get_data(as_text=True))
from li2.scaling import fit_scaling_law     # the API fits laws (partial fits, fan-in on reads): numpy only
law = fit_scaling_law([{"spec": {"task": {"group": "cyclic", "order": m, "operands": 2},
                                 "data": {"train_size": n}, "seed": k},
                        "summary": {"grokked": n > 3 * m * __import__("math").log(m)}}
                       for m in (11, 17, 23) for n in range(20, 400, 20) for k in (1, 2)])
assert law["status"] == "fitted", law["status"]
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked
print("api image OK")
"""


def worker_only_packages() -> list[str]:
    """Import names of the `worker` extra, read from pyproject.toml (what the api image lacks)."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["worker"]
    return [re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].strip().replace("-", "_") for req in extra]


def test_the_worker_extra_is_what_the_api_image_leaves_out():
    assert "torch" in worker_only_packages()


def test_the_api_works_without_the_worker_extra(postgres_url, redis_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LI2_")}
    env.update(LI2_DATABASE_URL=postgres_url, LI2_BROKER_URL=redis_url)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(worker_only_packages())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and "api image OK" in done.stdout, done.stdout + done.stderr
