"""``POST /secure/api/kernels/<id>/witness``: a guarded kernel reports what it ran.

Not a user's request: the caller is a kernel, holding the token the guard gave
it in its guard file for this launch only (a restart issues a new one, and the
token dies with the kernel). So this handler is no JupyterHandler and never
sees the session cookie; it checks the ``Authorization: KernelToken …``
header itself, and the token must belong to the kernel in the URL. A bad token
is refused with 403 and an ``AccessDenied`` record. The body is a small JSON
batch; anything else is 400.
"""

from __future__ import annotations

import json
from typing import Any

from tornado import web

from ..channel.guard import KernelGuard
from ..policy import Decision
from .access import deny

__all__ = ["MAX_BODY", "WitnessHandler", "default_handlers"]

MAX_BODY = 256 * 1024
MAX_EVENTS = 1000


class WitnessHandler(web.RequestHandler):
    """Receives a guarded kernel's execution reports."""

    def initialize(self, guard_getter: Any) -> None:
        self._guard_getter = guard_getter

    def check_xsrf_cookie(self) -> None:
        """The credential is a header a browser never sends by itself: no XSRF risk."""

    def _refuse(self, status: int, rule: str) -> None:
        deny(self, Decision(False, "", rule), object=self.path_kwargs.get("kernel_id"))
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": rule}))

    async def post(self, kernel_id: str) -> None:
        guard: KernelGuard | None = self._guard_getter()
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if guard is None or scheme != "KernelToken" or not token:
            return self._refuse(403, "kernel witness: no kernel token")
        if guard.kernel_for_token(token.strip()) != kernel_id:
            return self._refuse(403, "kernel witness: the token is not this kernel's")
        if len(self.request.body) > MAX_BODY:
            self.set_status(413)
            self.finish()
            return
        try:
            body = json.loads(self.request.body)
            events = body["events"]
            if not isinstance(events, list) or len(events) > MAX_EVENTS:
                raise ValueError("events")
            events = [e for e in events if isinstance(e, dict)]
        except (ValueError, KeyError, TypeError):
            self.set_status(400)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": "body: expected {'events': [...]}"}))
            return
        unreconciled = guard.witnessed(kernel_id, events)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"accepted": len(events), "unreconciled": unreconciled}))


def default_handlers(guard_getter: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    return [
        (
            r"/secure/api/kernels/(?P<kernel_id>[^/]+)/witness",
            WitnessHandler,
            {"guard_getter": guard_getter},
        )
    ]
