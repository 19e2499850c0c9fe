"""User accounts: names, password hashes, roles and groups, enabled or not.

Roles and groups are plain data here; what a role may do is decided by the
policy room. Names are lower-case identifiers so that ``Alice`` and
``alice`` cannot be two accounts, and every change validates all of its
input before writing anything.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..policy.decide import Principal
from ..policy.roles import BUILTIN_ROLE_NAMES
from ..storage.models import GroupMember, User, UserRole, utcnow
from .passwords import PasswordPolicy, hash_password

__all__ = ["KNOWN_ROLES", "UserDirectory", "UserInfo", "principal_of_account", "validate_name"]

#: The roles the product ships with (see docs/admin-guide.md). An unknown role is
#: refused rather than stored, because nothing would ever grant it anything.
#: The roles an account can hold directly: the built-in ones (the policy file adds
#: others, given through its groups).
KNOWN_ROLES: tuple[str, ...] = tuple(BUILTIN_ROLE_NAMES)

_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class UserInfo:
    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    disabled: bool
    service: bool
    has_password: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None

    @classmethod
    def of(cls, user: User) -> UserInfo:
        return cls(
            name=user.name,
            roles=tuple(r.role for r in user.roles),
            groups=tuple(g.group_name for g in user.groups),
            disabled=user.disabled,
            service=user.service,
            has_password=user.password_hash is not None,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
        )


def validate_name(value: str, field: str) -> str:
    if not _NAME.match(value):
        hint = " (use lower case)" if _NAME.match(value.lower()) else ""
        raise InvalidInput(
            field,
            f"{value!r} is not a valid name{hint}: start with a letter, then up to 63 of "
            "a-z 0-9 . _ -",
        )
    return value


def validate_roles(roles: Iterable[str], field: str = "role") -> tuple[str, ...]:
    out = []
    for role in roles:
        if role not in KNOWN_ROLES:
            close = difflib.get_close_matches(role, KNOWN_ROLES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidInput(
                field, f"unknown role {role!r}{hint} (known: {', '.join(KNOWN_ROLES)})"
            )
        out.append(role)
    return tuple(sorted(set(out)))


class UserDirectory:
    """Reads and changes accounts inside the caller's transaction."""

    def __init__(self, policy: PasswordPolicy | None = None) -> None:
        self.policy = policy or PasswordPolicy()

    def get(self, session: Session, name: str) -> User:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise InvalidInput("user", f"no user named {name!r}")
        return user

    def find(self, session: Session, name: str) -> User | None:
        return session.scalar(select(User).where(User.name == name))

    def list(self, session: Session) -> list[UserInfo]:
        return [UserInfo.of(u) for u in session.scalars(select(User).order_by(User.name))]

    def add(
        self,
        session: Session,
        name: str,
        *,
        roles: Iterable[str],
        groups: Iterable[str] = (),
        password: str | None = None,
        service: bool = False,
    ) -> UserInfo:
        """Create an account; everything is checked before anything is written.

        A service account (``service=True``) is what a program acts as: it has no
        password, never signs in, and reaches the server only with API tokens an
        administrator creates for it.
        """
        validate_name(name, "name")
        role_set = validate_roles(roles)
        if not role_set:
            raise InvalidInput("role", "give at least one role (--role)")
        group_set = tuple(sorted({validate_name(g, "group") for g in groups}))
        if service and password is not None:
            raise InvalidInput("password", "service accounts have no password (API tokens only)")
        if password is not None:
            self.policy.check(password, user=name)
        if self.find(session, name) is not None:
            raise InvalidInput("name", f"a user named {name!r} already exists")
        now = utcnow()
        user = User(
            name=name,
            password_hash=hash_password(password) if password is not None else None,
            disabled=False,
            service=service,
            created_at=now,
            updated_at=now,
        )
        user.roles = [UserRole(role=r) for r in role_set]
        user.groups = [GroupMember(group_name=g) for g in group_set]
        session.add(user)
        session.flush()
        return UserInfo.of(user)

    def set_disabled(self, session: Session, name: str, disabled: bool) -> bool:
        """Disable or enable; returns False when it already was."""
        user = self.get(session, name)
        if user.disabled == disabled:
            return False
        user.disabled = disabled
        user.disabled_at = utcnow() if disabled else None
        user.updated_at = utcnow()
        return True

    def remove(self, session: Session, name: str) -> None:
        session.delete(self.get(session, name))
        session.flush()

    def set_password(self, session: Session, name: str, password: str) -> None:
        user = self.get(session, name)
        if user.service:
            raise InvalidInput("user", f"{name} is a service account: it has no password")
        self.policy.check(password, user=name)
        user.password_hash = hash_password(password)
        user.updated_at = utcnow()


def principal_of_account(user: User) -> Principal:
    """The policy's view of a stored account: its name, roles and groups."""
    return Principal(user.name, [r.role for r in user.roles], [g.group_name for g in user.groups])
