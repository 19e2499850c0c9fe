"""API tokens for programs: scoped, expiring, revocable, stored as hashes.

A person creates a token after signing in with a second factor, choosing
which of the scopes they hold it may use and for how long (at most
``max_days``). The token (``jst_`` + 256 random bits) is shown once; the
database keeps its SHA-256. A token never carries more than its scopes; it is
refused while its user is disabled or has no second factor, and revoked for
good when an administrator disables the account or resets its second factor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..policy.scopes import UnknownScope, validate_scopes
from ..storage.models import ApiToken, User

__all__ = ["PREFIX", "TokenInfo", "create_token", "find_token", "list_tokens", "revoke_token"]

PREFIX = "jst_"
_NAME = re.compile(r"^[\w .:@/-]{1,100}$")


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    user_name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created": self.created_at.isoformat(),
            "expires": self.expires_at.isoformat(),
            "lastUsed": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked": self.revoked_at.isoformat() if self.revoked_at else None,
        }

    @classmethod
    def of(cls, row: ApiToken, user_name: str) -> TokenInfo:
        return cls(
            row.id,
            row.name,
            user_name,
            tuple(json.loads(row.scopes)),
            row.created_at,
            row.expires_at,
            row.last_used_at,
            row.revoked_at,
        )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    session: Session,
    user: User,
    *,
    name: str,
    scopes: list[str],
    days: int,
    allowed: frozenset[str],
    max_days: int,
    now: dt.datetime,
) -> tuple[str, TokenInfo]:
    """Create a token; every argument is checked before anything is written."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("name", "1 to 100 letters, digits, spaces or . : @ / - _")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise InvalidInput("scopes", "give a non-empty list of scope names")
    try:
        chosen = validate_scopes(scopes)
    except UnknownScope as exc:
        raise InvalidInput("scopes", str(exc)) from None
    beyond = sorted(set(chosen) - allowed)
    if beyond:
        raise InvalidInput("scopes", f"you do not hold {', '.join(beyond)}")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= max_days:
        raise InvalidInput("expiresInDays", f"a whole number of days from 1 to {max_days}")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        id=secrets.token_hex(8),
        user_id=user.id,
        name=name,
        token_hash=_hash(token),
        scopes=json.dumps(list(chosen)),
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    return token, TokenInfo.of(row, user.name)


def find_token(session: Session, token: str, *, now: dt.datetime) -> tuple[ApiToken, User] | None:
    """The live token (not revoked, not expired, user enabled) a bearer value names."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return row, user


def list_tokens(session: Session, user: User) -> list[TokenInfo]:
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
    )
    return [TokenInfo.of(r, user.name) for r in rows]


def revoke_token(session: Session, user: User, token_id: str, *, now: dt.datetime) -> TokenInfo:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise InvalidInput("id", f"no token {token_id!r} of yours")
    if row.revoked_at is None:
        row.revoked_at = now
    return TokenInfo.of(row, user.name)


def revoke_user_tokens(session: Session, user_id: int, *, now: dt.datetime) -> int:
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    ).all()
    for row in rows:
        row.revoked_at = now
    return len(rows)
