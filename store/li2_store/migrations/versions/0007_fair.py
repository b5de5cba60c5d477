"""fair-share dispatch: run priority and release marks, per-user shares, live worker slots.

Runs queued or running before this migration were already sent to the broker: they are marked released.

Revision ID: 0007_fair
Revises: 0009_users
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_fair"
down_revision = "0009_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("released_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("release_id", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE experiments SET released_at = COALESCE(enqueued_at, created_at) WHERE status IN ('queued', 'running')"
    )
    op.create_index("ix_experiments_status_released", "experiments", ["status", "released_at"])
    op.create_table(
        "fair_shares",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("high_allowance", sa.Integer(), nullable=True),
        sa.Column("pass_value", sa.Float(), nullable=False),
        sa.Column("last_released_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "worker_slots",
        sa.Column("name", sa.String(length=200), primary_key=True),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_slots")
    op.drop_table("fair_shares")
    op.drop_index("ix_experiments_status_released", table_name="experiments")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("release_id")
        batch.drop_column("released_at")
        batch.drop_column("priority")
