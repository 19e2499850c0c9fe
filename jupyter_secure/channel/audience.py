"""Who is looking: the masking role and key for a user's outputs.

A person can hold several roles; outputs are masked for the least restrictive
of them that the masking table knows, in the order of :data:`PRECEDENCE`,
except that the raw view (``admin``) also needs the ``secure:unmask`` scope —
so a policy can keep admins' screens masked by taking that scope away. Someone
with no role the table knows gets the most restrictive treatment.

Tokens and fakes are keyed per person: the key is derived from the site's
masking key and the user name. The guarded kernel needs a key to render
masked frames that match what the server masks; giving it the site key would
let a notebook compute anyone's tokens (and so test guesses against tokens in
other people's saved notebooks). A per-person key lets it compute only tokens
of values it already holds. Pure: no Jupyter imports.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from ..masking import MaskingPolicy, RolePolicy

__all__ = ["PRECEDENCE", "UNMASK_SCOPE", "Audience", "masking_role", "person_key"]

#: Masking roles from least to most restrictive.
PRECEDENCE: tuple[str, ...] = (
    "admin",
    "instructor",
    "data_scientist",
    "student",
    "auditor",
    "viewer",
)
UNMASK_SCOPE = "secure:unmask"
#: The role name used when a person holds none the table knows (MaskingPolicy.for_role
#: gives an unknown role the most restrictive policy).
NO_ROLE = "(none)"
_KEY_LABEL = b"jupyter-secure/person-masking-key/v1\x00"


def masking_role(roles: Iterable[str], scopes: Iterable[str], policy: MaskingPolicy) -> str:
    """The role whose masking a person with ``roles`` and ``scopes`` sees."""
    held, granted = set(roles), set(scopes)
    for role in PRECEDENCE:
        if role not in held or role not in policy.roles:
            continue
        if role == "admin" and UNMASK_SCOPE not in granted:
            continue
        return role
    extra = sorted(r for r in held if r in policy.roles and r not in PRECEDENCE)
    return extra[0] if extra else NO_ROLE


def person_key(site_key: bytes, user: str) -> bytes:
    """The 32-byte masking key of one person, derived from the site key."""
    return hmac.new(site_key, _KEY_LABEL + user.encode("utf-8"), hashlib.sha256).digest()


class Audience:
    """Role policies per (user, role), built once: a RolePolicy is immutable."""

    def __init__(self, policy: MaskingPolicy, site_key: bytes) -> None:
        self.policy = policy
        self._site_key = site_key
        self._cache: dict[tuple[str, str], RolePolicy] = {}

    def role_policy(self, user: str, roles: Iterable[str], scopes: Iterable[str]) -> RolePolicy:
        role = masking_role(roles, scopes, self.policy)
        found = self._cache.get((user, role))
        if found is None:
            found = self.policy.for_role(role, key=person_key(self._site_key, user))
            self._cache[(user, role)] = found
        return found

    def key_for(self, user: str) -> bytes:
        return person_key(self._site_key, user)
