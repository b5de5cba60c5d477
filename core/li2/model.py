"""The paper's network, Ŷ = β·σ(XW)V, for R runs at once, as plain stacked tensors.

X is the concatenation of k one-hot operands, so XW is a sum of k row gathers of W:
pre(a, b) = W[a] + W[M + b]. No one-hot matrix is ever built. Optional parts, as in the
reference code (`modular_addition_simple2.py`):

- `extra_layers` L: residual hidden layers x ← σ(x + x·U_l), U_l (K, K), no bias;
- `embedding_trainable`: an (M, M) embedding E, trained; pre = Σ_j (E·W_j)[a_j] with W_j the j-th
  (M, K) block of W. It starts as the reference's `nn.Embedding(M, M)` does, from N(0, 1) entries
  (row a is token a's embedding); the frozen default is the identity, i.e. one-hot inputs;
- `top_init_scale`: V's initial values × this (0 = zero-init); `output_scale` β multiplies the output.

Parameters live in a dict of tensors whose first axis is the run (R):

    W   (R, d, K)      d = k·M
    Vt  (R, K, M)      the paper's V
    U   (R, L, K, K)   only when extra_layers > 0
    E   (R, M, M)      only when embedding_trainable

Initialisation is PyTorch's `nn.Linear` default (kaiming-uniform, a=√5, i.e. U(-1/√fan_in, 1/√fan_in)),
drawn for each run from its own CPU `torch.Generator(seed)` in the order W, U_1..U_L, V (then E,
from N(0, 1)), so a run's initial weights never depend on its batch-mates or the device, and the
optional embedding leaves W and V as they are without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class _Square(torch.autograd.Function):
    """x², with a backward of two passes (2·x·g) instead of autograd's three for x * x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.mul(g, x).mul_(2.0)


ACTIVATIONS = {
    "sqr": _Square.apply,
    "relu": torch.relu,
    "silu": torch.nn.functional.silu,
    "relusqr": lambda x: torch.relu(x).square(),
}


@dataclass(frozen=True)
class Shape:
    """Everything that must be equal for runs to share one stacked model."""

    order: int  # M
    operands: int  # k
    hidden: int  # K
    activation: str
    extra_layers: int = 0  # L
    embedding_trainable: bool = False

    @property
    def d(self) -> int:
        return self.operands * self.order


def _linear_init(gen: torch.Generator, out_features: int, in_features: int) -> torch.Tensor:
    """nn.Linear's default weight init, (out, in), drawn from `gen`."""
    bound = 1.0 / in_features**0.5
    return torch.empty(out_features, in_features).uniform_(-bound, bound, generator=gen)


def init_params(
    shape: Shape, seeds: list[int], top_init_scales: list[float], device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Initial parameters for len(seeds) runs; each run from torch.Generator().manual_seed(seed)."""
    W, U, V, E = [], [], [], []
    for seed, scale in zip(seeds, top_init_scales, strict=False):
        gen = torch.Generator().manual_seed(int(seed))
        W.append(_linear_init(gen, shape.hidden, shape.d).T)  # (d, K)
        U.append([_linear_init(gen, shape.hidden, shape.hidden).T for _ in range(shape.extra_layers)])
        V.append(_linear_init(gen, shape.order, shape.hidden).T * float(scale))  # (K, M)
        if shape.embedding_trainable:
            E.append(torch.randn(shape.order, shape.order, generator=gen))  # (M, M), nn.Embedding's init
    params = {"W": torch.stack(W), "Vt": torch.stack(V)}
    if shape.extra_layers:
        params["U"] = torch.stack([torch.stack(u) for u in U])  # (R, L, K, K)
    if shape.embedding_trainable:
        params["E"] = torch.stack(E)  # (R, M, M)
    return {k: v.contiguous().to(device) for k, v in params.items()}


def flat_index(x: torch.Tensor, order: int) -> torch.Tensor:
    """Operand indices (R, n, k) -> row indices (k, R·n) into W viewed as (R·M, K) per block.

    Row for run r, sample i, operand j: r·d + j·M + x[r, i, j]  (d = k·M), i.e. into W.view(R·d, K).
    """
    R, n, k = x.shape
    d = k * order
    offs = torch.arange(R, device=x.device).view(R, 1, 1) * d + torch.arange(k, device=x.device).view(1, 1, k) * order
    return (x + offs).permute(2, 0, 1).reshape(k, R * n)


def hidden(params: dict[str, torch.Tensor], rows: torch.Tensor, shape: Shape) -> torch.Tensor:
    """F = σ(XW) (after any residual layers) for `rows` from `flat_index`. Returns (R, n, K)."""
    W = params["W"]  # (R, d, K)
    R, d, K = W.shape
    if "E" in params:  # trainable embedding: W_j ← E·W_j, still gathered by row
        W = torch.cat(
            [torch.bmm(params["E"], W[:, j * shape.order : (j + 1) * shape.order]) for j in range(shape.operands)],
            dim=1,
        )
    table = W.reshape(R * d, K)
    pre = table.index_select(0, rows[0])  # (R·n, K); backward is one index_add
    for j in range(1, rows.shape[0]):
        pre = pre + table.index_select(0, rows[j])
    act = ACTIVATIONS[shape.activation]
    f = act(pre.view(R, -1, K))  # (R, n, K)
    for layer in range(shape.extra_layers):
        f = act(f + torch.bmm(f, params["U"][:, layer]))
    return f


class _TopLayer(torch.autograd.Function):
    """F·V with every product in the orientation the CPU BLAS runs fastest (about 2× here):
    forward (Vᵀ Fᵀ)ᵀ, backward dF = G Vᵀ and dV = (Gᵀ F)ᵀ — the same products as autograd's.

    Under bf16 autocast (`li2.precision`) the forward product is bfloat16, so G is too; the backward
    products then take bfloat16 operands as well (as autograd's own bmm backward would) and return
    gradients in the inputs' float32."""

    @staticmethod
    def forward(ctx, f, Vt):
        ctx.save_for_backward(f, Vt)
        return torch.bmm(Vt.transpose(1, 2), f.transpose(1, 2)).transpose(1, 2)  # (R, n, M) view

    @staticmethod
    def backward(ctx, g):
        f, Vt = ctx.saved_tensors
        low_f, low_vt = f.to(g.dtype), Vt.to(g.dtype)  # no-ops unless the forward was autocast
        d_f = torch.bmm(g, low_vt.transpose(1, 2)).to(f.dtype)  # (R, n, K)
        d_vt = torch.bmm(g.transpose(1, 2), low_f).transpose(1, 2).to(Vt.dtype).contiguous()  # (R, K, M)
        return d_f, d_vt


def output(f: torch.Tensor, Vt: torch.Tensor, beta: torch.Tensor | None) -> torch.Tensor:
    """β · F V: (R, n, K) × (R, K, M) -> (R, n, M); beta (R, 1, 1), or None for β = 1."""
    out = _TopLayer.apply(f, Vt)
    return out if beta is None else out * beta


def centered_targets(y: torch.Tensor, order: int) -> torch.Tensor:
    """One-hot(y) − 1/M, the reference's MSE target. y (R, n) -> (R, n, M)."""
    classes = torch.arange(order, device=y.device)
    return (y.unsqueeze(-1) == classes).to(torch.float32) - 1.0 / order


def sample_mean(x: torch.Tensor, mask: torch.Tensor | None = None, count: torch.Tensor | None = None) -> torch.Tensor:
    """Per-run mean over samples, (R, n) -> (R,).

    In a ragged batch (runs of different n padded to the largest) `mask` (R, n) is 1 on a run's own
    samples and 0 on padding and `count` (R,) is each run's own n: a padded sample then adds exactly
    0 to the sum (and to every gradient), and the sum is divided by the run's own n, as alone.
    """
    return x.mean(-1) if mask is None else (x * mask).sum(-1) / count


def loss_per_run(
    out: torch.Tensor,
    y: torch.Tensor,
    loss: str,
    target: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    count: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-run mean loss, (R,).

    mse: ‖(o − mean_c o) − (e_y − 1/M)‖² summed over classes, averaged over samples (no ½),
         exactly the reference's definition; nll: cross-entropy of softmax(o).
    `target`: centered_targets(y, M), when the caller keeps it (saves rebuilding it every step).
    The loss is always taken in float32: under bf16 autocast (`li2.precision`) `out` is bfloat16,
    and a bfloat16 mean over n samples would keep about three significant digits.
    `mask`, `count`: a ragged batch's padding (`sample_mean`).
    """
    out = out.float()  # float32 already: the same tensor, no copy
    if loss == "mse":
        target = centered_targets(y, out.shape[-1]) if target is None else target
        diff = out - out.mean(-1, keepdim=True) - target
        return sample_mean(diff.square().sum(-1), mask, count)
    logp = torch.log_softmax(out, dim=-1)
    return sample_mean(-logp.gather(-1, y.unsqueeze(-1)).squeeze(-1), mask, count)


def accuracy(
    out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, count: torch.Tensor | None = None
) -> torch.Tensor:
    """Fraction of argmax(out) == y per run, (R,); `mask`, `count` as in `sample_mean` (the
    count of hits is exact in float32, so a padded run's accuracy equals its accuracy alone)."""
    return sample_mean((out.argmax(-1) == y).float(), mask, count)


def ridge_top(f: torch.Tensor, y: torch.Tensor, order: int, eta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """V solving min ‖βFV − Y_c‖² + η‖V‖² with uncentred F and Y_c = one-hot − 1/M (reference's V_ridge).

    The output scale β is inside the objective, so β·V is the ridge fit (FᵀF + η/β² I)⁻¹FᵀY_c of the
    output the loss sees, the minimiser of App. C.3's J = ½‖Ỹ − βF̃V‖² + ½η‖V‖². The reference's
    `set_weight_reg` solves without β and then multiplies the output by β, so its output is β times
    the ridge fit: the same at β = 1 (its default, and every ridge run in the paper), and not a
    minimiser of any loss otherwise; we keep β inside on purpose.

    f (R, n, K), y (R, n), eta and beta (R, 1, 1) -> Vt (R, K, M).
    """
    bf = f * beta
    gram = bf.transpose(1, 2) @ bf  # (R, K, K)
    gram = gram + eta * torch.eye(gram.shape[-1], device=f.device)
    return torch.linalg.solve(gram, bf.transpose(1, 2) @ centered_targets(y, order))


def grad_scale(loss: str, n):
    """Factor turning ∂(mean loss)/∂F into the paper's G_F: n/2 for mse (½‖·‖² summed), n for nll.

    n: an int, or a run's own n per run as an (R,) tensor (then an (R,) tensor)."""
    return n / 2.0 if loss == "mse" else n * 1.0
