"""``Experiment``: a handle on one run of the service, and everything you can ask about it.

A handle holds the last answer of ``GET /experiments/{id}`` (``.data``); ``refresh()`` reloads it.
``metrics()`` works at any time: while the run trains it holds the rows measured so far, and
``follow()`` yields each new row as the worker stores it (about once a second). ``timeline`` and
``features`` exist once the run has finished; asking earlier raises ``Conflict`` with the server's
message. ``predictions()`` is available right after submit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RunFailed, WaitTimeout
from .polling import Handle, ProgressBar

if TYPE_CHECKING:
    from .results import Features, Predictions, Timeline


def columns_to_frame(columns: dict[str, list]) -> Any:
    """``{"epoch": [...], ...}`` → pandas DataFrame (None → NaN); a dict of lists without pandas."""
    try:
        import pandas as pd
    except ImportError:
        return {k: list(v) for k, v in columns.items()}
    frame = pd.DataFrame(columns)
    for name in frame.columns:  # all-null columns (NaN diagnostics) arrive as object
        if frame[name].dtype == object:
            with contextlib.suppress(ValueError, TypeError):
                frame[name] = pd.to_numeric(frame[name])
    return frame


class Experiment(Handle):
    """One experiment (run). ``id``, ``status``, ``spec``, ``progress``, ``summary`` read ``.data``."""

    @property
    def spec(self) -> dict | None:
        return self.data.get("spec")

    @property
    def progress(self) -> dict:
        return self.data.get("progress") or {}

    @property
    def summary(self) -> dict:
        return self.data.get("summary") or {}

    @property
    def cached(self) -> bool:
        """True when submit found the same spec already submitted by you (no new run was made)."""
        return bool(self.data.get("cached"))

    @property
    def error(self) -> str | None:
        return self.data.get("error")

    def refresh(self) -> Experiment:
        """Reload status, progress and summary from the server."""
        self.data.update(self._client.experiment_data(self.id))
        return self

    def wait(
        self, timeout: float | None = 600, poll: float = 1.0, progress: bool = True, raise_on_failure: bool = True
    ) -> Experiment:
        """Block until the run is succeeded/failed/cancelled; return self.

        ``progress=True`` shows a bar with epoch/epochs and the latest train/test accuracy.
        Raises ``WaitTimeout`` after ``timeout`` s, and ``RunFailed`` if the run failed or was
        cancelled (unless ``raise_on_failure=False``).
        """
        bar = ProgressBar(f"{self.id[:8]}", "epoch", progress)

        def show() -> None:
            p = self.progress
            latest = p.get("latest") or {}
            acc = "  ".join(
                f"{k}={latest[k]:.3f}" for k in ("train_acc", "test_acc") if isinstance(latest.get(k), (int, float))
            )
            bar.update(
                p.get("epoch"),
                p.get("epochs") or (self.spec or {}).get("training", {}).get("epochs"),
                f"{self.status} {acc}".strip(),
            )

        status = self._wait_until_ended(f"experiment {self.id}", bar, show, timeout, poll)
        if raise_on_failure and status != "succeeded":
            raise RunFailed(f"experiment {self.id} {status}" + (f": {self.error}" if self.error else ""))
        return self

    def cancel(self) -> Experiment:
        """Ask the server to cancel; a queued run is cancelled at once, a running one within seconds."""
        self.data["status"] = self._client.cancel(self.id).status
        return self

    # -- results -------------------------------------------------------------------------------
    def metrics(self) -> Any:
        """Every recorded epoch's metrics (not a sample) as a pandas DataFrame, one column per metric
        (``epoch, train_acc, test_acc, train_loss, test_loss, ...``); a dict of lists without pandas.
        While the run trains: the rows measured so far."""
        return columns_to_frame(self.metric_columns())

    def metric_columns(self, since: int | None = None) -> dict[str, list]:
        """The metrics as plain ``{column: [values]}`` (no pandas needed); ``since``: only the rows
        measured after that epoch."""
        return self._client.metric_columns(self.id, since)

    def follow(self, poll: float = 1.0, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield each measured row ``{"epoch": ..., "train_acc": ..., ...}`` as the run trains, from
        its first epoch, until it has ended (then its status is current in ``.status``).

            for row in exp.follow():
                print(row["epoch"], row["test_acc"])

        Raises ``WaitTimeout`` when the run has not ended after ``timeout`` seconds.
        """
        since: int | None = None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            page = self._client.metrics_page(self.id, since)
            columns = page.get("columns") or {}
            for i in range(len(columns.get("epoch") or [])):
                yield {name: values[i] for name, values in columns.items()}
            since = page.get("last_epoch", since)
            if page.get("complete"):
                self.refresh()
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"experiment {self.id} did not finish within {timeout:g} s (status {page.get('status')!r})"
                )
            time.sleep(poll)

    def metrics_csv_text(self) -> str:
        """Every metric row as CSV text (the server's rendering: header row, empty cells for NaN)."""
        return self._client.metrics_csv_text(self.id)

    def metrics_csv(self, path: str | Path) -> Path:
        """Write the metrics as CSV to ``path``; return the path."""
        out = Path(path)
        out.write_text(self.metrics_csv_text(), encoding="utf-8", newline="")  # keep the CSV line ends
        return out

    def timeline(self) -> Timeline:
        """The lazy → independent → interactive stage timeline, with events and censoring."""
        return self._client.timeline(self.id)

    def features(self) -> Features:
        """The learned features: per-node irrep decomposition, spectrum, coverage."""
        return self._client.features(self.id)

    def predictions(self) -> Predictions:
        """What the theory predicts for this spec (critical data size, ...); available at once."""
        return self._client.predictions(self.id)

    def checkpoints(self) -> list[dict]:
        """Stored checkpoints: ``[{"epoch", "kind", "size"}]``."""
        return self._client.checkpoints(self.id)

    def download_checkpoint(self, epoch: int, path: str | Path) -> Path:
        """Save the safetensors checkpoint of ``epoch`` to ``path`` (streamed); return the path."""
        return self._client.download_checkpoint(self.id, epoch, path)

    def plot(self, out_dir: str | Path, *, spectrum: bool = True) -> list[Path]:
        """Save PNGs (training curves with stages shaded; irrep spectrum) into ``out_dir``; return paths."""
        from . import plots

        return plots.plot_experiment(self, out_dir, spectrum=spectrum)

    def __repr__(self) -> str:
        p = self.progress
        where = f" {p.get('epoch')}/{p.get('epochs')}" if p.get("epoch") is not None else ""
        return f"<Experiment {self.id} {self.status}{where}>"
