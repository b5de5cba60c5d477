"""Deterministic train/test split of a task's full data set.

The full data set is every k-tuple of elements (M**k samples, `Task.inputs`). A run's split is a
permutation drawn from `numpy.random.Generator(PCG64(seed))`: its first n_train indices train, the
rest test. The split depends only on (M, k, seed, n_train), never on batch-mates.

n_train comes from exactly one of the `data` fields (rule in `li2.spec.limits.resolve_train_size`):
- `train_fraction` f: like the reference's sklearn `train_test_split(test_size=1-f)`, the test set
  gets ceil((1-f)·M**k) samples and the training set the rest;
- `train_size`: that many samples;
- `critical_multiple` m: round(m · C_CRIT · M · ln M), the paper code's critical data size
  (`li2.theory`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from li2.groups import Task


@dataclass(frozen=True, eq=False)
class Split:
    """A run's data: indices into `Task.inputs(k)` / `Task.labels(k)`, and the arrays themselves."""

    train_idx: np.ndarray  # (n,) int64
    test_idx: np.ndarray  # (N - n,) int64
    x_train: np.ndarray  # (n, k) int64 operands
    y_train: np.ndarray  # (n,) int64 labels
    x_test: np.ndarray  # (N - n, k)
    y_test: np.ndarray  # (N - n,)
    hash: str  # sha256 over the task's data set and the train indices


def make_split(task: Task, operands: int, n_train: int, seed: int) -> Split:
    """The seed's split of the task's full data set into n_train training samples and the rest."""
    x, y = task.inputs(operands), task.labels(operands)
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(len(y))
    train, test = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    h = hashlib.sha256(task.dataset_hash(operands).encode())
    h.update(np.ascontiguousarray(train, dtype="<i8").tobytes())
    return Split(
        train_idx=train,
        test_idx=test,
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        hash=h.hexdigest(),
    )
