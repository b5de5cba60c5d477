"""metric_rows: the measured rows of a run while it trains, for live curves (GET .../metrics?since=).

Revision ID: 0006_metric_rows
Revises: 0002_batch_key
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_metric_rows"
down_revision = "0002_batch_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_rows",
        sa.Column("experiment_id", sa.String(length=32), sa.ForeignKey("experiments.id"), primary_key=True),
        sa.Column("epoch", sa.Integer(), primary_key=True),
        sa.Column("row_json", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_rows")
