"""Signed checkpoints: the trail's head, signed with Ed25519, at least once a second.

A hash chain shows that records were not changed *relative to each other*;
anyone who can write the files can recompute every hash after an edit. A
checkpoint signs "record N of trail T has hash H at time t" with a key that
lives encrypted in the secret store, so a rewritten chain no longer matches
the signed heads. Checkpoints form a chain of their own (``prev`` is the hash
of the previous checkpoint line) so one cannot be removed from the middle.

Truncating the tail of both files together is detectable only against a copy
kept elsewhere: see :mod:`.mirror`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "CheckpointSigner",
    "load_public_key",
    "parse_checkpoint",
    "public_key_id",
]

CHECKPOINT_GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Checkpoint:
    n: int
    trail: str
    seq: int
    hash: str
    time: str
    key: str
    prev: str
    sig: str = ""

    def signed_bytes(self) -> bytes:
        fields = asdict(self)
        del fields["sig"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def line(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode() + b"\n"


def line_hash(line: bytes) -> str:
    """What the next checkpoint's ``prev`` holds for this line."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def public_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


class CheckpointSigner:
    """Holds the private key (decrypted from the secret store) and signs heads."""

    def __init__(self, private_raw: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(private_raw)
        self.public_key = self._key.public_key()
        self.key_id = public_key_id(self.public_key)

    @staticmethod
    def generate_raw() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def sign(self, *, n: int, trail: str, seq: int, hash: str, time: str, prev: str) -> Checkpoint:
        unsigned = Checkpoint(n, trail, seq, hash, time, self.key_id, prev)
        sig = base64.b64encode(self._key.sign(unsigned.signed_bytes())).decode("ascii")
        return Checkpoint(n, trail, seq, hash, time, self.key_id, prev, sig)


_INT_FIELDS = ("n", "seq")
_STR_FIELDS = ("trail", "hash", "time", "key", "prev", "sig")


def parse_checkpoint(line: bytes) -> Checkpoint:
    """Parse one checkpoint line; raises ValueError (only) when it is not one.

    Hostile input — huge numbers, deep nesting, wrong types — is a ValueError
    too, so that a verifier reports it instead of crashing.
    """
    try:
        data = json.loads(line)
    except (ValueError, RecursionError, OverflowError) as exc:
        raise ValueError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or set(data) != set(_INT_FIELDS + _STR_FIELDS):
        raise ValueError("not a checkpoint object")
    for name in _INT_FIELDS:
        value = data[name]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            raise ValueError(f"checkpoint field {name!r} is not a count")
    for name in _STR_FIELDS:
        if not isinstance(data[name], str) or len(data[name]) > 256:
            raise ValueError(f"checkpoint field {name!r} is not a short string")
    return Checkpoint(**{k: data[k] for k in _INT_FIELDS + _STR_FIELDS})


def signature_ok(cp: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> bool:
    key = keys.get(cp.key)
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(cp.sig, validate=True), cp.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True
