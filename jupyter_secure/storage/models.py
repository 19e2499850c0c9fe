"""The one SQLAlchemy schema every room writes to.

Tables are added here and by an Alembic migration in ``migrations/versions``
together; ``tests/storage/test_migrations.py`` fails when the two disagree.

Times are stored as UTC. Secret material never appears in a column of its
own: it lives encrypted in ``secrets`` and other tables refer to it by name,
so that key rotation has exactly one table to re-encrypt.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

__all__ = [
    "ApiToken",
    "AuditIndexEntry",
    "AuditIndexResource",
    "AuthFailure",
    "Base",
    "GroupMember",
    "LoginSession",
    "Meta",
    "PrivateDataset",
    "PrivateGrant",
    "PrivateRelease",
    "PrivateSpend",
    "RecoveryCode",
    "Secret",
    "User",
    "UserRole",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime (the only kind stored)."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend.

    SQLite has no time zones and hands back naive values; PostgreSQL keeps
    them. Refusing naive input on the way in catches local-time bugs early.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):  # pragma: no cover - driver contract
            raise TypeError(f"expected a datetime from the database, got {type(value)}")
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Facts about this store: install id, audit trail id, the key check value."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Secret(Base):
    """A named secret, encrypted with the master key ring (Fernet token)."""

    __tablename__ = "secrets"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    token: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A named person or service account who may sign in."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: a service account: programs act as it with API tokens; it never signs in
    service: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Second factor: the TOTP secret itself lives in `secrets` ("totp/<id>").
    mfa_enrolled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    roles: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", order_by="UserRole.role", lazy="selectin"
    )
    groups: Mapped[list[GroupMember]] = relationship(
        cascade="all, delete-orphan", order_by="GroupMember.group_name", lazy="selectin"
    )


class UserRole(Base):
    """A role granted to a user directly (group-based grants arrive with the policy room)."""

    __tablename__ = "user_roles"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)


class GroupMember(Base):
    """Membership of a user in a named group."""

    __tablename__ = "group_members"
    group_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )


class RecoveryCode(Base):
    """A single-use recovery code, stored as a keyed hash."""

    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginSession(Base):
    """A server-side sign-in session; the cookie holds a token whose SHA-256 is ``id``.

    ``stage`` is how far sign-in got: ``password`` (second factor still due),
    ``enroll`` (must enrol a second factor first) or ``full``. Only ``full``
    sessions reach anything but the sign-in pages.
    """

    __tablename__ = "login_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mfa_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AuthFailure(Base):
    """One failed sign-in factor, kept for rate limits and lockout (pruned after a day)."""

    __tablename__ = "auth_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    factor: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_auth_failures_user_at", "user_name", "at"),
        Index("ix_auth_failures_ip_at", "ip", "at"),
    )


class ApiToken(Base):
    """A scoped, expiring API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditIndexEntry(Base):
    """Where one audit record lives in the segment files, with the fields queries filter on.

    Derived data: the segments are the record of truth and the index can be
    rebuilt from them at any time.
    """

    __tablename__ = "audit_index"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_time_us: Mapped[int] = mapped_column(BigInteger)
    event_name: Mapped[str] = mapped_column(String(100))
    event_source: Mapped[str] = mapped_column(String(100))
    user_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    segment: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(Integer)
    #: the record's hash: the database's witness of what the trail held
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_audit_index_time", "event_time_us"),
        Index("ix_audit_index_user_time", "user_name", "event_time_us"),
        Index("ix_audit_index_name_time", "event_name", "event_time_us"),
    )


class AuditIndexResource(Base):
    """One resource ("type:name") an audit record touched; a record may touch several."""

    __tablename__ = "audit_index_resources"
    seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("audit_index.seq", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(300), primary_key=True)

    __table_args__ = (Index("ix_audit_index_resources_resource", "resource"),)


class PrivateDataset(Base):
    """A protected dataset: its spec, where its prepared rows are, and the dataset-wide spend.

    Privacy amounts are whole nano-units (``privacy.amounts``): exact integers, so
    a budget never drifts. ``version`` is the prepared file's sha256: replacing a
    dataset's data starts a new version, and no stored release of the old one is
    served for it.
    """

    __tablename__ = "private_datasets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[str] = mapped_column(Text)
    measure: Mapped[str] = mapped_column(String(16))
    cap_nanos: Mapped[int] = mapped_column(BigInteger)
    spent_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivateGrant(Base):
    """Who may query a dataset, and each member's own budget (a user's grant wins)."""

    __tablename__ = "private_grants"
    dataset: Mapped[str] = mapped_column(
        ForeignKey("private_datasets.name", ondelete="CASCADE"), primary_key=True
    )
    #: "user" or "group"
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    principal: Mapped[str] = mapped_column(String(200), primary_key=True)
    budget_nanos: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivateSpend(Base):
    """What one user has spent on one dataset (the row a charge locks and updates)."""

    __tablename__ = "private_spend"
    dataset: Mapped[str] = mapped_column(
        ForeignKey("private_datasets.name", ondelete="CASCADE"), primary_key=True
    )
    user_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    spent_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivateRelease(Base):
    """One charge and what it released: the ledger's history, and the repeat cache.

    Written in the charge's transaction (status ``charged``) before the data is
    read; the result follows (``released``) or the failure (``failed``). A charge
    is never refunded once data may have been touched.
    """

    __tablename__ = "private_releases"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)  # fmt: skip
    dataset: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    user_name: Mapped[str] = mapped_column(String(200))
    query_sha256: Mapped[str] = mapped_column(String(64))
    query: Mapped[str] = mapped_column(Text)
    measure: Mapped[str] = mapped_column(String(16))
    cost_nanos: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kernel_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cell_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_private_releases_repeat", "dataset", "user_name", "query_sha256"),
        Index("ix_private_releases_user_time", "user_name", "created_at"),
    )


class Alarm(Base):
    """One alarm: a rule in ALARM for one key, from raised to resolved, and its ack."""

    __tablename__ = "alarms"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ack_note: Mapped[str | None] = mapped_column(String(500), nullable=True)

    __table_args__ = (Index("ix_alarms_state_raised", "state", "raised_at"),)


class MonitorHour(Base):
    """A user's total of one signal in one hour: the history seasonal baselines read."""

    __tablename__ = "monitor_hours"
    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class MonitorNetwork(Base):
    """A network a user signed in from, and when last (new-network alarms)."""

    __tablename__ = "monitor_networks"
    user_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    network: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen: Mapped[float] = mapped_column(Float)
