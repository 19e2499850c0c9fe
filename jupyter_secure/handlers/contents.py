"""Directory listings that show only what the reader may open; notebooks saved masked.

The authorizer decides whether a path may be read at all; a directory's
listing, though, names every entry in it — in ``home/`` every user's home.
:class:`SecureContentsManager` (jupyter_server's default file manager) drops
the entries the requesting user's path rules do not let them read, so the
names of other people's files do not leak through a listing either.

Saving a notebook passes its outputs through the same masker the channel
guard uses, for the saving user's role: the browser's copy is not trusted
(any client can PUT a notebook with raw outputs), so raw PII in outputs does
not reach the disk. Cells' sources are the user's own code and are kept.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

from ..channel.guard import KernelGuard, Person
from ..channel.outputs import mask_notebook_outputs
from ..policy import LivePolicy
from .access import principal_of
from .identity_provider import current_request_user

__all__ = ["SecureContentsManager"]


class SecureContentsManager(AsyncLargeFileManager):
    """The default contents manager, with listings filtered by the path rules."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: set by SecureApp once the policy is loaded; without it listings are empty
        self.policy: LivePolicy | None = None
        #: set by SecureApp: masks the outputs of notebooks saved during a request
        self.guard: KernelGuard | None = None

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        user = current_request_user.get()
        if user is not None and model.get("type") == "notebook" and model.get("content"):
            if self.guard is None:
                raise web.HTTPError(503, "notebooks cannot be saved before the guard is ready")
            person = Person.of(user)
            mask_notebook_outputs(model["content"], self.guard.masker_for(person))
        saved: dict[str, Any] = await super().save(model, path)  # type: ignore[no-untyped-call]
        return saved

    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict[str, Any]:
        model: dict[str, Any] = await super().get(  # type: ignore[no-untyped-call]
            path, content=content, type=type, format=format, require_hash=require_hash
        )
        user = current_request_user.get()
        if user is None or model.get("type") != "directory" or not model.get("content"):
            return model  # not in a request (the server's own use), or nothing listed
        if self.policy is None:
            model["content"] = []
            return model
        policy, principal = self.policy.current, principal_of(user)
        model["content"] = [
            entry
            for entry in model["content"]
            if policy.decide(principal, "contents:read", path=entry["path"])
        ]
        return model
