"""The paper's three stages and the grokking events, read off a run's metric columns.

Input is `result["metrics"]`: a dict of equal-length lists keyed by column name (docs/design.md, "result.json"),
any of which may be missing or hold None/NaN. Output is plain JSON. Each boundary tests the
assumption that defines the stage it ends (docs/stages.md has the paper's statements, the formulas,
the calibration of every constant and the figures). Both tests read the `li2.diagnostics` columns at
the diagnostic epochs only, and both need the test to hold at PERSIST consecutive diagnostic epochs;
the boundary is the first epoch of that window, so one noisy sample never decides it.

Stage I — lazy (paper §3). The top layer fits the current features. It ends when the top layer has
    converged for the current features *and* its fixed point sends the hidden layer a gradient:
    `top_layer_converged`:  v_gap ≤ GAP_CONVERGED (the share of the top layer's attainable decrease
                            of its regularised loss still left) and gf_fixed_ratio ≥ FIXED_SIGNAL_MIN
                            (‖G*‖/‖G_F‖; G* = 0 when the features interpolate at η = 0, Prop. 3, and
                            then the run stays lazy however well V has converged).
Stage II — independent feature learning (§4). Ends when the random-feature kernel structure that
    makes the nodes independent (Lemma 1: FFᵀ ≈ (a − b)I + b11ᵀ, hence B ∝ I and P_η ∝ I) is gone:
    `gram_departs_from_ideal`: fft_dist_ideal ≥ (1 + GRAM_RISE) × its value at the first diagnostic
                            epoch (random initialisation).
Stage III — interactive feature learning (§5): from then to the end of the run.

The paper defines no transition times (it states the stages as regimes); these tests are our
operational choice, calibrated on the controls in tests/analysis/test_real_runs.py.

Events: memorized (train_acc ≥ 0.99), generalized (test_acc ≥ 0.99), grokking delay (generalized −
memorized). A run that never generalizes is *censored*: its last stage is marked open and the
timeline says in which stage it stalled.
"""

from __future__ import annotations

import math

import numpy as np

MEMORIZED = 0.99
GENERALIZED = 0.99
PERSIST = 3  # consecutive diagnostic epochs a boundary test must hold
GAP_CONVERGED = 0.05  # v_gap at or below: the top layer is at its fixed point (Adam's floor is ≤ 3e-3)
FIXED_SIGNAL_MIN = 1e-3  # gf_fixed_ratio below: no fixed-point gradient (η = 0 gives ≤ 1e-8)
GRAM_RISE = 0.2  # fft_dist_ideal ≥ (1 + this) × its initial value: the kernel is no longer random
THRESHOLDS = {
    "persist": PERSIST,
    "gap_converged": GAP_CONVERGED,
    "fixed_signal_min": FIXED_SIGNAL_MIN,
    "gram_rise": GRAM_RISE,
}
STAGE_ONE_VALUES = ("v_gap", "gf_fixed_ratio", "v_ridge_dist", "gf_key_cos", "train_acc", "test_acc")
STAGE_TWO_VALUES = (
    "fft_dist_ideal",
    "gf_interaction",
    "residual_modulation",
    "gf_coupling",
    "mean_concentration",
    "coverage",
    "test_acc",
)


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


def persistent_start(mask: np.ndarray, start: int = 0, window: int = PERSIST) -> int | None:
    """First index i ≥ start with mask[i : i + window] all true (a full window), or None."""
    run = 0
    for i in range(start, len(mask)):
        run = run + 1 if mask[i] else 0
        if run == window:
            return i - window + 1
    return None


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


def _window(cols: dict, epochs: list[int], rows: np.ndarray, start: int, name: str, threshold: float) -> dict:
    """The persistence window that decided a boundary: its epochs, the tested column, the threshold."""
    idx = rows[start : start + PERSIST]
    return {
        "epochs": [epochs[i] for i in idx],
        name: [_num(cols[name][i]) for i in idx],
        "threshold": _num(float(threshold)),
    }


def _stage_one_end(cols: dict, rows: np.ndarray) -> tuple[int | None, str]:
    """Index (into rows) where Stage I ends, and the criterion or why it stayed open."""
    converged = cols["v_gap"][rows] <= GAP_CONVERGED
    signal = cols["gf_fixed_ratio"][rows] >= FIXED_SIGNAL_MIN
    end = persistent_start(converged & signal)
    if end is not None:
        return end, "top_layer_converged"
    if persistent_start(converged) is not None:
        return None, "open: the top layer converged but its fixed point sends no gradient (G* = 0, Prop. 3)"
    return None, "open: the top layer has not converged"


def _stage_two_end(cols: dict, rows: np.ndarray, start: int) -> tuple[int | None, str]:
    """Index (into rows, ≥ start) where Stage II ends, and the criterion or why it stayed open."""
    dist = cols["fft_dist_ideal"][rows]
    if not rows.size or not np.isfinite(dist[0]):
        return None, "open: no kernel measurements"
    end = persistent_start(dist >= (1 + GRAM_RISE) * dist[0], start)
    if end is not None:
        return end, "gram_departs_from_ideal"
    return None, "open: the kernel is still close to its random-initialisation structure"


def build_timeline(metrics: dict) -> dict:
    """{"stages": [...], "events", "censored", "stalled_in", "generalized_in", "thresholds"}."""
    n = len(metrics.get("epoch", []))
    summary = summarize(metrics)
    events = {
        "memorized": summary["epoch_memorized"],
        "generalized": summary["epoch_generalized"],
        "grokking_delay": summary["grokking_delay"],
    }
    censored = summary["epoch_generalized"] is None
    base = {"events": events, "censored": censored, "thresholds": dict(THRESHOLDS)}
    if n == 0:
        return {"stages": [], **base, "stalled_in": None, "generalized_in": None, "note": "no metrics"}
    cols = {k: column(metrics, k) for k in set(STAGE_ONE_VALUES + STAGE_TWO_VALUES)}
    epochs = [int(e) for e in metrics["epoch"]]
    rows = np.flatnonzero(np.isfinite(cols["v_gap"]))  # the diagnostic epochs
    last = n - 1
    s1, why1 = _stage_one_end(cols, rows)
    end1 = int(rows[s1]) if s1 is not None else last
    values1 = _values_at(cols, end1, STAGE_ONE_VALUES)
    if s1 is not None:
        values1["window"] = _window(cols, epochs, rows, s1, "v_gap", GAP_CONVERGED)
    stages = [
        {
            "name": "lazy",
            "start_epoch": epochs[0],
            "end_epoch": epochs[end1],
            "criterion": why1,
            "values": values1,
            "open": s1 is None,
        }
    ]
    if s1 is not None:
        s2, why2 = _stage_two_end(cols, rows, s1)
        end2 = int(rows[s2]) if s2 is not None else last
        values2 = {
            "at_start": _values_at(cols, end1, STAGE_TWO_VALUES),
            "at_end": _values_at(cols, end2, STAGE_TWO_VALUES),
        }
        if s2 is not None:
            gram0 = cols["fft_dist_ideal"][rows[0]]
            values2["window"] = _window(cols, epochs, rows, s2, "fft_dist_ideal", (1 + GRAM_RISE) * gram0)
        stages.append(
            {
                "name": "independent",
                "start_epoch": epochs[end1],
                "end_epoch": epochs[end2],
                "criterion": why2,
                "values": values2,
                "open": s2 is None,
            }
        )
        if s2 is not None:
            stages.append(
                {
                    "name": "interactive",
                    "start_epoch": epochs[end2],
                    "end_epoch": epochs[last],
                    "criterion": why2,
                    "values": {
                        "at_start": _values_at(cols, end2, STAGE_TWO_VALUES),
                        "at_end": _values_at(cols, last, STAGE_TWO_VALUES),
                    },
                    "open": True,
                }
            )
    gen = summary["epoch_generalized"]
    return {
        "stages": stages,
        **base,
        "stalled_in": stages[-1]["name"] if censored else None,
        "generalized_in": _stage_containing(stages, gen),
    }


def emergence_summary(emergence: list | None) -> dict | None:
    """When the hidden nodes became concentrated: count and the epochs by which 10/50/90 % of the
    nodes concentrated at the end had emerged (from features' per-node `emergence_epoch`)."""
    if emergence is None:
        return None
    epochs = np.array([e for e in emergence if e is not None], dtype=np.float64)
    if not epochs.size:
        return {"nodes": 0, "first": None, "p10": None, "median": None, "p90": None, "last": None}
    q = np.quantile(epochs, [0.1, 0.5, 0.9], method="inverted_cdf")
    return {
        "nodes": int(epochs.size),
        "first": int(epochs.min()),
        "p10": int(q[0]),
        "median": int(q[1]),
        "p90": int(q[2]),
        "last": int(epochs.max()),
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
