"""The local commands learn sub-batch sizes like a worker: keep their cache in the test's folder
and their throughput probes short."""

import pytest


@pytest.fixture(autouse=True)
def _subbatch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LI2_WORKER_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LI2_SUBBATCH_PROBE_S", "0.05")
