"""Initial schema: meta, secrets, users with roles and groups, the audit index.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from jupyter_secure.storage.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_secrets")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_roles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_roles")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_group_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_name", "user_id", name=op.f("pk_group_members")),
    )
    op.create_table(
        "audit_index",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_time_us", sa.BigInteger(), nullable=False),
        sa.Column("event_name", sa.String(100), nullable=False),
        sa.Column("event_source", sa.String(100), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=True),
        sa.Column("error_code", sa.String(100), nullable=True),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_index")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_index_event_id")),
    )
    op.create_index("ix_audit_index_time", "audit_index", ["event_time_us"])
    op.create_index("ix_audit_index_user_time", "audit_index", ["user_name", "event_time_us"])
    op.create_index("ix_audit_index_name_time", "audit_index", ["event_name", "event_time_us"])
    op.create_table(
        "audit_index_resources",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("resource", sa.String(300), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["audit_index.seq"],
            name=op.f("fk_audit_index_resources_seq_audit_index"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", "resource", name=op.f("pk_audit_index_resources")),
    )
    op.create_index("ix_audit_index_resources_resource", "audit_index_resources", ["resource"])


def downgrade() -> None:
    op.drop_table("audit_index_resources")
    op.drop_table("audit_index")
    op.drop_table("group_members")
    op.drop_table("user_roles")
    op.drop_table("users")
    op.drop_table("secrets")
    op.drop_table("meta")
