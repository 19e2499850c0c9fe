from __future__ import annotations

import pytest
from sqlalchemy import select

from jupyter_secure.storage.database import Database
from jupyter_secure.storage.keys import KeyRing, WrongKey
from jupyter_secure.storage.models import Secret
from jupyter_secure.storage.secrets import SecretStore


def test_secrets_are_encrypted_at_rest(db: Database) -> None:
    store = SecretStore(db, KeyRing([KeyRing.generate_key()]))
    with db.write() as s:
        store.write_key_check(s)
        store.put(s, "totp/alice", b"JBSWY3DPEHPK3PXP-seed")
    with db.read() as s:
        raw = s.scalar(select(Secret.token).where(Secret.name == "totp/alice"))
        assert raw is not None
        assert b"JBSWY3DP" not in raw
        assert store.get(s, "totp/alice") == b"JBSWY3DPEHPK3PXP-seed"


def test_wrong_key_is_a_clear_refusal(db: Database) -> None:
    store = SecretStore(db, KeyRing([KeyRing.generate_key()]))
    with db.write() as s:
        store.write_key_check(s)
        store.put(s, "x", b"y")
    other = SecretStore(db, KeyRing([KeyRing.generate_key()]))
    with db.read() as s, pytest.raises(WrongKey, match="wrong key for this state store"):
        other.verify_key(s)


def test_reencrypt_all_moves_every_secret_in_one_transaction(db: Database) -> None:
    old = KeyRing([KeyRing.generate_key()])
    store = SecretStore(db, old)
    with db.write() as s:
        store.write_key_check(s)
        for i in range(5):
            store.put(s, f"s{i}", f"value-{i}".encode())
    new = KeyRing([KeyRing.generate_key(), *old.keys])
    with db.write() as s:
        assert store.reencrypt_all(s, new) == 5
    only_new = SecretStore(db, KeyRing(new.keys[:1]))
    with db.read() as s:
        only_new.verify_key(s)
        assert [only_new.get(s, f"s{i}") for i in range(5)] == [
            f"value-{i}".encode() for i in range(5)
        ]
    with db.read() as s, pytest.raises(WrongKey):
        SecretStore(db, old).verify_key(s)


def test_rotation_that_fails_half_way_changes_nothing(db: Database) -> None:
    old = KeyRing([KeyRing.generate_key()])
    store = SecretStore(db, old)
    with db.write() as s:
        store.write_key_check(s)
        store.put(s, "a", b"1")
    new = KeyRing([KeyRing.generate_key()])
    with pytest.raises(RuntimeError), db.write() as s:
        store.reencrypt_all(s, new)
        raise RuntimeError("crash before commit")
    with db.read() as s:
        store.verify_key(s)
        assert store.get(s, "a") == b"1"


def test_a_process_with_a_stale_ring_reloads_after_rotation(db: Database) -> None:
    old = KeyRing([KeyRing.generate_key()])
    new = KeyRing([KeyRing.generate_key()])
    current = {"ring": old}
    reader = SecretStore(db, old, reload=lambda: current["ring"])
    writer = SecretStore(db, old)
    with db.write() as s:
        writer.put(s, "a", b"1")
        writer.reencrypt_all(s, new)
    current["ring"] = new
    with db.read() as s:
        assert reader.get(s, "a") == b"1"
    assert reader.ring is new


def test_get_or_create_creates_once(db: Database) -> None:
    store = SecretStore(db, KeyRing([KeyRing.generate_key()]))
    calls = []

    def factory() -> bytes:
        calls.append(1)
        return b"generated"

    assert store.get_or_create("k", factory) == b"generated"
    assert store.get_or_create("k", factory) == b"generated"
    assert len(calls) == 1


def test_a_stale_ring_never_encrypts_under_a_key_about_to_be_dropped(db: Database) -> None:
    """Process A keeps the old ring in memory while process B rotates the key."""
    old = KeyRing([KeyRing.generate_key()])
    new = KeyRing([KeyRing.generate_key(), *old.keys])
    with db.write() as s:
        SecretStore(db, old).write_key_check(s)
    stale = SecretStore(db, old)  # no way to reload: the admin has not restarted it
    with db.write() as s:
        SecretStore(db, old).reencrypt_all(s, new)
    with pytest.raises(WrongKey, match="rotated elsewhere"), db.write() as s:
        stale.put(s, "masking/token-key", b"k" * 32)
    current = {"ring": KeyRing(new.keys[:1])}
    reloading = SecretStore(db, old, reload=lambda: current["ring"])
    with db.write() as s:
        reloading.put(s, "masking/token-key", b"k" * 32)
    with db.read() as s:
        assert SecretStore(db, KeyRing(new.keys[:1])).get(s, "masking/token-key") == b"k" * 32
