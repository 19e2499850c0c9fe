"""The kernel's environment: an allow-list, never a deny-list.

The server's environment holds its secrets (``JUPYTER_SECURE_KEY``, database
URLs, cloud credentials); a kernel inherits all of it unless told otherwise,
and user code reads ``os.environ`` freely. So the kernel keeps only the names
the server lists in ``env_keep`` and drops everything else: a variable nobody
thought of is a variable the user does not get (fail closed).

A few names are dropped *even if listed*, because keeping them would hand the
user the server's key material or let them steer where the kernel reads its
configuration and code from: ``JUPYTER_SECURE_*`` (the master key, the key
file, the state dir and the guard-config path), ``PYTHON*`` (``-I`` ignores
them for the kernel itself, but not for a ``python`` the user starts from a
cell), ``IPYTHON*``, ``JUPYTER_*`` and ``LD_*``. The per-kernel directories
(``TMPDIR``, ``IPYTHONDIR``, …) are then pointed into the kernel's private
directory, so nothing the kernel writes lands in a shared ``/tmp`` or in the
user's real ``~/.ipython``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping

__all__ = [
    "ALWAYS_DROPPED",
    "ALWAYS_KEPT",
    "PRIVATE_SUBDIRS",
    "apply_environment",
    "build_environment",
    "private_dirs",
    "scrub_environment",
]

ALWAYS_DROPPED: tuple[str, ...] = ("JUPYTER_SECURE_", "JUPYTER_", "IPYTHON", "PYTHON", "LD_")
"""Prefixes dropped whatever ``env_keep`` says (``JUPYTER_*`` we set ourselves below)."""

ALWAYS_KEPT: tuple[str, ...] = ("JPY_PARENT_PID", "JPY_SESSION_NAME")
"""Set by jupyter_client / jupyter_server for the kernel itself: ipykernel exits when the
parent named by ``JPY_PARENT_PID`` dies, and names ``__session__`` after the notebook."""

PRIVATE_SUBDIRS: Mapping[str, str] = {
    "TMPDIR": "tmp",
    "TMP": "tmp",
    "TEMP": "tmp",
    "IPYTHONDIR": "ipython",
    "JUPYTER_CONFIG_DIR": "jupyter/config",
    "JUPYTER_DATA_DIR": "jupyter/data",
    "JUPYTER_RUNTIME_DIR": "jupyter/runtime",
    "MPLCONFIGDIR": "matplotlib",
    "JOBLIB_TEMP_FOLDER": "tmp",
    "XDG_CACHE_HOME": "cache",
}
"""Variables pointed at a subdirectory of the kernel's private directory."""


def _kept(name: str, env_keep: Iterable[str]) -> bool:
    if name in ALWAYS_KEPT:
        return True
    if name.startswith(ALWAYS_DROPPED):
        return False
    for pattern in env_keep:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


def private_dirs(private_dir: str) -> dict[str, str]:
    """The variables of :data:`PRIVATE_SUBDIRS` with their absolute paths."""
    return {name: os.path.join(private_dir, sub) for name, sub in PRIVATE_SUBDIRS.items()}


def build_environment(
    source: Mapping[str, str], env_keep: Iterable[str], private_dir: str
) -> dict[str, str]:
    """The kernel's environment built from ``source`` (pure: nothing is changed)."""
    keep = tuple(env_keep)
    env = {name: value for name, value in source.items() if _kept(name, keep)}
    env.update(private_dirs(private_dir))
    # Platform dirs off: the variables above are then the whole story for jupyter_core.
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def apply_environment(env: Mapping[str, str], target: MutableMapping[str, str]) -> None:
    """Replace ``target`` (normally ``os.environ``) by ``env``: clear, then update."""
    target.clear()
    target.update(env)


def scrub_environment(env_keep: Iterable[str], private_dir: str) -> dict[str, str]:
    """Build the kernel's environment from ``os.environ`` and install it; return it.

    Also creates the private subdirectories (mode 0700) the new variables
    point at.
    """
    env = build_environment(os.environ, env_keep, private_dir)
    for path in sorted(set(private_dirs(private_dir).values())):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    apply_environment(env, os.environ)
    return env
