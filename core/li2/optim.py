"""Batched optimizers and learning-rate schedules for stacked (R, …) parameters.

Every run in a batch may have its own learning rate, weight decay and momentum: they are (R,)
tensors broadcast over each parameter's trailing axes, so one kernel updates all runs and no run
sees another's numbers. The update rules are PyTorch's (tests compare them with `torch.optim` on a
single run):

- sgd:   g ← g + wd·p;  b ← μ·b + g (b = g at the first step);  p ← p − lr·b     (coupled L2)
- adam:  g ← g + wd·p;  Adam moments, bias correction;  p ← p − lr·m̂/(√v̂ + ε)   (coupled L2)
- adamw: p ← p·(1 − lr·wd);  then Adam without the L2 term                       (decoupled)
- muon:  on W only, the reference code's `MuonEnhanced` as its training script sets it up (paper §5.3):
         p ← p·(1 − lr·wd);  m ← β₂·m + (1 − β₂)·g with β₂ = 0.99;  p ← p − lr·NS₅(m),
         NS₅ = five quintic Newton–Schulz steps with per-step coefficients, on the orientation
         with fewer rows. Adam (as above) on every other parameter. (The reference leaves extra
         residual layers without any optimizer under muon; here they get Adam.)

Optimizer state is a flat dict of tensors with the run on axis 0, so checkpoints can slice one run
out and batches can drop stopped runs.
"""

from __future__ import annotations

import logging
import math

import torch

log = logging.getLogger(__name__)

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
MUON_BETA = 0.99
NS_COEFFS = ((4.01, -9.22, 5.80), (3.49, -6.38, 3.23), (3.34, -6.21, 3.20), (3.64, -7.48, 4.43), (3.46, -5.35, 2.85))
OPTIMIZERS = ("sgd", "adam", "adamw", "muon")


def _per_run(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(R,) -> (R, 1, …, 1) broadcastable against p."""
    return x.view(-1, *([1] * (p.dim() - 1)))


def newton_schulz5(g: torch.Tensor) -> torch.Tensor:
    """Approximate orthogonal polar factor U Vᵀ of each g (R, a, b), as MuonEnhanced computes it."""
    transpose = g.shape[-2] > g.shape[-1]
    x = g.transpose(-2, -1) if transpose else g
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + 1e-7)
    for a, b, c in NS_COEFFS:
        gram = x @ x.transpose(-2, -1)  # (R, rows, rows), rows = min(a, b)
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.transpose(-2, -1) if transpose else x


def adam_update_(p, g, m, v, lr, wd, step_scale, sqrt_bc2, decoupled: bool) -> None:
    """torch.optim.Adam/AdamW's update in place; lr, wd, step_scale (= lr/(1−β₁ᵗ)), sqrt_bc2
    (= √(1−β₂ᵗ)) broadcast per run. A plain function so the CUDA path can fuse it (torch.compile)."""
    b1, b2 = ADAM_BETAS
    if decoupled:
        p.mul_(1 - lr * wd)
    else:
        g = g + wd * p
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    p.sub_(step_scale * (m / (v.sqrt() / sqrt_bc2 + ADAM_EPS)))


class BatchOptimizer:
    """One optimizer over a dict of stacked parameters. `step(grads, lr, wd)` updates in place.

    `fuse=True` compiles the elementwise Adam update with torch.compile (one kernel per parameter
    on CUDA instead of about ten); the arithmetic is the same.
    """

    def __init__(self, kind: str, params: dict[str, torch.Tensor], momentum: torch.Tensor, fuse: bool = False):
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {kind!r}")
        self.kind, self.params, self.momentum = kind, params, momentum  # momentum (R,), sgd only
        self._adam_update = torch.compile(adam_update_, dynamic=False) if fuse else adam_update_
        R, dev = next(iter(params.values())).shape[0], next(iter(params.values())).device
        self.state: dict[str, torch.Tensor] = {"step": torch.zeros(R, device=dev)}
        for name, p in params.items():
            rule = self.rule(name)
            if rule == "sgd" or rule == "muon":
                self.state[f"{name}.momentum_buffer"] = torch.zeros_like(p)
            else:
                self.state[f"{name}.exp_avg"] = torch.zeros_like(p)
                self.state[f"{name}.exp_avg_sq"] = torch.zeros_like(p)

    def rule(self, name: str) -> str:
        """The update rule parameter `name` gets: muon only for W; adam for the rest under muon."""
        if self.kind == "muon":
            return "muon" if name == "W" else "adam"
        return self.kind

    @torch.no_grad()
    def step(
        self, grads: dict[str, torch.Tensor], lr: torch.Tensor, wd: torch.Tensor, skip: tuple[str, ...] = ()
    ) -> None:
        """One update of every parameter not in `skip`; lr and wd are (R,)."""
        self.state["step"] += 1
        t = self.state["step"].double()  # Adam bias corrections in float64, like torch's floats
        step_scale = (lr.double() / (1 - ADAM_BETAS[0] ** t)).float()  # (R,)
        sqrt_bc2 = torch.sqrt(1 - ADAM_BETAS[1] ** t).float()  # (R,)
        for name, p in self.params.items():
            if name in skip:
                continue
            g, rule = grads[name], self.rule(name)
            lr_p, wd_p = _per_run(lr, p), _per_run(wd, p)
            if rule == "sgd":
                self._sgd(name, p, g, lr_p, wd_p)
            elif rule == "muon":
                self._muon(name, p, g, lr_p, wd_p)
            else:
                args = (
                    p,
                    g,
                    self.state[f"{name}.exp_avg"],
                    self.state[f"{name}.exp_avg_sq"],
                    lr_p,
                    wd_p,
                    _per_run(step_scale, p),
                    _per_run(sqrt_bc2, p),
                    rule == "adamw",
                )
                try:
                    self._adam_update(*args)
                except Exception as exc:  # compile errors come before any tensor is touched
                    if self._adam_update is adam_update_:
                        raise
                    log.warning("torch.compile of the Adam update failed (%s); continuing unfused", exc)
                    self._adam_update = adam_update_
                    adam_update_(*args)

    def _sgd(self, name, p, g, lr, wd):
        g = g + wd * p
        buf = self.state[f"{name}.momentum_buffer"]
        first = _per_run((self.state["step"] == 1).to(p.dtype), p)
        buf.mul_(_per_run(self.momentum, p) * (1 - first)).add_(g)  # b = g at step 1
        p.sub_(lr * buf)

    def _muon(self, name, p, g, lr, wd):
        p.mul_(1 - lr * wd)
        m = self.state[f"{name}.momentum_buffer"]
        m.lerp_(g, 1 - MUON_BETA)
        p.sub_(lr * newton_schulz5(m))


# ----------------------------------------------------------------------------- schedules

SCHEDULES = ("none", "step", "multistep", "exponential", "cosine")


def lr_factor(training: dict, epoch: int) -> float:
    """Multiplier on the base lr at `epoch` (0-based), as the matching torch.optim.lr_scheduler
    stepped once per epoch: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR(T_max=epochs)."""
    kind, gamma = training.get("schedule", "none"), training.get("gamma", 0.1)
    if kind == "step":
        return gamma ** (epoch // int(training["step_size"]))
    if kind == "multistep":
        return gamma ** sum(1 for m in training.get("milestones", []) if epoch >= m)
    if kind == "exponential":
        return gamma**epoch
    if kind == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / training["epochs"]))
    return 1.0


def lr_table(trainings: list[dict], epochs: int, device) -> torch.Tensor:
    """Learning rate of every run at every epoch, (epochs, R), computed once up front."""
    rows = [[t["lr"] * lr_factor(t, e) for t in trainings] for e in range(epochs)]
    return torch.tensor(rows, dtype=torch.float32, device=device)
