"""The split: deterministic from the seed, sizes from each data option, critical size constant."""

import math

import numpy as np

from li2.data import make_split
from li2.groups import build_task
from li2.runner import run_batch
from li2.spec import resolve_train_size
from li2.theory import C_CRIT, predicted_critical_size


def test_train_fraction_follows_sklearns_ceiling_rule(make_spec):
    assert resolve_train_size(make_spec(order=23, fraction=0.9)) == 529 - 53  # reference log: 476 / 53
    assert resolve_train_size(make_spec(order=71, fraction=0.4)) == 2016  # the paper's Fig. 3 n


def test_train_size_and_critical_multiple(make_spec):
    assert resolve_train_size(make_spec(data={"train_size": 77})) == 77
    n = resolve_train_size(make_spec(order=23, data={"critical_multiple": 1.0}))
    assert n == round(C_CRIT * 23 * math.log(23)) == 198 and predicted_critical_size(23) == C_CRIT * 23 * math.log(23)


def test_split_is_a_deterministic_partition():
    task = build_task({"group": "cyclic", "order": 13})
    a, b, c = (make_split(task, 2, 50, seed) for seed in (3, 3, 4))
    assert np.array_equal(a.train_idx, b.train_idx) and a.hash == b.hash
    assert not np.array_equal(a.train_idx, c.train_idx) and a.hash != c.hash
    assert len(np.union1d(a.train_idx, a.test_idx)) == 169 and len(np.intersect1d(a.train_idx, a.test_idx)) == 0
    assert (a.y_train == task.labels(2)[a.train_idx]).all()


def test_three_operands_and_non_abelian_tasks_train(make_spec):
    specs = [
        make_spec(task={"group": "cyclic", "order": 5, "operands": 3}, epochs=8),
        make_spec(task={"group": "symmetric", "n": 3}, epochs=8, data={"train_size": 20}),
        make_spec(task={"group": "expression", "expression": "x*x + y", "modulus": 7}, epochs=8),
    ]
    for spec in specs:
        res = run_batch([spec], "cpu")[0]
        ds = res["dataset"]
        assert ds["train_size"] + ds["test_size"] == ds["order"] ** spec["task"]["operands"]
        assert all(math.isfinite(v) for v in res["metrics"]["train_loss"])
