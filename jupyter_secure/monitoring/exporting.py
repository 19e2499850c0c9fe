"""What the optional exporters (CloudWatch, OpenTelemetry) share.

Exporting is a side channel: the product must behave the same whether the
collector is up, slow or gone. So each exporter runs on a daemon thread of
its own, every call it makes has a bounded timeout, and a failure is one log
line and one more in a ``failures`` counter — never an exception into the
server. Their libraries are optional extras, imported only when an exporter
is built, so a site that exports nothing installs nothing.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from ..errors import SecureError, StartupRefused

__all__ = ["ExportFailed", "FileCursor", "PeriodicRunner", "require_extra"]


class ExportFailed(SecureError):
    """An export did not reach its destination.

    ``delivered`` is the highest audit sequence number that did reach it
    before the failure (``None``: none did), so a caller can move its cursor
    past what was sent and retry only the rest. ``code`` is the service's
    error code when it gave one (``AccessDeniedException``, …).
    """

    def __init__(
        self, message: str, *, delivered: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.code = code


def require_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` for an enabled exporter, or refuse naming the extra that provides it.

    An exporter that is switched on but cannot run must stop the start-up:
    an administrator who enabled an audit export expects records to leave
    the machine, and a log line nobody reads would hide that they do not.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise StartupRefused(
            f"{what} is enabled but {module} is not installed: "
            f"pip install 'jupyter-secure[{extra}]'"
        ) from None


class PeriodicRunner:
    """Calls ``tick`` at once and then every ``interval`` seconds on a daemon thread.

    ``tick`` is expected to catch its own failures; anything that escapes is
    logged here anyway, so the thread never dies of one bad round. ``stop``
    waits at most ``timeout`` seconds: a round stuck in a network call (which
    has its own timeouts) is left to finish on its daemon thread rather than
    hold up a server shutdown.
    """

    def __init__(
        self, name: str, interval: float, tick: Callable[[], None], log: logging.Logger
    ) -> None:
        self.name = name
        self.interval = interval
        self._tick = tick
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called: a long round checks it between requests."""
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the thread to end after its current round, without waiting."""
        self._stop.set()

    def stop(self, timeout: float = 15.0) -> bool:
        """Ask the thread to end; True when it did within ``timeout`` seconds."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as exc:  # a bug in a round must not end the exports
                self._log.warning("%s: round failed: %s: %s", self.name, type(exc).__name__, exc)
            if self._stop.wait(self.interval):
                break


class FileCursor:
    """The highest audit sequence number an exporter delivered, kept in a small file.

    ``get`` is 0 before the first delivery, and also when the file cannot be
    read: sending records again is the safe side of at-least-once, skipping
    them is not. ``set`` replaces the file atomically (a 0600 sibling,
    fsync, rename), so a crash leaves the old number or the new one.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def get(self) -> int:
        try:
            return max(0, int(self.path.read_text(encoding="ascii").strip()))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            logging.getLogger(__name__).warning(
                "export cursor %s unreadable (%s): exporting from the start", self.path, exc
            )
            return 0

    def set(self, seq: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"%d\n" % seq)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
