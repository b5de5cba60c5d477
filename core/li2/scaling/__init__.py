"""Scaling laws from a sweep or search: the critical training size n*(M) ≈ c·M·ln M, and t ∝ wd^−a.

success    what counts as generalized (a spec field; applied in every run's summary)
outcomes   runs → (M, n, success, seed, time) arrays
logistic   the likelihood every fit shares, its profile and interval (numpy only)
forms      the candidate laws n* = a·g(M) and their joint fits
law        `fit_scaling_law`: c with its interval, status, alternatives, goodness of fit
budget     refits at T/4, T/2, T; the convergence verdict; time to grok against n/n*
wd         grokking time against weight decay
"""

from li2.scaling.law import FORM, RESOLVE_WITHIN, fit_c, fit_scaling_law, half_width, per_order
from li2.scaling.outcomes import Outcomes, collect, order_and_size
from li2.scaling.wd import fit_grokking_time_vs_wd

__all__ = [
    "FORM",
    "RESOLVE_WITHIN",
    "Outcomes",
    "collect",
    "fit_c",
    "fit_grokking_time_vs_wd",
    "fit_scaling_law",
    "half_width",
    "order_and_size",
    "per_order",
]
