"""The user flow through a client that openapi-python-client generated from the live document.

Run by test_generated_client.py as `python generated_client_flow.py URL TOKEN` with the generated
package (li_2_lab_client) on PYTHONPATH; it uses the package exactly as generated: submit one run,
wait for it, read its metrics, timeline, features and predictions, submit a sweep, wait, read its
scaling law. Prints one JSON line of what it read; any surprise is an AssertionError (exit 1).
"""

from __future__ import annotations

import json
import sys
import time

import httpx
from li_2_lab_client import AuthenticatedClient
from li_2_lab_client.api.experiments import (
    experiments_features,
    experiments_get_experiment,
    experiments_metrics,
    experiments_predictions,
    experiments_submit,
    experiments_timeline,
)
from li_2_lab_client.api.sweeps import sweeps_get_sweep, sweeps_scaling_law, sweeps_submit
from li_2_lab_client.models import (
    Experiment,
    ExperimentSpec,
    Features,
    Grid,
    Metrics,
    Predictions,
    ScalingLaw,
    Submit,
    Sweep,
    SweepSubmit,
    Timeline,
)

ENDED = ("succeeded", "failed", "cancelled")
# Z_11, K = 64, Adam at a brisk rate: groks in about 50 epochs, seconds of CPU (tests/client/conftest.py).
SPEC = {
    "task": {"group": "cyclic", "order": 11},
    "data": {"train_fraction": 0.9},
    "model": {"hidden": 64, "activation": "sqr"},
    "training": {"optimizer": "adam", "lr": 0.05, "weight_decay": 0.001, "epochs": 150},
    "seed": 41,
}


def wait(read, ident: str, client: AuthenticatedClient, timeout: float = 900):
    deadline = time.monotonic() + timeout
    while True:
        now = read.sync(ident, client=client)
        if now.status in ENDED or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def main(url: str, token: str) -> dict:
    client = AuthenticatedClient(
        base_url=url, token=token, raise_on_unexpected_status=True, timeout=httpx.Timeout(30.0)
    )
    exp = experiments_submit.sync(client=client, body=Submit(spec=ExperimentSpec.from_dict(SPEC)))
    assert isinstance(exp, Experiment) and exp.status == "queued", exp
    done = wait(experiments_get_experiment, exp.id, client)
    assert isinstance(done, Experiment) and done.status == "succeeded", (done.status, done.error)
    assert done.spec.task.order == 11 and done.spec.model.hidden == 64

    metrics = experiments_metrics.sync(exp.id, client=client)
    assert isinstance(metrics, Metrics) and metrics.complete is True, metrics
    columns = metrics.columns.additional_properties
    timeline = experiments_timeline.sync(exp.id, client=client)
    assert isinstance(timeline, Timeline) and timeline.stages, timeline
    features = experiments_features.sync(exp.id, client=client)
    assert isinstance(features, Features), features
    predictions = experiments_predictions.sync(exp.id, client=client)
    assert isinstance(predictions, Predictions) and predictions.order == 11, predictions

    base = dict(SPEC, training={**SPEC["training"], "epochs": 100, "eval_every": 5})
    grid = Grid.from_dict({"task.order": [11, 13], "data.train_fraction": [0.3, 0.9]})
    sweep = sweeps_submit.sync(client=client, body=SweepSubmit(base=ExperimentSpec.from_dict(base), grid=grid))
    assert isinstance(sweep, Sweep) and sweep.n_runs == 4, sweep
    ended = wait(sweeps_get_sweep, sweep.id, client)
    assert isinstance(ended, Sweep) and ended.status == "succeeded", ended
    law = sweeps_scaling_law.sync(sweep.id, client=client)
    assert isinstance(law, ScalingLaw) and law.partial is False, law
    return {
        "experiment": exp.id,
        "final_test_acc": columns["test_acc"][-1],
        "epochs_measured": len(columns["epoch"]),
        "stages": [s.name for s in timeline.stages],
        "coverage": features.coverage,
        "critical_train_size": predictions.critical_train_size,
        "sweep": sweep.id,
        "law_status": law.status,
        "law_orders": [c.order for c in law.critical],
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
