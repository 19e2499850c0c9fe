"""The monitoring tests use the handlers' real server (fixtures imported, not copied)."""

from __future__ import annotations

from handlers.conftest import jp_server_config, server, state_dir

__all__ = ["jp_server_config", "server", "state_dir"]
