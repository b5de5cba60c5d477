"""Searches: the adaptive search for n* as its own table; each of its rounds is a sweep.

Revision ID: 0004_searches
Revises: 0006_metric_rows
Create Date: 2026-12-02

`searches.round` is the round now in flight; the next round is planned by the one conditional
UPDATE that moves it on (li2_store.searches.advance), and the unique (search_id, search_round)
on sweeps makes a second round with the same number impossible even so.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_searches"
down_revision = "0006_metric_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("request_json", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("n_runs", sa.Integer(), nullable=False),
        sa.Column("max_runs", sa.Integer(), nullable=False),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("progress_json", sa.JSON(), nullable=True),
        sa.Column("scaling_law_json", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("fitted_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_searches_status", "searches", ["status"])
    op.create_index("ix_searches_user_id", "searches", ["user_id"])
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("search_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("search_round", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_sweeps_search_id", "searches", ["search_id"], ["id"])
        batch.create_unique_constraint("uq_sweeps_search_round", ["search_id", "search_round"])
    op.create_index("ix_sweeps_search_id", "sweeps", ["search_id"])


def downgrade() -> None:
    op.drop_index("ix_sweeps_search_id", table_name="sweeps")
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_constraint("uq_sweeps_search_round", type_="unique")
        batch.drop_constraint("fk_sweeps_search_id", type_="foreignkey")
        batch.drop_column("search_round")
        batch.drop_column("search_id")
    op.drop_index("ix_searches_user_id", table_name="searches")
    op.drop_index("ix_searches_status", table_name="searches")
    op.drop_table("searches")
