"""matplotlib pictures from the API's JSON: training curves with the stages shaded, the irrep
spectrum of the learned features, and the scaling law with its 95 % band.

The SDK draws from the JSON the API serves, with its own small matplotlib code, so it needs only
``pip install li2-client[plots]`` and none of the server's packages. (``li2lab run --plots`` draws a
local run's result.json with the core's ``li2.plots``.) Every function writes PNG files and returns
their paths.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .results import Features, ScalingLaw, Timeline

if TYPE_CHECKING:
    from .experiments import Experiment
    from .sweeps import Sweep

STAGE_COLORS = {"lazy": "#d9d9d9", "independent": "#a6cee3", "interactive": "#b2df8a"}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'li2-client[plots]'") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _finite(xs: list) -> list[float]:
    return [float("nan") if x is None else float(x) for x in xs]


def _shade_stages(ax: Any, timeline: Timeline, last_epoch: float) -> None:
    for stage in timeline.stages:
        if stage.start_epoch is None:
            continue
        end = stage.end_epoch if stage.end_epoch is not None else last_epoch
        ax.axvspan(
            stage.start_epoch,
            end,
            color=STAGE_COLORS.get(stage.name, "#eeeeee"),
            alpha=0.5,
            label=f"{stage.name} stage" + (" (open)" if stage.open else ""),
        )


def plot_curves(columns: dict[str, list], timeline: Timeline | None, path: str | Path, title: str = "") -> Path:
    """Accuracy (top) and loss (bottom, log scale) against epoch, stages shaded behind."""
    plt = _pyplot()
    epoch = _finite(columns.get("epoch") or list(range(len(columns.get("train_acc", [])))))
    fig, (ax_acc, ax_loss) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    last = epoch[-1] if epoch else 0
    for ax in (ax_acc, ax_loss):
        if timeline is not None:
            _shade_stages(ax, timeline, last)
    for name, style in (("train", "-"), ("test", "--")):
        if f"{name}_acc" in columns:
            ax_acc.plot(epoch, _finite(columns[f"{name}_acc"]), style, color="k", label=f"{name} accuracy")
        if f"{name}_loss" in columns:
            ax_loss.plot(epoch, _finite(columns[f"{name}_loss"]), style, color="k", label=f"{name} loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_loss.set_ylabel("loss")
    if any(v > 0 for v in _finite(columns.get("train_loss", [])) if v == v):
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_acc.legend(loc="lower right", fontsize=8)
    if title:
        ax_acc.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_spectrum(features: Features, path: str | Path, title: str = "") -> Path:
    """Irrep spectrum: per-node power shares as a heat map (nodes × irreps, largest-norm nodes on
    top) and the layer's mean share per irrep as bars, missing irreps in red."""
    plt = _pyplot()
    labels, power = features.labels, features.power
    width = max(6.0, 0.3 * len(labels) + 3)
    fig, (ax_map, ax_bar) = plt.subplots(2, 1, figsize=(width, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    if power:
        im = ax_map.imshow(power, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
        fig.colorbar(im, ax=ax_map, label="power share")
    ax_map.set_ylabel("node (by norm)")
    mean = features.layer_spectrum()
    missing = set(features.missing)
    ax_bar.bar(
        range(len(labels)),
        [mean.get(k, 0.0) for k in labels],
        color=["#e31a1c" if k in missing else "#1f78b4" for k in labels],
    )
    ax_bar.set_xticks(range(len(labels)))
    ax_bar.set_xticklabels(labels, rotation=90 if len(labels) > 12 else 0, fontsize=8)
    ax_bar.set_xlabel("irrep")
    ax_bar.set_ylabel("mean share")
    sub = f"coverage {features.coverage:.2f}" if features.coverage is not None else ""
    ax_map.set_title(" — ".join(t for t in (title, sub) if t))
    fig.tight_layout()
    return _save(fig, path)


REFERENCE_C = 2.7482  # the reference code's constant, drawn for comparison


def plot_scaling_law(law: ScalingLaw, path: str | Path, title: str = "") -> Path:
    """Each order's own n* with its 95 % interval, the law c·M·ln M with the band of c's interval
    (or, when there is no fit, only the band of what the data allow), and 2.7482·M·ln M."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    own = [(p.M, p.free_n_star, *p.free_ci95) for p in law.critical if p.free_n_star is not None and p.M > 1]
    if own:
        ax.errorbar(
            [m for m, *_ in own],
            [n for _, n, _, _ in own],
            yerr=[
                [n - (lo if lo is not None else n) for _, n, lo, _ in own],
                [(hi if hi is not None else n) - n for _, n, _, hi in own],
            ],
            fmt="o",
            color="k",
            capsize=3,
            label="each order's own n* (95 %)",
        )
    ms = sorted({p.M for p in law.critical if p.M > 1})
    if ms:
        lo, hi = ms[0], ms[-1]
        grid = [lo + (hi - lo) * i / 50 for i in range(51)] if hi > lo else [lo]
        f = [m * math.log(m) for m in grid]
        c_lo, c_hi = law.ci95
        if c_lo is not None and c_hi is not None:
            label = "95 % interval of c" if law.fitted else "c the data allow (no fit)"
            ax.fill_between(grid, [c_lo * v for v in f], [c_hi * v for v in f], color="#1f78b4", alpha=0.2, label=label)
        if law.fitted and law.c is not None:
            ax.plot(grid, [law.c * v for v in f], "-", color="#1f78b4", label=f"{law.c:.3g}·M·ln M")
        ax.plot(grid, [REFERENCE_C * v for v in f], "--", color="0.4", label=f"{REFERENCE_C}·M·ln M (reference)")
    ax.set_xlabel("group order M")
    ax.set_ylabel("critical train size n*")
    ax.set_title(title or ("scaling law" if law.fitted else f"scaling law: {law.status}"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


def plot_experiment(exp: Experiment, out_dir: str | Path, *, spectrum: bool = True) -> list[Path]:
    """Fetch the finished run's metrics, timeline and features; draw them into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns, timeline = exp.metric_columns(), exp.timeline()
    features = exp.features() if spectrum else None
    tag = exp.id[:8]
    paths = [plot_curves(columns, timeline, out / f"curves_{tag}.png", title=f"experiment {tag}")]
    if features is not None and features.power:
        paths.append(plot_spectrum(features, out / f"spectrum_{tag}.png", title=f"experiment {tag}"))
    return paths


def plot_sweep(sweep: Sweep, out_dir: str | Path, *, partial: bool = False) -> list[Path]:
    """Fetch the sweep's scaling law; draw it into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    law = sweep.scaling_law(partial=partial)
    return [plot_scaling_law(law, out / f"scaling_law_{sweep.id[:8]}.png", title=f"sweep {sweep.id[:8]}")]
