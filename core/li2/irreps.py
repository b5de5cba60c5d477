"""Irreducible representations of a finite group task, as real isotypic projectors on R^M.

Everything the analyses do with "which irrep does this hidden node use" needs the decomposition of
R^M (functions on the group) into isotypic subspaces of the regular representation (the paper's
Eq. 8, App. A.1). Over the reals a complex irrep χ and its conjugate χ̄ share one real subspace, so
we fold them into one *complex pair*; real-valued characters (real or quaternionic type) keep their
own subspace. Each component carries its real orthogonal projector Π (M, M), an orthonormal basis,
its irrep dimension d_k and character(s), so that

    Σ_k rank(Π_k) = M,   Σ_k Π_k = I,   Π_k Π_l = δ_kl Π_k,   Σ_χ d_χ² = M.

Two routes, both exact up to float rounding:

* **Abelian groups with a known product structure** (`task.factors`, cyclic included): characters
  are the multi-dimensional DFT χ_k(g) = exp(2πi Σ_j k_j g_j / m_j). Labels are "k=3" (cyclic) or
  "k=(1,0,2)" (products); a frequency and its negative are one label.
* **Any other group** (non-abelian, or abelian given only by a table): a random symmetric central
  element z = Σ_classes t_C (C + C⁻¹) of the group algebra acts on every folded isotypic component
  as one real scalar, so the eigen-decomposition of its regular matrix L_z (M, M), which is
  symmetric, splits R^M into the folded components. An antisymmetric central element tells complex
  pairs (non-zero on them) from real-valued characters (zero), and splits a pair into χ and χ̄;
  characters follow as χ(g) = tr(R_g Π_χ) / d. The Frobenius–Schur indicator (1/M)Σ_g χ(g²)
  separates real-type (+1) from quaternionic (−1, e.g. Q_8's 2-d irrep) characters. Labels are
  "trivial", "1d#1", "2d#4", ….

Expressions (not groups) have no irreps: `decompose` returns None and callers report "not a group".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TRIVIAL = "trivial"


@dataclass(frozen=True)
class Irrep:
    """One folded isotypic component of the regular representation over R."""

    label: str  # "trivial", "k=3", "k=(1,2)", "2d#1"
    dim: int  # d_k, the dimension of the (complex) irrep
    kind: str  # "trivial" | "real" (real-valued character) | "complex_pair"
    basis: np.ndarray  # (M, r) orthonormal basis of the real subspace, r = d² or 2d²
    characters: tuple  # (M,) complex arrays: (χ,) or (χ, χ̄) for a pair

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    @property
    def projector(self) -> np.ndarray:
        """Real orthogonal projector Π_k (M, M) onto this component."""
        return self.basis @ self.basis.T

    @property
    def is_trivial(self) -> bool:
        return self.kind == TRIVIAL


def decompose(task) -> list[Irrep] | None:
    """Folded isotypic decomposition of R^M for a group task; None for expressions (not a group).

    The trivial irrep comes first. Results are cached per Cayley table.
    """
    if not getattr(task, "is_group", False):
        return None
    table = np.ascontiguousarray(task.table, dtype=np.int64)
    return list(_decompose_cached(table.tobytes(), table.shape[0], tuple(task.factors or ()), bool(task.is_abelian)))


def not_a_group_note(task) -> str:
    """The message analyses report instead of irrep results for a non-group task."""
    return f"{task.name} is not a group (kind {task.kind!r}): irreps, features and coverage are undefined"


@lru_cache(maxsize=32)
def _decompose_cached(raw: bytes, M: int, factors: tuple, abelian: bool) -> tuple[Irrep, ...]:
    table = np.frombuffer(raw, dtype=np.int64).reshape(M, M)
    if abelian and factors:
        irreps = _abelian_dft(table, factors)
        if irreps is not None:
            return tuple(irreps)
    return tuple(_numerical(table))


# ----------------------------------------------------------------------------------------------
# Abelian route: multi-dimensional DFT over the factor groups.
# ----------------------------------------------------------------------------------------------


def _abelian_dft(table: np.ndarray, factors: tuple) -> list[Irrep] | None:
    """DFT characters for Z_m1 × … indexed in mixed radix; None if the table is not that group."""
    M = table.shape[0]
    if int(np.prod(factors)) != M:
        return None
    coords = np.stack(np.unravel_index(np.arange(M), factors), axis=1)  # (M, r) element digits
    freqs = coords  # frequency vectors, same grid
    phase = (freqs[:, None, :] * coords[None, :, :] / np.array(factors)).sum(-1)  # (M_freq, M_elem)
    chars = np.exp(2j * np.pi * phase)  # (M_freq, M_elem)
    # Verify χ(a∘b) = χ(a)χ(b) for the generating characters (unit frequency vectors) on the
    # actual table, so a `factors` that does not describe the indexing cannot mislead us.
    for j in range(len(factors)):
        probe = chars[np.ravel_multi_index(tuple(np.eye(len(factors), dtype=int)[j]), factors)]
        if not np.allclose(probe[table], np.outer(probe, probe), atol=1e-9):
            return None
    neg = np.ravel_multi_index(tuple(((-freqs) % np.array(factors)).T), factors)  # index of -k
    out, seen = [], set()
    for k in range(M):
        if k in seen:
            continue
        seen.update({k, int(neg[k])})
        chi = chars[k]
        label = _freq_label(freqs[k], factors)
        if k == 0:
            out.append(Irrep(TRIVIAL, 1, TRIVIAL, np.full((M, 1), 1 / np.sqrt(M)), (chi,)))
        elif neg[k] == k:  # real character, e.g. (-1)^m at even M
            out.append(Irrep(label, 1, "real", (chi.real / np.sqrt(M))[:, None], (chi,)))
        else:  # cos / sin pair
            basis = np.stack([chi.real, chi.imag], axis=1) * np.sqrt(2 / M)  # (M, 2)
            out.append(Irrep(label, 1, "complex_pair", basis, (chi, chi.conj())))
    return out


def _freq_label(k: np.ndarray, factors: tuple) -> str:
    """Canonical label of the pair {k, -k}: the lexicographically smaller representative."""
    f = np.array(factors)
    a, b = tuple(int(x) for x in k), tuple(int(x) for x in (-k) % f)
    rep = min(a, b)
    return f"k={rep[0]}" if len(rep) == 1 else "k=(" + ",".join(str(x) for x in rep) + ")"


# ----------------------------------------------------------------------------------------------
# Numerical route: central elements of the group algebra.
# ----------------------------------------------------------------------------------------------


def group_algebra_matrix(table: np.ndarray, inverse: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Regular matrix L_z = Σ_g z_g R_g (M, M) of z ∈ R[G], with R_g e_h = e_{g∘h}.

    (L_z)_{ij} = z_{i∘j⁻¹}; built by gathers, never materialising the (M, M, M) stack of R_g.
    """
    return z[table[:, inverse]]


def regular_traces(table: np.ndarray, P: np.ndarray) -> np.ndarray:
    """tr(R_g P) for every g (M,): Σ_j P[j, g∘j]."""
    M = table.shape[0]
    return P[np.arange(M)[None, :], table].sum(axis=1)


def conjugacy_classes(table: np.ndarray) -> list[np.ndarray]:
    """Conjugacy classes as arrays of element indices, in order of first element."""
    M = table.shape[0]
    identity = int(np.flatnonzero((table == np.arange(M)[None, :]).all(axis=1))[0])
    inverse = np.argmax(table == identity, axis=1)  # (M,)
    label = -np.ones(M, dtype=np.int64)
    classes = []
    for g in range(M):
        if label[g] >= 0:
            continue
        cls = np.unique(table[table[:, g], inverse])  # {x g x⁻¹ : x}
        label[cls] = len(classes)
        classes.append(cls)
    return classes


def _numerical(table: np.ndarray) -> list[Irrep]:
    M = table.shape[0]
    identity = int(np.flatnonzero((table == np.arange(M)[None, :]).all(axis=1))[0])
    inverse = np.argmax(table == identity, axis=1)
    classes = conjugacy_classes(table)
    cls_of = np.empty(M, dtype=np.int64)
    for i, c in enumerate(classes):
        cls_of[c] = i
    inv_cls = np.array([cls_of[inverse[c[0]]] for c in classes])
    rng = np.random.default_rng(12345)
    t = rng.normal(size=len(classes))
    s = rng.normal(size=len(classes))
    sym = t + t[inv_cls]  # z = Σ t_C (C + C⁻¹)
    anti = s - s[inv_cls]  # a = Σ s_C (C − C⁻¹)
    Lz = group_algebra_matrix(table, inverse, sym[cls_of])  # (M, M) symmetric
    La = group_algebra_matrix(table, inverse, anti[cls_of])  # (M, M) antisymmetric
    evals, evecs = np.linalg.eigh((Lz + Lz.T) / 2)
    groups = _cluster(evals)
    ones = np.ones(M) / np.sqrt(M)
    out = []
    for idx in groups:
        basis = evecs[:, idx]  # (M, r)
        r = basis.shape[1]
        P = basis @ basis.T
        trivial = r == 1 and abs(ones @ basis[:, 0]) > 1 - 1e-8
        pair = np.linalg.norm(La @ P) > 1e-6 * max(1.0, np.linalg.norm(La))
        if pair:
            d = round(np.sqrt(r / 2))
            # Split with the antisymmetric element: on χ it acts as +iλ, on χ̄ as −iλ.
            A = basis.T @ La @ basis  # (r, r) antisymmetric
            w, U = np.linalg.eig(A)
            Uplus = basis @ U[:, w.imag > 0]  # (M, r/2) complex
            Pchi = Uplus @ Uplus.conj().T
            chi = regular_traces(table, Pchi) / d
            chars = (chi, chi.conj())
        else:
            d = round(np.sqrt(r))
            chi = regular_traces(table, P) / d + 0j
            chars = (chi,)
        if trivial:
            kind = TRIVIAL
        elif pair:
            kind = "complex_pair"
        else:  # Frobenius–Schur indicator (1/M) Σ_g χ(g²): +1 real type, −1 quaternionic type
            squares = table[np.arange(M), np.arange(M)]
            kind = "quaternionic" if chars[0][squares].real.mean() < -0.5 else "real"
        out.append((kind, d, basis, chars))
    out.sort(key=lambda x: (x[0] != TRIVIAL, x[1], x[2].shape[1]))
    irreps, counter = [], 0
    for kind, d, basis, chars in out:
        if kind == TRIVIAL:
            irreps.append(Irrep(TRIVIAL, 1, TRIVIAL, basis * np.sign(basis.sum() or 1), chars))
        else:
            counter += 1
            irreps.append(Irrep(f"{d}d#{counter}", d, kind, basis, chars))
    return irreps


def _cluster(evals: np.ndarray, tol: float = 1e-6) -> list[np.ndarray]:
    """Group sorted eigenvalues that agree within tol (relative to the spread)."""
    scale = max(1.0, float(np.abs(evals).max()))
    groups, start = [], 0
    for i in range(1, len(evals) + 1):
        if i == len(evals) or evals[i] - evals[i - 1] > tol * scale:
            groups.append(np.arange(start, i))
            start = i
    return groups


# ----------------------------------------------------------------------------------------------
# Checks and helpers used by the other analyses.
# ----------------------------------------------------------------------------------------------


def check(task, irreps: list[Irrep] | None = None, atol: float = 1e-8) -> dict:
    """Verify the decomposition: Σd²=M, character orthogonality, projectors complete and orthogonal.

    Returns {"sum_d2": int, "order": M, "sum_d2_ok", "characters_orthonormal", "projectors_complete",
    "projectors_orthogonal", "ok"}.
    """
    irreps = decompose(task) if irreps is None else irreps
    M = task.order
    chars = np.array([c for ir in irreps for c in ir.characters])  # (n_irreps, M)
    dims = np.array([ir.dim for ir in irreps for _ in ir.characters])
    gram = chars.conj() @ chars.T / M  # ⟨χ_i, χ_j⟩ = δ_ij
    P = np.stack([ir.projector for ir in irreps])  # (n, M, M)
    prod = np.einsum("aij,bjk->abik", P, P)
    eye = np.eye(len(irreps))
    res = {
        "order": M,
        "sum_d2": int((dims**2).sum()),
        "sum_d2_ok": int((dims**2).sum()) == M,
        "characters_orthonormal": bool(np.allclose(gram, np.eye(len(chars)), atol=atol)),
        "projectors_complete": bool(np.allclose(P.sum(0), np.eye(M), atol=atol)),
        "projectors_orthogonal": bool(np.allclose(prod, eye[:, :, None, None] * P[:, None], atol=atol)),
        "character_at_identity_is_dim": bool(np.allclose(chars[:, task.identity], dims, atol=atol)),
    }
    res["ok"] = all(v for k, v in res.items() if isinstance(v, bool))
    return res


def orthogonal_basis(irreps: list[Irrep]) -> tuple[np.ndarray, np.ndarray]:
    """All bases side by side: Q (M, M) orthogonal, and owner (M,) = irrep index of each column."""
    Q = np.concatenate([ir.basis for ir in irreps], axis=1)
    owner = np.concatenate([np.full(ir.rank, i) for i, ir in enumerate(irreps)])
    return Q, owner
