"""``Client``: the entry point of the SDK — connect, submit, look up, list, cancel, fetch results.

    with Client() as client:                              # LI2_URL/LI2_TOKEN or the config file
        exp = client.submit(Spec.cyclic(23).epochs(300))
    client = Client("http://gpu-server:8000", token="...", timeout=30, retries=3)
    ...
    client.close()                                        # or let the `with` block do it

Every method raises a typed ``Li2Error`` subclass (see ``li2_client.errors``) on failure.
The ``Experiment`` and ``Sweep`` handles are built on the public methods here: everything a handle
can fetch, a script can also fetch by id (``client.timeline(exp_id)``) without making one.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from .builder import SpecBuilder, as_spec_dict
from .config import resolve
from .experiments import Experiment
from .http import Transport
from .results import Features, Predictions, ScalingLaw, Timeline
from .searches import Search
from .sweeps import Sweep

PAGE_SIZE = 100


class _Unset:
    """The default of a label argument that was not given (``None`` means: clear it)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


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

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP session and its pooled connections; the client cannot be used afterwards."""
        self._http.close()

    @property
    def closed(self) -> bool:
        return self._http.closed

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- experiments --------------------------------------------------------------------------
    def submit(
        self,
        spec: SpecBuilder | dict[str, Any],
        force: bool = False,
        idempotency_key: str | None = None,
        *,
        name: str | None = None,
        tags: builtins.list[str] | None = None,
        note: str | None = None,
        priority: str | None = None,
    ) -> Experiment:
        """Submit one experiment; return its handle (``exp.cached`` is True when the same spec was
        already submitted by you and ``force`` is False — then no new run is made, and the run keeps
        the labels it has: change them with ``update``).

        ``name``, ``tags`` and ``note`` label the new run (filters of ``list``). Each call sends an
        ``Idempotency-Key`` (a fresh UUID unless you pass one), which makes a retry after a lost
        answer safe: the server answers it with the first run, not a second one.
        ``priority`` (low | normal | high) orders your own waiting work; it is not part of the spec.
        """
        key = idempotency_key or uuid.uuid4().hex
        body: dict[str, Any] = {"spec": as_spec_dict(spec), "force": bool(force), **_labels(name, tags, note)}
        if priority is not None:
            body["priority"] = priority
        data = self._http.post_json("/experiments", body, headers={"Idempotency-Key": key})
        return Experiment(self, data)

    def get(self, experiment_id: str) -> Experiment:
        """The handle of an existing experiment (NotFound if unknown or not yours)."""
        return Experiment(self, self.experiment_data(experiment_id))

    def experiment_data(self, experiment_id: str) -> dict[str, Any]:
        """``GET /experiments/{id}`` as the server sends it: status, spec, progress, summary, ..."""
        return dict(self._http.get_json(_experiment_path(experiment_id)))

    def list(
        self,
        status: str | None = None,
        sweep_id: str | None = None,
        *,
        sort: str | None = None,
        tag: str | builtins.list[str] | None = None,
        **filters: Any,
    ) -> Iterator[Experiment]:
        """Your experiments, newest first unless ``sort`` says otherwise; pages are fetched lazily.

            client.list(order=23, grokked=True, tag="paper", sort="-final_test_acc")

        Filters (the server's query parameters, docs/design.md): spec fields ``group``, ``order``
        (M), ``operands``, ``train_size``, ``hidden``, ``activation``, ``optimizer``, ``lr``,
        ``weight_decay``, ``seed``; outcome ``grokked``, ``epoch_generalized``, ``final_test_acc``;
        a ``_min``/``_max`` suffix for a range (``train_fraction_min=0.3``, ``final_test_acc_min=0.99``);
        labels ``name`` (substring), ``tag`` (one, or a list that must all be present) and
        ``archived=True`` (only the archived runs; they are hidden otherwise). ``sort`` is a field
        name, ``-`` in front for descending. An unknown filter raises ``ValidationError`` naming it.
        """
        params = {k: v for k, v in (("status", status), ("sweep_id", sweep_id), ("sort", sort)) if v}
        params.update(_query(tag=tag, **filters))
        for item in self._paginate("/experiments", params):
            yield Experiment(self, item)

    def update(
        self,
        experiment_id: str,
        *,
        name: str | _Unset | None = UNSET,
        tags: builtins.list[str] | _Unset = UNSET,
        note: str | _Unset | None = UNSET,
        archived: bool | _Unset = UNSET,
    ) -> Experiment:
        """Change an experiment's labels (``PATCH``): the given ones only; ``name=None`` or
        ``note=None`` clears it, ``tags`` replaces the tags, ``archived`` hides it from ``list()``.
        Bad values raise ``ValidationError`` naming the field, and nothing is changed."""
        body = _changes(name=name, tags=tags, note=note, archived=archived)
        return Experiment(self, self._http.request("PATCH", _experiment_path(experiment_id), json=body).json())

    def delete(self, experiment_id: str) -> dict[str, Any]:
        """Delete a run that has ended, with its metrics, result and checkpoints; the server's counts
        ``{"id", "deleted": {"experiments", "results", "checkpoints", ...}}``. ``Conflict`` while it
        is queued or running (cancel first) or when it belongs to a sweep (``delete_sweep``)."""
        return dict(self._http.request("DELETE", _experiment_path(experiment_id)).json())

    def download(self, experiment_id: str, path: str | Path, format: str = "tar.gz") -> Path:
        """Save a finished run as one archive (``tar.gz`` or ``zip``) at ``path``, streamed: its record
        (``ID/experiment.json``), ``ID/result.json`` and every checkpoint (``ID/checkpoints/``)."""
        params = {"format": format}
        resp = self._http.request("GET", _experiment_path(experiment_id, "/archive"), params=params, stream=True)
        return _save(resp, path)

    def cancel(self, experiment_id: str) -> Experiment:
        """Cancel by id; a queued run is cancelled at once, a running one within seconds.
        Returns a handle whose ``status`` is the server's answer (``cancelled`` or ``running``)."""
        answer = self._http.post_json(_experiment_path(experiment_id, "/cancel"))
        data = {"id": experiment_id}
        if isinstance(answer, dict):
            data.update(answer)
        return Experiment(self, data)

    # -- one experiment's results (each needs a finished run except predictions) ----------------
    def metric_columns(self, experiment_id: str, since: int | None = None) -> dict[str, builtins.list[Any]]:
        """The metrics measured so far as ``{column: [values]}`` (``epoch``, ``train_acc``, ...);
        ``since``: only the rows measured after that epoch."""
        return dict(self.metrics_page(experiment_id, since).get("columns") or {})

    def metrics_page(self, experiment_id: str, since: int | None = None) -> dict[str, Any]:
        """The server's metrics answer ``{"columns", "status", "complete", "last_epoch"}``, also while
        the run trains; ``since``: only the rows measured after that epoch."""
        params = {} if since is None else {"since": int(since)}
        return dict(self._http.get_json(_experiment_path(experiment_id, "/metrics"), params))

    def metrics_csv_text(self, experiment_id: str) -> str:
        """The metrics as CSV text (the server's rendering: header row, empty cells for NaN)."""
        path = _experiment_path(experiment_id, "/metrics")
        return self._http.request("GET", path, params={"format": "csv"}).text

    def timeline(self, experiment_id: str) -> Timeline:
        """The lazy → independent → interactive stage timeline, with events and censoring."""
        return Timeline.from_dict(self._http.get_json(_experiment_path(experiment_id, "/timeline")))

    def features(self, experiment_id: str) -> Features:
        """The learned features: per-node irrep decomposition, spectrum, coverage."""
        return Features.from_dict(self._http.get_json(_experiment_path(experiment_id, "/features")))

    def predictions(self, experiment_id: str) -> Predictions:
        """What the theory predicts for the run's spec; available as soon as it is submitted."""
        return Predictions.from_dict(self._http.get_json(_experiment_path(experiment_id, "/predictions")))

    def checkpoints(self, experiment_id: str) -> builtins.list[dict[str, Any]]:
        """The run's stored checkpoints: ``[{"epoch", "kind", "size"}]``."""
        body = self._http.get_json(_experiment_path(experiment_id, "/checkpoints"))
        return list(body.get("items", body) if isinstance(body, dict) else body)

    def download_checkpoint(self, experiment_id: str, epoch: int, path: str | Path) -> Path:
        """Save the safetensors checkpoint of ``epoch`` to ``path`` (streamed); return the path."""
        resp = self._http.request("GET", _experiment_path(experiment_id, f"/checkpoints/{int(epoch)}"), stream=True)
        return _save(resp, path)

    # -- sweeps ---------------------------------------------------------------------------------
    def submit_sweep(
        self,
        base: SpecBuilder | dict[str, Any],
        grid: dict[str, builtins.list[Any]],
        *,
        name: str | None = None,
        tags: builtins.list[str] | None = None,
        note: str | None = None,
        early_stop: dict[str, Any] | None = None,
        priority: str | None = None,
    ) -> Sweep:
        """Submit the Cartesian product of ``grid`` (dotted spec paths → values) over ``base``;
        ``name``, ``tags`` and ``note`` label the sweep (filters of ``list_sweeps``).

        ``early_stop`` ({} for the defaults, or {"threshold", "patience_epochs"}) stops every run
        once it has generalized and stayed there (``training.early_stop`` in docs/design.md).

        The service has no idempotency key for sweeps, so this POST is never retried: after a
        network error, look at ``list_sweeps()`` before submitting again. ``priority``: as `submit`.
        """
        body: dict[str, Any] = {"base": as_spec_dict(base), "grid": grid, **_labels(name, tags, note)}
        if early_stop is not None:
            body["early_stop"] = early_stop
        if priority is not None:
            body["priority"] = priority
        return Sweep(self, self._http.post_json("/sweeps", body))

    def get_sweep(self, sweep_id: str) -> Sweep:
        """The handle of an existing sweep (NotFound if unknown or not yours)."""
        return Sweep(self, self.sweep_data(sweep_id))

    def sweep_data(self, sweep_id: str) -> dict[str, Any]:
        """``GET /sweeps/{id}`` as the server sends it: status, n_runs, counts, progress, ..."""
        return dict(self._http.get_json(_sweep_path(sweep_id)))

    def list_sweeps(
        self,
        status: str | None = None,
        *,
        name: str | None = None,
        tag: str | builtins.list[str] | None = None,
        archived: bool | None = None,
    ) -> Iterator[Sweep]:
        """Your sweeps, newest first; pages are fetched lazily. ``name`` (substring), ``tag`` and
        ``archived=True`` filter as in ``list``."""
        for item in self._paginate("/sweeps", _query(status=status, name=name, tag=tag, archived=archived)):
            yield Sweep(self, item)

    def update_sweep(
        self,
        sweep_id: str,
        *,
        name: str | _Unset | None = UNSET,
        tags: builtins.list[str] | _Unset = UNSET,
        note: str | _Unset | None = UNSET,
        archived: bool | _Unset = UNSET,
    ) -> Sweep:
        """Change a sweep's labels (``PATCH``), as ``update`` does for an experiment."""
        body = _changes(name=name, tags=tags, note=note, archived=archived)
        return Sweep(self, self._http.request("PATCH", _sweep_path(sweep_id), json=body).json())

    def delete_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Delete a sweep whose runs have all ended (or were cancelled), with all its runs; the
        server's counts. ``Conflict`` while any run is queued or running."""
        return dict(self._http.request("DELETE", _sweep_path(sweep_id)).json())

    def cancel_sweep(self, sweep_id: str) -> Sweep:
        """Cancel every queued run of the sweep and ask its running runs to stop; the fresh handle."""
        self._http.post_json(_sweep_path(sweep_id, "/cancel"))
        return self.get_sweep(sweep_id)

    def sweep_runs(self, sweep_id: str) -> builtins.list[dict[str, Any]]:
        """The sweep's run entries (id, status, spec, summary) of ``GET /sweeps/{id}/runs``, all pages."""
        return list(self._paginate(_sweep_path(sweep_id, "/runs"), {}))

    def scaling_law(self, sweep_id: str, partial: bool = False) -> ScalingLaw:
        """The sweep's fitted n* ≈ c·M·ln M; ``partial=True`` fits now on the runs that have ended."""
        return self._scaling_law(_sweep_path(sweep_id), partial)

    # -- searches -------------------------------------------------------------------------------
    def find_critical_size(
        self,
        base: SpecBuilder | dict[str, Any],
        orders: builtins.list[int],
        seeds: int = 2,
        tolerance: float = 0.05,
        max_runs: int = 200,
        **options: Any,
    ) -> Search:
        """Start an adaptive search for the critical training size n*(M) at each order.

        Rounds of runs are placed by the service where each n*(M) is still uncertain, until every
        one is known to ±``tolerance`` (its 95 % interval) or ``max_runs`` runs have been used.
        ``options`` are the other request fields: ``order_kind``, ``epochs``, ``prior_c``,
        ``initial_points``, ``initial_spread``, ``points_per_round``, ``max_rounds``,
        ``early_stopping``. Returns the handle at once; ``.wait()`` blocks until it ends. Not
        retried after a network error (look at ``list_searches()`` first).
        """
        body = {
            "base": as_spec_dict(base),
            "orders": list(orders),
            "seeds": seeds,
            "tolerance": tolerance,
            "max_runs": max_runs,
            **options,
        }
        return Search(self, self._http.post_json("/searches", body))

    def get_search(self, search_id: str) -> Search:
        return Search(self, self.search_data(search_id))

    def search_data(self, search_id: str) -> dict[str, Any]:
        """``GET /searches/{id}``: status, round, runs counted by status, each order's state."""
        return dict(self._http.get_json(_search_path(search_id)))

    def list_searches(self) -> Iterator[Search]:
        for item in self._paginate("/searches", {}):
            yield Search(self, item)

    def cancel_search(self, search_id: str) -> Search:
        """Stop a search (no further round; queued runs cancelled, running ones stopped); the fresh handle."""
        self._http.post_json(_search_path(search_id, "/cancel"))
        return self.get_search(search_id)

    def search_runs(self, search_id: str) -> builtins.list[dict[str, Any]]:
        """Every run entry of every round (id, round, status, spec, summary), all pages."""
        return list(self._paginate(_search_path(search_id, "/runs"), {}))

    def search_scaling_law(self, search_id: str, partial: bool = False) -> ScalingLaw:
        """The joint law over every run of the search; ``partial=True`` fits now while it runs."""
        return self._scaling_law(_search_path(search_id), partial)

    def _scaling_law(self, path: str, partial: bool) -> ScalingLaw:
        """``GET {path}/scaling-law`` of a sweep or a search (``?partial=true`` to fit now)."""
        params = {"partial": "true"} if partial else None
        return ScalingLaw.from_dict(self._http.get_json(f"{path}/scaling-law", params))

    # -- service --------------------------------------------------------------------------------
    def queue(self) -> dict[str, Any]:
        """``GET /queue``: running batches (worker, device, since, user), and each waiting user's
        position and estimated start (seconds from now; None until epoch rates are measured)."""
        return self._http.get_json("/queue")

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
        return f"<li2_client.Client {self.url}{' (closed)' if self.closed else ''}>"


def _labels(name: str | None, tags: builtins.list[str] | None, note: str | None) -> dict[str, Any]:
    """The submit body's label fields that were given."""
    given = {"name": name, "tags": None if tags is None else list(tags), "note": note}
    return {k: v for k, v in given.items() if v is not None}


def _changes(**labels: Any) -> dict[str, Any]:
    """A PATCH body: the labels that were given (None included: it clears)."""
    return {k: (list(v) if k == "tags" else v) for k, v in labels.items() if not isinstance(v, _Unset)}


def _query(**params: Any) -> dict[str, Any]:
    """Query parameters as the server reads them: booleans as true/false, a list as repeats, None left out."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            out[key] = [str(v) for v in value]
        else:
            out[key] = value
    return out


def _save(resp: Any, path: str | Path) -> Path:
    """Stream a response's body into ``path``; the path."""
    out = Path(path)
    with resp, out.open("wb") as fh:
        for chunk in resp.iter_content(chunk_size=1 << 16):
            fh.write(chunk)
    return out


def _experiment_path(experiment_id: str, suffix: str = "") -> str:
    return f"/experiments/{experiment_id}{suffix}"


def _sweep_path(sweep_id: str, suffix: str = "") -> str:
    return f"/sweeps/{sweep_id}{suffix}"


def _search_path(search_id: str, suffix: str = "") -> str:
    return f"/searches/{search_id}{suffix}"
