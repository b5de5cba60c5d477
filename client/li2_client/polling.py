"""Waiting for a run or sweep: one polling loop and one progress bar, shared by both handles.

The bar is tqdm when installed (``pip install li2-client[progress]``), otherwise a plain line on
stderr that is rewritten only when something changed, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import WaitTimeout

if TYPE_CHECKING:
    from .client import Client

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class Handle:
    """What an experiment and a sweep handle share: the client, the server's JSON and its state.

    A handle fetches only through the client's public methods (``Client.experiment_data``,
    ``Client.timeline``, ...), so whatever it can do a script can do by id as well.
    """

    def __init__(self, client: Client, data: dict[str, Any]):
        self._client = client
        self.data: dict[str, Any] = dict(data)
        self.id: str = str(data["id"])

    @property
    def status(self) -> str:
        return str(self.data.get("status", "unknown"))

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def name(self) -> str | None:
        """The owner's name for it (None: unnamed)."""
        return self.data.get("name")

    @property
    def tags(self) -> list[str]:
        return list(self.data.get("tags") or [])

    @property
    def note(self) -> str | None:
        return self.data.get("note")

    @property
    def archived(self) -> bool:
        """True when hidden from the default list (``list(archived=True)`` shows it)."""
        return bool(self.data.get("archived"))

    def refresh(self) -> Handle:
        """Reload ``.data`` from the server (each handle asks its own route)."""
        raise NotImplementedError

    def _wait_until_ended(
        self, what: str, bar: ProgressBar, show: Callable[[], None], timeout: float | None, poll: float
    ) -> str:
        """The loop every handle's ``wait`` runs: ``refresh()`` every ``poll`` s until the status is
        terminal (``WaitTimeout`` naming ``what`` after ``timeout`` s), calling ``show`` to update
        ``bar`` after each read; the bar is closed either way. Returns the final status."""
        try:
            return wait_for(lambda: self.refresh().status, what=what, timeout=timeout, poll=poll, on_update=show)
        finally:
            bar.close()


class ProgressBar:
    """A minimal bar: ``update(n, total, postfix)``; ``close()``. Disabled = does nothing."""

    def __init__(self, desc: str, unit: str, enabled: bool):
        self.enabled = enabled
        self._bar = None
        self._last = ""
        self.desc, self.unit = desc, unit
        self._tqdm = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._tqdm = tqdm
            except ImportError:
                pass

    def update(self, n: int | None, total: int | None, postfix: str) -> None:
        if not self.enabled:
            return
        if self._tqdm is not None and self._bar is None:  # created once the total is known
            self._bar = self._tqdm(
                desc=self.desc, unit=self.unit, total=total or None, leave=True, file=sys.stderr, mininterval=0.5
            )
        if self._bar is not None:
            if total and self._bar.total != total:
                self._bar.total = total
            if n is not None:
                self._bar.n = n
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.refresh()
            return
        line = f"{self.desc}: {n if n is not None else '?'}/{total or '?'} {self.unit} {postfix}"
        if line != self._last:
            print(line, file=sys.stderr, flush=True)
            self._last = line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def wait_for(
    refresh: Callable[[], str],
    *,
    what: str,
    timeout: float | None,
    poll: float,
    on_update: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Call ``refresh()`` (returns the status) every ``poll`` s until a terminal status; return it.

    Raises ``WaitTimeout`` after ``timeout`` seconds (None = wait forever) naming the last status,
    so a caller knows whether the run was still queued (no worker?) or running (too slow?).
    """
    deadline = None if timeout is None else clock() + timeout
    while True:
        status = refresh()
        on_update()
        if status in TERMINAL:
            return status
        if deadline is not None and clock() >= deadline:
            hint = (
                " — still queued: is a worker running and connected to the same broker?"
                if status == "queued"
                else " — still running; wait longer or check progress"
            )
            raise WaitTimeout(f"{what} did not finish within {timeout:g} s (status {status!r}){hint}")
        left = poll if deadline is None else max(0.0, min(poll, deadline - clock()))
        sleep(left)
