"""JupyterLab workspaces (saved layouts) kept per person.

JupyterLab stores every layout in one directory for the whole server: one
user's ``PUT /lab/api/workspaces/default`` becomes everyone's layout, and a
listing shows the files others had open. :class:`PerUserWorkspaces` keeps
each signed-in person's workspaces in ``<workspaces dir>/users/<name>/``;
:func:`install` swaps it (built when JupyterLab is present) into
JupyterLab's workspace routes once they exist.
Until it has, the route guard refuses the workspace routes (fail closed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .routes import rules_for

__all__ = ["install", "installed"]

_state = {"installed": False}

_HANDLER = "jupyterlab_server.workspaces_handler.WorkspacesHandler"


def installed() -> bool:
    """Whether the workspace routes store per person (else they must be refused)."""
    return _state["installed"]


def _manager_class() -> type:
    from jupyterlab_server.workspaces_handler import WorkspacesManager

    from .identity_provider import current_request_user  # not at import: access.py needs us

    class PerUserWorkspaces(WorkspacesManager):
        """JupyterLab's workspace manager, rooted per requesting user."""

        def __init__(self, path: str) -> None:
            super().__init__(path)
            self.base = Path(path)

        @property
        def workspaces_dir(self) -> Path:
            user = current_request_user.get()
            if user is None:
                return self.base / "server"
            return self.base / "users" / user.username

        @workspaces_dir.setter
        def workspaces_dir(self, value: Path) -> None:
            self.base = Path(value)

    return PerUserWorkspaces


def install(web_app: Any) -> int:
    """Give every JupyterLab workspace route a per-user manager; how many were found."""
    cls = None
    found = 0
    for rule in rules_for(web_app, _HANDLER):
        kwargs = rule.target_kwargs
        if "manager" not in kwargs:
            continue
        cls = cls or _manager_class()
        if not isinstance(kwargs["manager"], cls):
            kwargs["manager"] = cls(str(kwargs["manager"].workspaces_dir))
        found += 1
    _state["installed"] = True
    return found
