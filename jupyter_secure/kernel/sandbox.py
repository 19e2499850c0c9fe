"""The kernel's file-system sandbox (Linux Landlock).

The server decides what a user may touch; a kernel is a Python process that
runs whatever the user types, so without a sandbox ``open("/srv/secure/state.db")``
or another user's workspace is one cell away. Landlock lets an unprivileged
process drop file-system rights for itself and every process it starts,
irrevocably. Everything not allowed here is denied.

What is allowed, beyond the server's plan (``read``, ``write``,
``read_files``, ``private_dir``), is computed in one place,
:func:`implicit_allowances`, from :data:`SYSTEM_READ`, :data:`DEVICE_FILES`
and :data:`DEVICE_DIRS` plus the Python installation (``sys.prefix``,
``sys.base_prefix``, ``sys.exec_prefix`` and every existing ``sys.path``
entry): the server must make sure its state directory and the kernels'
runtime directory are not beneath any of these.

Ordering matters. ``landlock_restrict_self`` restricts the calling thread
and the threads and processes it creates *afterwards*; a thread that already
exists stays unrestricted and is a way around the sandbox. So
:func:`apply_sandbox` refuses unless the process has exactly one thread (both
Python's count and ``/proc/self/task``), and the launcher calls it before it
imports ipykernel, zmq, numpy or pandas (which start threads). Files opened
before are not restricted either: the launcher closes inherited descriptors
first.

With Landlock ABI >= 6 a second layer also *scopes* the kernel: it cannot
send signals to processes outside its sandbox (the server, other kernels) nor
connect to abstract UNIX sockets created outside it. The ``landlock``
package (1.0.0.dev5) only knows the file-system part of the ruleset, so that
layer is created here with the raw syscalls. Landlock also keeps a sandboxed
process from ptracing (and so from reading ``/proc/<pid>/environ`` or
``/proc/<pid>/mem`` of) processes outside its domain, from ABI 1 on.

Network access is not restricted (the kernel needs its ZeroMQ ports and the
witness URL). ``/dev/shm`` is not allowed: it is shared by every process of the
same account, which Landlock cannot separate per user.
"""

from __future__ import annotations

import ctypes
import enum
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEVICE_DIRS",
    "DEVICE_FILES",
    "PROC_FILES",
    "SYSTEM_READ",
    "Allowance",
    "SandboxAction",
    "SandboxError",
    "apply_sandbox",
    "implicit_allowances",
    "landlock_abi",
    "sandbox_action",
]

SYSTEM_READ: tuple[str, ...] = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc",
    "/opt",
    "/sys",
    # /etc/resolv.conf is often a link here; Landlock checks the link's target.
    "/run/systemd/resolve",
)
"""System directories a Python process needs to read (those that exist are allowed).

``/proc`` is not among them: ``/proc/<pid>/environ`` and ``cmdline`` of the
server (same OS account) are readable under Landlock's ptrace rules and would
show the server's secrets. The kernel gets its own ``/proc/<pid>`` and the
system-wide files in :data:`PROC_FILES` only."""

PROC_FILES: tuple[str, ...] = (
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/version",
    "/proc/filesystems",
    "/proc/mounts",
)
"""System-wide ``/proc`` files that say nothing about other processes."""

DEVICE_FILES: tuple[str, ...] = (
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
)
"""Device files the kernel may read and write."""

DEVICE_DIRS: tuple[str, ...] = ()
"""Device directories with full access. Empty on purpose: ``/dev/shm`` is shared by
every process of the server's OS account, so one user's kernel could read what
another's put there (joblib memory maps, shared-memory arrays). Guarded kernels
therefore have no POSIX shared memory or named semaphores: ``multiprocessing``
locks and ``shared_memory`` fail, and joblib falls back to threads; its memory maps
go to the kernel's private directory (``JOBLIB_TEMP_FOLDER``)."""

# Landlock scopes (ABI >= 6); see linux/landlock.h.
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
_SCOPE_SIGNAL = 1 << 1
_SCOPE_ABI = 6
_SYS_CREATE_RULESET = 444
_SYS_RESTRICT_SELF = 446


class SandboxError(RuntimeError):
    """The sandbox could not be applied (or must not be, in the current state)."""


class SandboxAction(enum.Enum):
    """What the launcher does about the sandbox."""

    APPLY = "apply"
    REFUSE = "refuse"
    WARN = "warn"


def sandbox_action(abi: int, required: bool) -> SandboxAction:
    """Map (Landlock ABI available, ``sandbox.required``) to what the launcher does.

    >>> sandbox_action(0, True), sandbox_action(0, False), sandbox_action(7, True)
    (<SandboxAction.REFUSE: 'refuse'>, <SandboxAction.WARN: 'warn'>, <SandboxAction.APPLY: 'apply'>)
    """
    if abi >= 1:
        return SandboxAction.APPLY
    return SandboxAction.REFUSE if required else SandboxAction.WARN


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel, 0 when unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        import landlock

        ctypes.set_errno(0)
        return int(landlock.landlock_abi_version())
    except (ImportError, OSError, AttributeError, ValueError):
        return 0


@dataclass(frozen=True)
class Allowance:
    """One path and what it is allowed for: ``read`` (r-x), ``write`` (all) or ``device``."""

    path: str
    kind: str


def _python_paths() -> list[str]:
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix]
    paths += [p for p in sys.path if p and os.path.isabs(p)]
    # The interpreter itself may live outside the prefixes (a venv's symlink target).
    paths.append(os.path.dirname(os.path.realpath(sys.executable)))
    return paths


def implicit_allowances() -> list[Allowance]:
    """Everything the sandbox allows besides the server's plan, for those that exist.

    The root directory is never allowed, even if it is on ``sys.path``.
    """
    found: list[Allowance] = []
    seen: set[tuple[str, str]] = set()

    def add(path: str, kind: str) -> None:
        path = os.path.normpath(path)
        if path == "/" or (path, kind) in seen or not os.path.exists(path):
            return
        seen.add((path, kind))
        found.append(Allowance(path, kind))

    for path in _python_paths():
        add(path, "read")
    for path in SYSTEM_READ:
        add(path, "read")
    add(f"/proc/{os.getpid()}", "read")  # /proc/self, resolved: this process only
    add("/proc/sys", "read")
    for path in PROC_FILES:
        add(path, "file")
    for path in DEVICE_FILES:
        add(path, "device")
    for path in DEVICE_DIRS:
        add(path, "write")
    return found


def _single_threaded() -> bool:
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return True  # no /proc: Python's own count is all we have


def _scope(abi: int) -> None:
    """Stack a scope-only Landlock layer (signals, abstract UNIX sockets)."""
    if abi < _SCOPE_ABI:
        return

    class _Attr(ctypes.Structure):
        _fields_ = [
            ("handled_access_fs", ctypes.c_uint64),
            ("handled_access_net", ctypes.c_uint64),
            ("scoped", ctypes.c_uint64),
        ]

    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    attr = _Attr(0, 0, _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL)
    fd = syscall(
        ctypes.c_long(_SYS_CREATE_RULESET),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
        ctypes.c_uint32(0),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise SandboxError(f"landlock scope ruleset: {os.strerror(err)}")
    try:
        if syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)) < 0:
            err = ctypes.get_errno()
            raise SandboxError(f"landlock scope restrict_self: {os.strerror(err)}")
    finally:
        os.close(fd)


def apply_sandbox(
    read: Sequence[str],
    write: Sequence[str],
    read_files: Sequence[str],
    private_dir: str,
    *,
    missing: list[str] | None = None,
) -> int:
    """Restrict this process (and its future threads and children); return the ABI used.

    ``read`` are directories readable and executable beneath, ``write``
    directories with full access, ``read_files`` single files readable.
    Paths that do not exist are skipped (and appended to ``missing`` if
    given): a missing allowance only ever means less access. Raises
    :class:`SandboxError` if Landlock is unavailable, the process has more
    than one thread, or a syscall fails.
    """
    abi = landlock_abi()
    if abi < 1:
        raise SandboxError("Landlock is not available on this system")
    if not _single_threaded():
        raise SandboxError("refusing to sandbox a process that already runs several threads")
    import landlock
    from landlock import FSAccess

    ctypes.set_errno(0)
    every = FSAccess.all()
    file_rights = FSAccess.EXECUTE | FSAccess.READ_FILE
    read_rights = file_rights | FSAccess.READ_DIR
    device_rights = FSAccess.READ_FILE | FSAccess.WRITE_FILE
    if abi >= 3:
        device_rights |= FSAccess.TRUNCATE  # open("/dev/null", "w") truncates
    file_write = file_rights | FSAccess.WRITE_FILE
    if abi >= 3:
        file_write |= FSAccess.TRUNCATE
    kinds = {"read": read_rights, "write": every, "device": device_rights, "file": file_rights}
    # A rule on a file may only carry file rights.
    file_kinds = {"read": file_rights, "write": file_write, "device": device_rights}

    rules = [Allowance(os.path.normpath(p), "read") for p in read]
    rules += [Allowance(os.path.normpath(p), "write") for p in (*write, private_dir)]
    rules += [Allowance(os.path.normpath(p), "file") for p in read_files]
    rules += implicit_allowances()

    try:
        ctypes.set_errno(0)
        ruleset = landlock.Ruleset(restrict_rules=every)
        for rule in rules:
            try:
                is_dir = os.path.isdir(rule.path)
                exists = is_dir or os.path.exists(rule.path)
            except OSError:
                exists = is_dir = False
            if not exists:
                if missing is not None:
                    missing.append(rule.path)
                continue
            rights = kinds[rule.kind] if is_dir else file_kinds.get(rule.kind, file_rights)
            # The binding tests ctypes' saved errno, not the return value: clear it first.
            ctypes.set_errno(0)
            ruleset.allow(rule.path, rules=rights)
        ctypes.set_errno(0)
        ruleset.apply()
        os.close(ruleset._fd)
    except (OSError, landlock.LandlockError) as err:
        reason = getattr(err, "reason", None)
        detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise SandboxError(f"landlock: {detail}" + (f" ({reason})" if reason else "")) from err
    _scope(abi)
    return abi
