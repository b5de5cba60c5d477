"""The single-node energy E(w) = ½‖Ỹᵀσ(Xw)‖² of Stage II (the paper's Thm 1, Eq. 7) and its landscape.

In Stage II each hidden node ascends E independently (on the unit sphere, "due to weight decay"),
so the features a network can learn are the local maxima of E. This module evaluates E and its
gradient for any batch of unit or non-unit vectors, and `landscape` maps the maxima: projected
gradient ascent on the sphere from many random starts (batched over starts in torch), then the
distinct maxima with their energy, dominant irrep, concentration and basin share.

Centring. Ỹ = P₁^⊥Y is centred over the *samples* of whichever set E is evaluated on (the paper's
Eq. 1), so Ỹᵀf = Yᵀ(f − f̄) and z_h = Σ_{i: y_i = h}(f_i − f̄). On the full data set every class
occurs M^{k−1} times, so this equals the paper's Ỹ = Y − 1/M exactly; on a training subset it is the
paper's convention (the reference code's class-centred loss differs slightly; docs/design.md, "Loss").

Reference values (σ = x², ‖w‖ = 1, full data, derivable by hand): a single complex-pair frequency
gives M/4 and a real irrep such as (−1)^m at even M gives M/2 — four times the paper's printed
M/16 and M/8 (Thm 2; its proof drops the factor 2 of the cross term in (u_i + v_j)², so the
maxima sit 4× higher, at the same places). Nothing here hard-codes them; the tests derive them independently.
"""

from __future__ import annotations

import numpy as np
import torch

from li2 import features as features_mod
from li2 import irreps as irreps_mod


def activation(name: str):
    """σ by name, the model's own table (li2.model.ACTIVATIONS): sqr, relu, silu, relusqr."""
    from li2.model import ACTIVATIONS

    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


class EnergyData:
    """A data set for E: inputs (n, k) element indices and labels (n,), as torch tensors."""

    def __init__(self, task, operands: int, rows: np.ndarray | None = None, device: str = "cpu"):
        inputs, labels = task.inputs(operands), task.labels(operands)  # (M^k, k), (M^k,)
        if rows is not None:
            inputs, labels = inputs[rows], labels[rows]
        self.M, self.operands, self.n = task.order, operands, len(labels)
        offsets = np.arange(operands) * task.order
        self.cols = torch.as_tensor(inputs + offsets, device=device)  # (n, k) rows of w to sum
        self.labels = torch.as_tensor(labels, device=device)  # (n,)


def batch_energy(w: torch.Tensor, data: EnergyData, act: str = "sqr") -> torch.Tensor:
    """E for a batch of weight vectors w (S, d) → (S,). Differentiable (autograd gives ∇E)."""
    pre = w[:, data.cols].sum(-1)  # (S, n)
    f = activation(act)(pre)
    fc = f - f.mean(dim=1, keepdim=True)  # P₁^⊥ f
    z = torch.zeros(w.shape[0], data.M, dtype=w.dtype, device=w.device)
    z.index_add_(1, data.labels, fc)  # (S, M): z_h = Σ_{y_i=h} f̃_i
    return 0.5 * (z * z).sum(-1)


def energy(
    w: np.ndarray, task, train_idx: np.ndarray | None = None, activation_name: str = "sqr", operands: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """E(w) and ∇E(w) for one vector (d,) or a batch (S, d) on the rows train_idx (None = full data).

    Returns (energy (S,) or scalar, gradient of the same shape as w), float64.
    """
    w_np = np.asarray(w, dtype=np.float64)
    single = w_np.ndim == 1
    wt = torch.tensor(np.atleast_2d(w_np), dtype=torch.float64, requires_grad=True)
    data = EnergyData(task, operands, train_idx)
    e = batch_energy(wt, data, activation_name)
    (g,) = torch.autograd.grad(e.sum(), wt)
    e_np, g_np = e.detach().numpy(), g.numpy()
    return (float(e_np[0]), g_np[0]) if single else (e_np, g_np)


def ascend(
    w0: torch.Tensor, data: EnergyData, act: str = "sqr", steps: int = 3000, tol: float = 1e-7
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projected (Riemannian) gradient ascent of E on the unit sphere, batched over starts.

    w0: (S, d). Each start has its own step size, 1/‖∇E(w0)‖ at first, ×1.2 after a step that raises
    E and ×0.5 (step rejected) after one that would lower it, so every start climbs monotonically.
    Returns (w (S, d), E (S,), tangent-gradient norm relative to E (S,)).
    """
    w = w0 / w0.norm(dim=1, keepdim=True)
    S = w.shape[0]
    e, g = _energy_grad(w, data, act)
    lr = 1.0 / (g.norm(dim=1, keepdim=True) + 1e-12)  # (S, 1)
    rel = torch.ones(S, dtype=w.dtype, device=w.device)
    for _ in range(steps):
        gt = g - (g * w).sum(1, keepdim=True) * w  # tangent gradient (S, d)
        rel = gt.norm(dim=1) / e.abs().clamp_min(1e-12)
        if bool((rel < tol).all()):
            break
        cand = w + lr * gt
        cand = cand / cand.norm(dim=1, keepdim=True)
        e_c, g_c = _energy_grad(cand, data, act)
        up = (e_c >= e)[:, None]
        w = torch.where(up, cand, w)
        e = torch.where(up[:, 0], e_c, e)
        g = torch.where(up, g_c, g)
        lr = torch.where(up, lr * 1.2, lr * 0.5)
    return w.detach(), e.detach(), rel.detach()


def _energy_grad(w: torch.Tensor, data: EnergyData, act: str) -> tuple[torch.Tensor, torch.Tensor]:
    w = w.detach().requires_grad_(True)
    e = batch_energy(w, data, act)
    (g,) = torch.autograd.grad(e.sum(), w)
    return e.detach(), g.detach()


SINGLE_IRREP = 0.99  # a maximum with ≥ 99 % of its non-trivial power in one irrep


def landscape(
    spec: dict, starts: int = 64, device: str = "cpu", seed: int = 0, *, on: str = "train", steps: int = 3000
) -> dict:
    """Local maxima of E on the unit sphere for the spec's task, activation and training set.

    Ascends from `starts` random unit vectors on the spec's training set (`on="train"`) or on all
    M^k samples (`on="full"`, the setting of Thm 2), clusters the end points into distinct maxima
    (same dominant irrep and energy equal within 1e-3 relative), and reports each maximum's energy
    on the training set and on the full data set, dominant irrep, concentration, `single_irrep`
    (concentration ≥ 0.99, a Thm 2 maximum) and basin share. This is the content of landscape.json.
    """
    from li2.groups import build_task
    from li2.spec import validate_spec

    if on not in ("train", "full"):
        raise ValueError(f"on must be 'train' or 'full', got {on!r}")
    spec = validate_spec(spec)
    task = build_task(spec["task"])
    operands = spec["task"]["operands"]
    act = spec["model"]["activation"]
    rows = None if on == "full" else train_rows(spec, task)
    train = EnergyData(task, operands, rows, device)
    full = EnergyData(task, operands, None, device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    w0 = torch.randn(starts, operands * task.order, generator=gen, dtype=torch.float64).to(device)
    w, e_train, rel = ascend(w0, train, act, steps=steps)
    e_full = batch_energy(w, full, act)
    W = w.cpu().numpy().T  # (d, S): starts as "nodes"
    irreps = irreps_mod.decompose(task)
    if irreps is not None:
        power = features_mod.node_powers(W, irreps, operands).sum(0)  # (S, n_irreps)
        dom, conc, _ = features_mod.concentration_of(power, irreps)
        dom_label = [irreps[k].label for k in dom]
    else:
        conc = np.full(starts, np.nan)
        dom_label = ["not a group"] * starts
    maxima = _cluster_maxima(e_train.cpu().numpy(), e_full.cpu().numpy(), conc, dom_label, rel.cpu().numpy())
    for m in maxima:
        m["single_irrep"] = m["concentration"] is not None and m["concentration"] >= SINGLE_IRREP
    out = {
        "task": task.name,
        "order": task.order,
        "operands": operands,
        "activation": act,
        "data": "full" if rows is None else "train",
        "n": train.n,
        "starts": starts,
        "seed": seed,
        "converged_share": float((rel.cpu().numpy() < 1e-4).mean()),
        "maxima": maxima,
    }
    if irreps is None:
        out["note"] = irreps_mod.not_a_group_note(task)
    elif act == "sqr" and operands == 2:
        out["theory_full_data"] = theory_energies(task, irreps)
    return out


def theory_energies(task, irreps: list) -> list[dict]:
    """Corrected Thm 2 maxima for σ = x², ‖w‖ = 1, full data, two operands: E* = M/(2d) for a
    real-type irrep, M/(4d) for a complex pair (the paper prints M/(8d), M/(16d)) and M/(4d) for a
    quaternionic irrep.

    Derivation (abelian, d = 1): with u, v of norms α, β in one frequency, z_h = 2(u∗v)(h) + const
    and ‖u∗v‖² = α²β²·(M/2) for a pair or α²β²·M for a real character, so E = ½·4·‖u∗v‖² is maximal
    at α² = β² = ½. Non-abelian: Schur orthogonality adds the 1/d factor (paper Eq. 20, 25). A
    quaternionic irrep is irreducible over R only as a 2d-dimensional block, like a complex pair;
    its value M/(4d) is what the landscape finds (Q_8: 1.0), the paper does not treat this case.
    """
    M = task.order
    return [
        {
            "irrep": ir.label,
            "dim": ir.dim,
            "kind": ir.kind,
            "energy": M / (2 * ir.dim) if ir.kind == "real" else M / (4 * ir.dim),
        }
        for ir in irreps
        if not ir.is_trivial
    ]


def train_rows(spec: dict, task) -> np.ndarray:
    """The normalised spec's training rows (n,), from li2.data's split (the trainer's own)."""
    from li2.data import make_split
    from li2.spec import resolve_train_size

    return make_split(task, spec["task"]["operands"], resolve_train_size(spec), spec["seed"]).train_idx


def _cluster_maxima(
    e_train: np.ndarray, e_full: np.ndarray, conc: np.ndarray, dom: list[str], rel: np.ndarray, rtol: float = 1e-3
) -> list[dict]:
    """Group end points with the same dominant irrep and energy within rtol; largest basin first."""
    S = len(e_train)
    order = sorted(range(S), key=lambda i: (dom[i], e_train[i]))
    clusters: list[list[int]] = []
    for i in order:
        last = clusters[-1] if clusters else None
        if last and dom[last[-1]] == dom[i] and abs(e_train[i] - e_train[last[-1]]) <= rtol * abs(e_train[i]):
            last.append(i)
        else:
            clusters.append([i])
    out = []
    for c in clusters:
        idx = np.array(c)
        out.append(
            {
                "energy": float(e_train[idx].mean()),
                "energy_full": float(e_full[idx].mean()),
                "dominant_irrep": dom[c[0]],
                "concentration": float(np.nanmean(conc[idx])) if not np.isnan(conc[idx]).all() else None,
                "basin_share": len(c) / S,
                "count": len(c),
                "max_tangent_grad": float(rel[idx].max()),
            }
        )
    out.sort(key=lambda m: (-m["basin_share"], -m["energy"]))
    return out


def node_energies(task, W: np.ndarray, operands: int, act: str, rows: np.ndarray | None) -> dict:
    """E(ŵ_j) of every normalised node on the training rows and on the full data (for reports)."""
    w = torch.tensor(np.asarray(W, dtype=np.float64).T)  # (K, d)
    norms = w.norm(dim=1, keepdim=True).clamp_min(1e-300)
    wh = w / norms
    with torch.no_grad():
        e_tr = batch_energy(wh, EnergyData(task, operands, rows), act)
        e_full = batch_energy(wh, EnergyData(task, operands, None), act)
    return {"train": [float(x) for x in e_tr], "full": [float(x) for x in e_full]}


__all__ = [
    "EnergyData",
    "activation",
    "ascend",
    "batch_energy",
    "energy",
    "landscape",
    "node_energies",
    "theory_energies",
    "train_rows",
]
