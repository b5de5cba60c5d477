"""Stage diagnostics of the Li2 framework, batched over R runs, at the trainer's diagnostic epochs.

`batch_diagnostics` turns a snapshot of R same-shape runs into one number per run for each column of
`COLUMNS` (the one list of diagnostic columns; the trainer imports it). Conventions follow the loss
*as implemented* (the reference's class-centred MSE): Y = one-hot − 1/M (n, M), F = σ(XW)
uncentred (n, K), and V the effective top layer β·V (K, M), class-centred (V·P_c, P_c = I − 11ᵀ/M)
where the loss only sees that part. The top layer's regularised objective is

    J(V) = ‖Y − F V P_c‖² + Σ_j η_j ‖v_j‖²,     its fixed point  V* = (FᵀF + Λ)⁻¹FᵀY,  Λ = diag(η_j),

with η_j from `top_layer_ridge` (n·wd/2 for coupled L2, AdamW's preconditioned decay, ridge_top's η;
all divided by β²). At V* the hidden layer receives G* = E* V*ᵀ with E* = Y − F V* = P_η Y
(Prop. 4 / Eq. 60: G* = P_η Y Yᵀ F B, B = (FᵀF + Λ)⁻¹). Columns (each (R,) float64, NaN where
undefined):

Stage I (top layer, paper §3)
* v_gap           (J(V) − J*) / (J(0) − J*): the share of the top layer's attainable decrease still
                  left. Scale-free and measured in the loss, so the flat directions of the ridge
                  problem, which Adam never settles, do not count. 0 at V*, 1 at V = 0.
* v_ridge_dist    ‖V P_c − V*‖ / ‖V*‖ (parameter distance to the same fixed point).
* gf_key_cos      cos(G_F, Y Yᵀ F) with G_F = (Y − F V P_c)(V P_c)ᵀ: the initial-phase label term of
                  Eq. 3 (Prop. 2) in the gradient the hidden layer receives now.
* gf_fixed_ratio  ‖G*‖ / ‖G_F‖: the fixed-point gradient relative to the current one. 0 when the
                  features interpolate the labels at η = 0 (Prop. 3: G* = 0).
Stage II/III (G* and the Gram structure, paper §4–§5, Fig. 3)
* gf_interaction  share of ‖G*‖² not explained by per-node terms s_j·Y Yᵀ f_j (Eq. 6's independent
                  form): 1 − Σ_j ⟨g*_j, k_j⟩²/‖k_j‖² / ‖G*‖², k_j = Y Yᵀ f_j.
* gf_coupling     the same share for Y V*ᵀ = Y Yᵀ F B, i.e. with P_η replaced by a scalar: what
                  node–node coupling through off-diagonal B alone contributes (Thm 6).
* residual_modulation  1 − cos²(E*, Y): how far the fixed-point residual P_η Y is from a multiple of
                  Y, i.e. how unevenly the top layer leaves the target unexplained (Thm 7).
* ftf_offdiag_ratio    mean |off-diagonal| / mean |diagonal| of F̃ᵀF̃ (F̃ sample-centred; Fig. 3).
* fft_dist_ideal       ‖FFᵀ − [(d̄ − ō)I + ō11ᵀ]‖_F / ‖FFᵀ‖_F, d̄/ō the mean diagonal/off-diagonal
                       entry: distance from Lemma 1's random-feature kernel (Fig. 3).
* p1fft_offdiag_ratio  mean |off-diagonal| / mean |diagonal| of P₁^⊥FFᵀ = F̃Fᵀ (Fig. 3).
Features (group tasks; `li2.features`)
* mean_concentration, coverage

Cost: one Gram of the smaller size m = min(n, K) (FᵀF, or FFᵀ with the push-through identity
(FᵀF + Λ)⁻¹Fᵀ = Λ^{-1/2}(…)), one Cholesky factorisation, and products of size n·K·M; every
G-shaped share is reduced to M×M and M×K products, so no n×K matrix beyond F is formed. The one
Gram statistic that needs the entries of the *other* Gram (|off-diagonal| means) is estimated on
`SAMPLED_ROWS` fixed rows (`_offdiag_ratio`; its error is bounded in the tests), its diagonal exact.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from li2 import features as features_mod
from li2 import irreps as irreps_mod

COLUMNS = (
    "v_gap",
    "v_ridge_dist",
    "gf_key_cos",
    "gf_fixed_ratio",
    "gf_interaction",
    "gf_coupling",
    "residual_modulation",
    "ftf_offdiag_ratio",
    "fft_dist_ideal",
    "p1fft_offdiag_ratio",
    "mean_concentration",
    "coverage",
)
# The stage each column marks and how to read it there ("end": at the stage's end; "max", "mean":
# over the stage; "last": at the end of the run), for the informative-diagnostics check and its table
# in docs/stages.md: each changes clearly between random initialisation and that reading.
MARKS = {
    "v_gap": ("lazy", "end"),
    "v_ridge_dist": ("lazy", "end"),
    "gf_key_cos": ("lazy", "max"),
    "gf_fixed_ratio": ("lazy", "end"),
    "mean_concentration": ("independent", "end"),
    "coverage": ("independent", "end"),
    "gf_interaction": ("interactive", "mean"),
    "residual_modulation": ("interactive", "mean"),
    "gf_coupling": ("interactive", "mean"),
    "fft_dist_ideal": ("interactive", "last"),
    "p1fft_offdiag_ratio": ("interactive", "last"),
    "ftf_offdiag_ratio": ("interactive", "last"),
}
SAMPLED_ROWS = 256  # rows of an m×m Gram used for its mean |off-diagonal| when m is larger
RIDGE_FLOOR = 1e-9  # at η = 0 a ridge of this × the mean Gram eigenvalue stands in (≈ min-norm solution)
DIAGNOSTICS_BUDGET = 0.10  # default cadence: diagnostics cost at most this share of training (`auto_every`)
FP64_COST = 2.0  # a float64 flop against a float32 one in the cost model (CPU BLAS; checked in bench/)
ADAM_EPS = 1e-8  # AdamW's ε (li2.optim.ADAM_EPS), part of its preconditioned decay


def marked_values(metrics: dict, timeline: dict) -> dict[str, tuple[float, float]]:
    """{column: (value at the first diagnostic epoch, value read in the stage it marks)} (`MARKS`)."""
    epochs = np.asarray(metrics["epoch"])
    cols = {k: np.array([np.nan if v is None else v for v in metrics[k]], dtype=float) for k in MARKS}
    rows = np.flatnonzero(np.isfinite(cols["v_gap"]))
    stages = {s["name"]: s for s in timeline["stages"]}
    out = {}
    for name, (stage, how) in MARKS.items():
        if stage not in stages or not rows.size:
            continue
        v, st = cols[name], stages[stage]
        inside = rows[(epochs[rows] >= st["start_epoch"]) & (epochs[rows] <= st["end_epoch"])]
        read = {"end": v[inside[-1]], "max": np.nanmax(v[inside]), "mean": np.nanmean(v[inside]), "last": v[rows[-1]]}
        out[name] = (float(v[rows[0]]), float(read[how]))
    return out


def top_layer_ridge(
    optimizer: str,
    n: int,
    weight_decay: torch.Tensor,
    beta: torch.Tensor,
    ridge_eta: torch.Tensor | None = None,
    exp_avg_sq: torch.Tensor | None = None,
    step: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-node ridge η_j (R, K) of the top layer's fixed point, for the effective top layer β·V.

    weight_decay, beta (R,); ridge_eta (R,) when V is ridge-solved (`ridge_top`); exp_avg_sq (R, K, M)
    and step (R,) AdamW's second moment of V and its step count.

    * coupled L2 (sgd, adam; muon's V is Adam): the stationary point of mean-MSE + wd‖V‖²/2 is
      (FᵀF + (n·wd/2) I)⁻¹FᵀY, so η = n·wd/2;
    * adamw: V ← V(1 − lr·wd) − lr·m̂/(√v̂ + ε) is stationary where the loss gradient equals
      −wd·(√v̂ + ε)∘V, an element-wise ridge η_jc = (n·wd/2)(√v̂_jc + ε); we keep its mean over
      classes per node (one solve instead of M; tested against AdamW's own fixed point);
    * ridge_top: the η the trainer solves with.
    A top layer scaled by β sees η/β² (the objective in β·V).
    """
    R = weight_decay.shape[0]
    if ridge_eta is not None:
        eta = ridge_eta.to(torch.float64)
    else:
        eta = n * weight_decay.to(torch.float64) / 2
    beta2 = beta.to(torch.float64).reshape(R) ** 2
    if ridge_eta is None and optimizer == "adamw" and exp_avg_sq is not None and step is not None:
        bias = (1 - 0.999 ** step.to(torch.float64)).clamp_min(1e-300)  # Adam's β₂ bias correction
        v_hat = exp_avg_sq.to(torch.float64) / bias.view(R, 1, 1)
        precond = (v_hat.sqrt() + ADAM_EPS).mean(-1)  # (R, K)
        return eta.view(R, 1) * precond / beta2.view(R, 1)
    K = exp_avg_sq.shape[1] if exp_avg_sq is not None else 1
    return (eta / beta2).view(R, 1).expand(R, K).contiguous()


def batch_diagnostics(
    F: torch.Tensor, top: torch.Tensor, y: torch.Tensor, W: torch.Tensor, eta: torch.Tensor, task, operands: int
) -> dict[str, torch.Tensor]:
    """Diagnostics of R runs: F (R, n, K), top = β·V (R, K, M), y (R, n) long, W (R, d, K), and
    eta (R,) or (R, K) the top layer's ridge (`top_layer_ridge`). Returns {column: (R,) on the CPU}."""
    with torch.no_grad():
        F = F.detach().to(torch.float64)
        R, _n, K = F.shape
        M = top.shape[-1]
        V = top.detach().to(torch.float64)
        V = V - V.mean(-1, keepdim=True)  # V·P_c: the part of V the class-centred loss sees
        eta = torch.as_tensor(eta, dtype=torch.float64, device=F.device)
        eta = eta.reshape(R, -1).expand(R, K)  # (R, K)
        Y = torch.nn.functional.one_hot(y.to(F.device), M).to(torch.float64) - 1.0 / M  # (R, n, M)
        gram = _Gram(F)
        V_star = gram.ridge(Y, eta)  # (R, K, M)
        E_star = Y - F @ V_star  # P_η Y (R, n, M)
        E = Y - F @ V  # current residual
        out = {}
        J0 = _sq(Y)
        J_star = (Y * E_star).sum((1, 2))  # ridge optimum value ⟨Y, E*⟩
        J = _sq(E) + (eta * (V * V).sum(-1)).sum(-1)
        out["v_gap"] = _ratio(J - J_star, J0 - J_star)
        out["v_ridge_dist"] = _ratio(_sq(V - V_star).sqrt(), _sq(V_star).sqrt())

        YtF = Y.transpose(1, 2) @ F  # (R, M, K)
        YtY = Y.transpose(1, 2) @ Y  # (R, M, M)
        key_norm2 = (YtF * (YtY @ YtF)).sum(1)  # ‖Y Yᵀ f_j‖², (R, K)
        g_dot, g_norm2 = _against_keys(E, V, Y, YtF)  # G_F = E·Vᵀ
        s_dot, s_norm2 = _against_keys(E_star, V_star, Y, YtF)  # G* = E*·V*ᵀ
        b_dot, b_norm2 = _against_keys(Y, V_star, Y, YtF)  # Y·V*ᵀ = Y Yᵀ F B
        out["gf_key_cos"] = _ratio(g_dot.sum(-1), (g_norm2 * key_norm2.sum(-1)).sqrt())
        out["gf_fixed_ratio"] = _ratio(s_norm2.sqrt(), g_norm2.sqrt())
        out["gf_interaction"] = _interaction(s_dot, s_norm2, key_norm2)
        out["gf_coupling"] = _interaction(b_dot, b_norm2, key_norm2)
        out["residual_modulation"] = 1 - _ratio((E_star * Y).sum((1, 2)) ** 2, _sq(E_star) * J0)
        out.update(gram.figure3())

        irreps = irreps_mod.decompose(task)
        if irreps is None:
            nan = torch.full((R,), math.nan, dtype=torch.float64)
            out.update(mean_concentration=nan, coverage=nan.clone())
        else:
            out.update(_irrep_columns(W, irreps, operands))
    return {k: v.detach().cpu() for k, v in out.items()}


def _sq(x: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm per run, (R,)."""
    return (x * x).flatten(1).sum(1)


def _ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b per run, NaN where b is not positive."""
    return torch.where(b > 0, a / b.clamp_min(1e-300), torch.full_like(a, math.nan))


def _against_keys(A: torch.Tensor, B: torch.Tensor, Y: torch.Tensor, YtF: torch.Tensor):
    """For X = A·Bᵀ (A (R, n, M), B (R, K, M)): ⟨x_j, Y Yᵀ f_j⟩ per node (R, K) and ‖X‖² (R,), through
    M×M and M×K products only (X, n×K, is never formed): ⟨x_j, k_j⟩ = Σ_m B_jm [(AᵀY)(YᵀF)]_mj and
    ‖X‖² = tr((AᵀA)(BᵀB))."""
    T = (A.transpose(1, 2) @ Y) @ YtF  # (R, M, K)
    dots = (B.transpose(1, 2) * T).sum(1)  # (R, K)
    norm2 = ((A.transpose(1, 2) @ A) * (B.transpose(1, 2) @ B)).sum((1, 2))
    return dots, norm2


def _interaction(dots: torch.Tensor, norm2: torch.Tensor, key_norm2: torch.Tensor) -> torch.Tensor:
    """1 − (norm² explained by the best per-node multiple of each key) / norm², (R,)."""
    explained = (dots**2 / key_norm2.clamp_min(1e-300)).sum(-1)
    return 1 - _ratio(explained, norm2)


class _Gram:
    """The smaller Gram matrix of F (R, n, K) and what is computed from it.

    K ≤ n: A = FᵀF (K×K); K > n: A = FFᵀ (n×n). One Gram per call (two for a non-uniform ridge
    when K > n); the ridge solve factorises A' + η̄I once.
    """

    def __init__(self, F: torch.Tensor):
        _R, n, K = F.shape
        self.F, self.nodes_side = F, n >= K
        self.A = F.transpose(1, 2) @ F if self.nodes_side else F @ F.transpose(1, 2)  # (R, m, m)

    def ridge(self, Y: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """V* = (FᵀF + diag(η))⁻¹FᵀY, (R, K, M), for η (R, K) ≥ 0.

        With η = η̄·s², s (R, K) around 1 (η̄ the mean per run): FᵀF + diag(η) = S(F'ᵀF' + η̄I)S with
        F' = F S⁻¹, so V* = S⁻¹(F'ᵀF' + η̄I)⁻¹F'ᵀY, by the K×K or the n×n (push-through) system.
        """
        F, A = self.F, self.A
        eta_bar = eta.mean(-1)  # (R,)
        uniform = bool((eta == eta[:, :1]).all())
        s = torch.ones_like(eta)
        if not uniform:
            s = (eta / eta_bar.clamp_min(1e-300)[:, None]).sqrt().clamp_min(1e-6)
            F = F / s[:, None, :]
            A = F.transpose(1, 2) @ F if self.nodes_side else F @ F.transpose(1, 2)
        m = A.shape[-1]
        scale = torch.diagonal(A, dim1=1, dim2=2).mean(1).clamp_min(1e-300)  # mean eigenvalue
        ridge = torch.maximum(eta_bar, RIDGE_FLOOR * scale)
        eye = torch.eye(m, dtype=A.dtype, device=A.device)
        L, info = torch.linalg.cholesky_ex(A + ridge[:, None, None] * eye)
        if bool((info > 0).any()):  # numerically singular even so
            L = torch.linalg.cholesky(A + (ridge + 1e-6 * scale)[:, None, None] * eye)
        if self.nodes_side:
            Vs = torch.cholesky_solve(F.transpose(1, 2) @ Y, L)
        else:
            Vs = F.transpose(1, 2) @ torch.cholesky_solve(Y, L)  # F'ᵀ(F'F'ᵀ + η̄I)⁻¹Y
        return Vs / s[:, :, None]

    def figure3(self) -> dict[str, torch.Tensor]:
        """Fig. 3's Gram checks: F̃ᵀF̃ and P₁^⊥FFᵀ off/diagonal ratios, FFᵀ's distance from ideal."""
        F, A = self.F, self.A
        n = F.shape[1]
        Ft = F - F.mean(1, keepdim=True)  # F̃ = P₁^⊥F
        # ‖FFᵀ‖² = ‖FᵀF‖², tr FFᵀ = ‖F‖², 1ᵀFFᵀ1 = ‖Fᵀ1‖²; with d̄ = tr/n and ō the mean
        # off-diagonal entry, ‖FFᵀ − [(d̄−ō)I + ō11ᵀ]‖² = ‖FFᵀ‖² − n·d̄² − n(n−1)·ō².
        tr, total = _sq(F), _sq(F.sum(1))
        d_bar, o_bar = tr / n, (total - tr) / max(n * (n - 1), 1)
        dist2 = (_sq(A) - n * d_bar**2 - n * (n - 1) * o_bar**2).clamp_min(0)
        return {
            "ftf_offdiag_ratio": _offdiag_ratio(Ft.transpose(1, 2), Ft.transpose(1, 2)),  # F̃ᵀF̃ (K×K)
            "fft_dist_ideal": _ratio(dist2.sqrt(), _sq(A).sqrt()),
            "p1fft_offdiag_ratio": _offdiag_ratio(Ft, F),  # F̃Fᵀ (n×n) = P₁^⊥FFᵀ
        }


def _offdiag_ratio(P: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """mean |off-diagonal| / mean |diagonal| of the square matrix P Qᵀ, P and Q (R, p, d).

    The diagonal (Σ_d P∘Q, all p entries) is exact. The off-diagonal mean is exact for
    p ≤ SAMPLED_ROWS and otherwise taken over SAMPLED_ROWS fixed rows (the same rows at every call,
    so a curve stays smooth): SAMPLED_ROWS·(p − 1) entries. The tests bound its error.
    """
    p = P.shape[1]
    diag = (P * Q).sum(-1).abs()  # (R, p)
    rows = _sample_rows(p, P.device)
    block = P[:, rows] @ Q.transpose(1, 2)  # (R, s, p)
    off = (block.abs().sum((1, 2)) - diag[:, rows].sum(1)) / max(len(rows) * (p - 1), 1)
    return _ratio(off, diag.mean(1))


def _sample_rows(p: int, device) -> torch.Tensor:
    """All rows when p ≤ SAMPLED_ROWS, else SAMPLED_ROWS distinct rows from a fixed generator."""
    if p <= SAMPLED_ROWS:
        return torch.arange(p, device=device)
    gen = torch.Generator().manual_seed(p)
    return torch.randperm(p, generator=gen)[:SAMPLED_ROWS].sort().values.to(device)


def node_concentration(W: torch.Tensor | np.ndarray, task, operands: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-node concentration and norm² of R runs' hidden weights W (R, d, K): two (R, K) arrays,
    or None when the task is not a group (`li2.features`)."""
    irreps = irreps_mod.decompose(task)
    if irreps is None:
        return None
    Wn = W.detach().to(torch.float64).cpu().numpy() if isinstance(W, torch.Tensor) else np.asarray(W, np.float64)
    power = features_mod.node_powers(Wn, irreps, operands).sum(-3)  # (R, K, n_irreps)
    _dom, conc, _ = features_mod.concentration_of(power, irreps)
    return conc, (Wn**2).sum(-2)


def _irrep_columns(W: torch.Tensor, irreps: list, operands: int) -> dict:
    """mean_concentration and coverage from the hidden weights (R, d, K)."""
    Wn = W.detach().to(torch.float64).cpu().numpy()  # (R, d, K)
    power = features_mod.node_powers(Wn, irreps, operands).sum(-3)  # (R, K, n_irreps)
    dom, conc, _ = features_mod.concentration_of(power, irreps)  # (R, K)
    norm2 = (Wn**2).sum(1)  # (R, K)
    R = Wn.shape[0]
    mean_c, cov = np.empty(R), np.empty(R)
    for r in range(R):
        covered, missing = features_mod.coverage_of(dom[r], conc[r], norm2[r], irreps)
        mean_c[r] = features_mod.weighted_concentration(conc[r], norm2[r])
        cov[r] = len(covered) / max(1, len(covered) + len(missing))
    return {"mean_concentration": torch.as_tensor(mean_c), "coverage": torch.as_tensor(cov)}


def cost_ratio(n: int, K: int, M: int) -> float:
    """Estimated cost of one `batch_diagnostics` call over one training step (a flop model).

    Step (float32): forward and backward of F·V on the training set, 6·n·K·M. Diagnostics (float64,
    × FP64_COST): the Gram 2·n·K·m, its Cholesky m³/3 and solves 2·m²·M (m = min(n, K)), the
    n·K·M products and the sampled Gram rows 4·s·n·K. Measured epochs (test forward) cost more, so
    the real share is lower; `bench/bench_diagnostics.py` checks the model against the clock.
    """
    m, s = min(n, K), min(SAMPLED_ROWS, max(n, K))
    step = 6.0 * n * K * M
    diag = 2.0 * n * K * m + m**3 / 3 + 2.0 * m * m * M + 8.0 * n * K * M + 4.0 * s * n * K
    return FP64_COST * diag / step


def auto_every(n: int, K: int, M: int, budget: float = DIAGNOSTICS_BUDGET) -> int:
    """The default diagnostic period in epochs: the smallest whose estimated cost share is ≤ budget."""
    return max(1, math.ceil(cost_ratio(n, K, M) / budget))
