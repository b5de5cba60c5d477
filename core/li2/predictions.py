"""What the Li2 theory predicts for a spec before anything is trained (no torch needed).

* Critical training size n* = c·M·ln M (Theorem 4's order M·log M with the reference code's constant
  c = 2.7482, or a fitted c from a sweep), and where the spec's training size sits relative to it.
  For non-abelian groups the theory's bound carries d_k² (n ≳ d_k²·M·log(M/δ)); we report both the
  plain c·M·ln M and the d_max²-scaled value (the reference code instead scales by d_max/2).
* Width needed to represent the target with learned irreps (Theorem 3): K = 2·Σ_{k≠0} m_k²d_k² with
  m_k = d_k, i.e. 2·Σ_{k≠0} d_k⁴ — 2M − 2 for abelian groups — counting each complex irrep of a
  conjugate pair separately.
* Coupon collector: with L = number of distinct non-trivial (real-folded) irreps, e.g. (M − 1)/2
  frequency classes for odd cyclic M, and each node landing on a uniformly random one, the expected
  number of nodes until every class has one is L·H_L, and K ≥ L·ln(L/δ) covers all with probability
  ≥ 1 − δ (union bound). This is the diversity question of Theorem 8 (Muon needs ~L).
"""

from __future__ import annotations

import math

from li2 import irreps as irreps_mod
from li2.spec import resolve_train_size, validate_spec
from li2.theory import C_CRIT, predicted_critical_size

DELTA = 0.05


def coupon_collector(classes: int, delta: float = DELTA) -> dict:
    """Nodes needed to hit each of `classes` equally likely classes: expected, and w.p. ≥ 1 − δ."""
    if classes <= 0:
        return {"classes": classes, "expected": 0.0, "whp": 0, "delta": delta}
    harmonic = sum(1.0 / i for i in range(1, classes + 1))
    return {
        "classes": classes,
        "expected": classes * harmonic,
        "whp": math.ceil(classes * math.log(classes / delta)) if classes > 1 else 1,
        "delta": delta,
    }


def predict(spec: dict, c: float | None = None) -> dict:
    """Predictions for one spec (validated here). JSON-ready dict."""
    from li2.groups import build_task

    spec = validate_spec(spec)
    c_used = C_CRIT if c is None else float(c)
    task = build_task(spec["task"])
    M = task.order
    operands = spec["task"]["operands"]
    n = resolve_train_size(spec)
    n_star = predicted_critical_size(M, c_used)
    out = {
        "order": M,
        "operands": operands,
        "c": c_used,
        "c_source": "reference constant 2.7482" if c is None else "given",
        "critical_train_size": n_star,
        "critical_train_fraction": n_star / M**2,
        "train_size": n,
        "train_to_critical_ratio": n / n_star,
        "above_critical": n >= n_star,
        "hidden": spec["model"]["hidden"],
    }
    if operands != 2:
        out["note_operands"] = "the c·M·ln M law is stated for two operands (M² pairs); here it is a guide only"
    irreps = irreps_mod.decompose(task)
    if irreps is None:
        out["group"] = False
        out["note"] = irreps_mod.not_a_group_note(task) + "; the scaling law and width bound do not apply"
        return out
    nontrivial = [ir for ir in irreps if not ir.is_trivial]
    complex_count = [2 if ir.kind == "complex_pair" else 1 for ir in nontrivial]  # irreps over C
    width = 2 * sum(k * ir.dim**4 for ir, k in zip(nontrivial, complex_count, strict=False))
    d_max = max(ir.dim for ir in irreps)
    coupon = coupon_collector(len(nontrivial))
    out.update(
        {
            "group": True,
            "abelian": bool(task.is_abelian),
            "irrep_dims": sorted({ir.dim for ir in irreps}),
            "d_max": d_max,
            "critical_train_size_dk2": n_star * d_max**2,
            "width_to_cover_irreps": width,
            "width_formula": "2M − 2 (abelian, Thm 3)" if task.is_abelian else "2·Σ_{k≠0} d_k⁴ (Thm 3, m_k = d_k)",
            "irrep_classes": len(nontrivial),
            "coupon_collector": coupon,
            "width_sufficient": spec["model"]["hidden"] >= max(width, coupon["whp"]),
        }
    )
    return out
