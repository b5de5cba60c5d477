"""Workers die or are stopped mid-run; the run still finishes exactly once, from its checkpoint.

Two workers serve one private Redis and a fresh PostgreSQL database. The one holding the run is
either killed with SIGKILL (its whole process group: an OOM kill or a crashed host) or sent SIGTERM
(a container stop). The other must finish the run from the newest checkpoint: exactly one result,
the attempt counter at 2, and curves identical to an uninterrupted run of the same spec.
"""

from __future__ import annotations

import signal

import pytest
from safetensors.torch import load as load_safetensors
from stack import curves_mismatch, run_locally, small_spec, wait_until

from li2_store import models

pytestmark = pytest.mark.slow

EPOCHS = 8000  # 10-40 s of training on one CPU thread (quiet or loaded): long enough to be caught mid-run


def submit_and_wait_for_checkpoint(stack, api, spec: dict, min_epoch: int) -> str:
    r = api.post("/experiments", json=spec)
    assert r.status_code == 202, r.text
    exp_id = r.json()["id"]
    wait_until(
        lambda: (stack.resume_checkpoint_epoch(exp_id) or 0) >= min_epoch,
        120,
        f"a resume checkpoint at epoch >= {min_epoch}",
    )
    assert stack.status(exp_id) == "running"
    return exp_id


def assert_finished_once_from_checkpoint(
    stack, api, exp_id: str, victim: str, ckpt_epoch: int, tmp_path, spec: dict
) -> dict:
    row = stack.wait_status(exp_id, ("succeeded", "failed", "cancelled"), 180)
    stack.note(f"run {exp_id} {row['status']}, attempt {row['attempt']}, started {row['started_at']}")
    assert row["status"] == "succeeded", row
    assert row["attempt"] == 2, row
    assert stack.count(models.Result, experiment_id=exp_id) == 1
    heir = stack.worker_holding(exp_id)
    assert heir != victim
    assert f"run {exp_id} attempt 2: resuming from epoch {ckpt_epoch}" in stack.workers[heir].log(), (
        "the second attempt did not resume from the newest checkpoint"
    )
    body = api.get(f"/experiments/{exp_id}").json()
    assert body["status"] == "succeeded" and body["attempt"] == 2 and body["progress"]["epoch"] == EPOCHS

    got = api.get(f"/experiments/{exp_id}/metrics").json()["columns"]
    want = run_locally(api.get(f"/experiments/{exp_id}").json()["spec"], tmp_path)["metrics"]
    assert not curves_mismatch(got, want, upto_epoch=ckpt_epoch), "curves differ before the checkpoint"
    assert not curves_mismatch(got, want), "the resumed run diverged from the uninterrupted one"
    return body


@pytest.mark.timeout(400)
def test_kill_9_mid_run_resumes_from_last_checkpoint(stack, tmp_path):
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a")
    stack.start_worker("b")
    spec = small_spec(EPOCHS, seed=3)
    exp_id = submit_and_wait_for_checkpoint(stack, api, spec, min_epoch=300)
    victim = stack.worker_holding(exp_id)

    stack.note(f"SIGKILL to worker {victim}'s process group")
    stack.workers[victim].kill_group(signal.SIGKILL)
    assert stack.workers[victim].wait(10) is not None
    ckpt_epoch = stack.resume_checkpoint_epoch(exp_id)  # final: its writer is dead
    assert 300 <= ckpt_epoch < EPOCHS
    assert stack.status(exp_id) == "running"  # nobody knows yet; the lease will tell

    assert_finished_once_from_checkpoint(stack, api, exp_id, victim, ckpt_epoch, tmp_path, spec)

    # The served checkpoints are safetensors files (no pickle) that load with safetensors alone.
    listed = api.get(f"/experiments/{exp_id}/checkpoints").json()
    assert {c["epoch"] for c in listed if c["kind"] == "snapshot"} >= {0, EPOCHS}
    for item in listed:
        blob = api.get(f"/experiments/{exp_id}/checkpoints/{item['epoch']}")
        assert blob.headers["Content-Type"] == "application/octet-stream"
        tensors = load_safetensors(blob.content)
        assert tensors and all(t.numel() > 0 for t in tensors.values())
        assert not blob.content.startswith(b"\x80"), "pickle protocol header"
    stack.assert_settled()


@pytest.mark.timeout(400)
def test_sigterm_checkpoints_and_the_run_resumes_elsewhere(stack, tmp_path):
    # No periodic checkpoints here (interval 10000 s): a checkpoint past epoch 0 can only be the one
    # the worker writes because it was told to stop.
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a", LI2_CHECKPOINT_INTERVAL_S=10_000)
    spec = small_spec(EPOCHS, seed=4)
    r = api.post("/experiments", json=spec)
    exp_id = r.json()["id"]
    wait_until(lambda: stack.experiment(exp_id)["progress_epoch"] >= 300, 120, "progress past epoch 300")
    victim = stack.worker_holding(exp_id)
    seen = stack.experiment(exp_id)["progress_epoch"]

    stack.note(f"SIGTERM to worker {victim}'s main process at epoch >= {seen}")
    stack.workers[victim].send(signal.SIGTERM)  # to the main process only, as `docker stop` does
    assert stack.workers[victim].wait(60) is not None, "the worker did not exit after SIGTERM"
    # No other worker exists yet, so nothing can resume the run and replace this checkpoint before
    # it is read (with a second worker already running, the resumed run could finish first and
    # leave its final epoch here).
    ckpt_epoch = stack.resume_checkpoint_epoch(exp_id)
    assert ckpt_epoch is not None and seen <= ckpt_epoch < EPOCHS, (
        f"after SIGTERM at epoch >= {seen} the newest checkpoint is at {ckpt_epoch}\n{stack.tail_logs()}"
    )
    row = stack.experiment(exp_id)
    assert (row["status"], row["attempt"], row["claimed_by"]) == ("queued", 2, None), row  # requeued by the victim
    stack.start_worker("b", LI2_CHECKPOINT_INTERVAL_S=10_000)  # takes the message the victim sent

    body = assert_finished_once_from_checkpoint(stack, api, exp_id, victim, ckpt_epoch, tmp_path, spec)
    assert body["max_attempts"] >= 3  # a graceful stop does not use up a retry
    stack.assert_settled()
