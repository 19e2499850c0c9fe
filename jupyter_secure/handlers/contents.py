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

import base64
import binascii
import json
import os
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

from ..channel.guard import KernelGuard, Person
from ..channel.outputs import mask_notebook_outputs
from ..policy import LivePolicy
from .access import principal_of
from .identity_provider import current_request_user

__all__ = ["SecureContentsManager"]


class ThroughSymlink(web.HTTPError, PermissionError):
    """A path that resolves through a symbolic link: a 404 to the client, and an
    ``OSError`` to jupyter_server's directory listing, which then leaves the
    entry out instead of failing the whole listing."""


class SecureContentsManager(AsyncLargeFileManager):
    """The default contents manager, with listings filtered by the path rules."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: set by SecureApp once the policy is loaded; without it listings are empty
        self.policy: LivePolicy | None = None
        #: set by SecureApp: masks the outputs of notebooks saved during a request
        self.guard: KernelGuard | None = None

    def _get_os_path(self, path: str) -> str:
        """The file behind an API path, never through a symbolic link.

        The server runs unsandboxed as the account that owns the state
        directory; a link a kernel made in its workspace (``home/alice/x ->
        <state>/private``, or ``-> ../bob``) would otherwise let the contents
        API read what the kernel itself cannot, and dodge the path rules, which
        are decided on the API path. So a path whose real location differs from
        its spelled one is refused like a path outside the root.
        """
        os_path: str = super()._get_os_path(path)  # type: ignore[no-untyped-call]
        root = str(self.root_dir)
        spelled = os.path.relpath(os.path.abspath(os_path), os.path.abspath(root))
        real = os.path.relpath(os.path.realpath(os_path), os.path.realpath(root))
        if spelled != real:
            raise ThroughSymlink(404, f"{path} goes through a symbolic link")
        return os_path

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        user = current_request_user.get()
        if user is not None and _is_notebook(model, path) and model.get("content") is not None:
            if self.guard is None:
                raise web.HTTPError(503, "notebooks cannot be saved before the guard is ready")
            masker = self.guard.masker_for(Person.of(user))
            if not masker.passthrough:
                _mask_saved_notebook(model, masker)
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


def _is_notebook(model: dict[str, Any], path: str) -> bool:
    """A notebook by type, or by name whatever type the client claims (``file``)."""
    return model.get("type") == "notebook" or str(path).lower().endswith(".ipynb")


def _mask_saved_notebook(model: dict[str, Any], masker: Any) -> None:
    """Mask a notebook model's outputs in place, however the client sent it."""
    if model.get("type") == "notebook":
        mask_notebook_outputs(model["content"], masker)
        return
    if model.get("chunk") is not None:
        raise web.HTTPError(400, "content: upload a notebook in one piece, not in chunks")
    fmt = model.get("format")
    raw = model["content"]
    try:
        text = base64.b64decode(raw).decode("utf-8") if fmt == "base64" else str(raw)
        nb = json.loads(text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise web.HTTPError(400, "content: a .ipynb file must be a JSON notebook") from None
    mask_notebook_outputs(nb, masker)
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    model["content"] = base64.b64encode(text.encode()).decode() if fmt == "base64" else text
