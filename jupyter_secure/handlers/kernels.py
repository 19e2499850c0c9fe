"""Kernels that belong to someone, and ending what a revoked session holds open.

* :class:`SecureKernelManager` records who started each kernel (the user of
  the request that started it, from the identity provider's context
  variable). The policy room builds per-user kernel access on it.
* :class:`SessionEnforcer` polls the state database every couple of seconds
  for sessions that ended — by logout, expiry, or an administrator in another
  process (``jupyter secure user disable``, ``mfa reset``) — and closes their
  kernel websockets at once. When a user was disabled or had their second
  factor reset, it also shuts down every kernel they own and closes every
  connection they hold, API tokens included.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from sqlalchemy import select
from tornado.ioloop import PeriodicCallback

from ..storage.database import Database
from ..storage.models import LoginSession, User, utcnow
from .identity_provider import SecureUser, current_request_user

__all__ = ["USER_WIDE_REASONS", "SecureKernelManager", "SessionEnforcer"]

log = logging.getLogger(__name__)

#: Session end reasons that also stop the user's kernels and token connections.
USER_WIDE_REASONS = frozenset({"disabled", "mfa-reset", "frozen"})


class SecureKernelManager(AsyncMappingKernelManager):
    """The default kernel manager, plus the owner of every kernel it starts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.owners: dict[str, str] = {}

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        kernel_id: str = await super().start_kernel(*args, **kwargs)
        user = current_request_user.get()
        if user is not None and kernel_id not in self.owners:
            self.owners[kernel_id] = user.username
        return kernel_id

    def owner(self, kernel_id: str) -> str | None:
        return self.owners.get(kernel_id)

    def kernels_of(self, name: str) -> list[str]:
        live = set(self.list_kernel_ids())
        return [k for k, owner in self.owners.items() if owner == name and k in live]


def _connection_user(connection: Any) -> SecureUser | None:
    handler = getattr(connection, "websocket_handler", None)
    user = getattr(handler, "current_user", None)
    return user if isinstance(user, SecureUser) else None


class SessionEnforcer:
    """Closes what ended sessions still hold open (runs on the server's event loop)."""

    def __init__(
        self, db: Database, kernel_manager: Any, *, interval: float = 2.0, log: Any = log
    ) -> None:
        self.db = db
        self.kernel_manager = kernel_manager
        self.interval = interval
        self.log = log
        self.mark = utcnow()
        self._done: set[str] = set()
        self._callback: PeriodicCallback | None = None

    def start(self) -> None:
        self._callback = PeriodicCallback(self.check, self.interval * 1000)
        self._callback.start()

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()

    def ended_since_mark(self) -> list[tuple[str, str, str]]:
        """(session public id, user name, reason) of sessions ended since the last check."""
        with self.db.read() as s:
            rows = s.execute(
                select(
                    LoginSession.public_id,
                    User.name,
                    LoginSession.end_reason,
                    LoginSession.ended_at,
                )
                .join(User, User.id == LoginSession.user_id)
                .where(LoginSession.ended_at > self.mark - dt.timedelta(seconds=1))
            ).all()
        ends = [r[3] for r in rows if r[3] is not None]
        if ends:
            self.mark = max(ends)
        fresh = [(r[0], r[1], r[2] or "") for r in rows if r[0] not in self._done]
        self._done = {r[0] for r in rows}  # the overlap window only ever repeats these
        return fresh

    async def check(self) -> None:
        try:
            ended = self.ended_since_mark()
        except Exception:  # the database may be briefly unavailable: try again next tick
            self.log.exception("could not check for ended sessions")
            return
        if not ended:
            return
        sessions = {sid for sid, _, _ in ended}
        users = {name for _, name, reason in ended if reason in USER_WIDE_REASONS}
        for connection in list(ZMQChannelsWebsocketConnection._open_sockets):
            user = _connection_user(connection)
            if user is None:
                continue
            if user.session_id in sessions or user.username in users:
                self.log.warning("closing kernel connection of %s: session ended", user.username)
                connection.websocket_handler.close(code=1008, reason="session ended")
        for name in users:
            kernels: list[str] = getattr(self.kernel_manager, "kernels_of", lambda _n: [])(name)
            for kernel_id in kernels:
                self.log.warning("shutting down kernel %s of %s", kernel_id, name)
                try:
                    await self.kernel_manager.shutdown_kernel(kernel_id)
                except Exception:
                    self.log.exception("could not shut down kernel %s", kernel_id)
