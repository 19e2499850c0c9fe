"""The peer for bench/cell_overhead.py, made fair: stock channels plus TCP_NODELAY.

jupyter-secure's channel connection sets TCP_NODELAY on kernel websockets; stock
jupyter_server does not, and then every small reply waits ~40 ms for the client's
delayed ACK. To measure what the guard itself costs, the benchmark also runs plain
jupyter_server with this three-line subclass (``--ServerApp.kernel_websocket_connection_class``).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayChannels(ZMQChannelsWebsocketConnection):
    """Stock kernel websocket connection with Nagle's algorithm off."""

    def connect(self) -> Any:
        self.websocket_handler.set_nodelay(True)
        return super().connect()
