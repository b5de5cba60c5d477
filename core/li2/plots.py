"""Matplotlib PNGs of a run or a sweep, drawn from the JSON result dicts alone (the SDK reuses them).

`plot_run(result, out_dir)` writes
    curves.png    accuracy and loss with the three stages shaded, plus the stage diagnostics: the top
                  layer's (Stage I), Fig. 3's Gram checks (Stage II → III) and the features' and
                  fixed-point gradient's, each boundary's threshold dotted
    emergence.png per-node emergence: each concentrated node's emergence epoch, by dominant irrep,
                  and the running count, with the stages shaded
    spectrum.png  per-node irrep power shares (largest-norm nodes, grouped by dominant irrep)
    energies.png  node energies E(ŵ_j), training set vs full data, coloured by concentration
                  (over time instead, when the result carries `node_energies` snapshots)
`plot_sweep(sweep, out_dir)` writes
    scaling_law.png  outcomes per (M, n), fitted n*(M), c·M·ln M with its 95 % band, power law
Each function returns the paths it wrote; a figure whose data are absent is skipped, not faked.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

STAGE_COLOURS = {"lazy": "#f2d7a6", "independent": "#bfe3c4", "interactive": "#c5d5f2"}
DPI = 90


def _col(metrics: dict, name: str) -> np.ndarray | None:
    raw = metrics.get(name)
    if raw is None or len(raw) != len(metrics.get("epoch", [])):
        return None
    arr = np.array([np.nan if v is None else float(v) for v in raw])
    return arr if np.isfinite(arr).any() else None


def _shade(ax, timeline: dict | None) -> None:
    if not timeline:
        return
    for st in timeline.get("stages", []):
        ax.axvspan(
            st["start_epoch"],
            max(st["end_epoch"], st["start_epoch"] + 1e-9),
            color=STAGE_COLOURS.get(st["name"], "#dddddd"),
            alpha=0.6,
            lw=0,
        )
    ev = timeline.get("events", {})
    for key, style in (("memorized", ":"), ("generalized", "--")):
        if ev.get(key) is not None:
            ax.axvline(ev[key], color="k", ls=style, lw=0.8)


def _save(fig, out_dir: str, name: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(result: dict, out_dir: str) -> str | None:
    """Accuracy, loss and stage diagnostics vs epoch with the stages shaded; writes curves.png."""
    fig = curves_figure(result)
    return None if fig is None else _save(fig, out_dir, "curves.png")


TOP_LAYER_DIAGNOSTICS = ("v_gap", "gf_fixed_ratio", "v_ridge_dist")  # Stage I, log scale
GRAM_DIAGNOSTICS = ("fft_dist_ideal", "p1fft_offdiag_ratio", "ftf_offdiag_ratio")  # Fig. 3, log scale
FEATURE_DIAGNOSTICS = (
    "mean_concentration",
    "coverage",
    "gf_key_cos",
    "gf_interaction",
    "residual_modulation",
    "gf_coupling",
)
PANELS = (
    ("top layer", TOP_LAYER_DIAGNOSTICS, "log"),
    ("Gram (Fig. 3)", GRAM_DIAGNOSTICS, "log"),
    ("features, G*", FEATURE_DIAGNOSTICS, "linear"),
)


def curves_figure(result: dict):
    """The figure of `plot_curves` (None without curves): accuracy, loss and the diagnostic panels
    of `PANELS` that have data, each boundary's threshold dotted in the panel of its test."""
    m = result.get("metrics") or {}
    if not m.get("epoch"):
        return None
    ep = np.asarray(m["epoch"], dtype=float)
    tl = result.get("timeline")
    panels = []
    for title, names, scale in PANELS:
        lines = [(k, v) for k in names if (v := _col(m, k)) is not None]
        if lines:
            panels.append((title, lines, scale))
    fig, axes = plt.subplots(2 + len(panels), 1, figsize=(7, 2.1 * (2 + len(panels))), sharex=True)
    for ax in axes:
        _shade(ax, tl)
    for k in ("train_acc", "test_acc"):
        v = _col(m, k)
        if v is not None:
            axes[0].plot(ep, v, label=k)
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(-0.02, 1.02)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="lower right", fontsize=7)
    for k in ("train_loss", "test_loss"):
        v = _col(m, k)
        if v is not None:
            axes[1].plot(ep, np.clip(v, 1e-12, None), label=k)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("loss")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(loc="upper right", fontsize=7)
    thresholds = (tl or {}).get("thresholds") or {}
    for ax, (title, lines, scale) in zip(axes[2:], panels, strict=False):
        for k, v in lines:
            ok = np.isfinite(v)  # diagnostics are measured at the diagnostic epochs only
            y = np.clip(v[ok], 1e-6, None) if scale == "log" else v[ok]
            ax.plot(ep[ok], y, label=k, lw=1, marker="." if ok.sum() < 40 else None, ms=3)
            if k == "v_gap" and "gap_converged" in thresholds:
                ax.axhline(thresholds["gap_converged"], color="tab:blue", ls=":", lw=0.8)
            if k == "fft_dist_ideal" and "gram_rise" in thresholds and ok.any():
                ax.axhline((1 + thresholds["gram_rise"]) * v[ok][0], color="tab:blue", ls=":", lw=0.8)
        ax.set_yscale(scale)
        ax.set_ylabel(title, fontsize=8)
        ax.legend(loc="center right", fontsize=6, ncol=2)
    axes[-1].set_xlabel("epoch")
    ends = [s["end_epoch"] for s in (tl or {}).get("stages", [])]
    if ends and ep[-1] > 100 and min(ends) < 0.1 * ep[-1]:
        axes[-1].set_xscale("symlog", linthresh=10)  # early stages stay visible
        axes[-1].set_xlabel("epoch (linear to 10, log beyond)")
    if tl and tl.get("stages"):
        names = " → ".join(f"{s['name']} [{s['start_epoch']}, {s['end_epoch']}]" for s in tl["stages"])
        axes[0].set_title(names + ("  (censored)" if tl.get("censored") else ""), fontsize=8)
    return fig


def plot_emergence(result: dict, out_dir: str) -> str | None:
    """Per-node emergence: epoch each concentrated node emerged, by dominant irrep; writes emergence.png."""
    feats = result.get("features") or {}
    nodes = feats.get("nodes") or {}
    em = nodes.get("emergence_epoch")
    if not em or all(e is None for e in em):
        return None
    dominant = nodes.get("dominant") or ["?"] * len(em)
    pairs = sorted((e, d) for e, d in zip(em, dominant, strict=False) if e is not None)
    epochs = np.array([e for e, _ in pairs], dtype=float)
    labels = sorted({d for _, d in pairs}, key=lambda s: (len(s), s))
    row = {lab: i for i, lab in enumerate(labels)}
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 4.5), sharex=True, height_ratios=(2, 1))
    for a in (ax, ax2):
        _shade(a, result.get("timeline"))
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(pairs))
    ax.scatter(epochs, [row[d] for _, d in pairs] + jitter, s=8, c=[row[d] for _, d in pairs], cmap="tab20")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=6 if len(labels) > 15 else 8)
    ax.set_ylabel("dominant irrep")
    ax.set_title(f"emergence of the {len(pairs)} nodes concentrated at the end", fontsize=9)
    ax2.step(epochs, np.arange(1, len(epochs) + 1), where="post")
    ax2.set_ylabel("emerged nodes")
    last = max(float(epochs.max()), float(((result.get("metrics") or {}).get("epoch") or [0])[-1]))
    ax2.set_xlim(0, last)
    ax2.set_xlabel("epoch (a diagnostic epoch)")
    if last > 100:
        ax2.set_xscale("symlog", linthresh=10)
        ax2.set_xlabel("epoch (a diagnostic epoch; linear to 10, log beyond)")
    return _save(fig, out_dir, "emergence.png")


def plot_spectrum(result: dict, out_dir: str) -> str | None:
    """Heat map of per-node irrep power shares, nodes grouped by dominant irrep."""
    feats = result.get("features") or {}
    spec = feats.get("spectrum")
    if not spec or not spec.get("power"):
        return None
    power = np.asarray(spec["power"], dtype=float)  # (nodes, n_irreps)
    labels = spec["labels"]
    nontriv = [i for i, lab in enumerate(labels) if lab != "trivial"]
    P = power[:, nontriv]
    P = P / np.maximum(P.sum(1, keepdims=True), 1e-300)
    order = np.lexsort((-P.max(1), P.argmax(1)))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    im = ax.imshow(P[order].T, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(nontriv)))
    ax.set_yticklabels([labels[i] for i in nontriv], fontsize=6 if len(nontriv) > 15 else 8)
    ax.set_xlabel(f"hidden node (largest {len(order)} by norm, grouped by dominant irrep)")
    ax.set_title(
        f"irrep power share per node — weighted concentration "
        f"{feats.get('mean_concentration', float('nan')):.3f}, coverage "
        f"{len(feats.get('covered', []))}/{len(feats.get('covered', [])) + len(feats.get('missing', []))}",
        fontsize=8,
    )
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _save(fig, out_dir, "spectrum.png")


def plot_energies(result: dict, out_dir: str) -> str | None:
    """Node energies: snapshots over time if present, else final train-vs-full scatter."""
    snaps = result.get("node_energies")
    feats = result.get("features") or {}
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    if snaps and snaps.get("epoch") and snaps.get("energies"):
        E = np.asarray(snaps["energies"], dtype=float)  # (T, nodes)
        ax.plot(snaps["epoch"], E, lw=0.5, alpha=0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("E(ŵ_j)")
    elif feats.get("energies"):
        en = feats["energies"]
        conc = np.asarray(feats["nodes"]["concentration"], dtype=float)[np.asarray(en["nodes"])]
        sc = ax.scatter(en["full"], en["train"], c=conc, cmap="viridis", vmin=0, vmax=1, s=8)
        fig.colorbar(sc, ax=ax, label="concentration")
        for ref in en.get("theory_full_data", []):
            ax.axvline(ref, color="r", ls="--", lw=0.8)
        ax.set_xlabel("E(ŵ_j) on full data")
        ax.set_ylabel("E(ŵ_j) on training set")
    else:
        plt.close(fig)
        return None
    ax.set_title("node energies", fontsize=9)
    return _save(fig, out_dir, "energies.png")


def plot_run(result: dict, out_dir: str) -> list[str]:
    """All run figures that the result's data allow; returns the written paths."""
    made = (
        plot_curves(result, out_dir),
        plot_emergence(result, out_dir),
        plot_spectrum(result, out_dir),
        plot_energies(result, out_dir),
    )
    return [p for p in made if p]


def plot_sweep(sweep: dict, out_dir: str, name: str = "scaling_law.png") -> list[str]:
    """Scaling-law figure from sweep.json or search.json ({"runs", "scaling_law"}); returns the paths.

    Left: every run (o generalized, x not) in the (M, n) plane, each order's own n* with its 95 %
    interval, the law c·M·ln M with the band of c's interval (when there is no fit, only the band
    of what the data allow) and the reference 2.7482·M·ln M. Middle: c refitted at T/4, T/2 and T.
    Right: time to grok against n/n*.
    """
    law = sweep.get("scaling_law") or {}
    crit = law.get("critical") or []
    if not crit:
        return []
    from li2.scaling import order_and_size
    from li2.theory import C_CRIT

    fig, (ax, ax_t, ax_g) = plt.subplots(1, 3, figsize=(15, 4.2))
    for run in sweep.get("runs", []):
        try:
            M, n = order_and_size(run)
        except (KeyError, TypeError, ValueError):
            continue
        ok = bool((run.get("summary") or {}).get("grokked"))
        ax.scatter(M, n, marker="o" if ok else "x", c="tab:green" if ok else "tab:red", s=14, alpha=0.5, zorder=2)
    own = [c for c in crit if (c.get("free") or {}).get("n_star") is not None]
    if own:
        ns = np.array([c["free"]["n_star"] for c in own])
        lo = np.array([c["free"]["ci95"][0] for c in own], dtype=float)
        hi = np.array([c["free"]["ci95"][1] for c in own], dtype=float)
        ax.errorbar(
            [c["order"] for c in own],
            ns,
            yerr=[ns - lo, hi - ns],
            fmt="D",
            c="k",
            ms=5,
            capsize=3,
            zorder=3,
            label="each order's own n* (95 %)",
        )
    curve = law.get("curve") or []
    if curve:
        Ms = np.array([p["order"] for p in curve])
        base = Ms * np.log(Ms)
        c_lo, c_hi = law.get("ci95") or [None, None]
        if c_lo is not None and c_hi is not None:
            label = f"95 % of c: [{c_lo:.3g}, {c_hi:.3g}]" if law.get("c") else f"c allowed: [{c_lo:.3g}, {c_hi:.3g}]"
            ax.fill_between(Ms, c_lo * base, c_hi * base, color="tab:blue", alpha=0.18, label=label)
        if law.get("c"):
            ax.plot(Ms, law["c"] * base, "-", c="tab:blue", label=f"c·M·ln M, c = {law['c']:.3g}")
        ax.plot(Ms, C_CRIT * base, "--", c="0.35", label=f"{C_CRIT}·M·ln M (reference)")
    ax.set_xlabel("group order M")
    ax.set_ylabel("training size n")
    status = law.get("status", "fitted" if law.get("c") else "not fitted")
    ax.set_title(f"runs (o generalized, x not) and the law: {status}", fontsize=9)
    ax.legend(fontsize=7)
    budgets = [b for b in law.get("by_budget") or [] if b.get("c_mle") is not None]
    if budgets:
        f = [b["fraction"] for b in budgets]
        mid = np.array([b["c_mle"] for b in budgets])
        lo = np.array([b["ci95"][0] if b["ci95"][0] is not None else np.nan for b in budgets])
        hi = np.array([b["ci95"][1] if b["ci95"][1] is not None else np.nan for b in budgets])
        ax_t.errorbar(f, mid, yerr=[mid - lo, hi - mid], fmt="o-", c="tab:blue", capsize=4)
        ax_t.axhline(C_CRIT, ls="--", c="0.35", label=f"{C_CRIT}")
        ax_t.set_xticks(f, [{0.25: "T/4", 0.5: "T/2", 1.0: "T"}.get(x, f"{x:g}T") for x in f])
        verdict = (law.get("convergence") or {}).get("verdict", "")
        ax_t.set_title(f"c refitted at shorter budgets ({verdict})", fontsize=9)
        ax_t.set_ylabel("c (95 % profile interval)")
        ax_t.legend(fontsize=7)
    pts = (law.get("time_to_grok") or {}).get("points") or []
    if pts:
        ax_g.scatter([p["ratio"] for p in pts], [p["epoch"] for p in pts], s=14, c="tab:green", alpha=0.7)
        ax_g.axvline(1.0, ls="--", c="0.35")
        rho = law["time_to_grok"].get("spearman")
        ax_g.set_title(f"time to grok vs n/n* (Spearman {rho:.2f})" if rho is not None else "time to grok", fontsize=9)
        ax_g.set_xlabel("n / n*")
        ax_g.set_ylabel("first epoch with test acc ≥ threshold")
    fig.tight_layout()
    return [_save(fig, out_dir, name)]


__all__ = ["plot_curves", "plot_emergence", "plot_energies", "plot_run", "plot_spectrum", "plot_sweep"]
