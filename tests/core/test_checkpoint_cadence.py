"""Resume checkpoints: written by wall time (`li2.checkpoint.Cadence`), compact, and host copies.

The clock is injected (`TickClock`: a simulated second per epoch), so a "long" batch takes a
second here.
"""

from __future__ import annotations

from li2 import checkpoint
from li2.runner import run_batch
from li2.trainer import BatchTrainer


class TickClock:
    """Simulated time that advances `step` seconds at each read. `Cadence` reads it once when a
    batch starts and once per epoch, so each epoch "takes" `step` seconds."""

    def __init__(self, step: float):
        self.step, self.now = step, -step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_cadence_is_due_once_per_interval_and_once_per_epoch():
    now = [0.0]
    cadence = checkpoint.Cadence(10.0, clock=lambda: now[0])
    due = []
    for epoch in range(1, 40):
        now[0] = epoch * 1.5  # 1.5 s per epoch
        due += [epoch] if cadence.due(epoch) and cadence.due(epoch) else []  # asked twice: one answer
    assert due == [7, 14, 21, 28, 35]  # the first epoch at or past each 10 s since the last
    assert not checkpoint.Cadence(None).due(50)  # off
    every = checkpoint.Cadence(None, every=50)
    assert [e for e in range(1, 200) if every.due(e)] == [50, 100, 150]


def checkpoint_epochs(spec: dict, **cadence) -> list[int]:
    """The epochs at which run_batch hands out a checkpoint, with a simulated second per epoch."""
    written: list[int] = []
    run_batch([spec], "cpu", on_checkpoint=lambda i, e, state: written.append(e), clock=TickClock(1.0), **cadence)
    return written


def test_a_long_batch_writes_one_resume_checkpoint_per_interval_not_per_50_epochs(make_spec):
    """300 epochs at a simulated second each, interval 60 s: one checkpoint a minute (the clock
    reads 0 s when the batch starts and e + 1 s at epoch e), plus epoch 0 and the end; none of the
    every-50-epochs ones the old cadence wrote."""
    written = checkpoint_epochs(make_spec(epochs=300, seed=2), checkpoint_interval_s=60.0)
    assert written == [0, 59, 119, 179, 239, 299, 300]
    assert len(written[1:-1]) == 300 // 60  # one per whole interval of the 300 simulated seconds
    assert not any(e % 50 == 0 for e in written[1:-1])


def test_the_epoch_cap_adds_checkpoints_without_replacing_the_interval(make_spec):
    written = checkpoint_epochs(make_spec(epochs=120, seed=2), checkpoint_interval_s=60.0, checkpoint_every=50)
    # 50 and 100 by the cap; the interval restarts at each (and would next fall due at epoch 159)
    assert written == [0, 50, 100, 120]


def test_a_checkpoint_is_compact_and_an_independent_copy(make_spec):
    """Only params, optimizer state and emergence epochs are stored (W₀/V₀ and the split come back
    from the seed); the States are dumped only after training ended, so a resume equal to the
    straight run proves each was a copy the later steps did not change."""
    spec = make_spec(epochs=60, seed=7, model={"hidden": 64})
    straight = run_batch([spec], "cpu")[0]
    states: dict[int, checkpoint.State] = {}
    run_batch([spec], "cpu", on_checkpoint=lambda i, e, state: states.__setitem__(e, state), checkpoint_every=30)
    tensors, _history, epoch, _spec = checkpoint.read(states[30].dump())
    assert epoch == 30
    assert {k.split(".", 1)[0] for k in tensors} == {"param", "opt", "track"}
    assert sorted(k for k in tensors if k.startswith("param.")) == ["param.Vt", "param.W"]
    params = sum(t.numel() for k, t in tensors.items() if k.startswith("param."))
    # Adam: two moments per parameter, the step count, and K emergence epochs; nothing else
    assert states[30].nbytes == 4 * (3 * params + 64) + tensors["opt.step"].element_size()
    resumed = run_batch([spec], "cpu", resume=[states[30].dump()])[0]
    assert resumed["metrics"] == straight["metrics"]


def test_an_old_blob_with_initial_weights_still_resumes(make_spec):
    """Blobs written before the compact format carried init.* tensors; they load unchanged."""
    spec, epoch = make_spec(epochs=40, seed=5), 20
    states: dict[int, checkpoint.State] = {}
    run_batch([spec], "cpu", on_checkpoint=lambda i, e, state: states.__setitem__(e, state), checkpoint_every=epoch)
    fresh = BatchTrainer([spec])
    old = dict(states[epoch].tensors, **{f"init.{k}": v[0] for k, v in fresh.init.items()})
    blob = checkpoint.dump(old, states[epoch].history, epoch, spec)
    resumed = run_batch([spec], "cpu", resume=[blob])[0]
    assert resumed["metrics"] == run_batch([spec], "cpu")[0]["metrics"]
