"""Per-node irrep features on hand-built weights: concentration, pairing (Thm 2), coverage."""

import numpy as np
import pytest

from li2.features import node_features
from li2.groups import build_task

M = 23


def fourier_W(freqs, sign=1.0, phase_shift=0.0):
    """Nodes w = [u; ±P u] with u a single frequency (optionally v given an extra phase)."""
    m = np.arange(M)
    cols = []
    for j, k in enumerate(freqs):
        u = np.cos(2 * np.pi * k * m / M + 0.3 * j)
        Pu = u[(-m) % M]
        v = sign * np.cos(2 * np.pi * k * (-m) / M + 0.3 * j + phase_shift)
        assert phase_shift or np.allclose(v, sign * Pu)
        cols.append(np.concatenate([u, v]) * (1 + 0.1 * j))
    return np.stack(cols, axis=1)  # (2M, K)


def test_fourier_nodes_have_concentration_one_and_exact_pairing():
    task = build_task({"group": "cyclic", "order": M})
    for sign in (1.0, -1.0):
        f = node_features(task, fourier_W(list(range(1, 12)) * 2, sign), 2)
        assert f["mean_concentration"] == pytest.approx(1.0, abs=1e-9)
        assert all(c == pytest.approx(1.0) for c in f["nodes"]["concentration"])
        assert max(f["nodes"]["pair_error"]) < 1e-9
        assert f["coverage"] == 1.0 and f["missing"] == []
        assert f["nodes"]["dominant"][:3] == ["k=1", "k=2", "k=3"]
        assert f["nodes_per_irrep"]["k=5"] == 2


def test_phase_shifted_second_half_keeps_irrep_but_breaks_pairing():
    task = build_task({"group": "cyclic", "order": M})
    f = node_features(task, fourier_W([4, 9], phase_shift=1.0), 2)
    assert all(f["nodes"]["pair_same_irrep"])
    assert min(f["nodes"]["pair_error"]) > 0.5


def test_missing_irreps_are_listed():
    task = build_task({"group": "cyclic", "order": M})
    f = node_features(task, fourier_W([1, 2, 3]), 2)
    assert f["covered"] == ["k=1", "k=2", "k=3"]
    assert f["missing"] == [f"k={k}" for k in range(4, 12)]
    assert f["coverage"] == pytest.approx(3 / 11)


def test_mixed_node_concentration_is_its_largest_share():
    task = build_task({"group": "cyclic", "order": M})
    m = np.arange(M)
    u = np.cos(2 * np.pi * 2 * m / M) + 0.5 * np.cos(2 * np.pi * 5 * m / M) + 3.0  # constant ignored
    W = np.concatenate([u, u[(-m) % M]])[:, None]
    f = node_features(task, W, 2)
    assert f["nodes"]["dominant"] == ["k=2"]
    assert f["nodes"]["concentration"][0] == pytest.approx(1 / 1.25, rel=1e-6)
    assert f["covered"] == ["k=2"]


def test_weighted_concentration_weights_by_norm_squared():
    task = build_task({"group": "cyclic", "order": M})
    m = np.arange(M)
    pure = np.cos(2 * np.pi * m / M)
    mixed = np.cos(2 * np.pi * 3 * m / M) + np.cos(2 * np.pi * 4 * m / M)  # concentration ½
    W = np.stack(
        [np.concatenate([pure, pure[(-m) % M]]) * 2.0, np.concatenate([mixed, mixed[(-m) % M]]) / np.sqrt(2)], axis=1
    )
    n2 = (W**2).sum(0)
    f = node_features(task, W, 2)
    assert f["mean_concentration"] == pytest.approx((n2[0] * 1.0 + n2[1] * 0.5) / n2.sum(), rel=1e-6)


def test_nonabelian_node_in_2d_irrep():
    task = build_task({"group": "symmetric", "n": 3})
    from li2 import irreps

    two_d = next(ir for ir in irreps.decompose(task) if ir.dim == 2)
    u = two_d.basis[:, 0]
    W = np.concatenate([u, u[task.inverse]])[:, None]
    f = node_features(task, W, 2)
    assert f["nodes"]["dominant"] == [two_d.label]
    assert f["nodes"]["concentration"][0] == pytest.approx(1.0)


def test_three_operands_and_shape_errors():
    task = build_task({"group": "cyclic", "order": 7})
    W = np.random.default_rng(0).normal(size=(21, 5))
    f = node_features(task, W, 3)
    assert "pair_error" not in f["nodes"] and len(f["nodes"]["dominant"]) == 5
    with pytest.raises(ValueError, match="operands"):
        node_features(task, W, 2)


def test_expression_reports_not_a_group():
    task = build_task({"group": "expression", "expression": "x*y + 1", "modulus": 5})
    f = node_features(task, np.ones((10, 3)), 2)
    assert f["group"] is False and "not a group" in f["note"]


def test_memorization_detector_finds_planted_focused_nodes_and_their_targets():
    """Thm 5: w = (e_a, e_b)/√2 is the energy maximum of one target h = a + b; Fourier and random
    nodes are not flagged."""
    task = build_task({"group": "cyclic", "order": M})
    rng = np.random.default_rng(0)
    pairs = [(3, 5), (10, 20), (22, 22)]
    memo = np.zeros((2 * M, len(pairs)))
    for j, (a, b) in enumerate(pairs):
        memo[a, j], memo[M + b, j] = 1.0, 1.0
    memo += 0.05 * rng.normal(size=memo.shape)  # a little noise on top
    W = np.concatenate([memo, fourier_W(range(1, 12)), rng.normal(size=(2 * M, 40))], axis=1)
    f = node_features(task, W, 2)
    score = np.array(f["nodes"]["memorization_score"])
    assert (score[:3] > 0.9).all() and (score[3:] < 0.5).all()
    assert f["memorization"]["nodes"] == 3
    assert f["memorization"]["targets"] == sorted({(a + b) % M for a, b in pairs})
    # opposite signs on the two entries never add up under σ(u_a + v_b): not a memorization node
    memo[M + 5, 0] *= -1
    assert node_features(task, memo, 2)["nodes"]["memorization_score"][0] == 0.0


def test_emergence_turns_on_at_the_threshold_and_off_only_below_the_release():
    from li2.features import CONCENTRATION_THRESHOLD, EMERGENCE_RELEASE, update_emergence

    em = np.full(4, -1.0)
    norm2 = np.ones(4)
    hi, mid, lo = CONCENTRATION_THRESHOLD + 0.05, (CONCENTRATION_THRESHOLD + EMERGENCE_RELEASE) / 2, 0.1
    em = update_emergence(em, np.array([hi, mid, lo, hi]), norm2, epoch=10)
    assert em.tolist() == [10, -1, -1, 10]
    em = update_emergence(em, np.array([mid, hi, lo, lo]), norm2, epoch=20)  # node 0 hovers: keeps 10
    assert em.tolist() == [10, 20, -1, -1]
    dead = np.array([1.0, 1e-6, 1.0, 1.0])  # node 1 dies: lost
    assert update_emergence(em, np.array([hi, hi, lo, lo]), dead, epoch=30).tolist() == [10, -1, -1, -1]
    f = node_features(build_task({"group": "cyclic", "order": M}), fourier_W([1, 2, 3, 4]), 2, emergence=em)
    assert f["nodes"]["emergence_epoch"] == [10, 20, None, None]
