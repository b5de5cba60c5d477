"""The paper's three stages and the grokking events, read off a run's metric columns.

Input is `result["metrics"]`: a dict of equal-length lists keyed by column name (docs/design.md, "result.json"),
any of which may be missing or hold None/NaN. Output is plain JSON. The exact criteria, and why,
are documented in docs/stages.md; in short (first measurement epoch at which any listed test fires):

Stage I — lazy (from the first epoch). Ends when the top layer has done its job:
    memorized      train_acc ≥ 0.99
    v_near_ridge   v_ridge_dist ≤ 0.1 (V at the ridge solution of the current features)
    w_overtakes_v  w_cos_step ≥ v_cos_step > 0 (hidden-layer motion catches up with the top layer's)
Stage II — independent feature learning (from the end of Stage I). Ends when nodes start to interact:
    coverage_saturated    coverage ≥ 0.999 and mean_concentration ≥ 0.5: every irrep is claimed and
                          most of the hidden norm² sits in concentrated nodes (what is left is
                          refinement among nodes, Thm 7)
    key_alignment_lost    gf_key_cos < ½ of its running maximum (≥ 0.3) since Stage II began:
                          G_F no longer has the independent form ỸỸᵀF̃ (Eqs. 3/5)
    gram_off_diagonal     ftf_offdiag_ratio ≥ 2× its value when Stage II began (B ∝ I fails)
Stage III — interactive feature learning: from then to the end of the run.

Events: memorized (train_acc ≥ 0.99), generalized (test_acc ≥ 0.99), grokking delay (generalized −
memorized). A run that never generalizes is *censored*: its last stage is marked open and the
timeline says in which stage it stalled.
"""

from __future__ import annotations

import math

import numpy as np

MEMORIZED = 0.99
GENERALIZED = 0.99
RIDGE_CLOSE = 0.1
COVERAGE_FULL = 0.999
BULK_CONCENTRATION = 0.5
KEY_DROP = 0.5
KEY_MIN_PEAK = 0.3
GRAM_GROWTH = 2.0


def column(metrics: dict, name: str) -> np.ndarray:
    """A metric column as float64 with NaN for missing/None; all-NaN if the column is absent."""
    n = len(metrics.get("epoch", []))
    raw = metrics.get(name)
    if raw is None or len(raw) != n:
        return np.full(n, np.nan)
    return np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)


def _first(mask: np.ndarray, start: int = 0) -> int | None:
    """First index ≥ start where mask is true, or None."""
    idx = np.flatnonzero(mask[start:])
    return int(idx[0]) + start if idx.size else None


def _epoch_of(metrics: dict, idx: int | None) -> int | None:
    return None if idx is None else int(metrics["epoch"][idx])


def _num(x) -> float | None:
    """JSON-safe float (None for NaN)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def summarize(metrics: dict) -> dict:
    """Summary keys of result.json: final accuracies, memorized/generalized epochs, delay, grokked."""
    train, test = column(metrics, "train_acc"), column(metrics, "test_acc")
    mem = _epoch_of(metrics, _first(train >= MEMORIZED))
    gen = _epoch_of(metrics, _first(test >= GENERALIZED))
    return {
        "train_acc": _last_finite(train),
        "test_acc": _last_finite(test),
        "epoch_memorized": mem,
        "epoch_generalized": gen,
        "grokking_delay": gen - mem if gen is not None and mem is not None else None,
        "grokked": gen is not None,
    }


def _last_finite(x: np.ndarray) -> float | None:
    ok = np.flatnonzero(np.isfinite(x))
    return float(x[ok[-1]]) if ok.size else None


def _values_at(cols: dict[str, np.ndarray], i: int, names: tuple[str, ...]) -> dict:
    return {k: _num(cols[k][i]) for k in names if np.isfinite(cols[k][i])}


def _stage_one_end(cols: dict, n: int) -> tuple[int | None, str | None]:
    """Index where Stage I ends and the criterion that fired first (ties: listed order)."""
    tests = {
        "memorized": cols["train_acc"] >= MEMORIZED,
        "v_near_ridge": cols["v_ridge_dist"] <= RIDGE_CLOSE,
        "w_overtakes_v": (cols["w_cos_step"] >= cols["v_cos_step"]) & (cols["v_cos_step"] > 0),
    }
    best, why = None, None
    for name, mask in tests.items():
        i = _first(mask, 1)
        if i is not None and (best is None or i < best):
            best, why = i, name
    return best, why


def _stage_three_start(cols: dict, s2: int, n: int) -> tuple[int | None, str | None]:
    """Index where Stage III begins (strictly after Stage II's start) and the criterion."""
    key = cols["gf_key_cos"]
    running = np.fmax.accumulate(np.where(np.isfinite(key), key, -np.inf)[s2:])
    key_lost = np.zeros(n, dtype=bool)
    key_lost[s2:] = (running >= KEY_MIN_PEAK) & (key[s2:] < KEY_DROP * running)
    gram0 = cols["ftf_offdiag_ratio"][s2]
    tests = {
        "coverage_saturated": (cols["coverage"] >= COVERAGE_FULL) & (cols["mean_concentration"] >= BULK_CONCENTRATION),
        "key_alignment_lost": key_lost,
        "gram_off_diagonal": cols["ftf_offdiag_ratio"] >= GRAM_GROWTH * gram0
        if np.isfinite(gram0)
        else np.zeros(n, dtype=bool),
    }
    best, why = None, None
    for name, mask in tests.items():
        i = _first(mask, s2 + 1)
        if i is not None and (best is None or i < best):
            best, why = i, name
    return best, why


STAGE_ONE_VALUES = ("train_acc", "test_acc", "v_ridge_dist", "w_cos_step", "v_cos_step", "gf_norm")
STAGE_TWO_VALUES = ("coverage", "mean_concentration", "gf_key_cos", "ftf_offdiag_ratio", "test_acc")


def build_timeline(metrics: dict) -> dict:
    """{"stages": [...], "events": {...}, "censored": bool, "stalled_in": stage|None, "generalized_in"}."""
    n = len(metrics.get("epoch", []))
    summary = summarize(metrics)
    events = {
        "memorized": summary["epoch_memorized"],
        "generalized": summary["epoch_generalized"],
        "grokking_delay": summary["grokking_delay"],
    }
    censored = summary["epoch_generalized"] is None
    if n == 0:
        return {
            "stages": [],
            "events": events,
            "censored": censored,
            "stalled_in": None,
            "generalized_in": None,
            "note": "no metrics",
        }
    names = set(STAGE_ONE_VALUES + STAGE_TWO_VALUES) | {"missing_residual_share", "repulsion_agree"}
    cols = {k: column(metrics, k) for k in names}
    epochs = [int(e) for e in metrics["epoch"]]
    last = n - 1
    stages = []
    s2, why1 = _stage_one_end(cols, n)
    stages.append(
        {
            "name": "lazy",
            "start_epoch": epochs[0],
            "end_epoch": epochs[s2] if s2 is not None else epochs[last],
            "criterion": why1 or "none fired (stage still open)",
            "values": _values_at(cols, s2 if s2 is not None else last, STAGE_ONE_VALUES),
            "open": s2 is None,
        }
    )
    if s2 is not None:
        s3, why2 = _stage_three_start(cols, s2, n)
        end2 = s3 if s3 is not None else last
        stages.append(
            {
                "name": "independent",
                "start_epoch": epochs[s2],
                "end_epoch": epochs[end2],
                "criterion": why2 or "none fired (stage still open)",
                "values": {
                    "at_start": _values_at(cols, s2, STAGE_TWO_VALUES),
                    "at_end": _values_at(cols, end2, STAGE_TWO_VALUES),
                },
                "open": s3 is None,
            }
        )
        if s3 is not None:
            stages.append(
                {
                    "name": "interactive",
                    "start_epoch": epochs[s3],
                    "end_epoch": epochs[last],
                    "criterion": why2,
                    "values": {
                        "at_start": _values_at(
                            cols, s3, (*STAGE_TWO_VALUES, "missing_residual_share", "repulsion_agree")
                        ),
                        "at_end": _values_at(
                            cols, last, (*STAGE_TWO_VALUES, "missing_residual_share", "repulsion_agree")
                        ),
                    },
                    "open": True,
                }
            )
    gen = summary["epoch_generalized"]
    return {
        "stages": stages,
        "events": events,
        "censored": censored,
        "stalled_in": stages[-1]["name"] if censored else None,
        "generalized_in": _stage_containing(stages, gen),
    }


def _stage_containing(stages: list[dict], epoch: int | None) -> str | None:
    """Name of the stage whose [start, end) holds epoch (the last stage includes its end)."""
    if epoch is None:
        return None
    for i, st in enumerate(stages):
        last = i == len(stages) - 1
        if st["start_epoch"] <= epoch and (epoch < st["end_epoch"] or (last and epoch <= st["end_epoch"])):
            return st["name"]
    return None
