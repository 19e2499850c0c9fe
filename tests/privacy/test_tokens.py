"""Broker tokens: signed by the store's key, bound to kernel and user, and short-lived."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from jupyter_secure.privacy.tokens import TokenRefused, TokenSigner, TokenVerifier


def raw_key() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_says_which_kernel_and_user() -> None:
    clock = Clock()
    signer = TokenSigner(raw_key(), clock)
    token = signer.issue("k-1", "alice", ("b", "a"), 3600)
    claims = TokenVerifier(signer.public_key, clock).verify(token)
    assert (claims.kernel_id, claims.user, claims.groups) == ("k-1", "alice", ("a", "b"))
    # the same claims in the same second still make a different token (a restart's is new)
    assert signer.issue("k-1", "alice", ("b", "a"), 3600) != token


def test_forged_edited_expired_and_foreign_tokens_are_refused() -> None:
    clock = Clock()
    signer = TokenSigner(raw_key(), clock)
    verifier = TokenVerifier(signer.public_key, clock)
    token = signer.issue("k-1", "alice", (), 60)
    prefix, payload, sig = token.split(".")
    # alice's token rewritten to say bob: the signature no longer holds
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["u"] = "bob"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    other = TokenSigner(raw_key(), clock).issue("k-1", "alice", (), 60)
    std = sig.replace("-", "+").replace("_", "/")
    for bad in (f"{prefix}.{edited}.{sig}", other, "jsb1.x.y", "nonsense", "a" * 5000,
                f"jsb2.{payload}.{sig}", f"{prefix}.{payload}.{sig[:-4]}AAAA",
                f"{prefix}.{payload}.{sig}==", f"{prefix}.{payload}=.{sig}",
                f"{prefix}.{payload}.{std}" if std != sig else "x.y.z"):  # fmt: skip
        with pytest.raises(TokenRefused):
            verifier.verify(bad)
    verifier.verify(token)
    clock.now += 61
    with pytest.raises(TokenRefused, match="expired"):
        verifier.verify(token)
