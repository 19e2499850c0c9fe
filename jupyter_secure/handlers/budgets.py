"""``GET /secure/api/budgets``: the caller's own privacy budgets, for the budget panel.

Only the caller's own: who asks comes from the session (or API token), never
from a parameter, so there is nothing to name someone else with. Each dataset
the caller may query comes with its budget, spend and what is left (from the
ledger, the same numbers ``jupyter_secure.private`` shows), the cumulative
spend over time and the last charges with a short description of each query
(:mod:`jupyter_secure.privacy.history`).

503 when this server runs no broker (private queries off, or a broker run as
a separate service with a store of its own: its ledger is not here).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..policy.scopes import method_scopes
from ..privacy.amounts import Amount
from ..privacy.broker import Broker
from ..privacy.history import history, recent
from ..privacy.ledger import NoGrant
from .base import JsonErrors, SecureHandlerMixin, run_blocking

__all__ = ["BudgetsHandler", "default_handlers", "my_budgets"]


def my_budgets(broker: Broker, user: str) -> list[dict[str, Any]]:
    """Every dataset ``user`` may query, with budget, history and recent charges (blocking)."""
    try:
        asker = broker.asker(user)
    except NoGrant:  # gone or disabled since the request was let in
        return []
    out = []
    for d in broker.datasets(asker):
        rows = broker.releases(user, d["name"])
        budget = d["budget"]
        spent = Amount.parse(budget["spent"], d["measure"]).nanos
        out.append(
            {
                "name": d["name"],
                "description": d["description"],
                "measure": d["measure"],
                "budget": budget["total"],
                "spent": budget["spent"],
                "remaining": budget["remaining"],
                "history": history(rows, spent, d["measure"]),
                "recent": recent(rows),
            }
        )
    return out


class BudgetsHandler(JsonErrors, SecureHandlerMixin, APIHandler):
    auth_resource = "secure:budgets"
    auth_scopes = method_scopes({"GET": "secure:budgets:read"})

    def initialize(self, broker: Callable[[], Broker | None]) -> None:
        self._broker = broker

    @web.authenticated
    @authorized
    async def get(self) -> None:
        if self.request.query_arguments:
            name = sorted(self.request.query_arguments)[0]
            self.json_error(
                400, "this route takes no parameters (it shows your own budgets)", field=name
            )
            return
        broker = self._broker()
        if broker is None:
            self.json_error(503, "private queries are off on this server (no broker here)")
            return
        datasets = await run_blocking(my_budgets, broker, self.current_user.username)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"datasets": datasets}))


def default_handlers(broker: Callable[[], Broker | None]) -> list[tuple[str, Any, Any]]:
    return [(r"/secure/api/budgets", BudgetsHandler, {"broker": broker})]
