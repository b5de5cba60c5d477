"""organise: names, notes, tags and archiving of runs and sweeps; spec and outcome catalogue columns.

Revision ID: 0008_organise
Revises: 0004_searches
Create Date: 2026-12-03

The catalogue columns (li2_store.catalog) copy spec fields and the outcome out of the JSON so lists
filter and sort in SQL; this migration backfills them for the rows that exist already.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_organise"
down_revision = "0004_searches"
branch_labels = None
depends_on = None

LABELS = ("name", "archived")  # the indexed label columns (note is not indexed)
CATALOGUE = (
    ("group_kind", sa.String(length=16), True),
    ("task_order", sa.Integer(), True),
    ("operands", sa.Integer(), False),
    ("train_size", sa.BigInteger(), True),
    ("train_fraction", sa.Float(), True),
    ("hidden", sa.Integer(), True),
    ("activation", sa.String(length=16), False),
    ("optimizer", sa.String(length=16), True),
    ("lr", sa.Float(), True),
    ("weight_decay", sa.Float(), True),
    ("seed", sa.BigInteger(), True),
    ("grokked", sa.Boolean(), True),
    ("epoch_generalized", sa.Integer(), True),
    ("final_test_acc", sa.Float(), True),
)


def _labels(table: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()))
    for column in LABELS:
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    _labels("sweeps")
    _labels("experiments")
    with op.batch_alter_table("experiments") as batch:
        for name, type_, _ in CATALOGUE:
            batch.add_column(sa.Column(name, type_, nullable=True))
    for name, _, indexed in CATALOGUE:
        if indexed:
            op.create_index(f"ix_experiments_{name}", "experiments", [name])
    for table, owner, key in (
        ("experiment_tags", "experiments", "experiment_id"),
        ("sweep_tags", "sweeps", "sweep_id"),
    ):
        op.create_table(
            table,
            sa.Column(key, sa.String(length=32), sa.ForeignKey(f"{owner}.id"), primary_key=True),
            sa.Column("tag", sa.String(length=40), primary_key=True),
        )
        op.create_index(f"ix_{table}_tag", table, ["tag"])

    from li2_store.catalog import backfill

    experiments = sa.table(
        "experiments",
        sa.column("id", sa.String()),
        sa.column("spec_json", sa.JSON()),
        sa.column("summary_json", sa.JSON()),
        *(sa.column(name, type_) for name, type_, _ in CATALOGUE),
    )
    backfill(op.get_bind(), experiments)


def downgrade() -> None:
    for table in ("sweep_tags", "experiment_tags"):
        op.drop_index(f"ix_{table}_tag", table_name=table)
        op.drop_table(table)
    for name, _, indexed in CATALOGUE:
        if indexed:
            op.drop_index(f"ix_experiments_{name}", table_name="experiments")
    for table in ("experiments", "sweeps"):
        for column in LABELS:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
    with op.batch_alter_table("experiments") as batch:
        for name, _, _ in CATALOGUE:
            batch.drop_column(name)
    for table in ("experiments", "sweeps"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("archived")
            batch.drop_column("note")
            batch.drop_column("name")
