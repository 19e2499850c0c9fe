"""Cutting off what a revoked credential still holds open.

A websocket (a kernel's channels, a terminal, the event stream, a language
server) is authenticated once, when it opens. Every websocket that opens is
registered here with the credential it opened with; every couple of seconds
:class:`SessionEnforcer` asks the state database which of those credentials
still stand — the session not ended, not idle or too old, its user enabled and
enrolled; the API token not revoked or expired — and closes the rest. It also
shuts down the kernels, and terminates the terminals, of users who are now
disabled or whose second factor was reset, whether or not they have a
connection open. Changes made by another process (``jupyter secure user
disable``) are seen at the next tick, because the database is the source.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from tornado.ioloop import PeriodicCallback
from tornado.websocket import WebSocketHandler

__all__ = ["ConnectionRegistry", "SessionEnforcer", "connections"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credential:
    user: str
    session_id: str | None
    token_id: str | None
    #: the event loop the connection lives on (a process can outlive a server's loop)
    loop: Any = None


class ConnectionRegistry:
    """Open websockets and the credential each one opened with (weakly held)."""

    def __init__(self) -> None:
        self._open: weakref.WeakKeyDictionary[WebSocketHandler, Credential] = (
            weakref.WeakKeyDictionary()
        )

    def track(self, handler: WebSocketHandler, user: Any) -> None:
        self._open[handler] = Credential(
            user.username,
            getattr(user, "session_id", None),
            getattr(user, "token_id", None),
            _running_loop(),
        )

    def live(self) -> list[tuple[WebSocketHandler, Credential]]:
        """Open connections on the running event loop (those of a stopped server are not
        this server's to close, and closing them would raise)."""
        loop = _running_loop()
        return [
            (h, c)
            for h, c in list(self._open.items())
            if h.ws_connection is not None and (c.loop is None or c.loop is loop)
        ]


def _running_loop() -> Any:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


connections = ConnectionRegistry()


class SessionEnforcer:
    """Re-checks the credential behind every open connection, every ``interval`` seconds."""

    def __init__(
        self,
        signin: Any,
        kernel_manager: Any,
        *,
        terminal_manager: Any = None,
        registry: ConnectionRegistry = connections,
        interval: float = 2.0,
        log: Any = log,
    ) -> None:
        self.signin = signin
        self.kernel_manager = kernel_manager
        self.terminal_manager = terminal_manager
        self.registry = registry
        self.interval = interval
        self.log = log
        self._callback: PeriodicCallback | None = None
        self._stopped: set[str] = set()

    def start(self) -> None:
        self._callback = PeriodicCallback(self.check, self.interval * 1000)
        self._callback.start()

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()

    async def check(self) -> None:
        try:
            await self._check()
        except Exception:  # the database may be briefly unavailable: try again next tick
            self.log.exception("could not re-check open connections")

    async def _check(self) -> None:
        from .base import run_blocking

        open_now = self.registry.live()
        sessions = {c.session_id for _, c in open_now if c.session_id}
        tokens = {c.token_id for _, c in open_now if c.token_id}
        owners = set(getattr(self.kernel_manager, "owners", {}).values())
        names = owners | {c.user for _, c in open_now}
        good_sessions, good_tokens, stopped = await run_blocking(
            self.signin.standing, sessions, tokens, names
        )
        self._stopped = stopped
        for handler, cred in open_now:
            revoked = (
                cred.user in stopped
                or (cred.session_id is not None and cred.session_id not in good_sessions)
                or (cred.token_id is not None and cred.token_id not in good_tokens)
            )
            if revoked:
                self.log.warning("closing a connection of %s: its credential ended", cred.user)
                try:
                    await self._terminate_terminal(handler, cred)
                    handler.close(code=1008, reason="credential ended")
                except Exception:  # one broken connection must not spare the others
                    self.log.exception("could not close a connection of %s", cred.user)
        for name in stopped:
            for kernel_id in getattr(self.kernel_manager, "kernels_of", lambda _n: [])(name):
                self.log.warning("shutting down kernel %s of %s", kernel_id, name)
                try:
                    await self.kernel_manager.shutdown_kernel(kernel_id)
                except Exception:
                    self.log.exception("could not shut down kernel %s", kernel_id)

    async def _terminate_terminal(self, handler: Any, cred: Credential) -> None:
        """A terminal is a shell: when its user is cut off, the shell goes too."""
        name = getattr(handler, "term_name", None)
        manager = getattr(handler, "terminal_manager", None) or self.terminal_manager
        if not name or manager is None or name not in getattr(manager, "terminals", {}):
            return
        if cred.user not in self._stopped:
            return  # only the session ended: the user may reattach from a new one
        self.log.warning("terminating terminal %s of %s", name, cred.user)
        try:
            await manager.terminate(name, force=True)
        except Exception:
            self.log.exception("could not terminate terminal %s", name)
