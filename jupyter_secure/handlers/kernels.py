"""Kernels that belong to someone.

:class:`SecureKernelManager` records who started each kernel (the user of the
request that started it, from the identity provider's context variable). The
session enforcer stops the kernels of users who are cut off; the policy room
builds per-user kernel access on the same record.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from .identity_provider import current_request_user

__all__ = ["SecureKernelManager"]


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
