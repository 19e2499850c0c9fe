"""The policy a running process enforces, reloaded when its file changes.

One :class:`LivePolicy` per process holds the current :class:`Policy`. A
request reads :attr:`LivePolicy.current` (one attribute read: swapping it is
atomic under the GIL, so a request sees the old or the new policy, never a
mixture). :meth:`LivePolicy.refresh` is called on a timer; it compares the
file's size, modification time and inode with what was loaded and re-reads
it only when they differ *and have stayed the same for one more check* (an
editor rewriting the file in place must not have its half-written state
applied). The file must say ``version = …``: an empty or cut-short file would
otherwise parse as "the defaults" and could widen access. A valid change
replaces the policy and is reported
to ``on_change`` (the server records the diff in the audit trail); an invalid
one keeps the old policy and is reported to ``on_reject`` once per distinct
file content, so a broken file does not flood the trail.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Callable
from pathlib import Path

from ..errors import StartupRefused
from .document import Policy, PolicyError, PolicyProblem, default_policy_text, parse_policy

__all__ = ["POLICY_FILENAME", "LivePolicy", "ensure_policy_file"]

#: The policy file's name inside the state directory.
POLICY_FILENAME = "policy.toml"


def ensure_policy_file(path: Path) -> bool:
    """Write the commented default policy to ``path`` (mode 0600) unless a file is there.

    Returns True when it wrote one. The file is created exclusively, so two
    processes starting at once cannot interleave their writes.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(default_policy_text())
        f.flush()
        os.fsync(f.fileno())
    return True


def _parse_whole(text: str, file: str) -> Policy:
    """Parse a policy file that must be whole: it names its ``version``."""
    try:
        has_version = "version" in tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        has_version = True  # parse_policy reports the syntax error with its line
    if not has_version:
        raise PolicyError(
            [
                PolicyProblem(
                    file,
                    1,
                    "version",
                    "missing: a policy file starts with `version = 1` (an empty or "
                    "cut-short file is refused rather than read as the defaults)",
                )
            ]
        )
    return parse_policy(text, file=file)


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class LivePolicy:
    """The current policy from a file, with hot reload (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        on_change: Callable[[Policy, Policy], None] | None = None,
        on_reject: Callable[[PolicyError], None] | None = None,
    ) -> None:
        self.path = path
        self.on_change = on_change
        self.on_reject = on_reject
        try:
            self._signature = _signature(path)
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StartupRefused(f"cannot read the policy file {path}: {exc}") from None
        try:
            self.current: Policy = _parse_whole(text, str(path))
        except PolicyError as exc:
            raise StartupRefused(
                f"the policy file is invalid ({len(exc.problems)} problem(s)): {exc.problems[0]}"
                " — run `jupyter secure policy check` for all of them"
            ) from None
        self._rejected: str | None = None
        self._pending: tuple[int, int, int] | None = None

    def refresh(self) -> bool:
        """Reload when the file changed; True when a new policy took effect."""
        try:
            signature = _signature(self.path)
        except OSError:
            signature = (-1, -1, -1)
        if signature == self._signature:
            self._pending = None
            return False
        if signature != self._pending:
            self._pending = signature  # apply it once it has held still for a check
            return False
        self._signature, self._pending = signature, None
        try:
            text = self.path.read_text(encoding="utf-8")
            new = _parse_whole(text, str(self.path))
        except (OSError, UnicodeDecodeError) as exc:
            unreadable = PolicyProblem(str(self.path), None, "", f"cannot read: {exc}")
            return self._reject(PolicyError([unreadable]), str(exc))
        except PolicyError as exc:
            return self._reject(exc, hashlib.sha256(text.encode()).hexdigest())
        self._rejected = None
        if new.digest() == self.current.digest():
            return False
        old, self.current = self.current, new
        if self.on_change is not None:
            self.on_change(old, new)
        return True

    def _reject(self, error: PolicyError, fingerprint: str) -> bool:
        if fingerprint != self._rejected:
            self._rejected = fingerprint
            if self.on_reject is not None:
                self.on_reject(error)
        return False
