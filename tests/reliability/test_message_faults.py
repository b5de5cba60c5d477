"""Messages the broker should never have delivered: duplicates, late copies, pickles.

- The same `li2.run_batch` message delivered twice at once (two idle workers each get a copy):
  one claims the run, the other claims nothing; one execution, one result, attempt 1.
- The same message again after the run succeeded: nothing changes.
- A message serialized with pickle whose unpickling would run a shell command: the worker refuses
  to decode it (JSON only), nothing is executed, and the worker goes on serving real runs.
"""

from __future__ import annotations

import os
import re

import pytest
from stack import small_spec, wait_until

from li2_store import models
from li2_store.producer import TASK_NAME, send_batch
from li2_worker.celery_app import make_celery

pytestmark = pytest.mark.slow


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def claims_in_logs(stack, exp_id: str) -> tuple[int, int]:
    """(executions, refused copies) of run exp_id's attempt-1 messages, from the workers' logs."""
    text = "".join(p.log() for p in stack.workers.values())
    won = len(re.findall(rf"claimed 1 of 1 runs \['{exp_id}#1'\]", text))
    lost = len(re.findall(r"claimed 0 of 1 runs", text))
    return won, lost


@pytest.mark.timeout(300)
def test_duplicate_and_late_messages_execute_once(stack):
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a")
    stack.start_worker("b")
    wait_until(lambda: all("ready." in p.log() for p in stack.workers.values()), 60, "both workers ready")
    exp_id = api.post("/experiments", json=small_spec(600, seed=5)).json()["id"]
    # fair-share dispatch: the dispatcher sends the run's message (released_at marks it) ...
    wait_until(lambda: stack.experiment(exp_id)["released_at"], 30, "the dispatcher to send the run")
    send_batch([(exp_id, 1)], stack.broker_url)  # ... and here is the same message again

    row = stack.wait_status(exp_id, ("succeeded", "failed", "cancelled"), 120)
    assert row["status"] == "succeeded" and row["attempt"] == 1, row
    wait_until(lambda: claims_in_logs(stack, exp_id) == (1, 1), 30, "one execution and one refused copy")
    assert stack.count(models.Result, experiment_id=exp_id) == 1
    result_before = api.get(f"/experiments/{exp_id}/metrics").json()

    send_batch([(exp_id, 1)], stack.broker_url)  # a late copy after success
    wait_until(lambda: claims_in_logs(stack, exp_id) == (1, 2), 60, "the late copy to be refused")
    after = stack.experiment(exp_id)
    assert (after["status"], after["attempt"], after["finished_at"]) == ("succeeded", 1, row["finished_at"])
    assert stack.count(models.Result, experiment_id=exp_id) == 1
    assert api.get(f"/experiments/{exp_id}/metrics").json() == result_before
    stack.assert_settled()


@pytest.mark.timeout(300)
def test_pickled_message_is_refused_and_not_executed(stack, tmp_path):
    canary = tmp_path / "pwned"
    api = stack.api(stack.create_user("alice"))
    worker = stack.start_worker("a")
    wait_until(lambda: "ready." in worker.log(), 60, "the worker to be ready")

    attacker = make_celery(stack.broker_url)  # same broker, a sender that chose pickle
    attacker.send_task(TASK_NAME, args=[[_Exploit(canary)]], serializer="pickle")
    wait_until(lambda: "application/x-python-serialize" in worker.log(), 60, "the worker to refuse the pickle")
    assert not canary.exists(), "the pickled payload was executed"

    exp_id = api.post("/experiments", json=small_spec(300, seed=6)).json()["id"]
    row = stack.wait_status(exp_id, ("succeeded", "failed", "cancelled"), 120)
    assert row["status"] == "succeeded" and worker.alive()
    assert not canary.exists()
    stack.assert_settled()
