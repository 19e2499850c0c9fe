"""``jupyter secure broker …``: the private-query broker as a service of its own.

By default the broker runs inside the Jupyter server. ``broker serve`` runs the
same broker and the same HTTP API (``/secure/api/private/…``) in a process of
its own, so that the protected data and the ledger can live with an account
the Jupyter server's account cannot read:

* **Same store** (no ``--trust-key``): the service opens the server's state
  store and verifies kernels' tokens with its key; user groups come from the
  store's accounts.
* **A store of its own** (``--trust-key server.pem``): the service keeps its
  own state directory (datasets, grants, budgets, audit trail), trusts tokens
  signed by the server's key (``jupyter secure broker public-key`` on the
  server's side prints it) and takes the user's groups from the token. The
  Jupyter server is pointed at it with ``SecureApp.broker_url``.

Either way the service checks each token's signature and expiry; it cannot
know that a kernel stopped, so keep ``KernelGuard.broker_token_hours`` short.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from traitlets import Int, Unicode

from ..errors import InvalidInput
from .base import GroupCommand, StateCommand, state_aliases, state_flags

__all__ = ["BrokerCommand"]


class BrokerServe(StateCommand):
    name = "jupyter-secure-broker-serve"
    description = """Serve private queries (the broker's HTTP API) from this process.

    Kernels reach it at http://IP:PORT/secure/api/private with their signed
    broker token; every release and refusal is recorded in this state
    directory's audit trail. Stop it with SIGTERM or Ctrl-C."""
    examples = """
    jupyter secure broker serve --port 8890
    jupyter secure broker serve --state-dir /srv/broker --trust-key /srv/broker/server.pem
    """
    aliases = {
        **state_aliases,
        "ip": "BrokerServe.ip",
        "port": "BrokerServe.port",
        "trust-key": "BrokerServe.trust_key",
    }
    flags = state_flags

    ip = Unicode("127.0.0.1", help="The address to listen on.").tag(config=True)
    port = Int(8890, min=1, max=65535, help="The TCP port to listen on.").tag(config=True)
    trust_key = Unicode(
        "",
        help="""A PEM file with the Jupyter server's broker-token public key (from
        `jupyter secure broker public-key`): this broker keeps a store of its own
        and takes users' groups from their tokens. Empty: verify with this state
        store's own key (the server and the broker share the store).""",
    ).tag(config=True)

    audit_source = "broker"

    def run(self) -> None:
        from ..audit.checkpoints import load_public_key
        from ..handlers import private
        from ..handlers.access import audit_denials
        from ..privacy.broker import Broker
        from ..privacy.tokens import TokenRefused, TokenVerifier

        state = self.state
        shared = not self.trust_key
        if shared:
            public = state.broker_token_signer().public_key
        else:
            try:
                public = load_public_key(Path(self.trust_key).read_bytes())
            except (OSError, ValueError) as exc:
                raise InvalidInput("--trust-key", f"not an Ed25519 public key PEM: {exc}") from None
        verifier = TokenVerifier(public)
        broker = Broker(state.db, state.state_dir / "private", state.audit)

        def authenticate(token: str) -> tuple[str, str, tuple[str, ...] | None] | None:
            try:
                claims = verifier.verify(token)
            except TokenRefused:
                return None
            return claims.kernel_id, claims.user, None if shared else claims.groups

        asyncio.run(self._serve(private.default_handlers(authenticate, lambda: broker),
                                audit_denials(state.audit, None)))  # fmt: skip

    async def _serve(self, handlers: list[Any], log_function: Any) -> None:
        from tornado import web

        from ..handlers.private import MAX_BODY

        app = web.Application(handlers, log_function=log_function)
        server = app.listen(self.port, address=self.ip, xheaders=False, max_body_size=MAX_BODY)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"broker listening on http://{self.ip}:{self.port}/secure/api/private", flush=True)
        await stop.wait()
        server.stop()
        await server.close_all_connections()


class BrokerPublicKey(StateCommand):
    name = "jupyter-secure-broker-public-key"
    description = """Print the public key that verifies this store's broker tokens (PEM),
    for a broker run with a store of its own (`broker serve --trust-key`)."""
    examples = """
    jupyter secure broker public-key > server.pem
    """

    def run(self) -> None:
        from ..audit.checkpoints import public_key_pem

        sys.stdout.write(public_key_pem(self.state.broker_token_signer().public_key).decode())


class BrokerCommand(GroupCommand):
    name = "jupyter-secure-broker"
    description = "Run the private-query broker as a service of its own."
    examples = """
    jupyter secure broker public-key > server.pem
    jupyter secure broker serve --state-dir /srv/broker --trust-key server.pem --port 8890
    """
    subcommands = {
        "serve": (BrokerServe, BrokerServe.description.splitlines()[0]),
        "public-key": (BrokerPublicKey, BrokerPublicKey.description.splitlines()[0]),
    }
