"""The master key ring that encrypts every secret at rest.

A ring is one or more Fernet keys: the first encrypts, all decrypt, so a
rotation can add a key, re-encrypt, and only then drop the old one.

Where the ring comes from, in this order (the first source that has one wins):

1. the ``JUPYTER_SECURE_KEY`` environment variable (comma-separated keys) —
   for servers and CI that inject secrets; explicit configuration beats
   anything ambient;
2. a key file (``MasterKey.key_file``, default ``<state dir>/master.key``),
   which must be mode 0600 and owned by this account;
3. the operating system keyring (service ``jupyter-secure``), when a real
   backend is available — the desktop case.

A store that has no key yet gets a new one at first start, written to the
keyring when one is usable and to the key file otherwise. A store that was
initialised before and whose key none of the sources provides is refused:
generating a fresh key then would silently orphan every stored secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from traitlets import Bool, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import InvalidInput, StartupRefused

__all__ = [
    "ENV_KEY",
    "KEYRING_SERVICE",
    "KeyRing",
    "KeySource",
    "MasterKey",
    "WrongKey",
    "parse_key_list",
]

ENV_KEY = "JUPYTER_SECURE_KEY"
ENV_KEY_FILE = "JUPYTER_SECURE_KEY_FILE"
KEYRING_SERVICE = "jupyter-secure"


class WrongKey(StartupRefused):
    """The key ring does not decrypt what this store holds."""


class KeyRing:
    """A MultiFernet over one or more keys; the first encrypts."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        fernets = []
        for i, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, binascii.Error):
                raise InvalidInput(
                    "master key", f"key #{i} is not a valid Fernet key (32 url-safe base64 bytes)"
                ) from None
        self.keys: tuple[bytes, ...] = tuple(keys)
        self._multi = MultiFernet(fernets)

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    @property
    def fingerprint(self) -> str:
        """A short, non-secret name for the encrypting key (for logs and audit events)."""
        return key_fingerprint(self.keys[0])

    def encrypt(self, data: bytes) -> bytes:
        return self._multi.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """Decrypt or raise :class:`InvalidToken` (one opaque error for every failure)."""
        return self._multi.decrypt(token)

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt ``token`` under the first key."""
        return self._multi.rotate(token)

    def serialize(self) -> str:
        return ",".join(k.decode("ascii") for k in self.keys)

    def key_id_for(self, token: bytes) -> str | None:
        """The fingerprint of the key in this ring that decrypts ``token``, if any."""
        for key in self.keys:
            try:
                Fernet(key).decrypt(token)
            except InvalidToken:
                continue
            return key_fingerprint(key)
        return None


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"jupyter-secure key id\0" + key).hexdigest()[:16]


def parse_key_list(text: str, source: str) -> list[bytes]:
    """Keys separated by commas, whitespace or newlines; ``#`` starts a comment line."""
    keys: list[bytes] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        for part in line.replace(",", " ").split():
            key = part.encode("ascii", "replace")
            try:
                ok = len(base64.urlsafe_b64decode(key)) == 32
            except (binascii.Error, ValueError):
                ok = False
            if not ok:
                raise InvalidInput(source, "holds a value that is not a Fernet key")
            keys.append(key)
    return keys


class KeySource(Protocol):
    """Somewhere a key ring may be kept."""

    kind: str

    def describe(self) -> str: ...
    def load(self) -> list[bytes] | None: ...
    @property
    def writable(self) -> bool: ...
    def store(self, keys: Sequence[bytes]) -> None: ...


@dataclass
class EnvKeySource:
    environ: dict[str, str] | os._Environ[str]
    kind: str = "env"

    def describe(self) -> str:
        return f"environment variable {ENV_KEY}"

    def load(self) -> list[bytes] | None:
        value = self.environ.get(ENV_KEY, "")
        if not value.strip():
            return None
        return parse_key_list(value, ENV_KEY)

    @property
    def writable(self) -> bool:
        return False

    def store(self, keys: Sequence[bytes]) -> None:
        raise StartupRefused(f"cannot write to {self.describe()}; set it yourself")


@dataclass
class FileKeySource:
    path: Path
    kind: str = "file"

    def describe(self) -> str:
        return f"key file {self.path}"

    def load(self) -> list[bytes] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StartupRefused(f"cannot read {self.describe()}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise StartupRefused(f"{self.describe()} is not a regular file")
        if st.st_uid != os.getuid():
            raise StartupRefused(f"{self.describe()} belongs to uid {st.st_uid}, not this account")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise StartupRefused(
                f"{self.describe()} has mode {mode:04o}; it must be 0600 (chmod 600 {self.path})"
            )
        try:
            text = self.path.read_text("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise StartupRefused(f"cannot read {self.describe()}: {exc}") from None
        keys = parse_key_list(text, str(self.path))
        if not keys:
            raise StartupRefused(f"{self.describe()} holds no key")
        return keys

    @property
    def writable(self) -> bool:
        return True

    def store(self, keys: Sequence[bytes]) -> None:
        """Replace the file atomically (write a 0600 sibling, fsync, rename, fsync the dir)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        body = (
            "# jupyter-secure master key ring: the first key encrypts, all decrypt.\n"
            "# Keep this file private (0600) and backed up apart from the state directory.\n"
            + "\n".join(k.decode("ascii") for k in keys)
            + "\n"
        )
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, body.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@dataclass
class KeyringKeySource:
    """The OS keyring; the entry name carries the store's install id."""

    install_id: str
    service: str = KEYRING_SERVICE
    kind: str = "keyring"

    @property
    def username(self) -> str:
        return f"master-key/{self.install_id}"

    def describe(self) -> str:
        return f"keyring service {self.service!r} entry {self.username!r}"

    @staticmethod
    def available() -> bool:
        """True when keyring has a backend that can actually keep a secret.

        keyring's null and fail backends cannot; keyrings.alt's plaintext and
        weakly encrypted files (priority below 1) would store the master key
        next to what it protects, so they count only when someone chose a
        backend explicitly (``PYTHON_KEYRING_BACKEND`` or keyringrc.cfg).
        """
        try:
            import keyring
            from keyring.backends import fail
            from keyring.core import load_config, load_env

            backend = keyring.get_keyring()
            explicit = load_env() is not None or load_config() is not None
        except Exception:  # a broken keyring setup must not stop a headless server
            return False
        if isinstance(backend, fail.Keyring) or type(backend).__module__.endswith(".null"):
            return False
        if explicit:
            return True
        chained = getattr(backend, "backends", None)
        members = list(chained) if chained else [backend]
        return bool(members) and all(float(b.priority) >= 1 for b in members)

    def load(self) -> list[bytes] | None:
        if not self.available():
            return None
        import keyring
        from keyring.errors import KeyringError

        try:
            value = keyring.get_password(self.service, self.username)
        except KeyringError as exc:
            raise StartupRefused(f"cannot read {self.describe()}: {exc}") from None
        if not value:
            return None
        return parse_key_list(value, self.describe())

    @property
    def writable(self) -> bool:
        return self.available()

    def store(self, keys: Sequence[bytes]) -> None:
        import keyring

        keyring.set_password(self.service, self.username, ",".join(k.decode("ascii") for k in keys))


@dataclass(frozen=True)
class LoadedKey:
    ring: KeyRing
    source: KeySource
    generated: bool


class MasterKey(LoggingConfigurable):
    """Finds (or, for a new store, creates) the master key ring."""

    key_file = Unicode(
        "",
        help=f"""Path of the master key file (mode 0600). Empty means
        ${ENV_KEY_FILE} if set, else ``<state dir>/master.key``. The file is
        read only when ${ENV_KEY} is not set. For production, keep it outside
        the state directory so that a copy of one is not a copy of both.""",
    ).tag(config=True)

    use_keyring = Bool(
        True,
        help="""Look for the key in the operating system keyring (service
        ``jupyter-secure``) when neither the environment variable nor the key
        file provides one, and store a newly generated key there when a real
        keyring backend is available.""",
    ).tag(config=True)

    keyring_service = Unicode(
        KEYRING_SERVICE, help="Service name of the keyring entry that holds the key ring."
    ).tag(config=True)

    def sources(
        self, state_dir: Path, install_id: str, environ: dict[str, str] | None = None
    ) -> list[KeySource]:
        """The sources in lookup order."""
        env = os.environ if environ is None else environ
        path = self.key_file or env.get(ENV_KEY_FILE) or str(state_dir / "master.key")
        found: list[KeySource] = [EnvKeySource(env), FileKeySource(Path(path).expanduser())]
        if self.use_keyring:
            found.append(KeyringKeySource(install_id, self.keyring_service))
        return found

    def load(
        self,
        state_dir: Path,
        install_id: str,
        *,
        may_generate: bool,
        environ: dict[str, str] | None = None,
    ) -> LoadedKey:
        """The first ring a source provides, or a new one when ``may_generate``."""
        sources = self.sources(state_dir, install_id, environ)
        for source in sources:
            keys = source.load()
            if keys:
                return LoadedKey(KeyRing(keys), source, generated=False)
        looked = "; ".join(s.describe() for s in sources)
        if not may_generate:
            raise StartupRefused(
                "this state store was initialised with a master key that no source "
                f"provides (looked in: {looked}); restore the key, never re-initialise"
            )
        target = self._target_for_new_key(sources)
        keys = [KeyRing.generate_key()]
        target.store(keys)
        self.log.warning("generated a new master key, stored in %s", target.describe())
        return LoadedKey(KeyRing(keys), target, generated=True)

    @staticmethod
    def _target_for_new_key(sources: Sequence[KeySource]) -> KeySource:
        keyring_sources = [s for s in sources if s.kind == "keyring" and s.writable]
        if keyring_sources:
            return keyring_sources[0]
        return next(s for s in sources if s.kind == "file")


def check_token(ring: KeyRing, token: bytes, where: str) -> bytes:
    """Decrypt ``token`` or refuse with a message that names the key, not the data."""
    try:
        return ring.decrypt(token)
    except InvalidToken:
        raise WrongKey(
            f"the master key ring (key id {ring.fingerprint}) does not decrypt {where}; "
            "this is the wrong key for this state store"
        ) from None
