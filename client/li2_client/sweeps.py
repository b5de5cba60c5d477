"""``Sweep``: a handle on a grid of runs submitted together, and its fitted scaling law.

``runs()`` gives one row per run with the spec flattened into dotted columns (``task.order``,
``data.train_fraction``, ``seed``, ...) and the summary as ``summary.*`` columns — the table a
scaling-law study starts from, fetched in one call instead of one request per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .polling import TERMINAL, Handle, ProgressBar

if TYPE_CHECKING:
    from .experiments import Experiment
    from .results import ScalingLaw


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"task": {"order": 23}}`` → ``{"task.order": 23}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def run_table(items: list[dict], leading: tuple[str, ...] = ("id", "status")) -> Any:
    """One row per run entry: the `leading` keys, the spec as dotted columns, ``summary.*``
    columns. A pandas DataFrame; a list of dicts without pandas."""
    rows = []
    for item in items:
        row = {key: item.get(key) for key in leading}
        row.update(flatten(item.get("spec") or {}))
        row.update(flatten(item.get("summary") or {}, "summary"))
        rows.append(row)
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)


class Sweep(Handle):
    """A sweep. ``id``, ``status``, ``n_runs``, ``counts`` (runs per status) read ``.data``."""

    @property
    def n_runs(self) -> int:
        return int(self.data.get("n_runs") or 0)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.data.get("counts") or {})

    @property
    def progress(self) -> float:
        """Fraction of runs that have ended (0..1)."""
        p = self.data.get("progress")
        if isinstance(p, dict):
            p = p.get("fraction")
        if p is not None:
            return float(p)
        ended = sum(self.counts.get(s, 0) for s in TERMINAL)
        return ended / self.n_runs if self.n_runs else 0.0

    def refresh(self) -> Sweep:
        """Reload status and counts from the server."""
        self.data.update(self._client.sweep_data(self.id))
        return self

    def wait(self, timeout: float | None = 3600, poll: float = 2.0, progress: bool = True) -> Sweep:
        """Block until every run has ended; return self (failed runs do not raise: see ``counts``).
        Raises ``WaitTimeout`` after ``timeout`` s."""
        bar = ProgressBar(f"sweep {self.id[:8]}", "runs", progress)

        def show() -> None:
            c = self.counts
            ended = sum(c.get(s, 0) for s in TERMINAL)
            extra = " ".join(f"{k}={v}" for k, v in c.items() if v)
            bar.update(ended, self.n_runs, extra)

        self._wait_until_ended(f"sweep {self.id}", bar, show, timeout, poll)
        return self

    def cancel(self) -> Sweep:
        """Cancel every queued run of the sweep and ask its running runs to stop."""
        self.data.update(self._client.cancel_sweep(self.id).data)
        return self

    def run_items(self) -> list[dict]:
        """The raw run entries (spec, status, summary, id) of ``GET /sweeps/{id}/runs``, all pages."""
        return self._client.sweep_runs(self.id)

    def runs(self) -> Any:
        """One row per run: ``id``, ``status``, spec as dotted columns, ``summary.*`` columns.
        A pandas DataFrame; a list of dicts without pandas."""
        return run_table(self.run_items())

    def experiments(self) -> list[Experiment]:
        """Handles on the sweep's runs (for per-run metrics and timelines)."""
        from .experiments import Experiment

        return [Experiment(self._client, item) for item in self.run_items()]

    def scaling_law(self, partial: bool = False) -> ScalingLaw:
        """The fitted n* ≈ c·M·ln M law. ``partial=True`` fits now on the runs that have ended
        (the stored fit is only there once the sweep has finished)."""
        return self._client.scaling_law(self.id, partial=partial)

    def plot(self, out_dir: str | Path, partial: bool = False) -> list[Path]:
        """Save the scaling-law plot (critical sizes, fitted c·M·ln M, 95 % band) into ``out_dir``."""
        from . import plots

        return plots.plot_sweep(self, out_dir, partial=partial)

    def __repr__(self) -> str:
        return f"<Sweep {self.id} {self.status} {self.n_runs} runs {self.counts}>"
