"""Opening the state store: the one sequence the server and every admin command share.

1. the state directory exists, is private (0700) and writable;
2. the database is reachable and migrated to the newest schema;
3. the master key is found (or, for a brand-new store, generated) and
   decrypts this store's key check;
4. the audit signing key is decrypted (or created);
5. the audit trail verifies (a torn last line from a crash is the one
   finding that does not stop a start: the sink cuts it off and records
   that it did);
6. the sink opens and the index catches up.

Any failure raises :class:`~jupyter_secure.errors.StartupRefused` with one
line that says what is wrong. A first-time initialisation runs under a file
lock so that two processes starting together cannot create two keys.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from traitlets.config import Configurable

from .audit.checkpoints import CheckpointSigner, public_key_pem
from .audit.index import AuditIndex
from .audit.logger import AuditLogger, Identity, Resource
from .audit.mirror import DirectoryMirror, mirror_from_url, read_mirror
from .audit.sink import AuditSink
from .audit.verify import VerifyReport, verify_trail
from .errors import InvalidInput, StartupRefused
from .policy.live import POLICY_FILENAME, ensure_policy_file
from .privacy.tokens import TokenSigner
from .storage.database import DB_FILENAME, Database, sqlite_url
from .storage.keys import KeyRing, KeySource, MasterKey
from .storage.models import Meta
from .storage.paths import ensure_private_dir, resolve_state_dir
from .storage.secrets import SecretStore

__all__ = ["SecureState", "Store", "VerifyMode"]

log = logging.getLogger(__name__)

VerifyMode = Literal["full", "newest"]
SIGNING_KEY = "audit/signing-key"
MASKING_KEY = "masking/token-key"
BROKER_SIGNING_KEY = "broker/signing-key"
AUDIT_DIR = "audit"
_INSTALL_ID = "install_id"
_TRAIL_ID = "audit_trail_id"
_TRAIL_CREATED = "audit_trail_created"
_PUBLIC_KEY = "audit_signing_public_key"


@contextlib.contextmanager
def _init_lock(state_dir: Path) -> Iterator[None]:
    fd = _open_lock(state_dir / ".init.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StartupRefused(f"cannot create {path}: {exc.strerror}") from None


@dataclass
class Store:
    """The store up to its keys: database, master key ring, secrets, signing key.

    Enough to read and to verify the audit trail without appending to it
    (``audit verify`` must work on a trail that fails verification).
    """

    directory: Path
    db: Database
    key_source: KeySource
    secrets: SecretStore
    install_id: str
    trail_id: str
    trail_created: bool
    signer: CheckpointSigner
    created: bool

    @property
    def audit_dir(self) -> Path:
        return self.directory / AUDIT_DIR

    @property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {self.signer.key_id: self.signer.public_key}

    def key_file_inside(self) -> Path | None:
        """The key file, when it sits inside the state directory (fine for a demo only)."""
        path = getattr(self.key_source, "path", None)
        if path is not None and self.directory in Path(path).absolute().parents:
            return Path(path)
        return None

    @classmethod
    def open(
        cls,
        state_dir: str | Path | None,
        *,
        db_url: str = "",
        create: bool,
        parent: Configurable | None = None,
        environ: dict[str, str] | None = None,
    ) -> Store:
        """Open the store; with ``create`` a missing one is initialised (keys generated)."""
        directory = resolve_state_dir(state_dir)
        if not create and not (db_url or (directory / DB_FILENAME).exists()):
            raise StartupRefused(f"no state store in {directory} (run `jupyter secure init`)")
        directory = ensure_private_dir(directory)
        if not db_url:
            _create_private_file(directory / DB_FILENAME)
        try:
            db = Database(db_url or sqlite_url(directory / DB_FILENAME))
        except InvalidInput as exc:
            raise StartupRefused(str(exc)) from None
        try:
            with _init_lock(directory):
                return cls._open(directory, db, create=create, parent=parent, environ=environ)
        except SQLAlchemyError as exc:
            db.dispose()
            raise StartupRefused(_db_error(db, exc)) from None
        except BaseException:
            db.dispose()
            raise

    @classmethod
    def _open(
        cls,
        directory: Path,
        db: Database,
        *,
        create: bool,
        parent: Configurable | None,
        environ: dict[str, str] | None,
    ) -> Store:
        if create:
            db.migrate()
        elif not _schema_current(db):
            raise StartupRefused(
                f"the database {db.describe()} is not at the current schema; "
                "start the server or run `jupyter secure init` to migrate it"
            )
        install_id, trail_id, trail_created = _ensure_meta(db, create=create)
        store_has_key = _has_key_check(db)
        loaded = MasterKey(parent=parent).load(
            directory, install_id, may_generate=create and not store_has_key, environ=environ
        )
        secret_store = SecretStore(db, loaded.ring, reload=_reloader(loaded.source))
        with db.write() as session:
            secret_store.verify_key(session)
            if not secret_store.has_key_check(session):
                secret_store.write_key_check(session)
            secret_store.remember_key_id(session)
        signer = CheckpointSigner(
            secret_store.get_or_create(SIGNING_KEY, CheckpointSigner.generate_raw)
        )
        _remember_public_key(db, signer)
        return cls(
            directory=directory,
            db=db,
            key_source=loaded.source,
            secrets=secret_store,
            install_id=install_id,
            trail_id=trail_id,
            trail_created=trail_created,
            signer=signer,
            created=not store_has_key,
        )

    def close(self) -> None:
        self.db.dispose()


class SecureState:
    """Everything a process needs to act on the store: database, secrets, audit trail."""

    def __init__(
        self,
        store: Store,
        *,
        sink: AuditSink,
        audit: AuditLogger,
        index: AuditIndex,
        verify_report: VerifyReport | None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.audit = audit
        self.index = index
        self.verify_report = verify_report
        self._closed = False

    # Shortcuts to the store, for the commands and handlers that use them.
    @property
    def state_dir(self) -> Path:
        return self.store.directory

    @property
    def db(self) -> Database:
        return self.store.db

    @property
    def secrets(self) -> SecretStore:
        return self.store.secrets

    @property
    def key_source(self) -> KeySource:
        return self.store.key_source

    @property
    def trail_id(self) -> str:
        return self.store.trail_id

    @property
    def signer(self) -> CheckpointSigner:
        return self.store.signer

    @property
    def audit_dir(self) -> Path:
        return self.store.audit_dir

    @property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return self.store.public_keys

    @property
    def created(self) -> bool:
        return self.store.created

    @property
    def closed(self) -> bool:
        return self._closed

    def masking_key(self) -> bytes:
        """The HMAC key of the PII engine's tokens and fakes (256 bits, encrypted at rest).

        One key per store, so a token means the same person in every table and
        every session; rotating the master key re-encrypts it, it does not change it.
        """
        return self.secrets.get_or_create(MASKING_KEY, lambda: os.urandom(32))

    def broker_token_signer(self) -> TokenSigner:
        """The Ed25519 key that signs kernels' broker tokens (encrypted at rest, made once)."""
        raw = self.secrets.get_or_create(
            BROKER_SIGNING_KEY,
            lambda: Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            ),
        )
        return TokenSigner(raw)

    def close(self) -> None:
        """Flush the audit trail (final checkpoint) and the index, then let go of the database."""
        if self._closed:
            return
        self._closed = True
        self.sink.close()
        self.index.flush()
        self.index.close()
        self.store.close()

    @property
    def policy_path(self) -> Path:
        """The access policy file (``policy.toml``), written with the defaults at init."""
        return self.state_dir / POLICY_FILENAME

    def __enter__(self) -> SecureState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def open(
        cls,
        state_dir: str | Path | None,
        *,
        db_url: str = "",
        source: Literal["server", "cli", "broker"],
        user_agent: str | None = None,
        identity: Identity | None = None,
        verify: VerifyMode = "full",
        parent: Configurable | None = None,
        environ: dict[str, str] | None = None,
        create: bool = True,
    ) -> SecureState:
        """Open the store and its audit trail; refuse when unusable.

        With ``create`` (the server, ``init``, ``lab``) a store that does not
        exist yet is made; without it (every other admin command) a missing
        store is a refusal, so a mistyped ``--state-dir`` cannot start a new one.
        """
        store = Store.open(state_dir, db_url=db_url, create=create, parent=parent, environ=environ)
        try:
            with _init_lock(store.directory):
                state = cls._open_trail(store, source, user_agent, verify, parent)
        except SQLAlchemyError as exc:
            store.close()
            raise StartupRefused(_db_error(store.db, exc)) from None
        except BaseException:
            store.close()
            raise
        try:
            if create:
                ensure_policy_file(state.policy_path)
            state.index.catch_up()
            state.index.start()
            if store.created:
                state.audit.record(
                    "StateInitialized",
                    identity=identity or Identity.system(),
                    request={"stateDir": str(store.directory), "database": store.db.describe()},
                    response={
                        "installId": store.install_id,
                        "trailId": store.trail_id,
                        "keySource": store.key_source.kind,
                        "keyId": store.secrets.ring.fingerprint,
                        "signingKeyId": store.signer.key_id,
                    },
                    resources=[Resource("audit-trail", store.trail_id)],
                )
        except BaseException:
            state.close()
            raise
        return state

    @classmethod
    def _open_trail(
        cls,
        store: Store,
        source: Literal["server", "cli", "broker"],
        user_agent: str | None,
        verify: VerifyMode,
        parent: Configurable | None,
    ) -> SecureState:
        sink = AuditSink(store.audit_dir, store.trail_id, store.signer, parent=parent)
        index = AuditIndex(store.db, store.audit_dir)
        report = None
        if store.trail_created:
            report = _verify_existing(store, sink, index, verify)
        audit = AuditLogger(sink, source=source, user_agent=user_agent, parent=parent)
        sink.on_commit = index.enqueue
        sink.on_checkpoint = index.note_checkpoint
        sink.open()
        if not store.trail_created:
            _set_meta(store.db, _TRAIL_CREATED, "1")
            store.trail_created = True
        return cls(store, sink=sink, audit=audit, index=index, verify_report=report)


def _reloader(source: KeySource) -> Callable[[], KeyRing | None]:
    """Re-read the ring from where it came from (after `keys rotate` in another process)."""

    def reload() -> KeyRing | None:
        try:
            keys = source.load()
        except StartupRefused:
            return None
        return KeyRing(keys) if keys else None

    return reload


def _create_private_file(path: Path) -> None:
    """Create ``path`` as 0600 before SQLite does (it would use the umask; its WAL copies this)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StartupRefused(f"cannot create the database file {path}: {exc.strerror}") from None


def _db_error(db: Database, exc: SQLAlchemyError) -> str:
    detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = str(detail).strip().splitlines()[0] if str(detail).strip() else type(exc).__name__
    return f"database {db.describe()} is unusable: {first}"


def _ensure_meta(db: Database, *, create: bool) -> tuple[str, str, bool]:
    """This store's install id and trail id (created on first use), and whether a trail exists."""
    with db.write() as session:
        install = session.get(Meta, _INSTALL_ID)
        trail = session.get(Meta, _TRAIL_ID)
        if not create and (install is None or trail is None):
            raise StartupRefused(
                "the state store was never initialised (run `jupyter secure init`)"
            )
        if install is None:
            install = Meta(key=_INSTALL_ID, value=str(uuid.uuid4()))
            session.add(install)
        if trail is None:
            trail = Meta(key=_TRAIL_ID, value=f"trail-{secrets.token_hex(16)}")
            session.add(trail)
        created = session.get(Meta, _TRAIL_CREATED) is not None
        return install.value, trail.value, created


def _schema_current(db: Database) -> bool:
    from .storage.migrate import current_revision, head_revision

    with db.engine.connect() as conn:
        return current_revision(conn) == head_revision()


def _has_key_check(db: Database) -> bool:
    from .storage.secrets import KEY_CHECK

    with db.read() as session:
        return session.get(Meta, KEY_CHECK) is not None


def _set_meta(db: Database, key: str, value: str) -> None:
    with db.write() as session:
        row = session.get(Meta, key)
        if row is None:
            session.add(Meta(key=key, value=value))
        else:
            row.value = value


def _remember_public_key(db: Database, signer: CheckpointSigner) -> None:
    """Keep the public half in the clear, for `audit public-key` and offline verifiers."""
    pem = public_key_pem(signer.public_key).decode("ascii")
    with db.write() as session:
        row = session.get(Meta, _PUBLIC_KEY)
        if row is None:
            session.add(Meta(key=_PUBLIC_KEY, value=pem))
        elif row.value != pem:
            raise StartupRefused(
                "the audit signing key does not match the public key this store recorded: "
                "the secret store was altered"
            )


def _verify_existing(
    store: Store, sink: AuditSink, index: AuditIndex, mode: VerifyMode
) -> VerifyReport:
    """Refuse to append to a trail that is missing or fails verification."""
    from .audit.segments import TRAIL_FILE

    audit_dir, trail_id = store.audit_dir, store.trail_id
    if not (audit_dir / TRAIL_FILE).exists():
        raise StartupRefused(
            f"the audit trail {trail_id} is missing from {audit_dir}: this store has "
            "recorded events before; restore the audit directory from backup"
        )
    mirror = mirror_from_url(sink.checkpoint_mirror, trail_id)
    mirror_lines = (
        read_mirror(mirror.path.parent, trail_id) if isinstance(mirror, DirectoryMirror) else None
    )
    # The witness first: it only ever lags the files, so reading it before them (while
    # other processes append) can never make a healthy trail look cut short.
    witness = index.witness()
    report = verify_trail(
        audit_dir,
        public_keys=store.public_keys,
        expected_trail=trail_id,
        mirror_lines=mirror_lines,
        newest_only=mode == "newest",
        witness=witness,
    )
    blocking = [p for p in report.problems if p.kind != "torn_tail"]
    if blocking:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise StartupRefused(
            f"the audit trail failed verification: {first}{more}; "
            "run `jupyter secure audit verify` for the full report"
        )
    for problem in report.problems:
        log.warning("audit trail: %s; the writer will cut it off and record that it did", problem)
    return report
