"""``Search``: a handle on an adaptive search for the critical training size n*(M).

search = client.find_critical_size(base, orders=[11, 17, 23, 31], seeds=2, tolerance=0.05, max_runs=160)
search.wait()                      # rounds run on the service until every n*(M) is within ±5 %
search.progress                    # fraction of the runs created so far that have ended
search.orders                      # per order: phase, n_star, ci95, half_width
search.runs()                      # every run of every round (a DataFrame with a `round` column)
law = search.scaling_law()         # the joint law over all rounds; check law.fitted / law.reason
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .polling import TERMINAL, Handle, ProgressBar
from .results import ScalingLaw
from .sweeps import run_table


class Search(Handle):
    """A search. ``id``, ``status``, ``round``, ``n_runs``, ``max_runs``, ``counts`` read ``.data``."""

    @property
    def round(self) -> int:
        """The round in flight (0 first); when the search has ended, its last round."""
        return int(self.data.get("round") or 0)

    @property
    def n_runs(self) -> int:
        """Runs created so far, over all rounds (never more than ``max_runs``)."""
        return int(self.data.get("n_runs") or 0)

    @property
    def max_runs(self) -> int:
        return int(self.data.get("max_runs") or 0)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.data.get("counts") or {})

    @property
    def progress(self) -> float:
        """Fraction of the runs created so far that have ended (0..1); later rounds add runs."""
        return float(self.data.get("progress") or 0.0)

    @property
    def orders(self) -> list[dict[str, Any]]:
        """Per order M, the planner's view after the last round: phase (initial, narrowing,
        resolved, exhausted…), n_star with its 95 % interval ci95, and half_width."""
        return list(self.data.get("orders") or [])

    @property
    def stop_reason(self) -> str | None:
        """Why the search ended: tolerance, max_runs, max_rounds, runs_failed or cancelled."""
        return self.data.get("stop_reason")

    def refresh(self) -> Search:
        self.data.update(self._client.search_data(self.id))
        return self

    def wait(self, timeout: float | None = 3600 * 6, poll: float = 5.0, progress: bool = True) -> Search:
        """Block until the search has ended; return self. Raises ``WaitTimeout`` after ``timeout`` s."""
        bar = ProgressBar(f"search {self.id[:8]}", "runs", progress)

        def show() -> None:
            ended = sum(self.counts.get(s, 0) for s in TERMINAL)
            phases = " ".join(f"M={o.get('order')}:{o.get('phase')}" for o in self.orders)
            bar.update(ended, self.n_runs, f"round {self.round} {phases}")

        self._wait_until_ended(f"search {self.id}", bar, show, timeout, poll)
        return self

    def cancel(self) -> Search:
        """Stop the search: no further round; queued runs are cancelled, running ones stopped."""
        self.data.update(self._client.cancel_search(self.id).data)
        return self

    def run_items(self) -> list[dict]:
        """The raw run entries (spec, status, summary, round, id) of every round, all pages."""
        return self._client.search_runs(self.id)

    def runs(self) -> Any:
        """One row per run: ``id``, ``round``, ``status``, spec as dotted columns, ``summary.*``.
        A pandas DataFrame; a list of dicts without pandas."""
        return run_table(self.run_items(), ("id", "round", "status"))

    def scaling_law(self, partial: bool = False) -> ScalingLaw:
        """The joint law n* = c·M·ln M over every run. ``partial=True`` fits now while it runs."""
        return self._client.search_scaling_law(self.id, partial=partial)

    def plot(self, out_dir: str | Path, partial: bool = False) -> list[Path]:
        """Save the scaling-law plot into ``out_dir``."""
        from .plots import plot_scaling_law

        out = Path(out_dir)
        law = self.scaling_law(partial=partial)
        return [plot_scaling_law(law, out / f"scaling_law_{self.id[:8]}.png", title=f"search {self.id[:8]}")]

    def __repr__(self) -> str:
        return f"<Search {self.id} {self.status} round {self.round} {self.n_runs}/{self.max_runs} runs>"
