"""Server-side sign-in sessions.

The browser holds a random 256-bit token in a cookie; the database holds only
its SHA-256, so a copy of the database lets nobody resume a session. Each
step of sign-in (password, second factor, enrolment) ends the session it came
from and starts a new one with a new token: a token planted before sign-in
(session fixation) is worthless after it. A session dies when it is idle too
long, lives too long, is logged out, or its user is disabled, locked out of
MFA or reset by an administrator; only ``full`` sessions reach anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..storage.models import LoginSession, User

__all__ = [
    "STAGE_ENROLL",
    "STAGE_FULL",
    "STAGE_PASSWORD",
    "SessionInfo",
    "end_session",
    "end_user_sessions",
    "find_session",
    "start_session",
    "token_id",
]

STAGE_PASSWORD = "password"  # noqa: S105 - a stage name; password checked, factor due
STAGE_ENROLL = "enroll"  # password checked, must enrol a second factor first
STAGE_FULL = "full"  # signed in


def token_id(token: str) -> str:
    """What the database stores for a session token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    id: str
    public_id: str
    user_id: int
    user_name: str
    stage: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    mfa_at: dt.datetime | None

    @classmethod
    def of(cls, row: LoginSession, user: User) -> SessionInfo:
        return cls(
            row.id,
            row.public_id,
            row.user_id,
            user.name,
            row.stage,
            row.created_at,
            row.last_seen_at,
            row.mfa_at,
        )


def start_session(
    session: Session,
    user: User,
    stage: str,
    *,
    now: dt.datetime,
    ip: str | None,
    user_agent: str | None,
    mfa_at: dt.datetime | None = None,
) -> tuple[str, SessionInfo]:
    """A new session; returns the cookie token (shown once) and the session."""
    token = secrets.token_urlsafe(32)
    row = LoginSession(
        id=token_id(token),
        public_id=secrets.token_hex(8),
        user_id=user.id,
        stage=stage,
        created_at=now,
        last_seen_at=now,
        mfa_at=mfa_at,
        ip=(ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    return token, SessionInfo.of(row, user)


def find_session(session: Session, token: str) -> tuple[LoginSession, User] | None:
    """The live (not ended) session a cookie token names, with its user."""
    if not token or len(token) > 200:
        return None
    row = session.get(LoginSession, token_id(token))
    if row is None or row.ended_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None:
        return None
    return row, user


def end_session(row: LoginSession, *, now: dt.datetime, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at = now
        row.end_reason = reason


def end_user_sessions(session: Session, user_id: int, *, now: dt.datetime, reason: str) -> int:
    """End every live session of a user; returns how many were ended."""
    live = session.scalars(
        select(LoginSession.id).where(
            LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)
        )
    ).all()
    if live:
        session.execute(
            update(LoginSession)
            .where(LoginSession.id.in_(live))
            .values(ended_at=now, end_reason=reason)
        )
    return len(live)
