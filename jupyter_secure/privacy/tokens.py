"""Broker tokens: a kernel's signed, short-lived credential for private queries.

The server signs, for each kernel launch, ``(kernel id, user, expiry)`` with an
Ed25519 key kept encrypted in the state store, and hands the token to that
kernel only (in its one-shot guard file). Whoever serves the broker checks the
signature and the expiry and so learns who asks without a round trip to the
server: that is what lets the broker run as a separate service. The server's
own broker additionally requires the kernel to be alive and still its owner's,
so a token dies with its kernel there; a separate broker relies on the expiry
(``KernelGuard.broker_token_hours``) and on the account still being enabled.

Format: ``jsb1.<payload>.<signature>``, both parts base64url without padding;
the payload is compact JSON ``{"k": kernel, "u": user, "g": [groups], "exp":
unix seconds, "n": nonce}``. The groups are the user's at launch: a broker with
a store of its own (no user table) takes them from the token to match group
grants.
Pure: ``cryptography`` and the standard library.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["PREFIX", "TokenClaims", "TokenRefused", "TokenSigner", "TokenVerifier"]

PREFIX = "jsb1"
_MAX_TOKEN = 2048


class TokenRefused(ValueError):
    """The token is malformed, forged or expired (the reason is for logs, not callers)."""


@dataclass(frozen=True)
class TokenClaims:
    kernel_id: str
    user: str
    groups: tuple[str, ...]
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict: only the canonical unpadded base64url spelling of some bytes decodes."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        raise TokenRefused("malformed") from None
    if _b64(raw) != text:
        raise TokenRefused("malformed")
    return raw


class TokenSigner:
    """Issues tokens (the server side)."""

    def __init__(self, private_raw: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(private_raw)
        self.clock = clock

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def issue(
        self, kernel_id: str, user: str, groups: tuple[str, ...], lifetime_seconds: float
    ) -> str:
        claims = {
            "k": kernel_id,
            "u": user,
            "g": sorted(groups),
            "exp": int(self.clock() + lifetime_seconds),
            # Ed25519 is deterministic: without this a restart within the same second
            # would issue the very same token, and the old one would not die.
            "n": secrets.token_urlsafe(12),
        }
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signed = f"{PREFIX}.{payload}"
        return f"{signed}.{_b64(self._key.sign(signed.encode()))}"


class TokenVerifier:
    """Checks tokens (wherever the broker runs)."""

    def __init__(
        self, public_key: Ed25519PublicKey, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = public_key
        self.clock = clock

    def verify(self, token: str) -> TokenClaims:
        if len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise TokenRefused("malformed")
        prefix, payload, signature = token.split(".")
        if prefix != PREFIX:
            raise TokenRefused("not a broker token")
        try:
            self._key.verify(_unb64(signature), f"{prefix}.{payload}".encode())
            claims = json.loads(_unb64(payload))
        except (InvalidSignature, ValueError):
            raise TokenRefused("bad signature") from None
        if not isinstance(claims, dict):
            raise TokenRefused("malformed claims")
        kernel, user, expires = claims.get("k"), claims.get("u"), claims.get("exp")
        groups = claims.get("g")
        if not isinstance(kernel, str) or not isinstance(user, str) or type(expires) is not int:
            raise TokenRefused("malformed claims")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise TokenRefused("malformed claims")
        if expires <= self.clock():
            raise TokenRefused("expired")
        return TokenClaims(kernel, user, tuple(groups), expires)
