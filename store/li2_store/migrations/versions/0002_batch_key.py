"""Rename experiments.shape_key to batch_key: it holds li2.batching.batch_key, the one batching key.

Revision ID: 0002_batch_key
Revises: 0001_initial
Create Date: 2026-12-02
"""

from alembic import op

revision = "0002_batch_key"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_experiments_shape_key", table_name="experiments")
    with op.batch_alter_table("experiments") as batch:
        batch.alter_column("shape_key", new_column_name="batch_key")
    op.create_index("ix_experiments_batch_key", "experiments", ["batch_key"])


def downgrade() -> None:
    op.drop_index("ix_experiments_batch_key", table_name="experiments")
    with op.batch_alter_table("experiments") as batch:
        batch.alter_column("batch_key", new_column_name="shape_key")
    op.create_index("ix_experiments_shape_key", "experiments", ["shape_key"])
