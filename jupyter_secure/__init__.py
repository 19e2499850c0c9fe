"""jupyter-secure: a security layer for Jupyter.

This module is the package's entry-point surface only: the server-extension
hook that jupyter_server looks up by name and the version. Everything else
lives in its own room (see ``docs/architecture.md``); importing this module
must stay cheap because ``jupyter server extension list`` imports it.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Tell jupyter_server which ExtensionApp to link and load.

    The import is deferred so that listing extensions does not pull in the
    whole application.
    """
    from .app import SecureApp

    return [{"module": "jupyter_secure.app", "app": SecureApp}]
