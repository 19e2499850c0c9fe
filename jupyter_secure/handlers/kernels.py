"""Kernels (and notebook sessions) that belong to someone.

:class:`SecureKernelManager` records who started each kernel (the user of the
request that started it, from the identity provider's context variable). The
session enforcer stops the kernels of users who are cut off; the authorizer
refuses other users' kernels by the same record; and the lists of kernels and
sessions a request gets show only what the policy lets its user see (a
kernel id is a capability: listing bob's would hand it to alice).
"""

from __future__ import annotations

from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.sessions.sessionmanager import SessionManager
from tornado import web

from ..policy import ANY_KERNELSPEC, LivePolicy
from .access import principal_of
from .identity_provider import current_request_user

__all__ = ["SecureKernelManager", "SecureKernelSpecManager", "SecureSessionManager"]


class SecureKernelManager(AsyncMappingKernelManager):
    """The default kernel manager, plus the owner of every kernel it starts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.owners: dict[str, str] = {}
        #: set by SecureApp once the policy is loaded; without it nothing is listed
        self.policy: LivePolicy | None = None

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

    def may_see(self, kernel_id: str) -> bool:
        """Whether the current request's user may see this kernel (outside a request: yes)."""
        user = current_request_user.get()
        if user is None:
            return True
        if self.policy is None:
            return False
        owner = self.owners.get(kernel_id, "")
        return bool(self.policy.current.decide(principal_of(user), "kernels:read", owner=owner))

    def list_kernels(self) -> list[dict[str, Any]]:
        kernels: list[dict[str, Any]] = super().list_kernels()  # type: ignore[no-untyped-call]
        return [k for k in kernels if self.may_see(k["id"])]


class SecureSessionManager(SessionManager):
    """Sessions per person: listed only when their kernel is visible to the requesting
    user, and found by path only among the requesting user's own.

    jupyter_server hands whoever opens a notebook the session that already exists
    for its path. With several people that would give alice bob's session and
    kernel for a shared notebook (or the admin a kernel alice prepared), so a
    lookup by path during a request only matches sessions whose kernel the
    requesting user started; everyone gets their own session per notebook.
    """

    def _own_session_id(self, path: str) -> str | None:
        km = self.kernel_manager
        user = current_request_user.get()
        if user is None or not isinstance(km, SecureKernelManager):
            return None
        rows = self.cursor.execute(
            "SELECT session_id, kernel_id FROM session WHERE path=?", (path,)
        ).fetchall()
        return next((sid for sid, kid in rows if km.owner(kid) == user.username), None)

    async def session_exists(self, path: str) -> bool:
        if current_request_user.get() is None:
            exists: bool = await super().session_exists(path)  # type: ignore[no-untyped-call]
            return exists
        sid = self._own_session_id(path)
        if sid is None:
            return False
        row = self.cursor.execute("SELECT * FROM session WHERE session_id=?", (sid,)).fetchone()
        # As jupyter_server does: a session whose kernel died is removed, not reused.
        model = await self.row_to_model(row, tolerate_culled=True)  # type: ignore[no-untyped-call]
        return model is not None

    async def get_session(self, **kwargs: Any) -> dict[str, Any]:
        if "path" in kwargs and current_request_user.get() is not None:
            sid = self._own_session_id(kwargs.pop("path"))
            if sid is None:
                raise web.HTTPError(404, "no such session")
            kwargs["session_id"] = sid
        model: dict[str, Any] = await super().get_session(**kwargs)  # type: ignore[no-untyped-call]
        return model

    async def list_sessions(self) -> list[dict[str, Any]]:
        sessions: list[dict[str, Any]] = await super().list_sessions()  # type: ignore[no-untyped-call]
        km = self.kernel_manager
        if not isinstance(km, SecureKernelManager):
            return []
        return [s for s in sessions if km.may_see(((s.get("kernel") or {}).get("id")) or "")]


class SecureKernelSpecManager(KernelSpecManager):
    """Kernel types listed to a user only when their roles may start them, so the
    launcher offers what works instead of what answers 403."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: set by SecureApp once the policy is loaded; without it nothing is listed
        self.policy: LivePolicy | None = None

    def get_all_specs(self) -> dict[str, Any]:
        specs: dict[str, Any] = super().get_all_specs()
        user = current_request_user.get()
        if user is None:
            return specs  # the server's own use (starting a kernel already allowed)
        if self.policy is None:
            return {}
        allowed = self.policy.current.allowed_kernelspecs(principal_of(user))
        if ANY_KERNELSPEC in allowed:
            return specs
        return {name: spec for name, spec in specs.items() if name in allowed}
