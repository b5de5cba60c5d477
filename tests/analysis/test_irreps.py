"""Irreducible representations: Σd² = M, character orthogonality, projectors — for D_4, Q_8, S_3 and more."""

import numpy as np
import pytest

from li2 import irreps
from li2.groups import build_task


def _orthogonality_by_hand(task, decomposition):
    """Independent check: ⟨χ_i, χ_j⟩ = (1/M) Σ_g χ_i(g) conj χ_j(g) = δ_ij, and χ(g∘h) traces."""
    chars = [c for ir in decomposition for c in ir.characters]
    M = task.order
    for i, a in enumerate(chars):
        for j, b in enumerate(chars):
            inner = sum(a[g] * np.conj(b[g]) for g in range(M)) / M
            assert abs(inner - (1.0 if i == j else 0.0)) < 1e-8
    # Class functions: χ(h g h⁻¹) = χ(g) for every pair.
    for c in chars:
        for g in range(M):
            for h in range(M):
                conj = task.table[task.table[h, g], task.inverse[h]]
                assert abs(c[conj] - c[g]) < 1e-8


@pytest.mark.parametrize(
    "spec, dims",
    [
        ({"group": "dihedral", "n": 4}, [1, 1, 1, 1, 2]),
        ({"group": "quaternion"}, [1, 1, 1, 1, 2]),
        ({"group": "symmetric", "n": 3}, [1, 1, 2]),
        ({"group": "symmetric", "n": 4}, [1, 1, 2, 3, 3]),
        ({"group": "dihedral", "n": 5}, [1, 1, 2, 2]),
    ],
)
def test_nonabelian_irreps_satisfy_orthogonality(spec, dims):
    task = build_task(spec)
    dec = irreps.decompose(task)
    assert sorted(ir.dim for ir in dec for _ in ir.characters) == dims
    assert sum(d * d for d in dims) == task.order
    report = irreps.check(task, dec)
    assert report["ok"], report
    _orthogonality_by_hand(task, dec)
    # Each isotypic subspace has dimension d² (real type here).
    assert all(ir.rank == ir.dim**2 * len(ir.characters) for ir in dec)


def test_quaternion_and_dihedral_share_degrees_but_not_characters():
    """D_4 and Q_8 have the same degrees; their character tables differ only by the Frobenius–Schur
    indicator of the 2-d irrep: (1/M) Σ_g χ(g²) = +1 for D_4, −1 for Q_8 (computed here by hand)."""
    for spec, expected in (({"group": "dihedral", "n": 4}, 1.0), ({"group": "quaternion"}, -1.0)):
        task = build_task(spec)
        two_d = next(ir for ir in irreps.decompose(task) if ir.dim == 2)
        chi = two_d.characters[0]
        squares = task.table[np.arange(task.order), np.arange(task.order)]
        assert abs(chi[squares].mean() - expected) < 1e-8
        assert two_d.kind == ("real" if expected > 0 else "quaternionic")


def test_complex_pair_found_numerically_in_a4():
    task = build_task({"group": "alternating", "n": 4})
    dec = irreps.decompose(task)
    kinds = sorted((ir.dim, ir.kind) for ir in dec)
    assert kinds == [(1, "complex_pair"), (1, "trivial"), (3, "real")]
    assert irreps.check(task, dec)["ok"]


def test_cyclic_dft_folds_frequencies():
    task = build_task({"group": "cyclic", "order": 24})
    dec = irreps.decompose(task)
    labels = [ir.label for ir in dec]
    assert labels[0] == "trivial" and len(labels) == 1 + 11 + 1  # k=1..11 pairs, k=12 real
    real = [ir for ir in dec if ir.kind == "real"]
    assert [ir.label for ir in real] == ["k=12"]
    m = np.arange(24)
    alt = (-1.0) ** m / np.sqrt(24)
    assert np.allclose(real[0].projector @ alt, alt)
    assert irreps.check(task, dec)["ok"]


def test_product_group_uses_multidimensional_dft():
    task = build_task({"group": "product", "factors": [2, 3, 4]})
    dec = irreps.decompose(task)
    assert all(ir.label.startswith("k=(") for ir in dec if not ir.is_trivial)
    assert irreps.check(task, dec)["ok"]


def test_abelian_table_without_factors_goes_numerical():
    z6 = [[(a + b) % 6 for b in range(6)] for a in range(6)]
    task = build_task({"group": "table", "table": z6})
    dec = irreps.decompose(task)
    assert sum(len(ir.characters) for ir in dec) == 6
    assert irreps.check(task, dec)["ok"]


def test_expression_is_not_a_group():
    task = build_task({"group": "expression", "expression": "x**2 + x*y + y**2", "modulus": 7})
    assert irreps.decompose(task) is None
    assert "not a group" in irreps.not_a_group_note(task)
