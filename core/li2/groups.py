"""Group-arithmetic tasks: Cayley tables of every group kind and the group-axiom check.

A task is "predict a1∘a2∘…∘ak from (a1, …, ak)". Everything downstream (data split, model,
analyses) only needs the task's element count M and its (M, M) table, so each group kind below is
just a way to build that table. Elements are always indexed 0..M-1:

- cyclic Z_M: a∘b = (a + b) mod M.
- product Z_m1 × … × Z_mk: mixed-radix flattening, first factor most significant
  (index = ((a1·m2 + a2)·m3 + a3)…, as `numpy.ravel_multi_index`).
- dihedral D_n (order 2n): index i + n·s stands for r^i s^s; (r^i s^a)(r^j s^b) = r^(i + (-1)^a j) s^(a+b).
- symmetric S_n / alternating A_n (n ≤ 6): permutations of 0..n-1 in lexicographic order,
  (p∘q)(x) = p(q(x)); A_n keeps the even ones, still in lexicographic order.
- quaternion Q_8: indices 0..7 stand for 1, -1, i, -i, j, -j, k, -k.
- multiplicative (Z/pZ)^×: element g in 1..p-1 has index g-1; a∘b = (a+1)(b+1) mod p, minus 1.
- table: a user Cayley table, checked for closure, identity, inverses and associativity.
- expression: f(x, y) mod modulus for a polynomial f (parsed by `li2.expression`); not a group.

No torch here: `li2.spec` validates tables and expressions by calling `build_task`, and the API
process must not import torch.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass

import numpy as np

from li2.errors import SpecError
from li2.expression import evaluate_expression, parse_expression

MAX_PERMUTATION_DEGREE = 6  # S_6 has 720 elements; S_7 (5040) would not fit a dense model


@dataclass(frozen=True, eq=False)
class Task:
    """One arithmetic task. `table[a, b]` = a∘b; everything else derives from it."""

    kind: str  # "cyclic", "product", ..., "expression"
    name: str  # human name, e.g. "Z_23", "D_4", "x**2+x*y+y**2 mod 7"
    order: int  # M: number of elements / classes
    table: np.ndarray  # (M, M) int64
    is_group: bool  # False for expressions
    identity: int | None  # index of e (groups only)
    inverse: np.ndarray | None  # (M,) int64, inverse[g] = g⁻¹ (groups only)
    factors: tuple[int, ...]  # Z_m1 × … structure when the indexing IS that mixed radix, else ()
    is_abelian: bool

    def inputs(self, operands: int) -> np.ndarray:
        """All M**k operand tuples, lexicographic (last operand fastest). (M**k, k) int64."""
        grids = np.unravel_index(np.arange(self.order**operands), (self.order,) * operands)
        return np.stack(grids, axis=1).astype(np.int64)

    def labels(self, operands: int) -> np.ndarray:
        """a1∘a2∘…∘ak for every tuple of `inputs(k)`, folded from the left. (M**k,) int64."""
        x = self.inputs(operands)
        y = x[:, 0]
        for j in range(1, operands):
            y = self.table[y, x[:, j]]
        return y.astype(np.int64)

    def dataset_hash(self, operands: int) -> str:
        """sha256 of (M, k, table): equal hashes mean identical full data sets."""
        h = hashlib.sha256()
        h.update(f"li2-task:{self.order}:{operands}:".encode())
        h.update(np.ascontiguousarray(self.table, dtype="<i8").tobytes())
        return h.hexdigest()


# ----------------------------------------------------------------------------- group axioms


def check_group(table: np.ndarray, field: str = "task.table") -> tuple[int, np.ndarray]:
    """Check the four group axioms of an (M, M) Cayley table.

    Returns (identity, inverse). Raises SpecError on `field` naming the first failing axiom and a
    witness, e.g. "not associative: (1∘2)∘3 = 0 but 1∘(2∘3) = 4".
    """
    m = table.shape[0]
    bad = np.argwhere((table < 0) | (table >= m))
    if len(bad):
        a, b = (int(v) for v in bad[0])
        raise SpecError({field: [f"closure fails: {a}∘{b} = {int(table[a, b])} is not an element 0..{m - 1}"]})
    ar = np.arange(m)
    ids = [e for e in range(m) if np.array_equal(table[e], ar) and np.array_equal(table[:, e], ar)]
    if not ids:
        raise SpecError(
            {
                field: [
                    "identity fails: no element e with e∘g = g∘e = g for every g "
                    "(each row and column of e must read 0, 1, …, M-1)"
                ]
            }
        )
    e = ids[0]
    inverse = np.full(m, -1, dtype=np.int64)
    for g in range(m):
        cand = np.flatnonzero((table[g] == e) & (table[:, g] == e))
        if len(cand) == 0:
            raise SpecError({field: [f"inverses fail: element {g} has no h with {g}∘h = h∘{g} = {e} (the identity)"]})
        inverse[g] = cand[0]
    for a in range(m):  # row by row keeps memory at O(M²)
        left = table[table[a]]  # (M, M): (a∘b)∘c for all b, c
        right = table[a][table]  # (M, M): a∘(b∘c)
        diff = np.argwhere(left != right)
        if len(diff):
            b, c = (int(v) for v in diff[0])
            raise SpecError(
                {
                    field: [
                        f"associativity fails: ({a}∘{b})∘{c} = {int(left[b, c])} but {a}∘({b}∘{c}) = {int(right[b, c])}"
                    ]
                }
            )
    return e, inverse


def _group(kind: str, name: str, table: np.ndarray, factors: tuple[int, ...] = (), trusted: bool = True) -> Task:
    """Wrap a Cayley table as a Task. Built-in kinds are groups by construction (`trusted`: the
    O(M³) associativity check is left to the tests); user tables get every axiom checked."""
    table = np.ascontiguousarray(table, dtype=np.int64)
    if trusted:
        e = int(np.flatnonzero((table == np.arange(table.shape[0])).all(axis=1))[0])
        inv = np.argmax(table == e, axis=1).astype(np.int64)
    else:
        e, inv = check_group(table)
    return Task(
        kind=kind,
        name=name,
        order=table.shape[0],
        table=table,
        is_group=True,
        identity=e,
        inverse=inv,
        factors=factors,
        is_abelian=bool(np.array_equal(table, table.T)),
    )


# ----------------------------------------------------------------------------- group kinds


def _int_field(spec: dict, key: str, lo: int, hi: int | None = None) -> int:
    v = spec.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise SpecError({f"task.{key}": [f"must be an integer {rng}, got {v!r}"]})
    return int(v)


def product_table(factors: tuple[int, ...]) -> np.ndarray:
    """Z_m1 × … × Z_mk with mixed-radix indexing (first factor most significant). (M, M)."""
    m = math.prod(factors)
    coords = np.stack(np.unravel_index(np.arange(m), factors), axis=1)  # (M, k)
    summed = (coords[:, None, :] + coords[None, :, :]) % np.array(factors)  # (M, M, k)
    return np.ravel_multi_index(tuple(np.moveaxis(summed, -1, 0)), factors)


def _cyclic(spec: dict) -> Task:
    m = _int_field(spec, "order", 2)
    return _group("cyclic", f"Z_{m}", product_table((m,)), (m,))


def _product(spec: dict) -> Task:
    f = spec.get("factors")
    if (
        not isinstance(f, (list, tuple))
        or len(f) < 1
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 2 for v in f)
    ):
        raise SpecError({"task.factors": [f"must be a non-empty list of integers ≥ 2, got {f!r}"]})
    f = tuple(int(v) for v in f)
    return _group("product", " × ".join(f"Z_{v}" for v in f), product_table(f), f)


def _dihedral(spec: dict) -> Task:
    n = _int_field(spec, "n", 2)
    i = np.arange(2 * n) % n  # rotation part r^i
    s = np.arange(2 * n) // n  # reflection part s^s
    sign = np.where(s == 1, -1, 1)
    rot = (i[:, None] + sign[:, None] * i[None, :]) % n
    ref = (s[:, None] + s[None, :]) % 2
    return _group("dihedral", f"D_{n}", rot + n * ref)


def _permutations(n: int, even_only: bool) -> list[tuple[int, ...]]:
    perms = list(itertools.permutations(range(n)))  # lexicographic
    if even_only:
        perms = [p for p in perms if _parity(p) == 0]
    return perms


def _parity(p: tuple[int, ...]) -> int:
    return sum(1 for i in range(len(p)) for j in range(i + 1, len(p)) if p[i] > p[j]) % 2


def _perm_table(perms: list[tuple[int, ...]]) -> np.ndarray:
    arr = np.array(perms)  # (M, n), lexicographic
    m, n = arr.shape
    comp = arr[np.arange(m)[:, None, None], arr[None, :, :]]  # (M, M, n): comp[p, q, x] = p[q[x]]
    radix = n ** np.arange(n - 1, -1, -1)  # base-n code preserves lexicographic order
    return np.searchsorted(arr @ radix, comp @ radix)


def _symmetric(spec: dict) -> Task:
    n = _int_field(spec, "n", 2, MAX_PERMUTATION_DEGREE)
    return _group("symmetric", f"S_{n}", _perm_table(_permutations(n, False)))


def _alternating(spec: dict) -> Task:
    n = _int_field(spec, "n", 3, MAX_PERMUTATION_DEGREE)
    return _group("alternating", f"A_{n}", _perm_table(_permutations(n, True)))


# unit quaternions 1, i, j, k as 0..3; _QMUL[u][v] = (sign, unit) of u·v
_QMUL = [
    [(1, 0), (1, 1), (1, 2), (1, 3)],
    [(1, 1), (-1, 0), (1, 3), (-1, 2)],
    [(1, 2), (-1, 3), (-1, 0), (1, 1)],
    [(1, 3), (1, 2), (-1, 1), (-1, 0)],
]


def _quaternion(spec: dict) -> Task:
    t = np.zeros((8, 8), dtype=np.int64)
    for a in range(8):
        for b in range(8):
            sa, ua = (-1 if a % 2 else 1), a // 2
            sb, ub = (-1 if b % 2 else 1), b // 2
            s, u = _QMUL[ua][ub]
            t[a, b] = 2 * u + (0 if s * sa * sb == 1 else 1)
    return _group("quaternion", "Q_8", t)


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % d for d in range(2, math.isqrt(p) + 1))


def _multiplicative(spec: dict) -> Task:
    p = _int_field(spec, "prime", 3)
    if not _is_prime(p):
        raise SpecError({"task.prime": [f"must be a prime ≥ 3, got {p} (not prime)"]})
    g = np.arange(1, p)
    return _group("multiplicative", f"(Z/{p}Z)^×", (g[:, None] * g[None, :]) % p - 1)


def _table(spec: dict) -> Task:
    raw = spec.get("table")
    msg = "must be a square list of lists of integers (a Cayley table with rows a, columns b, entries a∘b)"
    if not isinstance(raw, (list, tuple, np.ndarray)) or len(raw) < 2:
        raise SpecError({"task.table": [msg + ", with at least 2 rows"]})
    m = len(raw)
    for r, row in enumerate(raw):
        if not isinstance(row, (list, tuple, np.ndarray)) or len(row) != m:
            raise SpecError({"task.table": [msg + f"; row {r} does not have {m} entries"]})
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SpecError({"task.table": [msg + f"; row {r} holds {v!r}"]})
    return _group("table", f"table group of order {m}", np.array(raw, dtype=np.int64), trusted=False)


def _expression(spec: dict) -> Task:
    text = spec.get("expression")
    m = _int_field(spec, "modulus", 2)
    tree = parse_expression(text)
    a = np.arange(m, dtype=np.int64)
    table = evaluate_expression(tree, a[:, None] + 0 * a[None, :], a[None, :] + 0 * a[:, None], m)
    return Task(
        kind="expression",
        name=f"{' '.join(text.split())} mod {m}",
        order=m,
        table=table,
        is_group=False,
        identity=None,
        inverse=None,
        factors=(),
        is_abelian=bool(np.array_equal(table, table.T)),
    )


_BUILDERS = {
    "cyclic": _cyclic,
    "product": _product,
    "dihedral": _dihedral,
    "symmetric": _symmetric,
    "alternating": _alternating,
    "quaternion": _quaternion,
    "multiplicative": _multiplicative,
    "table": _table,
    "expression": _expression,
}
GROUP_KINDS = tuple(_BUILDERS)


def build_task(task_spec: dict) -> Task:
    """Build the Task for a `task` section of a spec; raises SpecError naming the bad field."""
    kind = task_spec.get("group") if isinstance(task_spec, dict) else None
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise SpecError({"task.group": [f"must be one of {', '.join(GROUP_KINDS)}, got {kind!r}"]})
    return builder(task_spec)
