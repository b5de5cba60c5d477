"""The Slurm example's worker under Slurm's signal sequence, without Slurm.

deploy/slurm/li2-worker.sbatch ends by exec-ing `li2lab worker`; this test runs that very line
(read from the script) the way a batch step runs it, lets it start a long run, then does what Slurm
does at the time limit or on pre-emption: SIGTERM to the script's process, and SIGKILL to whatever
is left of the job after the grace. The run must be back in the queue with a checkpoint taken at
the signal (checkpoints are otherwise only every 10,000 epochs), and resume elsewhere from it.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import pytest
from stack import ROOT, Proc, small_spec, wait_until
from test_worker_faults import EPOCHS, assert_finished_once_from_checkpoint

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "deploy" / "slurm" / "li2-worker.sbatch"
GRACE_S = 45  # the partition's GraceTime / KillWait in this test (the script asks 120 s before the limit)


def worker_command() -> str:
    """The script's `exec li2lab worker ...` line."""
    (line,) = [ln for ln in SCRIPT.read_text().splitlines() if re.match(r"^exec li2lab worker ", ln)]
    return line


def test_the_script_asks_slurm_for_a_signal_before_the_limit_and_a_gpu():
    text = SCRIPT.read_text()
    assert re.search(r"^#SBATCH --signal=B:TERM@(\d+)$", text, re.M)
    assert "#SBATCH --gres=gpu:1" in text and "#SBATCH --requeue" in text
    grace = int(re.search(r"--signal=B:TERM@(\d+)", text)[1])
    soft = int(re.search(r"LI2_SOFT_SHUTDOWN_S:-(\d+)", text)[1])
    assert soft < grace  # the worker's own shutdown wait fits inside Slurm's warning


@pytest.mark.timeout(420)
def test_sigterm_then_sigkill_after_the_grace_resumes_the_run_elsewhere(stack, tmp_path):
    api = stack.api(stack.create_user("alice"))
    env = {
        **stack.env,
        "LI2_CHECKPOINT_EVERY": "10000",
        "LI2_WORKER_DEVICE": "cpu",
        "SLURM_JOB_ID": "4242",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    job = Proc("worker-slurm", ["bash", "-c", worker_command()], env, stack.logs)
    stack.workers["slurm"] = job
    r = api.post("/experiments", json=small_spec(EPOCHS, seed=5))
    assert r.status_code == 202, r.text
    exp_id = r.json()["id"]
    wait_until(lambda: stack.experiment(exp_id)["progress_epoch"] >= 300, 180, "the run to train past epoch 300")
    assert stack.experiment(exp_id)["claimed_by"].startswith("slurm-4242-0@")
    seen = stack.experiment(exp_id)["progress_epoch"]

    stack.note(f"Slurm: SIGTERM to the batch script's process at epoch >= {seen}")
    job.send(signal.SIGTERM)
    exited_in_grace = job.wait(GRACE_S) is not None
    stack.note(f"Slurm: grace over (worker {'gone' if exited_in_grace else 'still there'}), SIGKILL to the job")
    job.kill_group(signal.SIGKILL)  # whatever is left of the job, as Slurm does
    job.wait(10)
    ckpt_epoch = stack.resume_checkpoint_epoch(exp_id)
    assert ckpt_epoch is not None and seen <= ckpt_epoch < EPOCHS, (ckpt_epoch, seen, stack.tail_logs())
    row = stack.experiment(exp_id)
    assert (row["status"], row["attempt"], row["claimed_by"]) == ("queued", 2, None), row

    stack.start_worker("elsewhere", LI2_CHECKPOINT_EVERY=10_000)
    assert_finished_once_from_checkpoint(stack, api, exp_id, "slurm", ckpt_epoch, tmp_path, small_spec(EPOCHS, seed=5))
    stack.assert_settled()
