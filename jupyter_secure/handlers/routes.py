"""Finding the routes another package registered, to swap in our handler or its arguments.

jupyter_server and JupyterLab add their handlers to tornado's router before and
after this extension loads; a few of them (the workspace store, the event bus)
must behave per user, which their own code cannot. Rather than register a
second handler on the same pattern (tornado would answer with whichever rule
comes first), we find the rule by the handler's qualified name and change it in
place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["rules_for"]


def rules_for(web_app: Any, handler: str) -> Iterator[Any]:
    """Every routing rule of ``web_app`` whose target is the class named ``handler``
    (``module.QualName``), nested routers included."""

    def walk(router: Any) -> Iterator[Any]:
        for rule in router.rules:
            if hasattr(rule.target, "rules"):
                yield from walk(rule.target)
                continue
            target = rule.target
            name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
            if name == handler:
                yield rule

    yield from walk(web_app.default_router)
