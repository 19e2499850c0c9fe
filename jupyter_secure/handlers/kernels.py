"""Kernels (and notebook sessions) that belong to someone.

:class:`SecureKernelManager` records who started each kernel (the user of the
request that started it, from the identity provider's context variable). The
session enforcer stops the kernels of users who are cut off; the authorizer
refuses other users' kernels by the same record; and the lists of kernels and
sessions a request gets show only what the policy lets its user see (a
kernel id is a capability: listing bob's would hand it to alice).
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_server.services.kernels.kernelmanager import (
    AsyncMappingKernelManager,
    ServerKernelManager,
)
from jupyter_server.services.sessions.sessionmanager import SessionManager
from tornado import web
from traitlets import default

from ..channel.guard import KernelGuard, Person
from ..policy import ANY_KERNELSPEC, GUARDED_KERNELSPEC, LivePolicy
from .access import principal_of
from .identity_provider import current_request_user

__all__ = [
    "GuardedKernelProcess",
    "SecureKernelManager",
    "SecureKernelSpecManager",
    "SecureSessionManager",
]


def is_guarded(name: str | None, spec: Any = None) -> bool:
    """The guarded kernel type: ours by name, or any spec that says it is guarded."""
    metadata = getattr(spec, "metadata", None) or {}
    marked = isinstance(metadata.get("jupyter_secure"), dict) and bool(
        metadata["jupyter_secure"].get("guarded")
    )
    return name == GUARDED_KERNELSPEC or marked


class GuardedKernelProcess(ServerKernelManager):
    """One kernel's manager: before each launch (and relaunch on restart) of a guarded
    kernel, the guard writes its guard file and the environment is replaced by the
    scrubbed one. A guarded kernel without a guard or an owner is not started."""

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        if not is_guarded(self.kernel_name, self.kernel_spec):
            return cmd, kw
        parent = self.parent
        guard = getattr(parent, "guard", None)
        person = getattr(parent, "people", {}).get(self.kernel_id)
        if not isinstance(guard, KernelGuard) or person is None:
            raise web.HTTPError(
                500, "a guarded kernel needs the kernel guard and a signed-in owner"
            )
        kw["env"] = guard.prepare_launch(
            kernel_id=str(self.kernel_id),
            kernelspec=str(self.kernel_name),
            person=person,
            connection_file=self.connection_file,
            env=kw.get("env") or dict(os.environ),
        )
        return cmd, kw

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        """After a stop (or the stop half of a restart), end what is left of the kernel's
        process group.

        jupyter_client stops a kernel gracefully: it interrupts the group, asks the kernel
        to shut down, and kills only the kernel itself if it lingers. A child that ignores
        SIGINT (a shell's background job does) kept running with its owner's rights
        after the kernel was gone — after an incident freeze too. The kernel ran in a
        session of its own, so its group holds only what the notebook started.
        """
        pgid = getattr(self.provisioner, "pgid", None)
        await super()._async_cleanup_resources(restart=restart)
        end_process_group(pgid)


def end_process_group(pgid: object) -> None:
    """SIGKILL the process group ``pgid``; never the server's own group or a system one."""
    if not isinstance(pgid, int) or pgid <= 1 or pgid == os.getpgrp():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class SecureKernelManager(AsyncMappingKernelManager):
    """The default kernel manager, plus the owner of every kernel it starts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.owners: dict[str, str] = {}
        #: who started each kernel, as the server session said (for guarded launches)
        self.people: dict[str, Person] = {}
        #: the notebook each kernel was started for (JPY_SESSION_NAME), for the audit trail
        self.notebooks: dict[str, str] = {}
        #: set by SecureApp once the policy is loaded; without it nothing is listed
        self.policy: LivePolicy | None = None
        #: set by SecureApp: launches guarded kernels, checks and records their messages
        self.guard: KernelGuard | None = None

    @default("kernel_manager_class")
    def _default_kernel_manager_class(self) -> str:
        return "jupyter_secure.handlers.kernels.GuardedKernelProcess"

    async def start_kernel(  # type: ignore[override]
        self, *, kernel_id: str | None = None, path: Any = None, **kwargs: Any
    ) -> str:
        user = current_request_user.get()
        new = kernel_id is None or kernel_id not in self
        if new:
            kernel_id = kernel_id or str(uuid.uuid4())
            if user is not None:
                self.owners.setdefault(kernel_id, user.username)
                self.people[kernel_id] = Person.of(user)
            env = kwargs.get("env")
            if isinstance(env, dict):
                self.notebooks[kernel_id] = str(env.get("JPY_SESSION_NAME", ""))
        try:
            started: str = await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        except BaseException:
            if new and kernel_id is not None:
                self._forget(kernel_id)
            raise
        return started

    def remove_kernel(self, kernel_id: str) -> Any:
        removed = super().remove_kernel(kernel_id)
        self._forget(kernel_id)
        return removed

    def _forget(self, kernel_id: str) -> None:
        self.people.pop(kernel_id, None)
        self.notebooks.pop(kernel_id, None)
        if self.guard is not None:
            self.guard.forget(kernel_id)

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
