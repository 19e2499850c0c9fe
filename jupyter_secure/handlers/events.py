"""The event bus subscription, quiet for those who may not read it.

JupyterLab's ``EventManager`` opens ``/api/events/subscribe`` for every user
as soon as the page loads, and reconnects (with back-off) whenever the socket
closes. The bus carries every user's events, so only ``events:execute`` may
read it; refusing everyone else made their browser knock about once a second,
each knock an ``AccessDenied`` record, and ``denial-burst`` fired for every
student who left JupyterLab open.

:class:`SubscribeEvents` replaces jupyter_server's ``SubscribeWebsocket`` on
that route (:func:`install`, once every extension has loaded). The route
guard (``access.QUIET``) lets someone without ``events:execute`` who may open
JupyterLab (``lab:read``) in to a *quiet* subscription: the socket is
accepted and stays open, and nothing is ever written to it — the handler
registers no listener, so no event, theirs or anyone's, can reach it. Only a
request the guard granted ``events:execute`` gets the stream. Until
:func:`install` has run, the original handler answers and refuses (fail closed).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.events.handlers import SubscribeWebsocket

from .access import granted_scope
from .routes import rules_for

__all__ = ["FULL_SCOPE", "SubscribeEvents", "install"]

#: The scope that reads the event bus.
FULL_SCOPE = "events:execute"

_ORIGINAL = "jupyter_server.services.events.handlers.SubscribeWebsocket"


class SubscribeEvents(SubscribeWebsocket):
    """``/api/events/subscribe``: every event for holders of ``events:execute``, none otherwise."""

    @property
    def full(self) -> bool:
        """Whether this socket may carry events: only when the route guard granted the
        bus scope itself on this request (anything else, a guard that never ran
        included, is quiet)."""
        return granted_scope(self) == FULL_SCOPE

    async def pre_get(self) -> None:
        if self.full:
            # jupyter_server's own check, through our authorizer: a second opinion.
            await super().pre_get()  # type: ignore[no-untyped-call]
        # Quiet: the route guard allowed lab:read and nothing will be sent.

    def open(self, *args: Any, **kwargs: Any) -> None:
        if self.full:
            super().open()
        else:
            self.log.debug("quiet event subscription for %s", self.current_user.username)

    def on_message(self, message: str | bytes) -> None:
        """Subscribers only listen; whatever they send is ignored."""

    def on_close(self) -> None:
        if self.full:
            super().on_close()  # type: ignore[no-untyped-call]


def install(web_app: Any) -> int:
    """Serve the event subscription route with :class:`SubscribeEvents`; how many were found."""
    found = 0
    for rule in rules_for(web_app, _ORIGINAL):
        rule.target = SubscribeEvents
        if hasattr(rule, "handler_class"):  # a tornado URLSpec keeps both
            rule.handler_class = SubscribeEvents
        found += 1
    return found
