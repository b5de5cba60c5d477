"""`BatchTrainer`: full-batch training of R same-shape runs as one stacked model.

One optimizer step per epoch, on the whole training set, as in the paper's reference code. At a
measurement epoch the metrics are taken *before* that epoch's step (the reference's convention):

    measurement epochs = every epoch below `dense_until`, every `eval_every`-th after, and the last.

Runs in a batch share shapes (task, operands, hidden, activation, layers, loss, optimizer, epochs,
cadence) and may differ in seed (so in init and split), training size n, lr, weight decay, momentum,
schedule, top_init_scale, output_scale, ridge η and early stopping. Each run's loss is its own mean
over its own samples; the losses are summed for one backward pass, so each run's gradient is exactly
its own and a run's curve does not depend on its batch-mates.

Ragged batches: runs of different n are padded to the batch's largest n (and test sets to the
largest test set) with a per-run 0/1 mask; a padded sample is a valid index whose loss, accuracy and
gradient are multiplied by 0, and each run's sums are divided by its own n (`li2.model.sample_mean`),
so a run's curves equal its curves alone (within float rounding of the longer sums; accuracies
exactly). `padding_share` is the share of the training rows computed that are padding. Diagnostics
run on each run's own rows (runs of one n together), at each run's own period.

Early stopping (`training.early_stop`, opt-in): at a measurement, a run whose test accuracy has been
≥ threshold at every measurement of the last `patience_epochs` epochs stops after that epoch's step,
like a stopped run (it leaves the batch, whose tensors shrink to the runs left), and its outcome says
when and why (`RunOutcome.early_stop`).

Per-run metric columns (result.json in docs/design.md):
  train_acc, test_acc, train_loss, test_loss   accuracies and losses before the step
  gf_norm     ‖G_F‖_F with G_F = −∂(n·L/2)/∂F for mse (the paper's ½‖Ỹ−Ŷ‖² summed over samples,
              i.e. ‖(Y_c − P·out)·βVᵀ‖) and −∂(n·L)/∂F for nll; F is the last hidden layer
  w_drift     ‖W − W₀‖/‖W₀‖;  v_drift the same for V (NaN when V₀ = 0)
  w_cos_step  1 − cos(W_t, W_{t+1}) across this measurement epoch's step; v_cos_step for V
  w_norm, v_norm, lr
plus the `li2.diagnostics` columns when `training.diagnostics` is on, at measurement epochs that
are multiples of the diagnostic period and at the last (NaN otherwise). The period is
`training.diagnostics_every`, or by default `li2.diagnostics.auto_every`: the shortest whose
estimated cost stays within 10 % of training. At each diagnostic epoch the trainer also updates each
hidden node's emergence epoch (`li2.features.update_emergence`); the final ones reach the analysis
as `RunOutcome.params["node_emergence"]`.

The host only synchronises at measurement epochs; between them the loop only queues kernels. On
CUDA the forward pass (in two parts, hidden layer and head, so F stays a graph node for G_F), its
backward and the Adam update are compiled with torch.compile into a few fused kernels (same
arithmetic) when the batch is big enough to repay the compile time (`fuse_default`;
LI2_COMPILE=0/1 forces it off/on, also on the CPU). If the compiler is missing, training falls
back to eager with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from li2 import diagnostics as diag
from li2 import model as nn
from li2.batching import batch_key
from li2.data import Split, make_split
from li2.diagnostics import COLUMNS as DIAGNOSTIC_COLUMNS
from li2.features import update_emergence
from li2.groups import Task, build_task
from li2.optim import BatchOptimizer, lr_table
from li2.precision import Precision, precision_of
from li2.spec import resolve_train_size

TRAINER_COLUMNS = (
    "epoch",
    "train_acc",
    "test_acc",
    "train_loss",
    "test_loss",
    "gf_norm",
    "w_drift",
    "v_drift",
    "w_cos_step",
    "v_cos_step",
    "w_norm",
    "v_norm",
    "lr",
)
COLUMNS = TRAINER_COLUMNS + DIAGNOSTIC_COLUMNS
log = logging.getLogger(__name__)


# Compiling costs tens of seconds per new shape (less with inductor's on-disk cache) and makes a
# step about 2.5× faster, so by default only batches with at least this much work, runs × epochs ×
# n_train × hidden (about 20 s of unfused H200 time), are compiled.
FUSE_MIN_WORK = 3e11


def fuse_default(device: torch.device, work: float) -> bool:
    """Whether to torch.compile: LI2_COMPILE=1/0 forces it on/off; else CUDA batches ≥ FUSE_MIN_WORK."""
    env = os.environ.get("LI2_COMPILE")
    if env in ("0", "1"):
        return env == "1"
    return device.type == "cuda" and work >= FUSE_MIN_WORK


def head(
    f: torch.Tensor,
    Vt: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    beta: torch.Tensor | None,
    loss: str,
    mask: torch.Tensor | None = None,
    count: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top layer and loss: out = β·F·V (R, n, M) and per-run losses (R,); beta None means β = 1;
    mask (R, n) and count (R,) a ragged batch's padding (`li2.model.sample_mean`)."""
    out = nn.output(f, Vt, beta)
    return out, nn.loss_per_run(out, y, loss, target, mask, count)


EAGER = {"_hidden": nn.hidden, "_head": head}  # what the fused (torch.compile) path falls back to


def is_measurement_epoch(training: dict, epoch: int) -> bool:
    """Measure every epoch below dense_until, then every eval_every, and always at the last epoch."""
    return epoch < training["dense_until"] or epoch % training["eval_every"] == 0 or epoch == training["epochs"] - 1


def _norm(x: torch.Tensor) -> torch.Tensor:
    """Frobenius norm per run: (R, …) -> (R,)."""
    return torch.linalg.vector_norm(x.flatten(1), dim=1)


def _cos_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 − cos(a_r, b_r) per run, (R,)."""
    return 1 - (a.flatten(1) * b.flatten(1)).sum(1) / (_norm(a) * _norm(b))


@dataclass
class RunOutcome:
    """What the trainer hands the runner for one run."""

    index: int  # position in the specs given to the trainer
    metrics: dict[str, list]  # column -> values
    params: dict[str, np.ndarray]  # final "W" (d, K), "V" (K, M); "node_emergence" (K,) when tracked
    epoch: int  # epochs completed
    stopped: bool = False
    early_stop: dict | None = None  # {"epoch", "since", "reason"} when training.early_stop ended it
    split: Split | None = field(default=None, repr=False)


class BatchTrainer:
    """Trains len(specs) runs with equal `batch_key` on one device."""

    def __init__(self, specs: list[dict], device: str | torch.device = "cpu", fuse: bool | None = None):
        keys = {batch_key(s) for s in specs}
        if len(keys) != 1:
            raise ValueError(
                "BatchTrainer needs specs with one li2.batching.batch_key; group them first (li2.runner does)"
            )
        self.specs, self.device = specs, torch.device(device)
        first = specs[0]
        self.task: Task = build_task(first["task"])
        self.operands = first["task"].get("operands", 2)
        self.training = first["training"]
        self.loss, self.epochs = self.training["loss"], self.training["epochs"]
        m = first["model"]
        self.shape = nn.Shape(
            self.task.order, self.operands, m["hidden"], m["activation"], m["extra_layers"], m["embedding_trainable"]
        )
        self.sizes = [resolve_train_size(s) for s in specs]  # each run's own n
        self.n_train = max(self.sizes)  # the padded length of a ragged batch
        self.splits = [
            make_split(self.task, self.operands, n, s["seed"]) for n, s in zip(self.sizes, specs, strict=True)
        ]
        self.ridge = m["ridge_top"] is not None
        self.precision = Precision(precision_of(first), self.device)  # training.precision (li2.precision)
        self.diagnostics = diag.batch_diagnostics if self.training["diagnostics"] else None
        # each run's diagnostic period (the auto period depends on its n); `diagnostics_every` is run 0's
        self.diagnostics_periods = [
            s["training"]["diagnostics_every"] or diag.auto_every(n, self.shape.hidden, self.task.order)
            for n, s in zip(self.sizes, specs, strict=True)
        ]
        self.diagnostics_every = self.diagnostics_periods[0]
        self.early_stop = [s["training"].get("early_stop") for s in specs]  # None or {threshold, patience_epochs}
        self.stopped_early: dict[int, dict] = {}

        dev, R = self.device, len(specs)
        col = lambda vals: torch.tensor(vals, dtype=torch.float32, device=dev)  # noqa: E731
        self.ids = list(range(R))  # batch position -> index into specs
        self._load_data()
        self.padding_share = self.padding  # of the batch as packed, before any run leaves
        self.beta = col([s["model"]["output_scale"] for s in specs]).view(R, 1, 1)
        self.unit_beta = all(s["model"]["output_scale"] == 1.0 for s in specs)  # then skip the multiply
        self.eta = col([s["model"]["ridge_top"] or 0.0 for s in specs]).view(R, 1, 1)
        self.wd = col([s["training"]["weight_decay"] for s in specs])  # (R,)
        self.lrs = lr_table([s["training"] for s in specs], self.epochs, dev)  # (E, R)
        params = nn.init_params(
            self.shape, [s["seed"] for s in specs], [s["model"]["top_init_scale"] for s in specs], dev
        )
        self.init = {"W": params["W"].clone(), "Vt": params["Vt"].clone()}  # W₀, V₀
        # per-node emergence epochs (R, K), −1 = not concentrated; kept with the run's state
        self.track = {"emergence": torch.full((R, self.shape.hidden), -1.0, device=dev)}
        self.params = {k: v.requires_grad_() for k, v in params.items()}
        work = len(specs) * self.epochs * self.n_train * self.shape.hidden
        self.fuse = fuse_default(self.device, work) if fuse is None else fuse
        self.opt = BatchOptimizer(
            self.training["optimizer"], self.params, col([s["training"]["momentum"] for s in specs]), fuse=self.fuse
        )
        # the forward in two parts, so that F stays a graph node for G_F; with `fuse`, each part is
        # compiled into a few fused kernels for forward and backward (same arithmetic)
        for name, fn in EAGER.items():
            setattr(self, name, torch.compile(fn, dynamic=False) if self.fuse else fn)
        self.epoch = 0
        self.history: list[dict[str, list]] = [{c: [] for c in COLUMNS} for _ in specs]
        self.stopped: set[int] = set()
        self._derive()

    # ------------------------------------------------------------------ batch bookkeeping

    def _load_data(self) -> None:
        """The splits of the runs in the batch as padded stacked tensors, with masks when ragged.

        x_train (R, n, k), y_train (R, n), x_test (R, n_test, k), y_test (R, n_test), n and n_test the
        largest of the runs here (padding: operand and label 0, a valid index); count_train and
        count_test (R,) each run's own sizes; mask_train (R, n) and mask_test (R, n_test) 1 on a
        run's own samples, or None when all runs have one size (then nothing is padded).
        """
        splits = [self.splits[i] for i in self.ids]
        dev = self.device
        for part in ("train", "test"):
            xs, ys = [getattr(s, f"x_{part}") for s in splits], [getattr(s, f"y_{part}") for s in splits]
            sizes = [len(y) for y in ys]
            length = max(sizes)
            x = np.zeros((len(xs), length, xs[0].shape[1]), dtype=xs[0].dtype)
            y = np.zeros((len(ys), length), dtype=ys[0].dtype)
            for r, (xr, yr) in enumerate(zip(xs, ys, strict=True)):
                x[r, : len(yr)], y[r, : len(yr)] = xr, yr
            count = torch.tensor(sizes, dtype=torch.float32, device=dev)
            mask = (torch.arange(length, device=dev) < count.view(-1, 1)).float() if len(set(sizes)) > 1 else None
            setattr(self, f"x_{part}", torch.from_numpy(x).to(dev))
            setattr(self, f"y_{part}", torch.from_numpy(y).to(dev))
            setattr(self, f"count_{part}", count)
            setattr(self, f"mask_{part}", mask)

    @property
    def padding(self) -> float:
        """Share of the training rows this batch computes that are padding (0 when not ragged)."""
        return 1.0 - float(self.count_train.sum()) / (len(self.ids) * self.y_train.shape[1])

    def _derive(self) -> None:
        """Tensors computed once from the data: gather rows and (for mse) centred targets."""
        self.rows_train = nn.flat_index(self.x_train, self.task.order)  # (k, R·n)
        self.rows_test = nn.flat_index(self.x_test, self.task.order)  # (k, R·n_test)
        mse = self.loss == "mse"
        self.target_train = nn.centered_targets(self.y_train, self.task.order) if mse else None  # (R, n, M)
        self.target_test = nn.centered_targets(self.y_test, self.task.order) if mse else None  # (R, n_test, M)

    def _keep(self, positions: list[int]) -> None:
        """Drop every run not in `positions` from all batched tensors (frees memory and compute)."""
        idx = torch.tensor(positions, device=self.device)
        pick = lambda t: t.detach().index_select(0, idx).contiguous()  # noqa: E731
        self.ids = [self.ids[p] for p in positions]
        self._load_data()  # the runs left, padded only to the largest n among them
        for name in ("beta", "eta", "wd"):
            setattr(self, name, pick(getattr(self, name)))
        self.lrs = self.lrs.index_select(1, idx)
        self.init = {k: pick(v) for k, v in self.init.items()}
        self.track = {k: pick(v) for k, v in self.track.items()}
        self.params = {k: pick(v).requires_grad_() for k, v in self.params.items()}
        self.opt.params, self.opt.momentum = self.params, pick(self.opt.momentum)
        self.opt.state = {k: pick(v) for k, v in self.opt.state.items()}
        self._derive()

    # ------------------------------------------------------------------ checkpoint state

    def run_state(self, index: int) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, history) of spec `index`: params, optimizer state and emergence epochs, as CPU
        copies that later steps do not change. Not W₀/V₀: the constructor redraws them from the seed."""
        p = self.ids.index(index)
        tensors = {f"param.{k}": v[p] for k, v in self.params.items()}
        tensors.update({f"opt.{k}": v[p] for k, v in self.opt.state.items()})
        tensors.update({f"track.{k}": v[p] for k, v in self.track.items()})
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}, self.history[index]

    @torch.no_grad()
    def load_run_state(self, index: int, tensors: dict[str, torch.Tensor], history: dict, epoch: int) -> None:
        """Put a saved run state (from `run_state`) into spec `index`'s slot; all runs share `epoch`."""
        p = self.ids.index(index)
        groups = {"param": self.params, "init": self.init, "opt": self.opt.state, "track": self.track}
        for key, value in tensors.items():
            group, name = key.split(".", 1)
            groups[group][name][p].copy_(value.to(self.device))
        self.history[index] = {c: list(history.get(c, [])) for c in COLUMNS}
        self.epoch = epoch

    # ------------------------------------------------------------------ training

    def train(
        self,
        on_measure: Callable[[int, int, dict], None] | None = None,
        should_stop: Callable[[], set[int]] | None = None,
        on_checkpoint: Callable[[int, int], None] | None = None,
        checkpoint_at: Callable[[int, int], bool] | None = None,
    ) -> list[RunOutcome]:
        """Train from `self.epoch` to the last epoch.

        on_measure(index, epoch, metrics) after each measurement. should_stop() -> indices to stop,
        asked after every step (a host-side call, no device sync). checkpoint_at(index, epoch) says
        whether to call on_checkpoint(index, epoch) at the start of `epoch` (before its measurement
        and step) and after the last step (epoch = epochs); a stopped run always gets one at its stop.
        """
        with self.precision.step():
            return self._train(on_measure, should_stop, on_checkpoint, checkpoint_at)

    def _train(self, on_measure, should_stop, on_checkpoint, checkpoint_at) -> list[RunOutcome]:
        start, finished = self.epoch, []
        for epoch in range(start, self.epochs + 1):
            self.epoch = epoch
            if on_checkpoint and checkpoint_at and (epoch > start or epoch == 0):
                for i in list(self.ids):
                    if checkpoint_at(i, epoch):
                        on_checkpoint(i, epoch)
            if epoch == self.epochs:
                break
            early: set[int] = set()
            if is_measurement_epoch(self.training, epoch):
                self._measured_step(epoch, on_measure)
                early = self._early_stops(epoch)
            else:
                self._step(epoch)
            stop = set(should_stop()) & set(self.ids) if should_stop else set()
            self.stopped |= stop
            for i in early & stop:  # asked to stop anyway: a stop (cancel, requeue), not an early stop
                del self.stopped_early[i]
            stop |= early
            if stop:  # stopped runs leave the batch now, with a checkpoint to resume from
                self.epoch = epoch + 1
                for i in sorted(stop) if on_checkpoint else ():
                    on_checkpoint(i, epoch + 1)
                finished += self._outcomes_for(stop)
                keep = [p for p, i in enumerate(self.ids) if i not in stop]
                if not keep:
                    self.ids = []
                    break
                self._keep(keep)
        finished += self._outcomes_for(set(self.ids))
        return sorted(finished, key=lambda o: o.index)

    def _early_stops(self, epoch: int) -> set[int]:
        """Runs that `training.early_stop` ends at this measurement (recorded in `stopped_early`).

        A run stops when its test accuracy has been ≥ threshold at every measurement from epoch
        `since` to this one and epoch − since ≥ patience_epochs. The stretch is read back from the
        run's own history, so a resumed run decides exactly as an uninterrupted one. Never at the
        last epoch (the run finishes its budget anyway).
        """
        out = set()
        for i in self.ids:
            rule = self.early_stop[i]
            if not rule or epoch >= self.epochs - 1:
                continue
            acc, epochs = self.history[i]["test_acc"], self.history[i]["epoch"]
            threshold = rule["threshold"]
            j = len(acc)
            while j > 0 and acc[j - 1] >= threshold:  # NaN never counts as ≥
                j -= 1
            if j == len(acc) or epoch - epochs[j] < rule["patience_epochs"]:
                continue
            since = int(epochs[j])
            self.stopped_early[i] = {
                "epoch": epoch,
                "since": since,
                "reason": f"test_acc ≥ {threshold} at every measurement from epoch {since} to {epoch} "
                f"(patience {rule['patience_epochs']} epochs)",
            }
            out.add(i)
        return out

    def _outcomes_for(self, indices: set[int]) -> list[RunOutcome]:
        out = []
        for p, i in enumerate(self.ids):
            if i in indices:
                out.append(
                    RunOutcome(
                        index=i,
                        metrics=self.history[i],
                        epoch=self.epoch,
                        stopped=i in self.stopped,
                        early_stop=self.stopped_early.get(i),
                        params={
                            "W": self.params["W"][p].detach().cpu().numpy().copy(),
                            "V": self.params["Vt"][p].detach().cpu().numpy().copy(),
                            **self._emergence_of(p),
                        },
                        split=self.splits[i],
                    )
                )
        return out

    def _emergence_of(self, p: int) -> dict[str, np.ndarray]:
        """{"node_emergence": (K,)} for batch position p when diagnostics tracked it, else {}."""
        if self.diagnostics is None or not self.history[self.ids[p]]["epoch"]:
            return {}
        return {"node_emergence": self.track["emergence"][p].cpu().numpy().astype(np.int64)}

    @torch.no_grad()
    def _solve_ridge(self) -> None:
        """ridge_top: V ← (βFᵀβF + ηI)⁻¹ βFᵀ Y_c for the current W, in place."""
        f = nn.hidden(self.params, self.rows_train, self.shape)  # (R, n, K)
        if self.mask_train is not None:  # padded rows out of the normal equations
            f = f * self.mask_train.unsqueeze(-1)
        self.params["Vt"].copy_(nn.ridge_top(f, self.y_train, self.task.order, self.eta, self.beta))

    def _call(self, name: str, *args):
        """self.<name>(*args); if its compiled form fails (no compiler here), fall back to eager for good."""
        fn = getattr(self, name)
        try:
            return fn(*args)
        except Exception as exc:
            if fn is EAGER[name]:
                raise
            log.warning("torch.compile of %s failed (%s); training continues unfused", name, exc)
            setattr(self, name, EAGER[name])
            return EAGER[name](*args)

    def _forward(
        self,
        rows: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        mask: torch.Tensor | None,
        count: torch.Tensor,
    ):
        """F (R, n, K), out (R, n, M) and per-run losses (R,) for one data set (mask: ragged padding;
        bf16: autocast)."""
        with self.precision.forward():
            f = self._call("_hidden", self.params, rows, self.shape)
            out, losses = self._call(
                "_head",
                f,
                self.params["Vt"],
                y,
                None if self.fuse else target,
                None if self.unit_beta else self.beta,
                self.loss,
                mask,
                None if mask is None else count,
            )  # fused: targets inline
        return f, out, losses

    def _forward_train(self):
        """Ridge-solve V if asked, then the forward pass on the training set."""
        if self.ridge:
            self._solve_ridge()
        return self._forward(self.rows_train, self.y_train, self.target_train, self.mask_train, self.count_train)

    def _update(self, grads: dict[str, torch.Tensor], epoch: int) -> None:
        self.opt.step(grads, self.lrs[epoch], self.wd, skip=("Vt",) if self.ridge else ())

    def _step(self, epoch: int) -> None:
        """One unmeasured full-batch step."""
        _, _, losses = self._forward_train()
        names = list(self.params)
        grads = torch.autograd.grad(losses.sum(), [self.params[k] for k in names])
        self._update(dict(zip(names, grads, strict=False)), epoch)

    def _diagnose(
        self, epoch: int, f: torch.Tensor, W: torch.Tensor, Vt: torch.Tensor, due: list[int]
    ) -> dict[str, torch.Tensor]:
        """The `li2.diagnostics` columns (R,) for the batch positions `due` (NaN elsewhere), and
        their nodes' emergence update. Runs of one n are diagnosed together on their own rows.

        The top layer is judged at the fixed point of the loss as implemented: the effective top
        layer β·V under the optimizer's own regularisation (`li2.diagnostics.top_layer_ridge`).
        """
        R, state = len(self.ids), self.opt.state
        sizes = self.count_train.tolist()
        by_size: dict[int, list[int]] = {}
        for p in due:
            by_size.setdefault(int(sizes[p]), []).append(p)
        out: dict[str, torch.Tensor] = {}
        for n, positions in by_size.items():
            idx = torch.tensor(positions, device=self.device)
            if len(positions) == R:  # every run, one size: no copies
                pick = lambda t: t  # noqa: E731
            else:
                pick = lambda t, idx=idx: t.index_select(0, idx)  # noqa: E731
            r = len(positions)
            beta = torch.ones(r, device=self.device) if self.unit_beta else pick(self.beta).view(r)
            eta = diag.top_layer_ridge(
                self.training["optimizer"],
                n,
                pick(self.wd),
                beta,
                ridge_eta=pick(self.eta).view(r) if self.ridge else None,
                exp_avg_sq=pick(state["Vt.exp_avg_sq"]) if "Vt.exp_avg_sq" in state else None,
                step=pick(state["step"]),
            )  # (r, K)
            w = pick(W)  # (r, d, K)
            top = pick(Vt) if self.unit_beta else pick(Vt) * pick(self.beta)  # (r, K, M): the effective βV
            cols = self.diagnostics(pick(f)[:, :n], top, pick(self.y_train)[:, :n], w, eta, self.task, self.operands)
            for c, v in cols.items():
                out.setdefault(c, torch.full((R,), torch.nan, dtype=v.dtype))[positions] = v
            nodes = diag.node_concentration(w, self.task, self.operands)
            if nodes is not None:
                em = self.track["emergence"]  # (R, K)
                emerged = update_emergence(pick(em).cpu().numpy(), *nodes, epoch)
                em.index_copy_(0, idx, torch.from_numpy(emerged).to(em.device, em.dtype))
        return out

    def _measured_step(self, epoch: int, on_measure) -> None:
        """Measure before the step (as the reference), step, then the across-step cosine distances."""
        f, out, losses = self._forward_train()
        names = list(self.params)
        *grads, g_f = torch.autograd.grad(losses.sum(), [self.params[k] for k in names] + [f])
        W, Vt = self.params["W"].detach(), self.params["Vt"].detach()
        R = len(self.ids)
        with torch.no_grad():
            _, out_test, test_losses = self._forward(
                self.rows_test, self.y_test, self.target_test, self.mask_test, self.count_test
            )
            v0 = _norm(self.init["Vt"])
            cols = {
                "epoch": torch.full((R,), float(epoch), device=self.device),
                "train_acc": nn.accuracy(out.detach(), self.y_train, self.mask_train, self.count_train),
                "test_acc": nn.accuracy(out_test, self.y_test, self.mask_test, self.count_test),
                "train_loss": losses.detach(),
                "test_loss": test_losses,
                "gf_norm": _norm(g_f) * nn.grad_scale(self.loss, self.count_train),
                "w_drift": _norm(W - self.init["W"]) / _norm(self.init["W"]),
                "v_drift": torch.where(v0 > 0, _norm(Vt - self.init["Vt"]) / v0, torch.nan),
                "w_norm": _norm(W),
                "v_norm": _norm(Vt),
                "lr": self.lrs[epoch],
            }
            due = [
                p
                for p, i in enumerate(self.ids)
                if epoch % self.diagnostics_periods[i] == 0 or epoch == self.epochs - 1
            ]
            if self.diagnostics is not None and due:
                cols.update(self._diagnose(epoch, f.detach(), W, Vt, due))
            w_before, v_before = W.clone(), Vt.clone()
        self._update(dict(zip(names, grads, strict=False)), epoch)
        with torch.no_grad():
            cols["w_cos_step"] = _cos_distance(w_before, self.params["W"])
            cols["v_cos_step"] = _cos_distance(v_before, self.params["Vt"])
            nan = torch.full((R,), torch.nan, device=self.device)
            table = torch.stack([cols.get(c, nan).to(self.device, torch.float32) for c in COLUMNS], dim=1)
            table = table.cpu().tolist()  # (R, C): the one host sync of a measurement
        for p, i in enumerate(self.ids):
            row = dict(zip(COLUMNS, table[p], strict=False))
            row["epoch"] = int(row["epoch"])
            for c, v in row.items():
                self.history[i][c].append(v)
            if on_measure:
                on_measure(i, epoch, row)
