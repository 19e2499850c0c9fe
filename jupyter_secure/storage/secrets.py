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
from .keys import KeyRing, WrongKey, check_token
from .models import Meta, Secret, utcnow

__all__ = ["KEY_CHECK", "KEY_ID", "SecretStore"]

KEY_CHECK = "key_check"
#: Fingerprint of the key every secret is (to be) encrypted under; set by init and rotation.
KEY_ID = "master_key_id"
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
        """Encrypt the key check under the first key and name that key as the store's."""
        token = self.ring.encrypt(_KEY_CHECK_PLAINTEXT).decode("ascii")
        for key, value in ((KEY_CHECK, token), (KEY_ID, self.ring.fingerprint)):
            row = session.get(Meta, key)
            if row is None:
                session.add(Meta(key=key, value=value))
            else:
                row.value = value

    def store_key_id(self, session: Session) -> str | None:
        row = session.get(Meta, KEY_ID)
        return row.value if row is not None else None

    def remember_key_id(self, session: Session) -> None:
        """For stores made before the key id was kept: name the key the key check is under."""
        if self.store_key_id(session) is not None:
            return
        check = session.get(Meta, KEY_CHECK)
        key_id = self.ring.key_id_for(check.value.encode("ascii")) if check else None
        if key_id is not None:
            session.add(Meta(key=KEY_ID, value=key_id))

    def _encrypting_ring(self, session: Session) -> KeyRing:
        """The ring to encrypt with: its first key must be the store's current key.

        After `keys rotate` in another process this process's ring is stale;
        encrypting with it would write a secret under a key about to be dropped.
        Reload once; if the ring is still not the store's, refuse.
        """
        wanted = self.store_key_id(session)
        if wanted is None or wanted == self.ring.fingerprint:
            return self.ring
        fresh = self._reload() if self._reload is not None else None
        if fresh is not None and fresh.fingerprint == wanted:
            self.ring = fresh
            return fresh
        raise WrongKey(
            f"this process's master key ring (key id {self.ring.fingerprint}) is not the "
            f"store's current key (id {wanted}): it was rotated elsewhere; restart with the "
            "current key (or run `jupyter secure keys rotate` if a new key was put first)"
        )

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
        token = self._encrypting_ring(session).encrypt(value)
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

    def delete_prefix(self, session: Session, prefix: str) -> int:
        """Delete ``prefix`` and every secret named ``prefix/…``."""
        rows = session.scalars(
            select(Secret).where((Secret.name == prefix) | Secret.name.startswith(prefix + "/"))
        ).all()
        for row in rows:
            session.delete(row)
        return len(rows)

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
