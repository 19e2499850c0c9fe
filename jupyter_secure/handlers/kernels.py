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

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.sessions.sessionmanager import SessionManager

from ..policy import LivePolicy
from .access import principal_of
from .identity_provider import current_request_user

__all__ = ["SecureKernelManager", "SecureSessionManager"]


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
    """Sessions listed only when their kernel is one the requesting user may see."""

    async def list_sessions(self) -> list[dict[str, Any]]:
        sessions: list[dict[str, Any]] = await super().list_sessions()  # type: ignore[no-untyped-call]
        km = self.kernel_manager
        if not isinstance(km, SecureKernelManager):
            return []
        return [s for s in sessions if km.may_see(((s.get("kernel") or {}).get("id")) or "")]
