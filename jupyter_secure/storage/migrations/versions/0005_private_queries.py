"""Private queries: protected datasets, grants, per-user spend and the release ledger.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from jupyter_secure.storage.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "private_datasets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("cap_nanos", sa.BigInteger(), nullable=False),
        sa.Column("spent_nanos", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("added_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_private_datasets")),
    )
    op.create_table(
        "private_grants",
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("budget_nanos", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset"],
            ["private_datasets.name"],
            name=op.f("fk_private_grants_dataset_private_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset", "kind", "principal", name=op.f("pk_private_grants")),
    )
    op.create_table(
        "private_spend",
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("spent_nanos", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset"],
            ["private_datasets.name"],
            name=op.f("fk_private_spend_dataset_private_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset", "user_name", name=op.f("pk_private_spend")),
    )
    op.create_table(
        "private_releases",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("query_sha256", sa.String(64), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("result_sha256", sa.String(64), nullable=True),
        sa.Column("kernel_id", sa.String(100), nullable=True),
        sa.Column("cell_id", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_private_releases")),
    )
    op.create_index(
        "ix_private_releases_repeat",
        "private_releases",
        ["dataset", "user_name", "query_sha256"],
    )
    op.create_index(
        "ix_private_releases_user_time", "private_releases", ["user_name", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_private_releases_user_time", table_name="private_releases")
    op.drop_index("ix_private_releases_repeat", table_name="private_releases")
    op.drop_table("private_releases")
    op.drop_table("private_spend")
    op.drop_table("private_grants")
    op.drop_table("private_datasets")
