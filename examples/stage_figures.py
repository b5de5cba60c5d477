"""The figures of docs/stages.md: the reference Z_23 run and its controls, with the stages shaded.

    python examples/stage_figures.py                     # trains, then writes docs/img/stages-*.png
    python examples/stage_figures.py --cache /tmp/stages # keep/reuse each run's result.json there

Runs (all Z_23, K = 512, σ = x², MSE, Adam lr 0.01, 90 % train, seed 5; measured every epoch up to
200 and every 10 after; diagnostics every 5 epochs):

    reference   wd 1e-4, 1000 epochs (the reference code's logged run)
    wd0         wd 0, 600 epochs                  (Prop. 3: stalls in the lazy stage)
    ridge       ridge_top η = n·wd/2, 400 epochs  (Stage I is immediate)
    eta         wd 5e-5, 2e-4, 4e-4, 1000 epochs  (Stage II's duration against η)

On the shared 2-core machine the reference run takes 1–4 minutes and all of them 10–30 minutes,
depending on the load. The timelines are rebuilt from the stored metrics, so a cached result picks
up changes to `li2.timeline`. The script also prints the informative-diagnostics table of the doc.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from li2 import plots
from li2.diagnostics import MARKS, marked_values
from li2.runner import run_batch
from li2.spec import validate_spec
from li2.timeline import build_timeline

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN = 476  # 90 % of 23²


def z23(weight_decay=1e-4, epochs=1000, ridge_top=None) -> dict:
    """The reference run's spec (examples/reference_z23.json) with the given changes."""
    raw = json.loads((ROOT / "examples" / "reference_z23.json").read_text())
    raw["model"]["ridge_top"] = ridge_top
    raw["training"].update(weight_decay=weight_decay, epochs=epochs)
    return validate_spec(raw)


RUNS = {
    "reference": z23(),
    "wd0": z23(0.0, 600),
    "ridge": z23(ridge_top=N_TRAIN * 1e-4 / 2, epochs=400),
    "eta-5e-05": z23(5e-5),
    "eta-0.0002": z23(2e-4),
    "eta-0.0004": z23(4e-4),
}


def results(cache: Path | None) -> dict[str, dict]:
    """Each run's result, from the cache when it holds the same spec, else trained (one batch per key)."""
    out, todo = {}, []
    for name, spec in RUNS.items():
        path = cache / f"{name}.json" if cache else None
        if path and path.exists():
            stored = json.loads(path.read_text())
            if stored.get("spec") == spec:
                out[name] = stored
                continue
        todo.append(name)
    if todo:
        print(f"training {', '.join(todo)} ...", flush=True)
        for name, res in zip(todo, run_batch([RUNS[n] for n in todo], "cpu"), strict=True):
            out[name] = json.loads(json.dumps(res))
            if cache:
                cache.mkdir(parents=True, exist_ok=True)
                (cache / f"{name}.json").write_text(json.dumps(out[name]))
    for res in out.values():
        emergence = res["timeline"].get("emergence")
        res["timeline"] = build_timeline(res["metrics"])
        if emergence is not None:
            res["timeline"]["emergence"] = emergence
    return out


def save(fig, name: str) -> Path:
    path = ROOT / "docs" / "img" / name
    fig.savefig(path, dpi=plots.DPI, bbox_inches="tight")
    plt.close(fig)
    print("wrote", path.relative_to(ROOT))
    return path


def eta_figure(res: dict[str, dict]):
    """Stage II duration against η (log-log, fitted slope) and the kernel test's curves."""
    names = ["eta-5e-05", "reference", "eta-0.0002", "eta-0.0004"]
    wd = np.array([res[n]["spec"]["training"]["weight_decay"] for n in names])
    eta = N_TRAIN * wd / 2
    stage2 = [res[n]["timeline"]["stages"][1] for n in names]
    duration = np.array([s["end_epoch"] - s["start_epoch"] for s in stage2], dtype=float)
    slope, icpt = np.polyfit(np.log(eta), np.log(duration), 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax.loglog(eta, duration, "o", label="Stage II duration")
    xs = np.geomspace(eta.min(), eta.max(), 20)
    ax.loglog(xs, np.exp(icpt) * xs**slope, "k--", lw=0.8, label=f"fit: slope {slope:.2f}")
    ax.set_xlabel("η = n·wd/2")
    ax.set_ylabel("epochs")
    ax.legend(fontsize=7)
    ax.set_title("Stage II lasts ≈ 1/η (Eqs. 4/5)", fontsize=9)
    for n, w in zip(names, wd, strict=True):
        m = res[n]["metrics"]
        v = np.array([np.nan if x is None else x for x in m["fft_dist_ideal"]], dtype=float)
        ok = np.isfinite(v)
        ax2.plot(np.array(m["epoch"])[ok], v[ok] / v[ok][0], label=f"wd {w:g}", lw=1)
    ax2.axhline(1 + res["reference"]["timeline"]["thresholds"]["gram_rise"], color="k", ls=":", lw=0.8)
    ax2.set_xscale("symlog", linthresh=10)
    ax2.set_xlim(left=0)
    ax2.set_xlabel("epoch (linear to 10, log beyond)")
    ax2.set_ylabel("fft_dist_ideal / initial")
    ax2.legend(fontsize=7)
    ax2.set_title("the Stage II → III test", fontsize=9)
    return fig, slope, duration, wd


def informative_table(res: dict) -> str:
    """Markdown rows: each diagnostic at random initialisation and in the stage it marks."""
    lines = ["| diagnostic | marks | read | at init | in its stage |", "|---|---|---|---:|---:|"]
    for name, (init, value) in marked_values(res["metrics"], res["timeline"]).items():
        stage, how = MARKS[name]
        lines.append(f"| `{name}` | {stage} | {how} | {init:.3g} | {value:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, help="directory for the runs' result.json files")
    args = p.parse_args(argv)
    res = results(args.cache)
    for name in ("reference", "wd0", "ridge"):
        save(plots.curves_figure(res[name]), f"stages-{name}-curves.png")
    for name in ("reference", "ridge"):
        out = ROOT / "docs" / "img"
        path = plots.plot_emergence(res[name], str(out))
        if path:
            Path(path).rename(out / f"stages-{name}-emergence.png")
            print("wrote", f"docs/img/stages-{name}-emergence.png")
    fig, slope, duration, wd = eta_figure(res)
    save(fig, "stages-eta.png")
    print(f"Stage II duration {duration.tolist()} at wd {wd.tolist()}: fitted log-log slope {slope:.2f}")
    for name, r in res.items():
        tl = r["timeline"]
        print(name, [(s["name"], s["start_epoch"], s["end_epoch"]) for s in tl["stages"]], tl["generalized_in"])
    print(informative_table(res["reference"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
