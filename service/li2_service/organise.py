"""Organising runs: labels (name, tags, note), archive, filters and sorts, delete, whole-run download.

Filters and sorts run in SQL on the experiments table's catalogue columns (li2_store.catalog), with
the query names of `organise_schemas`. Labels are validated by `organise_schemas.LabelsSchema`
before anything is written, so bad input changes nothing. Deleting is for runs that have ended:
a run's metric rows, result, checkpoints and tags go with it in one transaction; a sweep goes with
all its runs. The download archive is built by the server (member names from the run id and the
checkpoint epochs, never from user input) and streamed member by member.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError

from li2_service.auth import Caller
from li2_service.errors import fail, flatten_errors
from li2_service.labels import LabelsSchema
from li2_service.listing import visible_rows
from li2_service.organise_schemas import CHOICES, NUMERIC, SORTS, PatchSchema
from li2_store import models
from li2_store.sweeps import ACTIVE

LABEL_FIELDS = ("name", "tags", "note")
Labelled = models.Experiment | models.Sweep


# ---------------------------------------------------------------------------------- labels


def load_labels(body: dict, schema: type[LabelsSchema] = LabelsSchema) -> dict:
    """Validate labels (or a PATCH body); 422 naming each bad field, before anything is written."""
    try:
        return schema().load(body)
    except ValidationError as exc:
        fail(422, "invalid labels; see errors", errors=flatten_errors(exc.messages))


def pop_labels(body: dict) -> tuple[dict, dict]:
    """Split a submit body into (the rest, its validated labels {name, tags, note} if given)."""
    rest = {k: v for k, v in body.items() if k not in LABEL_FIELDS}
    return rest, load_labels({k: body[k] for k in LABEL_FIELDS if k in body})


def apply_labels(row: Labelled, labels: dict) -> None:
    """Set the given labels on a row in the caller's session (fields left out stay as they are)."""
    for key in ("name", "note", "archived"):
        if key in labels:
            setattr(row, key, labels[key])
    if "tags" in labels:
        tag_model = models.ExperimentTag if isinstance(row, models.Experiment) else models.SweepTag
        row.tag_rows = [tag_model(tag=t) for t in labels["tags"]]  # type: ignore[assignment]


def patch(session, row: Labelled, body: dict) -> None:
    """PATCH: validate the whole body first (422, nothing changed), then apply it."""
    apply_labels(row, load_labels(body, PatchSchema))
    session.flush()


# ---------------------------------------------------------------------------------- filters and sorts


def _label_filters(stmt: sa.Select, model: type[Labelled], q: dict[str, Any]) -> sa.Select:
    tag_model = models.ExperimentTag if model is models.Experiment else models.SweepTag
    owner = tag_model.experiment_id if model is models.Experiment else tag_model.sweep_id  # type: ignore[union-attr]
    stmt = stmt.where(model.archived.is_(bool(q.get("archived", False))))
    if q.get("name"):
        stmt = stmt.where(sa.func.lower(model.name).contains(q["name"].lower(), autoescape=True))
    for tag in q.get("tag") or []:
        stmt = stmt.where(sa.exists().where(owner == model.id, tag_model.tag == tag))
    return stmt


def _sorted(stmt: sa.Select, model: type[Labelled], sort: str | None) -> sa.Select:
    """ORDER BY the ?sort= field (rows without a value last), then newest first, then id."""
    ties = (model.created_at.desc(), model.id)
    if not sort:
        return stmt.order_by(*ties)
    column = getattr(model, SORTS[sort.lstrip("-")])
    key = column.desc() if sort.startswith("-") else column.asc()
    return stmt.order_by(key.nulls_last(), *ties)


def experiments_query(caller: Caller, q: dict[str, Any]) -> sa.Select:
    """The ordered SELECT of the experiments GET /experiments lists for these query values."""
    exp = models.Experiment
    stmt = visible_rows(exp, caller, q.get("user"), q.get("status"))
    if q.get("sweep_id"):
        stmt = stmt.where(exp.sweep_id == q["sweep_id"])
    for name, (column, _, _, exact) in NUMERIC.items():
        col = getattr(exp, column)
        if exact and q.get(name) is not None:
            stmt = stmt.where(col == q[name])
        if q.get(f"{name}_min") is not None:
            stmt = stmt.where(col >= q[f"{name}_min"])
        if q.get(f"{name}_max") is not None:
            stmt = stmt.where(col <= q[f"{name}_max"])
    for name, (column, _) in CHOICES.items():
        if q.get(name) is not None:
            stmt = stmt.where(getattr(exp, column) == q[name])
    if q.get("grokked") is not None:
        stmt = stmt.where(exp.grokked.is_(bool(q["grokked"])))
    return _sorted(_label_filters(stmt, exp, q), exp, q.get("sort"))


def sweeps_query(caller: Caller, q: dict[str, Any]) -> sa.Select:
    """The ordered SELECT of the sweeps GET /sweeps lists for these query values (newest first)."""
    stmt = visible_rows(models.Sweep, caller, q.get("user"), q.get("status"))
    return _sorted(_label_filters(stmt, models.Sweep, q), models.Sweep, None)


# ---------------------------------------------------------------------------------- delete


def _delete_runs(session, runs: sa.Select) -> dict[str, int]:
    """Delete the runs selected by `runs` (a SELECT of experiment ids) and everything they own."""
    counts = {}
    for name, model in (
        ("checkpoints", models.Checkpoint),
        ("metric_rows", models.MetricRow),
        ("results", models.Result),
        ("tags", models.ExperimentTag),
    ):
        counts[name] = session.execute(sa.delete(model).where(model.experiment_id.in_(runs))).rowcount or 0
    exp = models.Experiment
    counts["experiments"] = session.execute(sa.delete(exp).where(exp.id.in_(runs))).rowcount or 0
    return counts


def delete_experiment(session, row: models.Experiment) -> dict[str, int]:
    """Delete a run that has ended, with its metric rows, result, checkpoints and tags.

    409 while it is queued or running (cancel it first), and for a run of a sweep (the sweep's
    law and counts are made of its runs: delete the sweep instead).
    """
    exp = models.Experiment
    status = session.scalar(sa.select(exp.status).where(exp.id == row.id).with_for_update())
    if status not in models.TERMINAL:
        fail(409, f"the experiment is {status}; cancel it or wait until it has ended, then delete it")
    if row.sweep_id is not None:
        fail(409, f"this run belongs to sweep {row.sweep_id}; delete the sweep (all its runs) instead")
    session.expunge(row)  # the ORM must not flush the deleted row's tags again
    return _delete_runs(session, sa.select(exp.id).where(exp.id == row.id))


def delete_sweep(session, sweep: models.Sweep) -> dict[str, int]:
    """Delete a sweep whose runs have all ended (or were cancelled), with all its runs; else 409."""
    exp, sw = models.Experiment, models.Sweep
    session.execute(sa.select(sw.id).where(sw.id == sweep.id).with_for_update())
    if sweep.search_id is not None:
        fail(409, f"this sweep is round {sweep.search_round} of search {sweep.search_id}; it goes with the search")
    active = session.scalar(
        sa.select(sa.func.count()).select_from(exp).where(exp.sweep_id == sweep.id, exp.status.in_(ACTIVE))
    )
    if active:
        fail(409, f"{active} run(s) of the sweep are still queued or running; cancel the sweep or wait, then delete")
    session.expunge(sweep)
    counts = _delete_runs(session, sa.select(exp.id).where(exp.sweep_id == sweep.id))
    counts["tags"] += session.execute(sa.delete(models.SweepTag).where(models.SweepTag.sweep_id == sweep.id)).rowcount
    counts["sweeps"] = session.execute(sa.delete(sw).where(sw.id == sweep.id)).rowcount or 0
    return counts


# ---------------------------------------------------------------------------------- archive download


class _Chunks(io.RawIOBase):
    """A write-only, unseekable sink whose bytes are taken out as they come (for streaming)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


ARCHIVE_TYPES = {"tar.gz": "application/gzip", "zip": "application/zip"}


def archive_members(engine: sa.Engine, run_id: str, view: dict) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each archive member, read one at a time: experiment.json (status, spec,
    summary, labels), result.json when the run has a result, and every stored checkpoint."""
    from li2_store.db import session_scope

    yield f"{run_id}/experiment.json", json.dumps(view, indent=2, sort_keys=True).encode()
    ck = models.Checkpoint
    with session_scope(engine) as session:
        result = session.scalar(sa.select(models.Result.result_json).where(models.Result.experiment_id == run_id))
        found = session.execute(
            sa.select(ck.id, ck.epoch, ck.kind).where(ck.experiment_id == run_id).order_by(ck.epoch, ck.kind)
        ).all()
    if result is not None:
        yield f"{run_id}/result.json", json.dumps(result, indent=2, sort_keys=True).encode()
    for ck_id, epoch, kind in found:
        with session_scope(engine) as session:
            data = session.scalar(sa.select(ck.data).where(ck.id == ck_id))
        if data is not None:  # deleted meanwhile: left out
            yield f"{run_id}/checkpoints/epoch-{int(epoch):07d}-{kind}.safetensors", bytes(data)


def archive_stream(members: Iterator[tuple[str, bytes]], fmt: str) -> Iterator[bytes]:
    """The members as a tar.gz or zip byte stream, yielded after each member is written."""
    sink = _Chunks()
    now = time.time()
    if fmt == "zip":
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                entry = zipfile.ZipInfo(name, time.gmtime(now)[:6])
                entry.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(entry, data)
                yield sink.take()
    else:
        with tarfile.open(fileobj=sink, mode="w|gz") as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), int(now), 0o644
                tar.addfile(info, io.BytesIO(data))
                yield sink.take()
    yield sink.take()
