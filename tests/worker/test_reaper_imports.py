"""The reaper thread imports nothing once the worker has started it (li2_worker.main).

A thread that is importing a module while Celery forks a pool child leaves that module's import
lock held in the child, which then hangs on its first import of it (a child stuck in `import
torch` -> numpy was seen). So the worker's main thread imports what the reaper's passes need
first; this checks, in a fresh interpreter, that a first reaper pass then imports no module.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import json, sys
from li2_store.db import init_db, make_engine
from li2_worker import main
from li2_worker.reaper import reap_once
from li2_worker.settings import load_settings

settings = load_settings()
engine = make_engine(settings.database_url)
init_db(engine)
main._preload_reaper_imports()
before = set(sys.modules)
reap_once(engine, settings)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_reaper_pass_imports_nothing_after_the_preload(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LI2_DATABASE_URL": f"sqlite:///{tmp_path}/li2.sqlite"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
