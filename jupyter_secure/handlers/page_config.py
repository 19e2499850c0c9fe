"""JupyterLab's page config, per user: offer nothing that can only be refused.

JupyterLab decides from its page config (the JSON in ``/lab``'s HTML) which
services exist and which front-end plugins start. Unchanged, a student's
browser polls ``/api/terminals`` every few seconds and asks whether to fetch
Jupyter news, storing the answer in the settings every user shares; the route
guard refuses both, and each refusal is an ``AccessDenied`` record the person
never chose to make. jupyterlab_server's ``LabHandler`` passes the page config
through the ``page_config_hook`` tornado setting; :func:`hook` tailors it to the
signed-in user's effective scopes (the policy's, cut down to an API token's):

* ``terminalsAvailable`` is false unless they hold every terminal scope, so
  JupyterLab never polls terminals nor offers to open one;
* the plugins of :data:`HIDDEN_PLUGINS` are added to ``disabledExtensions``
  when the user lacks a scope they need.

This hides; it does not protect. The route guard still refuses, and records,
any request the user makes by hand. When the scopes cannot be read the user
gets the smallest UI (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .access import held_scopes

__all__ = ["HIDDEN_PLUGINS", "TERMINAL_SCOPES", "for_user", "hook"]

PageConfigHook = Callable[[Any, dict[str, Any]], dict[str, Any]]

#: What using a terminal takes: list them, open one, type into it.
TERMINAL_SCOPES = frozenset({"terminals:read", "terminals:write", "terminals:execute"})

#: Front-end plugins whose only use needs these scopes, with why they are hidden.
HIDDEN_PLUGINS: dict[str, tuple[frozenset[str], str]] = {
    "@jupyterlab/apputils-extension:announcements": (
        frozenset({"settings:write"}),
        "asks whether to fetch Jupyter news and stores the answer in the settings every "
        "user shares",
    ),
    "@jupyterlab/extensionmanager-extension:plugin": (
        frozenset({"extension_manager:read"}),
        "the extension manager's side panel lists extensions from /lab/api/extensions",
    ),
}


def _disabled(value: Any) -> list[str]:
    """``disabledExtensions`` as the front end reads it: a list of ids."""
    if isinstance(value, dict):
        return [k for k, v in value.items() if v]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def for_user(page_config: dict[str, Any], held: frozenset[str]) -> dict[str, Any]:
    """A copy of ``page_config`` for someone holding ``held``.

    A copy: jupyterlab_server builds the page config in a dict shared by every request.
    """
    config = dict(page_config)
    config["terminalsAvailable"] = (
        config.get("terminalsAvailable") is True and held >= TERMINAL_SCOPES
    )
    disabled = _disabled(config.get("disabledExtensions"))
    for plugin, (needs, _why) in HIDDEN_PLUGINS.items():
        if not held >= needs and plugin not in disabled:
            disabled.append(plugin)
    config["disabledExtensions"] = disabled
    return config


def hook(previous: PageConfigHook | None = None) -> PageConfigHook:
    """A ``page_config_hook`` that applies ``previous`` (if any), then :func:`for_user`."""

    def page_config_hook(handler: Any, page_config: dict[str, Any]) -> dict[str, Any]:
        if previous is not None:
            page_config = previous(handler, page_config)
        try:
            held = held_scopes(handler, handler.current_user)
        except Exception:
            handler.log.warning("jupyter-secure: no scopes for the page config", exc_info=True)
            held = frozenset()
        return for_user(page_config, held)

    page_config_hook.jupyter_secure = True  # type: ignore[attr-defined]
    return page_config_hook
