"""Cancelling queued and running experiments frees the worker's slot within seconds.

One worker (one training slot). A long run trains, a short one waits behind it, a third waits
behind that. Cancelling the waiting run ends it at once (it never starts); cancelling the running
run stops it at its next heartbeat, and the next queued run then starts on the freed slot and
succeeds. The cancelled run keeps what it learned (a partial result) and is never retried.
"""

from __future__ import annotations

import pytest
from stack import small_spec

from li2_store import models

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_cancel_queued_and_running_frees_the_slot(stack):
    api = stack.api(stack.create_user("alice"))
    stack.start_worker("a")
    long_id = api.post("/experiments", json=small_spec(20_000, seed=7)).json()["id"]
    stack.wait_status(long_id, ("running",), 90)
    queued_id = api.post("/experiments", json=small_spec(300, seed=8)).json()["id"]
    next_id = api.post("/experiments", json=small_spec(300, seed=9)).json()["id"]

    r = api.post(f"/experiments/{queued_id}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelled", r.text
    assert stack.status(queued_id) == "cancelled"  # at once, no worker involved

    stack.note("cancel of the running run")
    r = api.post(f"/experiments/{long_id}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "running", r.text  # asked to stop
    stopped = stack.wait_status(long_id, ("cancelled", "succeeded", "failed"), 30)
    assert stopped["status"] == "cancelled", stopped
    assert stopped["progress_epoch"] < 20_000 and stopped["attempt"] == 1

    started = stack.wait_status(next_id, ("running", "succeeded"), 30)  # the freed slot takes the next run
    stack.note(f"cancelled run finished at {stopped['finished_at']}; next run started at {started['started_at']}")
    assert started["started_at"] >= stopped["finished_at"]
    assert stack.wait_status(next_id, ("succeeded", "failed"), 120)["status"] == "succeeded"

    never = stack.experiment(queued_id)
    assert never["status"] == "cancelled" and never["started_at"] is None
    assert stack.count(models.Result, experiment_id=queued_id) == 0
    assert api.post(f"/experiments/{long_id}/cancel").status_code == 409  # terminal: nothing to cancel
    assert stack.status(long_id) == "cancelled"
    stack.assert_settled()
