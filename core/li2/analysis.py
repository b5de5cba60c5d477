"""After training: one call that turns a run's final weights and metric columns into its analyses.

`analyze_run` is what `li2.runner` calls for every finished (or stopped) run. It returns the
`summary`, `timeline` and `features` sections of result.json:

* summary   final accuracies, memorized/generalized epochs, grokking delay (li2.timeline.summarize);
            `grokked` is the spec's success rule (li2.scaling.success: by default test accuracy
            ≥ 0.99 held over the last 10 % of the budget), `epoch_generalized` stays the first
            crossing, `generalization_lost` flags a run that crossed and ended below, and
            `success_by_budget` judges the same curve at T/4, T/2 and T
* timeline  the three stages and events (li2.timeline.build_timeline), plus `emergence`: when the
            nodes concentrated (li2.timeline.emergence_summary), when the trainer tracked it
* features  per-node irreps, concentration, pairing, memorization score, emergence epoch, coverage
            (li2.features.node_features), plus the energies E(ŵ_j) of the largest nodes on the
            training set and on the full data set, next to the corrected Thm 2 values when σ = x²
            (li2.energy). Non-groups: {"group": False, "note"}.
"""

from __future__ import annotations

import numpy as np

from li2 import energy as energy_mod
from li2 import features as features_mod
from li2 import irreps as irreps_mod
from li2 import timeline as timeline_mod
from li2.scaling.success import summarize_success

MAX_ENERGY_ROWS = 65536  # skip node energies when the full data set is larger than this


def analyze_run(task, spec: dict, params: dict, metrics: dict) -> dict:
    """{"summary", "timeline", "features"} for one run; params {"W": (d, K), "V": (K, M)} numpy and,
    when the trainer tracked it, "node_emergence" (K,) (−1: not concentrated at the end)."""
    operands = spec["task"]["operands"]
    W = np.asarray(params["W"], dtype=np.float64)  # (d, K)
    features = features_mod.node_features(task, W, operands, emergence=params.get("node_emergence"))
    timeline = timeline_mod.build_timeline(metrics)
    if features.get("group"):
        features["energies"] = _node_energies(task, spec, W, features)
        timeline["emergence"] = timeline_mod.emergence_summary(features["nodes"].get("emergence_epoch"))
    summary = timeline_mod.summarize(metrics)
    summary.update(summarize_success(metrics, spec))  # the success rule replaces "any crossing"
    return {"summary": summary, "timeline": timeline, "features": features}


def _node_energies(task, spec: dict, W: np.ndarray, features: dict) -> dict | None:
    """E(ŵ_j) for the nodes kept in the spectrum, on the training rows and the full data set."""
    operands = spec["task"]["operands"]
    if task.order**operands > MAX_ENERGY_ROWS:
        return None
    nodes = features["spectrum"]["nodes"]
    act = spec["model"]["activation"]
    rows = energy_mod.train_rows(spec, task)
    e = energy_mod.node_energies(task, W[:, nodes], operands, act, rows)
    out = {"nodes": nodes, "train": e["train"], "full": e["full"], "activation": act}
    if act == "sqr" and operands == 2:
        out["theory_full_data"] = sorted(
            {t["energy"] for t in energy_mod.theory_energies(task, irreps_mod.decompose(task))}
        )
    return out
