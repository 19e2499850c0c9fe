"""``jupyter secure keys …``: rotating the master key ring."""

from __future__ import annotations

from ..audit.logger import Resource
from ..storage.keys import KeyRing, key_fingerprint
from ..storage.secrets import SecretStore
from .base import CommandError, GroupCommand, StateCommand

__all__ = ["KeysCommand"]


class KeysRotate(StateCommand):
    name = "jupyter-secure-keys-rotate"
    description = """Re-encrypt every stored secret under a new master key.

    With a key file or keyring entry: a new key is generated and added in
    front of the ring, every secret is re-encrypted under it in one
    transaction, and then the old keys are dropped from the ring. A crash at
    any point leaves a ring that still decrypts everything.

    With $JUPYTER_SECURE_KEY (which this command cannot change): put a new
    key first yourself (see `keys generate`), keeping the old one after it,
    and run this command to re-encrypt; then drop the old key."""
    examples = """
    jupyter secure keys rotate
    JUPYTER_SECURE_KEY="$(jupyter secure keys generate),$OLD_KEY" jupyter secure keys rotate
    """

    def run(self) -> None:
        self.positional()
        state = self.state
        source = state.key_source
        old = state.secrets.ring
        with state.db.read() as session:
            current = state.secrets.store_key_id(session)
        if source.writable:
            ring = KeyRing([KeyRing.generate_key(), *old.keys])
            source.store(ring.keys)
        elif len(old.keys) > 1 and old.fingerprint != current:
            ring = old
        else:
            raise CommandError(
                f"the master key comes from {source.describe()}, which this command cannot "
                f"change, and the store is already encrypted under its first key (id "
                f"{old.fingerprint}). Generate a key with `jupyter secure keys generate`, set "
                "the variable to NEW,OLD (new first) and run this command again."
            )
        try:
            count = self.reencrypt(ring)
        except BaseException:
            if source.writable:  # put the ring back as it was: nothing was re-encrypted
                source.store(old.keys)
            raise
        self.finish(ring, count)

    def reencrypt(self, ring: KeyRing) -> int:
        state = self.state
        old = state.secrets.ring
        with self.audited_change(
            "KeysRotated",
            request={"keySource": state.key_source.kind},
            resources=[Resource("key", "master")],
        ) as (session, response):
            count = state.secrets.reencrypt_all(session, ring)
            response.update(
                secrets=count,
                oldKeyIds=[key_fingerprint(k) for k in old.keys],
                newKeyId=ring.fingerprint,
                oldKeysDropped=state.key_source.writable,
            )
        return count

    def finish(self, ring: KeyRing, count: int) -> None:
        state = self.state
        source = state.key_source
        state.store.secrets = SecretStore(state.db, ring)
        if source.writable:
            source.store(ring.keys[:1])
            print(f"re-encrypted {count} secrets under key {ring.fingerprint}; old keys dropped")
        else:
            others = ", ".join(key_fingerprint(k) for k in ring.keys[1:])
            print(
                f"re-encrypted {count} secrets under key {ring.fingerprint} (the first key); "
                f"remove the keys after it (ids {others}) from {source.describe()} now"
            )


class KeysGenerate(StateCommand):
    name = "jupyter-secure-keys-generate"
    description = """Print a new random master key (for $JUPYTER_SECURE_KEY). Stores nothing."""
    examples = "jupyter secure keys generate"

    def run(self) -> None:
        self.positional()
        print(KeyRing.generate_key().decode("ascii"))


class KeysCommand(GroupCommand):
    name = "jupyter-secure-keys"
    description = "Manage the master key that encrypts secrets at rest."
    examples = "jupyter secure keys rotate"
    subcommands = {
        "rotate": (KeysRotate, "Re-encrypt every secret under a new master key."),
        "generate": (KeysGenerate, KeysGenerate.description),
    }
