"""Monitoring: alarms with their acknowledgements, hourly baselines, sign-in networks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from jupyter_secure.storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("acked_by", sa.String(200), nullable=True),
        sa.Column("acked_at", UTCDateTime(), nullable=True),
        sa.Column("ack_note", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index("ix_alarms_state_raised", "alarms", ["state", "raised_at"])
    op.create_table(
        "monitor_hours",
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("signal", "user_name", "hour", name=op.f("pk_monitor_hours")),
    )
    op.create_table(
        "monitor_networks",
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_name", "network", name=op.f("pk_monitor_networks")),
    )


def downgrade() -> None:
    op.drop_table("monitor_networks")
    op.drop_table("monitor_hours")
    op.drop_index("ix_alarms_state_raised", table_name="alarms")
    op.drop_table("alarms")
