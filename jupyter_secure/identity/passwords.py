"""Password hashing (Argon2id) and the rules a new password must meet.

Argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB,
3 passes, 4 lanes). Length is capped so that hashing cannot be used to burn
server memory and CPU with megabyte-long "passwords".
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from traitlets import Int
from traitlets.config import LoggingConfigurable

from ..errors import InvalidInput

__all__ = ["PasswordPolicy", "hash_password", "needs_rehash", "verify_password"]

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A real hash of a fixed password: verifying against it costs what a real check
    costs, so "no such user" and "wrong password" take the same time.

    Made on the first verification, whoever it is for (not at import, which every CLI
    command paid for ~0.1 s), so that first check is not a timing tell either.
    """
    return _hasher.hash("jupyter-secure timing equaliser")


class PasswordPolicy(LoggingConfigurable):
    """What a new password must satisfy."""

    min_length = Int(
        12,
        help="""Fewest characters a new password may have. Length is what makes
        a password hard to guess (NIST SP 800-63B); composition rules are not
        enforced.""",
    ).tag(config=True)

    max_length = Int(
        1024,
        help="""Most characters a password may have; longer input is refused
        before hashing so it cannot be used to exhaust the server.""",
    ).tag(config=True)

    def check(self, password: str, *, user: str, field: str = "password") -> None:
        """Raise :class:`InvalidInput` naming ``field`` when ``password`` is not acceptable."""
        if len(password) < self.min_length:
            raise InvalidInput(field, f"must be at least {self.min_length} characters")
        if len(password) > self.max_length:
            raise InvalidInput(field, f"must be at most {self.max_length} characters")
        if not password.strip():
            raise InvalidInput(field, "must not be blank")
        if password.strip().lower() == user.lower():
            raise InvalidInput(field, "must not be the user name")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Check ``password`` against ``stored``; a missing hash still costs one verification."""
    dummy = _dummy_hash()
    try:
        return _hasher.verify(stored or dummy, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
