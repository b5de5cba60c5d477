"""What a batch's start-up no longer pays: the worker's preload (li2_worker.preload: torch and the
runner imported once in the main process, never CUDA, and a setting that turns it off) and the
embedded broker's poll period (li2_worker.celery_app.poll_embedded_broker).

Both ways of running a batch (preloaded parent, and a child that imports torch itself) train real
runs in tests/worker/test_worker_process.py, which also checks which process maps torch.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from li2_store.config import ConfigError
from li2_worker import preload as preload_module
from li2_worker.settings import load_settings

BASE = {"LI2_DATABASE_URL": "sqlite:///unused.sqlite"}


def test_preload_imports_the_training_stack_and_leaves_cuda_alone():
    code = (
        "import sys, gc\n"
        "from li2_worker.preload import preload\n"
        "assert 'torch' not in sys.modules\n"
        "preload()\n"
        "import torch\n"
        "print(torch.cuda.is_initialized(), 'li2.runner' in sys.modules, gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]  # no CUDA; runner loaded; objects frozen


def test_preload_refuses_to_go_on_when_cuda_was_initialised(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match="LI2_WORKER_PRELOAD=0"):
        preload_module.preload(("li2.checkpoint",))


def test_the_preload_setting_defaults_on_and_a_bad_value_is_named():
    assert load_settings(BASE).preload is True
    assert load_settings({**BASE, "LI2_WORKER_PRELOAD": "0"}).preload is False
    with pytest.raises(ConfigError, match="LI2_WORKER_PRELOAD"):
        load_settings({**BASE, "LI2_WORKER_PRELOAD": "yes"})


def test_the_embedded_broker_is_polled_every_tenth_of_a_second(tmp_path, monkeypatch):
    from kombu.transport import sqlalchemy as kombu_sqlalchemy

    from li2_worker.celery_app import EMBEDDED_POLL_S, make_celery

    monkeypatch.setattr(kombu_sqlalchemy.Transport, "polling_interval", 1.0)  # as a fresh process has it
    make_celery("redis://127.0.0.1:1/0")  # Redis pushes its messages: nothing to change
    assert kombu_sqlalchemy.Transport.polling_interval == 1.0  # kombu's default
    make_celery(f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}")
    assert kombu_sqlalchemy.Transport.polling_interval == EMBEDDED_POLL_S < 1.0
