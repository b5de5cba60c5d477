"""``Client``: the entry point of the SDK — connect, submit, look up, list, cancel.

    client = Client()                                     # LI2_URL/LI2_TOKEN or the config file
    client = Client("http://gpu-server:8000", token="...", timeout=30, retries=3)

Every method raises a typed ``Li2Error`` subclass (see ``li2_client.errors``) on failure.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterator
from typing import Any

from .builder import SpecBuilder, as_spec_dict
from .config import resolve
from .experiments import Experiment
from .http import Transport
from .sweeps import Sweep

PAGE_SIZE = 100


class Client:
    """A connection to one Li2 Lab service, authenticated as one user."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30,
        retries: int = 3,
        profile: str | None = None,
        max_retry_wait: float = 10.0,
    ):
        settings = resolve(url, token, profile)
        self.url = settings.url
        self._http = Transport(
            settings.url,
            settings.token,
            timeout=timeout,
            retries=retries,
            token_source=settings.source,
            max_retry_wait=max_retry_wait,
        )

    # -- experiments --------------------------------------------------------------------------
    def submit(
        self, spec: SpecBuilder | dict[str, Any], force: bool = False, idempotency_key: str | None = None
    ) -> Experiment:
        """Submit one experiment; return its handle (``exp.cached`` is True when the same spec was
        already submitted by you and ``force`` is False — then no new run is made).

        Each call sends an ``Idempotency-Key`` (a fresh UUID unless you pass one), which makes a
        retry after a lost answer safe: the server answers it with the first run, not a second one.
        """
        key = idempotency_key or uuid.uuid4().hex
        body = {"spec": as_spec_dict(spec), "force": bool(force)}
        data = self._http.post_json("/experiments", body, headers={"Idempotency-Key": key})
        return Experiment(self, data)

    def get(self, experiment_id: str) -> Experiment:
        """The handle of an existing experiment (NotFound if unknown or not yours)."""
        return Experiment(self, self._http.get_json(f"/experiments/{experiment_id}"))

    def list(self, status: str | None = None, sweep_id: str | None = None) -> Iterator[Experiment]:
        """Your experiments, newest first as the server orders them; pages are fetched lazily."""
        params = {k: v for k, v in (("status", status), ("sweep_id", sweep_id)) if v}
        for item in self._paginate("/experiments", params):
            yield Experiment(self, item)

    def cancel(self, experiment_id: str) -> Experiment:
        """Cancel by id; returns the handle with the new status."""
        return Experiment(self, {"id": experiment_id}).cancel()

    # -- sweeps ---------------------------------------------------------------------------------
    def submit_sweep(self, base: SpecBuilder | dict[str, Any], grid: dict[str, builtins.list[Any]]) -> Sweep:
        """Submit the Cartesian product of ``grid`` (dotted spec paths → values) over ``base``.

        The service has no idempotency key for sweeps, so this POST is never retried: after a
        network error, look at ``list_sweeps()`` before submitting again.
        """
        body = {"base": as_spec_dict(base), "grid": grid}
        return Sweep(self, self._http.post_json("/sweeps", body))

    def get_sweep(self, sweep_id: str) -> Sweep:
        return Sweep(self, self._http.get_json(f"/sweeps/{sweep_id}"))

    def list_sweeps(self) -> Iterator[Sweep]:
        for item in self._paginate("/sweeps", {}):
            yield Sweep(self, item)

    # -- service --------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /readyz``: whether the database and broker are reachable (raises ServerError if not)."""
        resp = self._http.request("GET", "/readyz")
        try:
            return resp.json()
        except ValueError:
            return {"status": resp.text.strip()}

    # -- internal -------------------------------------------------------------------------------
    def _paginate(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        """Yield the items of every page of a paginated list endpoint (or of a plain list answer)."""
        page = 1
        while True:
            body = self._http.get_json(path, {**params, "page": page, "page_size": PAGE_SIZE})
            if isinstance(body, list):
                yield from body
                return
            items = body.get("items") or []
            yield from items
            total = body.get("total")
            size = body.get("page_size") or PAGE_SIZE
            if not items or len(items) < size or (total is not None and page * size >= total):
                return
            page += 1

    def __repr__(self) -> str:
        return f"<li2_client.Client {self.url}>"
