"""``/secure/api/private/…``: the broker's HTTP API, for guarded kernels.

The caller is a kernel, authenticated by the signed broker token its guard file
carried for this launch (``privacy/tokens.py``): it names the kernel and its
owner, and that owner — never a name in the body — is who asks. So a notebook
can only ever spend its own user's budget. Without a valid token the answer is
401 and an ``AccessDenied`` record. The browser's session cookie is not a
credential here (this is no JupyterHandler). The same handlers serve the
broker inside the server and as a separate service (``jupyter secure broker
serve``); only the ``authenticate`` function differs.

The broker's work (planning, a locking charge, reading Parquet) is blocking,
so it runs on a small thread pool, never on the event loop.

Routes (JSON in and out; errors are ``{"error": kind, "message": text}``):

* ``GET  datasets`` and ``GET datasets/<name>``: what the user may query, with
  their budget;
* ``POST datasets/<name>/preview``: cost and accuracy, nothing spent;
* ``POST datasets/<name>/query``: the release.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..policy import Decision
from ..privacy.broker import Asker, Broker, BrokerError
from ..privacy.ledger import BudgetExceeded, Busy, NoGrant
from ..privacy.queries import QueryError
from .access import deny
from .kernel_token import KernelTokenHandler

__all__ = ["MAX_BODY", "Authenticate", "PrivateHandler", "default_handlers"]

#: ``authenticate(token) -> (kernel id, user, groups)``, or None for a token it refuses.
#: Groups None: look the account up in the broker's store (the server's own broker);
#: a tuple: trust the token's (a broker with a store of its own).
Authenticate = Callable[[str], "tuple[str, str, tuple[str, ...] | None] | None"]
Caller = tuple[str, str, tuple[str, ...] | None]

MAX_BODY = 64 * 1024
#: Requests one user may have in the broker at once (the rest are told to wait).
MAX_IN_FLIGHT = 2
_BODY_KEYS = {"query", "cell_id"}
_in_flight: dict[str, int] = {}
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jupyter-secure-broker")


class PrivateHandler(KernelTokenHandler):
    """One handler for the four routes; ``action`` says which."""

    def initialize(
        self, authenticate: Authenticate, broker_getter: Callable[[], Broker | None]
    ) -> None:
        self._authenticate = authenticate
        self._broker_getter = broker_getter
        self._caller_cache: Caller | None = None

    def _error(self, status: int, kind: str, message: str) -> None:
        self._reply(status, {"error": kind, "message": message})

    def _caller(self) -> Caller | None:
        """(kernel id, owner) for a valid kernel token; else answer 401 and return None."""
        if self._caller_cache is not None:
            return self._caller_cache
        token = self.kernel_token()
        found = self._authenticate(token) if token is not None else None
        if found is None:
            deny(self, Decision(False, "", "private queries: no valid kernel token"))
            self._error(401, "Unauthorized", "private datasets answer guarded kernels only")
            return None
        self._caller_cache = found
        return found

    async def _run(self, call: Callable[[Broker, Asker], dict[str, Any]]) -> None:
        caller = self._caller()
        if caller is None:
            return
        broker = self._broker_getter()
        if broker is None:
            self._error(503, "Unavailable", "the private-query broker is not running")
            return
        _, user, groups = caller
        if _in_flight.get(user, 0) >= MAX_IN_FLIGHT:
            self._error(429, "Busy", f"you have {MAX_IN_FLIGHT} private queries running; "
                        "ask again when one has answered")  # fmt: skip
            return
        _in_flight[user] = _in_flight.get(user, 0) + 1
        try:
            loop = asyncio.get_running_loop()
            if groups is None:
                asker = await loop.run_in_executor(_pool, broker.asker, user)
            else:
                asker = Asker(user, groups)
            result = await loop.run_in_executor(_pool, call, broker, asker)
        except Exception as exc:  # each kind answered below; nothing else leaks
            self._refused(exc, user)
        else:
            self._reply(200, result)
        finally:
            left = _in_flight.get(user, 1) - 1
            if left:
                _in_flight[user] = left
            else:
                _in_flight.pop(user, None)

    def _refused(self, exc: Exception, user: str) -> None:
        if isinstance(exc, NoGrant):
            self._error(404, "NotFound", f"no dataset {exc.args[0]!r} you may query")
        elif isinstance(exc, BudgetExceeded):
            self._error(409, "BudgetExceeded", str(exc))
        elif isinstance(exc, Busy):
            self._error(409, "Busy", "the same query is being answered; ask again in a moment")
        elif isinstance(exc, QueryError | BrokerError):
            self._error(400, "QueryError", str(exc))
        else:
            # Nothing about the failure leaves the server but its time (in its log).
            logging.getLogger(__name__).error("private query by %s failed", user, exc_info=exc)
            self._error(500, "BrokerError", "the broker failed on this request; see its log")

    def _body(self) -> dict[str, Any] | None:
        if len(self.request.body) > MAX_BODY:
            self._error(413, "QueryError", f"body: larger than {MAX_BODY} bytes")
            return None
        try:
            body = json.loads(self.request.body)
        except (ValueError, RecursionError):
            self._error(400, "QueryError", "body: not JSON")
            return None
        if not isinstance(body, dict) or not isinstance(body.get("query"), dict):
            self._error(400, "QueryError", "body: expected {'query': {...}}")
            return None
        extra = sorted(set(body) - _BODY_KEYS)
        if extra:
            # Who asks comes from the token; a "user" here is refused, never believed.
            self._error(400, "QueryError", f"{extra[0]}: unknown field")
            return None
        cell = body.get("cell_id")
        if cell is not None and not isinstance(cell, str):
            self._error(400, "QueryError", "cell_id: expected a string")
            return None
        return body

    async def get(self, name: str | None = None, action: str | None = None) -> None:
        if action is not None:
            self._error(405, "QueryError", f"{action}: use POST")
            return
        if name is None:
            await self._run(lambda b, a: {"datasets": b.datasets(a)})
        else:
            await self._run(lambda b, a: b.describe(a, name))

    async def post(self, name: str | None = None, action: str | None = None) -> None:
        if name is None or action is None:
            self._error(405, "QueryError", "use GET")
            return
        if self._caller() is None:
            return
        body = self._body()
        if body is None:
            return
        query = body["query"]
        if action == "preview":
            await self._run(lambda b, a: b.preview(a, name, query))
            return
        kernel_id = self._caller_cache[0] if self._caller_cache else None
        await self._run(lambda b, a: b.query(a, name, query, kernel_id=kernel_id,
                                             cell_id=body.get("cell_id")))  # fmt: skip


def default_handlers(
    authenticate: Authenticate, broker_getter: Callable[[], Broker | None]
) -> list[tuple[str, Any, dict[str, Any]]]:
    args = {"authenticate": authenticate, "broker_getter": broker_getter}
    return [
        (r"/secure/api/private/datasets", PrivateHandler, args),
        (r"/secure/api/private/datasets/(?P<name>[a-z][a-z0-9_-]{0,63})", PrivateHandler, args),
        (
            r"/secure/api/private/datasets/(?P<name>[a-z][a-z0-9_-]{0,63})/(?P<action>preview|query)",
            PrivateHandler,
            args,
        ),
    ]
