"""Stage diagnostics of the Li2 framework, batched over R runs, at the trainer's measurement cadence.

`batch_diagnostics` turns a snapshot of R same-shape runs into one number per run for each of the
paper's stage markers (paper §3–§5). All solves are float64 and go through one Cholesky factorisation
per run of the smaller regularised Gram matrix of the sample-centred features F̃ (K×K when K ≤ n,
else the n×n push-through form), so a call costs one (R, m, m) factorisation with m = min(n, K).

Columns (each a (R,) float64 tensor, NaN where undefined):

* gf_key_cos      cos(G_F, ỸỸᵀF̃), G_F = P₁^⊥(Y − FV)Vᵀ (Eq. 2) vs the key term of Eqs. 3/5.
* v_ridge_dist    ‖V − V_ridge‖/‖V_ridge‖, V_ridge = (F̃ᵀF̃ + η_eff I)⁻¹F̃ᵀỸ (Eq. 4; η_eff = n·wd/2
                  for the coupled-L2 MSE loss). η_eff = 0 uses the minimum-norm least-squares V.
* ftf_offdiag_ratio  mean |off-diagonal| / mean |diagonal| of F̃ᵀF̃ (Fig. 3's Gram check).
* repulsion_agree Thm 6 on the most similar node pairs: share of pairs where B = (F̃ᵀF̃ + ηI)⁻¹ has
                  sign(B_jl) = −sign(f̃_jᵀf̃_l), i.e. similar features repel. (With P_{η,−jl}
                  replaced by P_η, Thm 6's own sign identity is exact algebra — F̃ᵀP_ηF̃ = ηI − η²B —
                  so we test the claim it is used for: similarity ⇒ negative coupling.) NaN at η = 0.
* missing_residual_share  Thm 7: share of the residual Ỹ − F̃V's non-trivial power (class space)
                  on irreps no concentrated node has learned. NaN for non-groups.
* mean_concentration, coverage  from `li2.features` on W.

The caller passes the *effective* top layer (β·V when an output scale β is used).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from li2 import features as features_mod
from li2 import irreps as irreps_mod

TOP_PAIRS = 200  # most similar node pairs checked for repulsion (as [XU])
COLUMNS = (
    "gf_key_cos",
    "v_ridge_dist",
    "ftf_offdiag_ratio",
    "repulsion_agree",
    "missing_residual_share",
    "mean_concentration",
    "coverage",
)


def batch_diagnostics(
    F: torch.Tensor, Vt: torch.Tensor, y: torch.Tensor, W: torch.Tensor, eta_eff: torch.Tensor, task, operands: int
) -> dict[str, torch.Tensor]:
    """Diagnostics of R runs: F (R, n, K), Vt (R, K, M), y (R, n) long, W (R, d, K), eta_eff (R,).

    Returns {column: (R,) float64 tensor on the CPU}.
    """
    with torch.no_grad():
        F = F.detach().to(torch.float64)
        V = Vt.detach().to(torch.float64)
        eta = torch.as_tensor(eta_eff, dtype=torch.float64, device=F.device).reshape(-1)  # (R,)
        R, _n, K = F.shape
        M = V.shape[-1]
        Y = torch.nn.functional.one_hot(y.to(F.device), M).to(torch.float64)  # (R, n, M)
        Yt = Y - Y.mean(1, keepdim=True)  # Ỹ
        Ft = F - F.mean(1, keepdim=True)  # F̃ (R, n, K)
        resid = Yt - Ft @ V  # P₁^⊥(Y − FV)
        G = resid @ V.transpose(1, 2)  # (R, n, K)
        key = Yt @ (Yt.transpose(1, 2) @ Ft)  # ỸỸᵀF̃
        out = {"gf_key_cos": _cos(G, key)}

        C = Ft.transpose(1, 2) @ Ft  # (R, K, K)
        solver = _RidgeSolver(Ft, C, eta)
        V_ridge = solver.ridge(Yt)  # (R, K, M)
        den = V_ridge.flatten(1).norm(dim=1)
        out["v_ridge_dist"] = torch.where(
            den > 0, (V - V_ridge).flatten(1).norm(dim=1) / den.clamp_min(1e-300), torch.full_like(den, math.nan)
        )
        diag = torch.diagonal(C, dim1=1, dim2=2)  # (R, K)
        off = (C.abs().sum((1, 2)) - diag.abs().sum(1)) / max(K * (K - 1), 1)
        out["ftf_offdiag_ratio"] = off / diag.abs().mean(1).clamp_min(1e-300)
        out["repulsion_agree"] = _repulsion(C, diag, solver, eta)

        irreps = irreps_mod.decompose(task)
        nan = torch.full((R,), math.nan, dtype=torch.float64)
        if irreps is None:
            out.update(missing_residual_share=nan, mean_concentration=nan.clone(), coverage=nan.clone())
        else:
            out.update(_irrep_columns(W, resid, irreps, operands))
    return {k: v.detach().cpu() for k, v in out.items()}


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Frobenius cosine per run of (R, …) tensors."""
    num = (a * b).sum(tuple(range(1, a.ndim)))
    den = a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, math.nan))


class _RidgeSolver:
    """Cholesky factor of the smaller regularised Gram of F̃ (R, n, K): one factorisation per call.

    K ≤ n: L Lᵀ = F̃ᵀF̃ + ηI (K×K). K > n: L Lᵀ = F̃F̃ᵀ + ηI (n×n) and the push-through identities
    (F̃ᵀF̃ + ηI)⁻¹F̃ᵀ = F̃ᵀ(F̃F̃ᵀ + ηI)⁻¹ and B = (I − F̃ᵀ(F̃F̃ᵀ + ηI)⁻¹F̃)/η. At η = 0 a ridge of
    1e-9 · mean eigenvalue stands in (≈ the minimum-norm least-squares solution).
    """

    def __init__(self, Ft: torch.Tensor, C: torch.Tensor, eta: torch.Tensor):
        _R, n, K = Ft.shape
        self.Ft, self.small_k = Ft, n >= K
        A = C if self.small_k else Ft @ Ft.transpose(1, 2)  # (R, m, m)
        m = A.shape[-1]
        scale = torch.diagonal(A, dim1=1, dim2=2).mean(1).clamp_min(1e-300)  # mean eigenvalue
        self.eta = torch.maximum(eta, 1e-9 * scale)  # (R,)
        eye = torch.eye(m, dtype=A.dtype, device=A.device)
        L, info = torch.linalg.cholesky_ex(A + self.eta[:, None, None] * eye)
        if bool((info > 0).any()):  # numerically singular
            L = torch.linalg.cholesky(A + (self.eta + 1e-6 * scale)[:, None, None] * eye)
        self.L = L

    def ridge(self, Yt: torch.Tensor) -> torch.Tensor:
        """V_ridge = (F̃ᵀF̃ + ηI)⁻¹F̃ᵀỸ, (R, K, M)."""
        if self.small_k:
            return torch.cholesky_solve(self.Ft.transpose(1, 2) @ Yt, self.L)
        return self.Ft.transpose(1, 2) @ torch.cholesky_solve(Yt, self.L)  # F̃ᵀ(F̃F̃ᵀ+ηI)⁻¹Ỹ

    def b_offdiag(self, j: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
        """B_jl = [(F̃ᵀF̃ + ηI)⁻¹]_jl for index pairs j ≠ l of shape (R, P)."""
        if self.small_k:
            Binv = torch.cholesky_inverse(self.L)  # (R, K, K)
            return torch.gather(Binv.flatten(1), 1, j * Binv.shape[-1] + l)
        # B_jl = −(1/η) z_jᵀz_l with z = L⁻¹f̃: solve only for the 2P columns involved.
        n = self.Ft.shape[1]
        cols = torch.cat([j, l], dim=1)  # (R, 2P)
        Z = torch.linalg.solve_triangular(
            self.L, torch.gather(self.Ft, 2, cols[:, None, :].expand(-1, n, -1)), upper=False
        )  # (R, n, 2P)
        P = j.shape[1]
        return -(Z[:, :, :P] * Z[:, :, P:]).sum(1) / self.eta[:, None]


def _repulsion(C, diag, solver: _RidgeSolver, eta) -> torch.Tensor:
    """Share of the TOP_PAIRS most similar live pairs with sign(B_jl) = −sign(C_jl)."""
    R, K, _ = C.shape
    live = diag > 1e-8 * diag.amax(1, keepdim=True).clamp_min(1e-300)  # (R, K)
    inv_norm = torch.where(live, diag.clamp_min(1e-300).rsqrt(), torch.zeros_like(diag))
    cos = C * inv_norm[:, :, None] * inv_norm[:, None, :]  # (R, K, K)
    upper = torch.triu(torch.ones(K, K, dtype=torch.bool, device=C.device), diagonal=1)
    score = torch.where(upper, cos.abs(), torch.full_like(cos, -1.0)).flatten(1)  # (R, K²)
    P = min(TOP_PAIRS, K * (K - 1) // 2)
    if P == 0:
        return torch.full((R,), math.nan, dtype=torch.float64)
    top_score, top = score.topk(P, dim=1)  # (R, P)
    j, l = top // K, top % K
    b_sign = torch.sign(solver.b_offdiag(j, l))
    c_sign = torch.sign(torch.gather(C.flatten(1), 1, top))
    valid = (top_score > 0) & (b_sign != 0)
    agree = ((b_sign == -c_sign) & valid).sum(1).to(torch.float64) / valid.sum(1).clamp_min(1)
    return torch.where((eta > 0) & (valid.sum(1) > 0), agree, torch.full_like(agree, math.nan))


def _irrep_columns(W: torch.Tensor, resid: torch.Tensor, irreps: list, operands: int) -> dict:
    """mean_concentration, coverage (from W) and the residual's share on missing irreps (Thm 7)."""
    Wn = W.detach().to(torch.float64).cpu().numpy()  # (R, d, K)
    power = features_mod.node_powers(Wn, irreps, operands).sum(-3)  # (R, K, n_irreps)
    dom, conc, _ = features_mod.concentration_of(power, irreps)  # (R, K)
    norm2 = (Wn**2).sum(1)  # (R, K)
    Q, owner = irreps_mod.orthogonal_basis(irreps)
    member = (owner[:, None] == np.arange(len(irreps))[None, :]).astype(np.float64)  # (M, n_irreps)
    coeff = (resid.cpu() @ torch.as_tensor(Q)).numpy() ** 2  # (R, n, M)
    res_power = coeff.sum(1) @ member  # (R, n_irreps)
    nontriv = np.array([not ir.is_trivial for ir in irreps])
    R = Wn.shape[0]
    mean_c, cov, share = np.empty(R), np.empty(R), np.empty(R)
    for r in range(R):
        covered, missing = features_mod.coverage_of(dom[r], conc[r], norm2[r], irreps)
        mean_c[r] = features_mod.weighted_concentration(conc[r], norm2[r])
        cov[r] = len(covered) / max(1, len(covered) + len(missing))
        total = res_power[r, nontriv].sum()
        share[r] = res_power[r, missing].sum() / total if total > 0 else math.nan
    return {
        "missing_residual_share": torch.as_tensor(share),
        "mean_concentration": torch.as_tensor(mean_c),
        "coverage": torch.as_tensor(cov),
    }
