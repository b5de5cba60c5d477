"""SQLAlchemy models: users, experiments, sweeps, searches, results, checkpoints and live metric rows.

The experiments table is the record of truth for every run's lifecycle
(queued → running → succeeded | failed | cancelled). Celery messages only carry
(run_id, attempt); the `attempt` column makes a late or duplicate message harmless, and
`heartbeat_at` is the lease the reaper checks. Checkpoints are stored in the database so a
multi-host deployment needs no shared filesystem.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from li2_store.db import utcnow

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict: sa.JSON, list: sa.JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 hex; tokens never stored
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)  # set: the token is refused (li2_store.users)


class Search(Base):
    """An adaptive search for n*(M) (li2.search): its request, the round in flight, and its law.

    Each round is a Sweep with `search_id` and `search_round`; `round` is the round in flight.
    """

    __tablename__ = "searches"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    request_json: Mapped[dict] = mapped_column(sa.JSON)  # li2.search.validate_search's normalised request
    status: Mapped[str] = mapped_column(sa.String(16), default="running", index=True)
    round: Mapped[int] = mapped_column(default=0)
    n_runs: Mapped[int] = mapped_column(default=0)  # runs created so far, over all rounds
    max_runs: Mapped[int] = mapped_column(default=0)
    stop_reason: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    progress_json: Mapped[list | None] = mapped_column(sa.JSON, default=None)  # per-order state of the last plan
    scaling_law_json: Mapped[dict | None] = mapped_column(sa.JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    fitted_at: Mapped[datetime | None] = mapped_column(default=None)


class Sweep(Base):
    __tablename__ = "sweeps"
    __table_args__ = (sa.UniqueConstraint("search_id", "search_round", name="uq_sweeps_search_round"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    base_json: Mapped[dict] = mapped_column(sa.JSON)
    grid_json: Mapped[dict] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued", index=True)
    n_runs: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    scaling_law_json: Mapped[dict | None] = mapped_column(sa.JSON, default=None)
    fitted_at: Mapped[datetime | None] = mapped_column(default=None)
    search_id: Mapped[str | None] = mapped_column(sa.ForeignKey("searches.id"), index=True, default=None)
    search_round: Mapped[int | None] = mapped_column(default=None)  # this sweep is that round of the search
    # The owner's labels (li2_service.organise): editable by PATCH, usable as list filters.
    name: Mapped[str | None] = mapped_column(sa.String(100), index=True, default=None)
    note: Mapped[str | None] = mapped_column(sa.Text, default=None)
    archived: Mapped[bool] = mapped_column(index=True, default=False, server_default=sa.false())
    tag_rows: Mapped[list[SweepTag]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="SweepTag.tag"
    )


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        # Atomic dedup: one plain (non-forced, non-sweep) submit per user and spec.
        sa.UniqueConstraint("user_id", "dedup_key", name="uq_experiments_user_dedup"),
        sa.Index("ix_experiments_status_enqueued", "status", "enqueued_at"),
        sa.Index("ix_experiments_status_released", "status", "released_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    sweep_id: Mapped[str | None] = mapped_column(sa.ForeignKey("sweeps.id"), index=True, default=None)
    spec_json: Mapped[dict] = mapped_column(sa.JSON)
    spec_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    dedup_key: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    batch_key: Mapped[str] = mapped_column(sa.String(64), index=True)  # li2.batching.batch_key
    status: Mapped[str] = mapped_column(sa.String(16), default="queued", index=True)
    attempt: Mapped[int] = mapped_column(default=1)
    max_attempts: Mapped[int] = mapped_column(default=3)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    progress_epoch: Mapped[int] = mapped_column(default=0)
    epochs: Mapped[int] = mapped_column(default=0)
    latest_metrics_json: Mapped[dict | None] = mapped_column(sa.JSON, default=None)
    summary_json: Mapped[dict | None] = mapped_column(sa.JSON, default=None)
    error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The owner's labels (li2_service.organise): editable by PATCH, usable as list filters.
    name: Mapped[str | None] = mapped_column(sa.String(100), index=True, default=None)
    note: Mapped[str | None] = mapped_column(sa.Text, default=None)
    archived: Mapped[bool] = mapped_column(index=True, default=False, server_default=sa.false())
    tag_rows: Mapped[list[ExperimentTag]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ExperimentTag.tag"
    )
    # Spec fields and outcome as columns, so lists filter and sort in SQL (li2_store.catalog fills them:
    # the spec columns at insert, the outcome columns with the summary). NULL: not known (yet).
    group_kind: Mapped[str | None] = mapped_column(sa.String(16), index=True, default=None)
    task_order: Mapped[int | None] = mapped_column(index=True, default=None)  # M, whatever the group
    operands: Mapped[int | None] = mapped_column(default=None)
    train_size: Mapped[int | None] = mapped_column(sa.BigInteger, index=True, default=None)  # n, resolved
    train_fraction: Mapped[float | None] = mapped_column(sa.Float, index=True, default=None)  # n / M^operands
    hidden: Mapped[int | None] = mapped_column(index=True, default=None)
    activation: Mapped[str | None] = mapped_column(sa.String(16), default=None)
    optimizer: Mapped[str | None] = mapped_column(sa.String(16), index=True, default=None)
    lr: Mapped[float | None] = mapped_column(sa.Float, index=True, default=None)
    weight_decay: Mapped[float | None] = mapped_column(sa.Float, index=True, default=None)
    seed: Mapped[int | None] = mapped_column(sa.BigInteger, index=True, default=None)
    grokked: Mapped[bool | None] = mapped_column(index=True, default=None)
    epoch_generalized: Mapped[int | None] = mapped_column(index=True, default=None)
    final_test_acc: Mapped[float | None] = mapped_column(sa.Float, index=True, default=None)
    # Fair-share dispatch (li2_store.dispatch): a queued run waits in the database until the
    # dispatcher releases it to the broker; `release_id` names the message (batch) it went out in.
    priority: Mapped[int] = mapped_column(sa.SmallInteger, default=1, server_default="1")  # 0 low, 1 normal, 2 high
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    release_id: Mapped[str | None] = mapped_column(sa.String(32), default=None)

    result: Mapped[Result | None] = relationship(back_populates="experiment", uselist=False)


class ExperimentTag(Base):
    """One tag of one experiment (li2_service.organise); indexed by tag for the ?tag= filter."""

    __tablename__ = "experiment_tags"

    experiment_id: Mapped[str] = mapped_column(sa.ForeignKey("experiments.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(40), primary_key=True, index=True)


class SweepTag(Base):
    """One tag of one sweep (li2_service.organise); indexed by tag for the ?tag= filter."""

    __tablename__ = "sweep_tags"

    sweep_id: Mapped[str] = mapped_column(sa.ForeignKey("sweeps.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(40), primary_key=True, index=True)


class Result(Base):
    __tablename__ = "results"

    experiment_id: Mapped[str] = mapped_column(sa.ForeignKey("experiments.id"), primary_key=True)
    result_json: Mapped[dict] = mapped_column(sa.JSON)
    metrics_json: Mapped[dict] = mapped_column(sa.JSON)
    timeline_json: Mapped[dict] = mapped_column(sa.JSON)
    features_json: Mapped[dict] = mapped_column(sa.JSON)
    predictions_json: Mapped[dict] = mapped_column(sa.JSON)

    experiment: Mapped[Experiment] = relationship(back_populates="result")


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (sa.Index("ix_checkpoints_exp_kind_epoch", "experiment_id", "kind", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[str] = mapped_column(sa.ForeignKey("experiments.id"))
    epoch: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(16))  # "resume" (newest only) | "snapshot"
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)  # safetensors bytes, never pickle
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricRow(Base):
    """One measurement of a run while it trains (what the worker's progress flush writes).

    The API serves these as the partial curves of a running (or failed) run; once the run's result
    row exists, that holds the full curves and these rows are dropped (`li2_store.metric_rows`).
    """

    __tablename__ = "metric_rows"

    experiment_id: Mapped[str] = mapped_column(sa.ForeignKey("experiments.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(primary_key=True)
    row_json: Mapped[dict] = mapped_column(sa.JSON)  # {column: value}: one row of li2.trainer.COLUMNS


class FairShare(Base):
    """A user's standing in fair-share dispatch (li2_store.dispatch): admin-set weight and `high`
    allowance, and the stride scheduler's pass value (advanced by 1/weight per released batch)."""

    __tablename__ = "fair_shares"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    weight: Mapped[float] = mapped_column(sa.Float, default=1.0)
    high_allowance: Mapped[int | None] = mapped_column(default=None)  # None: LI2_HIGH_ALLOWANCE
    pass_value: Mapped[float] = mapped_column(sa.Float, default=0.0)
    last_released_at: Mapped[datetime | None] = mapped_column(default=None)


class WorkerSlot(Base):
    """A live `li2lab worker` and its pool size, refreshed by its dispatcher thread every pass; the
    dispatcher counts the slots of workers seen within a lease to know how many batches to release."""

    __tablename__ = "worker_slots"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    slots: Mapped[int] = mapped_column(default=1)
    device: Mapped[str] = mapped_column(sa.String(32), default="cpu")
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
