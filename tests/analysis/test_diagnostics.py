"""Stage diagnostics against independent numpy computations on small random snapshots."""

import math

import numpy as np
import pytest
import torch

from li2.diagnostics import COLUMNS, batch_diagnostics
from li2.groups import build_task


def snapshot(M, n, K, R=2, seed=0, freqs=None):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, M, size=(R, n, 2))
    y = (x[..., 0] + x[..., 1]) % M
    W = rng.normal(size=(R, 2 * M, K)) / math.sqrt(2 * M)
    if freqs is not None:  # plant single-frequency nodes
        m = np.arange(M)
        for j in range(K):
            k = freqs[j % len(freqs)]
            u = np.cos(2 * np.pi * k * m / M + j)
            W[:, :M, j], W[:, M:, j] = u, u[(-m) % M]
    F = (
        np.take_along_axis(W, x[..., :1].repeat(K, -1), 1) + np.take_along_axis(W, M + x[..., 1:].repeat(K, -1), 1)
    ) ** 2
    Vt = rng.normal(size=(R, K, M)) / math.sqrt(K)
    return x, y, W, F, Vt


def reference(F, Vt, y, eta, M):
    """Straight numpy: explicit inverses of the K×K matrix."""
    _n, K = F.shape
    Y = np.eye(M)[y]
    Yt, Ft = Y - Y.mean(0), F - F.mean(0)
    G = (Yt - Ft @ Vt) @ Vt.T
    key = Yt @ Yt.T @ Ft
    cos = (G * key).sum() / np.linalg.norm(G) / np.linalg.norm(key)
    A = Ft.T @ Ft + eta * np.eye(K)
    V_ridge = np.linalg.solve(A, Ft.T @ Yt)
    C = Ft.T @ Ft
    off = (np.abs(C).sum() - np.abs(np.diag(C)).sum()) / (K * (K - 1))
    return {
        "gf_key_cos": cos,
        "v_ridge_dist": np.linalg.norm(Vt - V_ridge) / np.linalg.norm(V_ridge),
        "ftf_offdiag_ratio": off / np.abs(np.diag(C)).mean(),
        "B": np.linalg.inv(A),
        "C": C,
        "V_ridge": V_ridge,
        "resid": Yt - Ft @ Vt,
    }


@pytest.mark.parametrize("n, K", [(120, 40), (60, 150)])  # K ≤ n and the push-through K > n
def test_columns_match_numpy(n, K):
    M = 11
    task = build_task({"group": "cyclic", "order": M})
    _x, y, W, F, Vt = snapshot(M, n, K)
    eta = np.array([0.3, 2.0])
    out = batch_diagnostics(
        torch.tensor(F), torch.tensor(Vt), torch.tensor(y), torch.tensor(W), torch.tensor(eta), task, 2
    )
    assert set(out) == set(COLUMNS)
    for r in range(2):
        ref = reference(F[r], Vt[r], y[r], eta[r], M)
        for k in ("gf_key_cos", "v_ridge_dist", "ftf_offdiag_ratio"):
            assert float(out[k][r]) == pytest.approx(ref[k], rel=1e-6), k
        # Repulsion: recompute the share over the same top-200 most similar pairs by |cos|.
        C, B = ref["C"], ref["B"]
        d = np.sqrt(np.diag(C))
        cos = np.abs(C / d[:, None] / d[None, :])
        iu = np.triu_indices(K, 1)
        top = np.argsort(-cos[iu])[:200]
        j, l = iu[0][top], iu[1][top]
        share = np.mean(np.sign(B[j, l]) == -np.sign(C[j, l]))
        assert float(out["repulsion_agree"][r]) == pytest.approx(share)


def test_ridge_solution_has_zero_distance():
    M, n, K = 11, 80, 30
    task = build_task({"group": "cyclic", "order": M})
    _x, y, W, F, _ = snapshot(M, n, K, R=1)
    V = reference(F[0], np.full((K, M), 0.01), y[0], 0.5, M)["V_ridge"][None]
    out = batch_diagnostics(
        torch.tensor(F), torch.tensor(V), torch.tensor(y), torch.tensor(W), torch.tensor([0.5]), task, 2
    )
    assert float(out["v_ridge_dist"][0]) < 1e-8


def test_missing_residual_share_from_planted_frequencies():
    """Nodes cover k = 1, 2, 3 only; the share must equal the residual power on k = 4..11."""
    M, n, K = 23, 200, 30
    task = build_task({"group": "cyclic", "order": M})
    _x, y, W, F, Vt = snapshot(M, n, K, R=1, freqs=[1, 2, 3])
    out = batch_diagnostics(
        torch.tensor(F), torch.tensor(Vt), torch.tensor(y), torch.tensor(W), torch.tensor([0.1]), task, 2
    )
    assert float(out["coverage"][0]) == pytest.approx(3 / 11)
    assert float(out["mean_concentration"][0]) == pytest.approx(1.0)
    resid = reference(F[0], Vt[0], y[0], 0.1, M)["resid"]  # (n, M)
    spec = np.abs(np.fft.fft(resid, axis=1)) ** 2  # per-class-frequency power
    power = spec[:, 1:].sum(0)  # k = 1..22
    missing = sum(power[k - 1] + power[M - k - 1] for k in range(4, 12))
    assert float(out["missing_residual_share"][0]) == pytest.approx(missing / power.sum(), rel=1e-6)


def test_zero_weight_decay_and_non_groups_give_nan_not_errors():
    M, n, K = 7, 40, 60
    task = build_task({"group": "expression", "expression": "x*x + y", "modulus": M})
    rng = np.random.default_rng(1)
    x = rng.integers(0, M, size=(1, n, 2))
    y = (x[..., 0] ** 2 + x[..., 1]) % M
    W = rng.normal(size=(1, 2 * M, K))
    F = (np.take_along_axis(W, x[..., :1].repeat(K, -1), 1)) ** 2 + 1.0
    out = batch_diagnostics(
        torch.tensor(F),
        torch.tensor(rng.normal(size=(1, K, M))),
        torch.tensor(y),
        torch.tensor(W),
        torch.tensor([0.0]),
        task,
        2,
    )
    assert math.isnan(float(out["repulsion_agree"][0]))  # Thm 6's B needs η > 0
    assert math.isnan(float(out["missing_residual_share"][0]))
    assert math.isnan(float(out["coverage"][0]))
    assert np.isfinite(float(out["v_ridge_dist"][0]))  # minimum-norm stand-in
    assert np.isfinite(float(out["gf_key_cos"][0]))
