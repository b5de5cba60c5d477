"""The host's compile cache (LI2_CACHE_DIR): its folders, and that it survives a worker restart."""

from __future__ import annotations

import os
import re

import pytest

from li2_store.config import ConfigError
from li2_store.producer import send_batch
from li2_worker import compile_cache
from li2_worker.settings import DEFAULT_CACHE_DIR, load_settings

from .helpers import add_run, add_user, new_engine, row, tiny_spec, wait_until
from .procs import Worker, worker_env


def test_configure_points_the_caches_at_private_folders_and_keeps_an_operators_choice(tmp_path):
    env = {"TRITON_CACHE_DIR": "/elsewhere/triton"}
    chosen = compile_cache.configure(str(tmp_path / "cache"), env)
    inductor = tmp_path / "cache" / "inductor"
    assert chosen == {"TORCHINDUCTOR_CACHE_DIR": str(inductor), "TRITON_CACHE_DIR": "/elsewhere/triton"}
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str(inductor) and env["TRITON_CACHE_DIR"] == "/elsewhere/triton"
    assert inductor.is_dir() and (inductor.stat().st_mode & 0o777) == 0o700
    assert load_settings({}).cache_dir == DEFAULT_CACHE_DIR
    assert load_settings({"LI2_CACHE_DIR": str(tmp_path)}).cache_dir == str(tmp_path)


def test_configure_refuses_a_link_or_a_file(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(ConfigError, match="LI2_CACHE_DIR"):
        compile_cache.configure(str(tmp_path / "link"), {})
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot create"):
        compile_cache.configure(str(tmp_path / "file"), {})


CACHE_LINE = re.compile(r"compile cache (\d+) hits, (\d+) misses")


@pytest.mark.slow
def test_the_compile_cache_survives_a_worker_restart(tmp_path, redis_url, postgres_url):
    """LI2_COMPILE=1 compiles on the CPU too. The first worker's batch compiles (cache misses) and
    fills LI2_CACHE_DIR; after that worker is gone, a new worker's batch of the same shape (another
    seed) is served from the folder: hits, no misses."""
    pytest.importorskip("torch")
    engine = new_engine(postgres_url)
    user = add_user(engine)
    cache = tmp_path / "cache"
    env = worker_env(postgres_url, redis_url, LI2_COMPILE="1", LI2_CACHE_DIR=str(cache))
    # torch sets TORCHINDUCTOR_CACHE_DIR in its own process's environment the first time anything
    # compiles, so after an in-process compile elsewhere in the suite the variable would reach the
    # worker as an operator's choice (which LI2_CACHE_DIR keeps). This test is about LI2_CACHE_DIR.
    for name in compile_cache.SUBDIRS:
        env.pop(name, None)

    def one_batch(name: str, seed: int) -> tuple[int, int]:
        run = add_run(engine, user, tiny_spec(epochs=3, seed=seed, diagnostics=False))
        send_batch([(run, 1)], redis_url)
        worker = Worker(name, env, tmp_path)
        try:
            wait_until(lambda: row(engine, run)["status"] == "succeeded", 900, f"run {run} to succeed")
            # the task's own line, logged as its child finishes (after the run's row says
            # succeeded); the main process's start-up line also names the "compile cache"
            wait_until(lambda: CACHE_LINE.search(worker.log()), 60, "the task's compile cache line")
            found = CACHE_LINE.search(worker.log())
            assert found, worker.log()[-3000:]
            return int(found.group(1)), int(found.group(2))
        finally:
            worker.close()

    hits, misses = one_batch("w1", seed=1)
    assert misses > 0 and hits == 0
    assert any((cache / "inductor").rglob("*")), "the first batch left nothing in the cache"
    hits, misses = one_batch("w2", seed=2)  # a new worker process: nothing in memory survived
    assert hits > 0 and misses == 0
