"""Stage diagnostics against independent numpy computations, planted answers and real optimizers."""

import math

import numpy as np
import pytest
import torch

from li2 import model as nn
from li2.diagnostics import COLUMNS, SAMPLED_ROWS, auto_every, batch_diagnostics, cost_ratio, top_layer_ridge
from li2.groups import build_task
from li2.optim import BatchOptimizer


def snapshot(M, n, K, R=2, seed=0):
    """Random Z_M inputs, hidden weights W (R, 2M, K), features F = (W[a] + W[M+b])², top layers."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, M, size=(R, n, 2))
    y = (x[..., 0] + x[..., 1]) % M
    W = rng.normal(size=(R, 2 * M, K)) / math.sqrt(2 * M)
    F = features(W, x, M)
    Vt = rng.normal(size=(R, K, M)) / math.sqrt(K)
    return x, y, W, F, Vt


def features(W, x, M):
    K = W.shape[-1]
    return (
        np.take_along_axis(W, x[..., :1].repeat(K, -1), 1) + np.take_along_axis(W, M + x[..., 1:].repeat(K, -1), 1)
    ) ** 2


def reference(F, Vt, y, eta, M):
    """Straight numpy with explicit inverses of the K×K matrix and explicit n×K matrices."""
    with np.errstate(divide="ignore", invalid="ignore"):  # V = 0 has no G_F to compare with
        return _reference(F, Vt, y, eta, M)


def _reference(F, Vt, y, eta, M):
    n, K = F.shape
    eta = np.broadcast_to(np.asarray(eta, dtype=float), (K,))
    Y = np.eye(M)[y] - 1.0 / M
    V = Vt - Vt.mean(1, keepdims=True)
    V_star = np.linalg.solve(F.T @ F + np.diag(eta), F.T @ Y)
    E_star, E = Y - F @ V_star, Y - F @ V
    J = lambda V: ((Y - F @ V) ** 2).sum() + (eta * (V**2).sum(1)).sum()  # noqa: E731
    key = Y @ Y.T @ F
    G, G_star, G_B = E @ V.T, E_star @ V_star.T, Y @ V_star.T

    def interaction(X):
        explained = sum((X[:, j] @ key[:, j]) ** 2 / (key[:, j] @ key[:, j]) for j in range(K))
        return 1 - explained / (X**2).sum()

    def offdiag(C):
        p = C.shape[0]
        return ((np.abs(C).sum() - np.abs(np.diag(C)).sum()) / (p * (p - 1))) / np.abs(np.diag(C)).mean()

    Ft = F - F.mean(0)
    FF = F @ F.T
    d_bar, o_bar = np.diag(FF).mean(), (FF.sum() - np.trace(FF)) / (n * (n - 1))
    ideal = (d_bar - o_bar) * np.eye(n) + o_bar
    cos = lambda a, b: (a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    return {
        "v_gap": (J(V) - J(V_star)) / (J(np.zeros_like(V)) - J(V_star)),
        "v_ridge_dist": np.linalg.norm(V - V_star) / np.linalg.norm(V_star),
        "gf_key_cos": cos(G, key),
        "gf_fixed_ratio": np.linalg.norm(G_star) / np.linalg.norm(G),
        "gf_interaction": interaction(G_star),
        "gf_coupling": interaction(G_B),
        "residual_modulation": 1 - cos(E_star, Y) ** 2,
        "ftf_offdiag_ratio": offdiag(Ft.T @ Ft),
        "fft_dist_ideal": np.linalg.norm(FF - ideal) / np.linalg.norm(FF),
        "p1fft_offdiag_ratio": offdiag(FF - FF.mean(0, keepdims=True)),
        "V_star": V_star,
    }


def run(F, Vt, y, W, eta, task):
    return batch_diagnostics(
        torch.tensor(F), torch.tensor(Vt), torch.tensor(y), torch.tensor(W), torch.tensor(eta), task, 2
    )


@pytest.mark.parametrize("node_wise", [False, True], ids=["scalar-eta", "per-node-eta"])
@pytest.mark.parametrize("n, K", [(120, 40), (60, 150)], ids=["K<n", "K>n push-through"])
def test_columns_match_numpy(n, K, node_wise):
    M = 11
    task = build_task({"group": "cyclic", "order": M})
    _x, y, W, F, Vt = snapshot(M, n, K)
    rng = np.random.default_rng(3)
    eta = np.array([[0.3], [2.0]]) * (rng.uniform(0.2, 3.0, size=(2, K)) if node_wise else np.ones((2, K)))
    out = run(F, Vt, y, W, eta, task)
    assert set(out) == set(COLUMNS)
    for r in range(2):
        ref = reference(F[r], Vt[r], y[r], eta[r], M)
        for k in COLUMNS[:-2]:  # all but the irrep columns (tested in test_features)
            assert float(out[k][r]) == pytest.approx(ref[k], rel=1e-6), k


def test_sampled_offdiag_ratios_stay_within_five_percent():
    """Above SAMPLED_ROWS the Gram off-diagonal means come from fixed rows: bounded error."""
    M, n, K = 23, 700, 600
    assert min(n, K) > SAMPLED_ROWS
    task = build_task({"group": "cyclic", "order": M})
    for seed in range(3):
        _x, y, W, F, Vt = snapshot(M, n, K, R=1, seed=seed)
        out = run(F, Vt, y, W, np.array([0.1]), task)
        ref = reference(F[0], Vt[0], y[0], 0.1, M)
        for k in ("ftf_offdiag_ratio", "p1fft_offdiag_ratio"):
            assert float(out[k][0]) == pytest.approx(ref[k], rel=0.05), k


def test_the_fixed_point_itself_has_zero_gap_and_v_at_zero_has_gap_one():
    M, n, K = 11, 80, 30
    task = build_task({"group": "cyclic", "order": M})
    _x, y, W, F, _ = snapshot(M, n, K, R=1)
    V_star = reference(F[0], np.zeros((K, M)), y[0], 0.5, M)["V_star"][None]
    at_star = run(F, V_star, y, W, np.array([0.5]), task)
    assert abs(float(at_star["v_gap"][0])) < 1e-9 and float(at_star["v_ridge_dist"][0]) < 1e-8
    assert float(at_star["gf_fixed_ratio"][0]) == pytest.approx(1.0)
    # a class-constant shift of V is invisible to the class-centred loss and to V·P_c
    shifted = run(F, V_star + 5.0, y, W, np.array([0.5]), task)
    assert abs(float(shifted["v_gap"][0])) < 1e-9
    at_zero = run(F, np.zeros_like(V_star), y, W, np.array([0.5]), task)
    assert float(at_zero["v_gap"][0]) == pytest.approx(1.0)


def test_no_fixed_point_gradient_when_features_interpolate_at_zero_ridge():
    """Prop. 3: with η = 0 and K > n the features fit Y exactly, so E* = 0 and G* = 0; with K < n
    the least-squares residual stays and so does G* (the test reads the data, not η)."""
    M = 11
    task = build_task({"group": "cyclic", "order": M})
    _x, y, W, F, Vt = snapshot(M, 40, 120, R=1)
    assert float(run(F, Vt, y, W, np.array([0.0]), task)["gf_fixed_ratio"][0]) < 1e-6
    _x, y, W, F, Vt = snapshot(M, 200, 30, R=1)
    assert float(run(F, Vt, y, W, np.array([0.0]), task)["gf_fixed_ratio"][0]) > 0.01


def _train_top_layer(kind, F, y, wd, steps, lr=0.01):
    """Train only V (the trainer's loss and optimizer) on fixed features F (1, n, K)."""
    M = int(y.max()) + 1
    torch.manual_seed(0)
    V = (torch.randn(1, F.shape[-1], M) * 0.1).requires_grad_()
    opt = BatchOptimizer(kind, {"Vt": V}, torch.tensor([0.9]))
    lr = 0.05 if kind == "sgd" else lr
    for _ in range(steps):
        loss = nn.loss_per_run(nn.output(F, V, None), y, "mse")
        (g,) = torch.autograd.grad(loss.sum(), [V])
        opt.step({"Vt": g}, torch.tensor([lr]), torch.tensor([wd]))
    return V.detach(), opt


@pytest.mark.parametrize("kind", ["adam", "sgd", "adamw"])
def test_the_fixed_point_is_where_each_optimizer_settles(kind):
    """V trained alone on fixed features by the real optimizer ends at the diagnostics' fixed point
    (v_gap ≈ 0 at the η `top_layer_ridge` gives it), and not at the other kind of regularisation's:
    coupled L2 (adam, sgd) and AdamW's decoupled decay settle at different points."""
    M, n, K, wd = 7, 60, 20, 0.05
    task = build_task({"group": "cyclic", "order": M})
    _x, y, W, F, _ = snapshot(M, n, K, R=1)
    V, opt = _train_top_layer(kind, torch.tensor(F, dtype=torch.float32), torch.tensor(y), wd, 300, lr=0.03)
    v2 = opt.state.get("Vt.exp_avg_sq", torch.full((1, K, M), 1e-4))  # sgd has none: any will do
    gaps = {}
    for rule in ("adam", "adamw"):
        eta = top_layer_ridge(rule, n, torch.tensor([wd]), torch.tensor([1.0]), exp_avg_sq=v2, step=opt.state["step"])
        gaps[rule] = float(run(F, V.numpy(), y, W, eta.numpy(), task)["v_gap"][0])
    mine, other = ("adamw", "adam") if kind == "adamw" else ("adam", "adamw")
    assert gaps[mine] < 1e-3 and gaps[other] > 0.1, gaps


def test_top_layer_ridge_scales_with_n_weight_decay_ridge_and_beta():
    wd, beta = torch.tensor([1e-4, 2e-4]), torch.tensor([1.0, 2.0])
    eta = top_layer_ridge("adam", 476, wd, beta)
    assert eta[:, 0].tolist() == pytest.approx([476 * 1e-4 / 2, 476 * 2e-4 / 2 / 4])
    ridge = top_layer_ridge("adam", 476, wd, beta, ridge_eta=torch.tensor([0.5, 0.5]))
    assert ridge[:, 0].tolist() == pytest.approx([0.5, 0.5 / 4])


def test_non_groups_give_nan_irrep_columns_not_errors():
    M, n, K = 7, 40, 60
    task = build_task({"group": "expression", "expression": "x*x + y", "modulus": M})
    rng = np.random.default_rng(1)
    x = rng.integers(0, M, size=(1, n, 2))
    y = (x[..., 0] ** 2 + x[..., 1]) % M
    W = rng.normal(size=(1, 2 * M, K))
    F = features(W, x, M) + 1.0
    out = run(F, rng.normal(size=(1, K, M)), y, W, np.array([0.0]), task)
    assert math.isnan(float(out["coverage"][0])) and math.isnan(float(out["mean_concentration"][0]))
    assert all(np.isfinite(float(out[k][0])) for k in COLUMNS[:-2])


def test_default_cadence_keeps_the_estimated_share_within_budget():
    for n, K, M in [(476, 512, 23), (832, 2048, 71), (1691, 2048, 127)]:
        every = auto_every(n, K, M)
        assert cost_ratio(n, K, M) / every <= 0.1 < cost_ratio(n, K, M) / max(every - 1, 1e-9)
