"""The theory's numbers that do not need a trained network.

Theorem 4 of the paper gives the order of the critical training size, n ≳ d_k²·M·log(M/δ), but no
constant. The paper's reference code uses n* = C_CRIT · M · ln M with C_CRIT = 2.7482 (natural
log), presumably the constant of the dotted line in its Fig. 5. This module is the one place that
constant and that formula live: the spec's `critical_multiple`, the predictions and the
scaling-law fits all use it. What a sweep *measures* is an estimate (`li2.scaling`), not this.
"""

from __future__ import annotations

import math

C_CRIT = 2.7482
"""The reference code's critical-ratio multiplier: n* = C_CRIT · M · ln M."""


def predicted_critical_size(order: int, c: float = C_CRIT) -> float:
    """n* = c · M · ln M (natural log), the predicted critical number of training samples, unrounded."""
    return c * order * math.log(order)
