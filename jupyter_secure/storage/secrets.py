"""Named secrets, encrypted at rest with the master key ring.

Every secret the product keeps (TOTP seeds, HMAC keys, the audit signing key,
token peppers) is a row in one table, so rotating the master key touches one
table in one transaction. A *key check* value — a known plaintext encrypted
at initialisation — lets a start-up tell "wrong key" from "no secrets yet"
before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from .database import Database
from .keys import KeyRing, check_token
from .models import Meta, Secret, utcnow

__all__ = ["KEY_CHECK", "SecretStore"]

KEY_CHECK = "key_check"
_KEY_CHECK_PLAINTEXT = b"jupyter-secure key check v1"


class SecretStore:
    """Encrypt, store, fetch and rotate named secrets."""

    def __init__(
        self, db: Database, ring: KeyRing, reload: Callable[[], KeyRing | None] | None = None
    ) -> None:
        self.db = db
        self.ring = ring
        self._reload = reload

    def _decrypt(self, token: bytes, where: str) -> bytes:
        """Decrypt; after a rotation by another process, re-read the ring once and retry."""
        try:
            return self.ring.decrypt(token)
        except InvalidToken:
            fresh = self._reload() if self._reload is not None else None
            if fresh is not None and fresh.keys != self.ring.keys:
                self.ring = fresh
        return check_token(self.ring, token, where)

    # -- key check -------------------------------------------------------------------------

    def has_key_check(self, session: Session) -> bool:
        return session.get(Meta, KEY_CHECK) is not None

    def write_key_check(self, session: Session) -> None:
        token = self.ring.encrypt(_KEY_CHECK_PLAINTEXT).decode("ascii")
        row = session.get(Meta, KEY_CHECK)
        if row is None:
            session.add(Meta(key=KEY_CHECK, value=token))
        else:
            row.value = token

    def verify_key(self, session: Session) -> None:
        """Refuse (WrongKey) unless the ring decrypts this store's key check."""
        row = session.get(Meta, KEY_CHECK)
        if row is None:
            return
        plain = check_token(self.ring, row.value.encode("ascii"), "this store's key check")
        if plain != _KEY_CHECK_PLAINTEXT:  # pragma: no cover - needs a forged Fernet token
            raise ValueError("key check value is corrupt")

    # -- secrets ---------------------------------------------------------------------------

    def put(self, session: Session, name: str, value: bytes) -> None:
        token = self.ring.encrypt(value)
        row = session.get(Secret, name)
        now = utcnow()
        if row is None:
            session.add(Secret(name=name, token=token, created_at=now, updated_at=now))
        else:
            row.token = token
            row.updated_at = now

    def get(self, session: Session, name: str) -> bytes | None:
        row = session.get(Secret, name)
        if row is None:
            return None
        return self._decrypt(row.token, f"secret {name!r}")

    def get_or_create(self, name: str, factory: Callable[[], bytes]) -> bytes:
        """Fetch ``name``, creating it with ``factory()`` once even when processes race."""
        with self.db.write() as session:
            value = self.get(session, name)
            if value is None:
                value = factory()
                self.put(session, name, value)
            return value

    def delete(self, session: Session, name: str) -> bool:
        row = session.get(Secret, name)
        if row is None:
            return False
        session.delete(row)
        return True

    def names(self, session: Session) -> list[str]:
        return list(session.scalars(select(Secret.name).order_by(Secret.name)))

    def reencrypt_all(self, session: Session, new_ring: KeyRing) -> int:
        """Re-encrypt every secret and the key check under ``new_ring``'s first key.

        Runs inside the caller's transaction: either every row moves or none;
        this store keeps its old ring, so the caller opens a new one after commit.
        Each token is decrypted with the current ring first, so a secret the
        current ring cannot read stops the rotation instead of being lost.
        """
        count = 0
        for row in session.scalars(select(Secret).with_for_update()):
            plain = check_token(self.ring, row.token, f"secret {row.name!r}")
            row.token = new_ring.encrypt(plain)
            row.updated_at = utcnow()
            count += 1
        self.verify_key(session)
        SecretStore(self.db, new_ring).write_key_check(session)
        return count
