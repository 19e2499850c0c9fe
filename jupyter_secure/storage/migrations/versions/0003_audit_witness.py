"""The audit index keeps each record's hash, so the database can witness the trail.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_index") as batch:
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_index") as batch:
        batch.drop_column("hash")
