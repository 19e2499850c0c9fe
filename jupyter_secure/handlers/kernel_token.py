"""What the routes that answer guarded kernels (not browsers) share.

The broker (``/secure/api/private``) and the trail (``/secure/api/trail``) are
called by code in a guarded kernel with its signed token in an
``Authorization: KernelToken …`` header. A browser never sends that header by
itself, so these routes need no XSRF check; they answer JSON that nothing may
cache. The token is checked by the ``authenticate`` function each route is
given (the server's, or a separate broker's).
"""

from __future__ import annotations

import json
from typing import Any

from tornado import web

__all__ = ["KernelTokenHandler"]


class KernelTokenHandler(web.RequestHandler):
    """A plain tornado handler for kernel-token routes (outside jupyter_server's auth)."""

    def check_xsrf_cookie(self) -> None:
        """The credential is a header a browser never sends by itself: no XSRF risk."""

    def kernel_token(self) -> str | None:
        """The token of an ``Authorization: KernelToken …`` header, or None."""
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme == "KernelToken" and token.strip() else None

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))
