"""Users: `revoked_at`, so an admin can refuse an account's token at once (li2lab users revoke).

Revision ID: 0009_users
Revises: 0008_organise
Create Date: 2026-12-03

NULL (every existing account) means active; `li2_store.users.user_for_token` only finds accounts
whose `revoked_at` is NULL, and `rotate_token` sets it back to NULL with the new token.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_users"
down_revision = "0008_organise"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("revoked_at")
