"""Energy E(w) = ½‖Ỹᵀσ(Xw)‖²: Fourier maxima have the derived values, the landscape finds them.

Expected values are derived here by hand, independent of li2.energy. For σ = x², two operands, full
data and w = [u; v] with u, v in one frequency class of norms α, β (α² + β² = 1):
z_h = Σ_{a∘b=h} (u_a + v_b)² = const + 2(u∗v)(h), so E = ½ Σ_h (2(u∗v)(h))² = 2‖u∗v‖².
For u = α√(2/M)cos(ωka), v = β√(2/M)cos(ωkb + φ): (u∗v)(h) = αβ cos(ωkh + φ) ⇒ ‖u∗v‖² = α²β²M/2,
E = α²β²M, maximal at α² = β² = ½: **M/4**. For the real irrep (−1)^m at even M: (u∗v)(h) =
αβ(−1)^h ⇒ ‖u∗v‖² = α²β²M, E = 2α²β²M → **M/2**. (The paper prints M/16 and M/8.)
"""

import numpy as np
import pytest

from li2 import energy
from li2.groups import build_task


def explicit_energy(task, w, rows=None, act=lambda x: x * x):
    """Literal double loop over samples: z_h = Σ_{i: y_i = h} (f_i − mean f), E = ½ Σ_h z_h²."""
    M = task.order
    pairs = [(a, b) for a in range(M) for b in range(M)]
    if rows is not None:
        pairs = [pairs[i] for i in rows]
    f = [act(w[a] + w[M + b]) for a, b in pairs]
    mean = sum(f) / len(f)
    z = [0.0] * M
    for (a, b), fi in zip(pairs, f, strict=False):
        z[task.table[a, b]] += fi - mean
    return 0.5 * sum(x * x for x in z)


def fourier_node(M, k, phase_u=0.0, phase_v=0.0):
    m = np.arange(M)
    u = np.cos(2 * np.pi * k * m / M + phase_u)
    v = np.cos(2 * np.pi * k * m / M + phase_v)
    w = np.concatenate([u / np.linalg.norm(u), v / np.linalg.norm(v)]) / np.sqrt(2)
    return w


@pytest.mark.parametrize("M, k", [(23, 1), (23, 7), (24, 5), (11, 3)])
def test_complex_pair_frequency_energy_is_M_over_4(M, k):
    task = build_task({"group": "cyclic", "order": M})
    w = fourier_node(M, k, 0.4, -1.1)
    e, _ = energy.energy(w, task)
    assert e == pytest.approx(explicit_energy(task, w), rel=1e-10)
    assert e == pytest.approx(M / 4, rel=1e-10)


def test_real_irrep_energy_is_M_over_2_at_even_order():
    M = 24
    task = build_task({"group": "cyclic", "order": M})
    alt = (-1.0) ** np.arange(M)
    w = np.concatenate([alt, alt]) / np.sqrt(2 * M)
    e, _ = energy.energy(w, task)
    assert e == pytest.approx(explicit_energy(task, w), rel=1e-10)
    assert e == pytest.approx(M / 2, rel=1e-10)


def test_theory_table_matches_constructed_maxima():
    task = build_task({"group": "cyclic", "order": 24})
    from li2 import irreps

    table = {t["irrep"]: t["energy"] for t in energy.theory_energies(task, irreps.decompose(task))}
    alt = (-1.0) ** np.arange(24)
    assert table["k=12"] == pytest.approx(energy.energy(np.concatenate([alt, alt]) / np.sqrt(48), task)[0])
    assert table["k=5"] == pytest.approx(energy.energy(fourier_node(24, 5), task)[0])


def test_training_subset_energy_and_gradient():
    task = build_task({"group": "cyclic", "order": 11})
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(121, 60, replace=False))
    w = rng.normal(size=22)
    e, g = energy.energy(w, task, rows, "sqr")
    assert e == pytest.approx(explicit_energy(task, w, rows), rel=1e-10)
    eps = 1e-6
    for i in (0, 5, 13, 21):
        d = np.zeros(22)
        d[i] = eps
        fd = (explicit_energy(task, w + d, rows) - explicit_energy(task, w - d, rows)) / (2 * eps)
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_relu_energy_matches_explicit_sum():
    task = build_task({"group": "cyclic", "order": 7})
    w = np.random.default_rng(3).normal(size=14)
    e, _ = energy.energy(w, task, None, "relu")
    assert e == pytest.approx(explicit_energy(task, w, act=lambda x: max(x, 0.0)), rel=1e-10)


SPEC = {
    "task": {"group": "cyclic", "order": 23},
    "data": {"train_fraction": 0.5},
    "model": {"hidden": 8, "activation": "sqr"},
    "training": {"optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "epochs": 10, "loss": "mse"},
    "seed": 1,
}


def test_landscape_of_z23_on_full_data_has_single_frequency_maxima_only():
    out = energy.landscape(SPEC, starts=48, seed=0, on="full")
    assert out["data"] == "full" and out["n"] == 23 * 23
    assert out["converged_share"] == 1.0
    labels = {m["dominant_irrep"] for m in out["maxima"]}
    assert all(m["single_irrep"] for m in out["maxima"])
    assert labels <= {f"k={k}" for k in range(1, 12)}
    assert len(labels) >= 8  # many distinct frequencies hit
    for m in out["maxima"]:
        assert m["concentration"] > 0.999
        assert m["energy"] == pytest.approx(23 / 4, rel=1e-6)
    assert sum(m["basin_share"] for m in out["maxima"]) == pytest.approx(1.0)


def test_landscape_on_training_set_reports_both_energies():
    out = energy.landscape(SPEC, starts=8, seed=1, on="train", steps=400)
    assert out["data"] == "train" and out["n"] < 23 * 23
    for m in out["maxima"]:
        assert np.isfinite(m["energy"]) and np.isfinite(m["energy_full"])


def test_landscape_rejects_unknown_data_choice():
    with pytest.raises(ValueError, match="on must be"):
        energy.landscape(SPEC, starts=2, on="test")


@pytest.mark.parametrize(
    "task_spec", [{"group": "dihedral", "n": 4}, {"group": "symmetric", "n": 3}, {"group": "quaternion"}]
)
def test_nonabelian_landscape_maxima_sit_on_single_irreps_at_M_over_2d(task_spec):
    """Corrected Thm 2 for real-type irreps of dimension d (Schur orthogonality adds 1/d to the
    abelian derivation above): E* = M/(2d), i.e. 1-d irreps at M/2 and 2-d irreps at M/4.
    Q_8's 2-d irrep is quaternionic: over R it is one 4-dimensional block, like a complex pair,
    and sits at M/(4d) = 1 — an observation (the paper covers real and complex types only)."""
    from li2 import irreps

    task = build_task(task_spec)
    dims = {ir.label: ir.dim * (2 if ir.kind == "quaternionic" else 1) for ir in irreps.decompose(task)}
    out = energy.landscape({**SPEC, "task": task_spec}, starts=48, seed=2, on="full")
    assert out["converged_share"] == 1.0
    for m in out["maxima"]:
        assert m["single_irrep"]
        assert m["energy"] == pytest.approx(task.order / (2 * dims[m["dominant_irrep"]]), rel=1e-5)
