"""The state directory: where the database, audit segments and protected data live.

Everything under it is private to the account that runs the server, so it is
created with mode 0700 and an existing one is refused (not silently fixed)
when it is not a directory, belongs to someone else, or lets group or other
users in. A refusal says what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ..errors import StartupRefused

__all__ = [
    "ENV_STATE_DIR",
    "default_state_dir",
    "ensure_private_dir",
    "fsync_dir",
    "resolve_state_dir",
]

ENV_STATE_DIR = "JUPYTER_SECURE_STATE_DIR"


def default_state_dir() -> Path:
    """``$JUPYTER_SECURE_STATE_DIR``, else ``<jupyter data dir>/secure``."""
    env = os.environ.get(ENV_STATE_DIR)
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "secure"


def resolve_state_dir(configured: str | os.PathLike[str] | None) -> Path:
    """The configured state directory, or the default when none is given."""
    if configured:
        return Path(configured).expanduser()
    return default_state_dir()


def ensure_private_dir(path: Path, *, what: str = "state directory") -> Path:
    """Create ``path`` (mode 0700) or check that an existing one is private and writable.

    Returns the absolute path. Raises :class:`StartupRefused` with a one-line
    reason otherwise.
    """
    path = path.expanduser().absolute()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StartupRefused(f"{what} {path} exists but is not a directory") from None
    except OSError as exc:
        raise StartupRefused(f"cannot create {what} {path}: {exc.strerror}") from None
    try:
        st = path.lstat()
    except OSError as exc:  # pragma: no cover - raced away between mkdir and lstat
        raise StartupRefused(f"cannot inspect {what} {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StartupRefused(f"{what} {path} is a symbolic link; give its real path")
    if not stat.S_ISDIR(st.st_mode):
        raise StartupRefused(f"{what} {path} exists but is not a directory")
    if st.st_uid != os.getuid():
        raise StartupRefused(
            f"{what} {path} belongs to uid {st.st_uid}, not to this account (uid {os.getuid()})"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise StartupRefused(
            f"{what} {path} has mode {mode:04o}; it must be private (run: chmod 700 {path})"
        )
    _probe_writable(path, what)
    return path


def _probe_writable(path: Path, what: str) -> None:
    """Write and remove a file: ``os.access`` says yes to root on a read-only mount."""
    try:
        fd, name = tempfile.mkstemp(prefix=".probe-", dir=path)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise StartupRefused(f"{what} {path} is not writable: {exc.strerror}") from None


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a file created, renamed or removed in it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
