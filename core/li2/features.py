"""Which irreducible representation each hidden node has learned (the paper's Thm 2 features).

A hidden node's weight vector w_j (length d = operands·M) splits into one length-M half per operand,
u_j (first operand) and v_j (second). Each half is a function on the group, so its power splits over
the folded isotypic components of `li2.irreps` (the DFT for Z_M). For each node we report

* `dominant`: the non-trivial irrep with most power (both halves together);
* `concentration`: that irrep's share of the node's non-trivial power (1.0 at a Thm-2 maximum);
* `pair_error`: Thm 2's pairing check min_± ‖v − ±P u‖ / ‖u‖ with (P u)(g) = u(g⁻¹) (two operands);
* `pair_same_irrep`: whether v's own dominant irrep is u's (phase-free version of the pairing; the
  maxima are flat, Cor. 1, so trained nodes often carry a relative phase that `pair_error` counts).

Per run: the norm²-weighted mean concentration and the coverage: irreps learned by at least one
*concentrated* node (concentration ≥ `threshold`, and not a dead node whose norm² is below
`dead_fraction` of the mean), and the missing ones. The trivial irrep (constants) is always left
out: it cancels under the zero-mean projection.

Two more per-node reports:

* `emergence_epoch` (from the trainer, `update_emergence`): the diagnostic epoch at which the node's
  current concentrated spell began: it turns on at concentration ≥ `threshold` (live node) and off
  only below `EMERGENCE_RELEASE` (hysteresis), so a node hovering at the threshold keeps its epoch.
  None for a node that is not concentrated at the end.
* `memorizing` (Thm 5): the node's weight is focused on one input pair, w ≈ (e_a, e_b)/√2, the
  global maximum of the energy of a single target h = a·b for power activations (φ = σ'(x)/x
  non-decreasing). Score = (u_a² + v_b²)/‖w‖² at the largest entries a, b of the two operand
  halves, with u_a, v_b of one sign (σ(u_a + v_b) is then largest); memorizing when the score is
  ≥ `MEMORIZATION_SHARE`. For activations with decreasing φ (ReLU, SiLU) Thm 5's maxima spread
  over several pairs of the same target and this score undercounts them.
"""

from __future__ import annotations

import numpy as np

from li2 import irreps as irreps_mod

CONCENTRATION_THRESHOLD = 0.6  # a node with ≥ 60 % of its non-trivial power in one irrep "has" it
DEAD_FRACTION = 0.01  # nodes with norm² < 1 % of the mean norm² are ignored for coverage
SPECTRUM_NODES = 128  # per-node spectra kept in the report (largest-norm nodes first)
EMERGENCE_RELEASE = 0.5  # an emerged node counts as lost again only below this concentration
MEMORIZATION_SHARE = 0.5  # ≥ half of ‖w‖² on one input pair: a memorization node (Thm 5)


def node_powers(W: np.ndarray, irreps: list, operands: int) -> np.ndarray:
    """Power of each node in each irrep, per operand half.

    W: (d, K) or (R, d, K) with d = operands·M. Returns (…, operands, K, n_irreps) with
    power[o, j, k] = ‖Π_k w_j[o-th half]‖².
    """
    W = np.asarray(W, dtype=np.float64)
    M = irreps[0].basis.shape[0]
    Q, owner = irreps_mod.orthogonal_basis(irreps)  # (M, M), (M,)
    halves = W.reshape((*W.shape[:-2], operands, M, W.shape[-1]))  # (…, ops, M, K)
    coeff = np.einsum("mc,...omk->...okc", Q, halves) ** 2  # (…, ops, K, M)
    member = (owner[:, None] == np.arange(len(irreps))[None, :]).astype(np.float64)  # (M, n_irreps)
    return coeff @ member


def concentration_of(power: np.ndarray, irreps: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From (…, K, n_irreps) total powers: dominant irrep index, concentration, non-trivial power."""
    nontriv = np.array([not ir.is_trivial for ir in irreps])
    p = power[..., nontriv]  # (…, K, n_nontriv)
    total = p.sum(-1)
    idx_nt = np.flatnonzero(nontriv)
    dom = idx_nt[p.argmax(-1)]
    conc = np.where(total > 0, p.max(-1) / np.where(total > 0, total, 1.0), 0.0)
    return dom, conc, total


def coverage_of(
    dom: np.ndarray, conc: np.ndarray, norm2: np.ndarray, irreps: list, threshold: float = CONCENTRATION_THRESHOLD
) -> tuple[list[int], list[int]]:
    """Indices of non-trivial irreps covered by a concentrated live node, and of the missing ones."""
    live = live_nodes(norm2)
    covered = {int(k) for k in dom[(conc >= threshold) & live]}
    nontriv = [i for i, ir in enumerate(irreps) if not ir.is_trivial]
    return [i for i in nontriv if i in covered], [i for i in nontriv if i not in covered]


def weighted_concentration(conc: np.ndarray, norm2: np.ndarray) -> float:
    """Norm²-weighted mean concentration over nodes (dead nodes barely count)."""
    s = float(norm2.sum())
    return float((conc * norm2).sum() / s) if s > 0 else float("nan")


def live_nodes(norm2: np.ndarray) -> np.ndarray:
    """Nodes whose norm² is at least DEAD_FRACTION of their run's mean, norm2 (…, K) -> bool (…, K)."""
    return norm2 >= DEAD_FRACTION * np.maximum(norm2.mean(-1, keepdims=True), 1e-300)


def update_emergence(
    emergence: np.ndarray, conc: np.ndarray, norm2: np.ndarray, epoch: int, threshold: float = CONCENTRATION_THRESHOLD
) -> np.ndarray:
    """Next emergence epochs (…, K) after a diagnostic at `epoch`; −1 marks a node not concentrated.

    A node turns on at concentration ≥ threshold (and live) and keeps its epoch until its
    concentration falls below EMERGENCE_RELEASE or it dies.
    """
    live = live_nodes(norm2)
    out = emergence.copy()
    out[(conc < EMERGENCE_RELEASE) | ~live] = -1
    out[(out < 0) & (conc >= threshold) & live] = epoch
    return out


def memorization(W: np.ndarray, task, M: int) -> tuple[np.ndarray, np.ndarray]:
    """Thm 5 focused-memorization score per node (K,) and the target h = a·b it memorizes (K,).

    W (2M, K): u = first operand half, v = second; a, b the largest-|·| entries of u and v; score
    (u_a² + v_b²)/‖w‖² when sign(u_a) = sign(v_b), else 0.
    """
    u, v = W[:M], W[M : 2 * M]  # (M, K)
    cols = np.arange(W.shape[1])
    a, b = np.abs(u).argmax(0), np.abs(v).argmax(0)
    ua, vb = u[a, cols], v[b, cols]
    norm2 = (W**2).sum(0)
    score = np.where((ua * vb > 0) & (norm2 > 0), (ua**2 + vb**2) / np.where(norm2 > 0, norm2, 1.0), 0.0)
    return score, np.asarray(task.table)[a, b]


def pairing(W: np.ndarray, task, M: int) -> np.ndarray:
    """Thm 2 pairing error per node (K,): min_± ‖v − ±P u‖ / ‖u‖, (P u)(g) = u(g⁻¹)."""
    u, v = W[:M], W[M : 2 * M]  # (M, K) each
    Pu = u[np.asarray(task.inverse)]
    nu = np.linalg.norm(u, axis=0)
    err = np.minimum(np.linalg.norm(v - Pu, axis=0), np.linalg.norm(v + Pu, axis=0))
    return np.where(nu > 0, err / np.where(nu > 0, nu, 1.0), np.inf)


def node_features(
    task,
    W: np.ndarray,
    operands: int,
    *,
    threshold: float = CONCENTRATION_THRESHOLD,
    emergence: np.ndarray | None = None,
) -> dict:
    """Per-node irrep decomposition and per-run coverage of a (d, K) hidden weight matrix.

    `emergence` (K,): the trainer's emergence epochs (−1: not concentrated), if it tracked them.
    Returns a JSON-ready dict. For a non-group task: {"group": False, "note": ...}.
    """
    irreps = irreps_mod.decompose(task)
    if irreps is None:
        return {"group": False, "note": irreps_mod.not_a_group_note(task)}
    W = np.asarray(W, dtype=np.float64)
    M, _K = task.order, W.shape[1]
    if W.shape[0] != operands * M:
        raise ValueError(f"W has {W.shape[0]} rows, expected operands·M = {operands}·{M}")
    halves = node_powers(W, irreps, operands)  # (ops, K, n_irreps)
    power = halves.sum(0)  # (K, n_irreps)
    dom, conc, _ = concentration_of(power, irreps)
    norm2 = (W**2).sum(0)  # (K,)
    covered, missing = coverage_of(dom, conc, norm2, irreps, threshold)
    labels = [ir.label for ir in irreps]
    nodes = {
        "dominant": [labels[k] for k in dom],
        "concentration": _r(conc),
        "norm2": _r(norm2),
    }
    if operands == 2:
        dom_u, _, _ = concentration_of(halves[0], irreps)
        dom_v, _, _ = concentration_of(halves[1], irreps)
        nodes["pair_error"] = _r(pairing(W, task, M))
        nodes["pair_same_irrep"] = [bool(a == b) for a, b in zip(dom_u, dom_v, strict=False)]
        nodes["balance"] = _r(halves[1].sum(-1) / np.maximum(halves.sum((0, 2)), 1e-300))
        memo_score, memo_target = memorization(W, task, M)
        nodes["memorization_score"] = _r(memo_score)
    if emergence is not None:
        nodes["emergence_epoch"] = [int(e) if e >= 0 else None for e in np.asarray(emergence)]
    live = live_nodes(norm2)
    conc_nodes = (conc >= threshold) & live
    order = np.argsort(-norm2)[:SPECTRUM_NODES]
    report = {
        "group": True,
        "threshold": threshold,
        "irreps": [{"label": ir.label, "dim": ir.dim, "kind": ir.kind, "rank": ir.rank} for ir in irreps],
        "nodes": nodes,
        "mean_concentration": weighted_concentration(conc, norm2),
        "concentrated_nodes": int(conc_nodes.sum()),
        "live_nodes": int(live.sum()),
        "covered": [labels[k] for k in covered],
        "missing": [labels[k] for k in missing],
        "coverage": len(covered) / max(1, len(covered) + len(missing)),
        "nodes_per_irrep": {labels[k]: int(((dom == k) & conc_nodes).sum()) for k in covered},
        "spectrum": {
            "nodes": [int(j) for j in order],
            "labels": labels,
            "power": [_r(power[j] / max(power[j].sum(), 1e-300)) for j in order],
        },
    }
    if operands == 2:
        memo = (memo_score >= MEMORIZATION_SHARE) & live
        report["memorization"] = {
            "threshold": MEMORIZATION_SHARE,
            "nodes": int(memo.sum()),
            "norm2_share": float(norm2[memo].sum() / max(norm2.sum(), 1e-300)),
            "targets": sorted({int(h) for h in memo_target[memo]}),
        }
        pe = np.asarray(nodes["pair_error"])[conc_nodes]
        same = np.asarray(nodes["pair_same_irrep"])[conc_nodes]
        report["pairing"] = {
            "median_pair_error": float(np.median(pe)) if pe.size else None,
            "same_irrep_share": float(same.mean()) if same.size else None,
        }
    return report


def _r(x, digits: int = 6) -> list:
    """Rounded plain-float list for JSON."""
    return [float(v) for v in np.round(np.asarray(x, dtype=np.float64), digits)]
