"""SecureApp: the jupyter_server extension. Wiring only; the work happens in the rooms.

Linked and loaded by jupyter_server through
:func:`jupyter_secure._jupyter_server_extension_points`, and enabled for every
server in the environment by ``jupyter-config/server-config/jupyter_secure.json``
(installed to ``etc/jupyter/jupyter_server_config.d``), which also sets
``reraise_server_extension_failures`` and turns off unauthenticated access.

It fails closed: when the state store, the master key or the audit sink is
unusable the server logs one line saying why and exits non-zero. The exit is
a ``SystemExit`` raised from the extension's initialisation, which
jupyter_server does not catch, so it holds even where someone has turned
``reraise_server_extension_failures`` off.
"""

from __future__ import annotations

import atexit
import os
import time
from typing import cast

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import Enum, Unicode, default

from ._version import __version__
from .audit.logger import AuditLogger, Identity, Resource
from .audit.sink import AuditSink
from .errors import StartupRefused
from .identity.passwords import PasswordPolicy
from .state import SecureState, VerifyMode
from .storage.keys import MasterKey
from .storage.paths import default_state_dir

__all__ = ["EXIT_REFUSED", "SecureApp"]

#: Exit status of a server that refused to start (EX_CONFIG from sysexits.h).
EXIT_REFUSED = 78


class SecureApp(ExtensionApp):
    """The jupyter-secure server extension."""

    name = "jupyter_secure"
    description = "MFA, role checks, PII masking, DP budgets and an audit trail for Jupyter."
    load_other_extensions = True

    # Configurables whose traits may be set in jupyter_server_config or jupyter_secure_config.
    classes = [
        *ExtensionApp.classes,
        AuditSink,
        AuditLogger,
        MasterKey,
        PasswordPolicy,
    ]

    state_dir = Unicode(
        help="""Directory holding the database (SQLite by default), the audit
        trail, keys and protected data sets; created with mode 0700. Default:
        $JUPYTER_SECURE_STATE_DIR, else <jupyter data dir>/secure. Keep it out
        of the notebook root directory.""",
    ).tag(config=True)

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(default_state_dir())

    db_url = Unicode(
        "",
        help="""SQLAlchemy URL of the state database. Empty: a SQLite file in
        state_dir. For a shared store use PostgreSQL, e.g.
        postgresql+psycopg://user@db.example.org/jupyter_secure (install
        jupyter-secure[postgres]).""",
    ).tag(config=True)

    verify_on_start = Enum(
        ["full", "newest"],
        default_value="full",
        help="""How much of the audit trail to verify before serving: "full"
        reads every record (about a second per half a million records);
        "newest" reads the newest segment and checks every checkpoint
        signature. Either way a failed check stops the server.""",
    ).tag(config=True)

    def _config_file_name_default(self) -> str:
        return "jupyter_secure_config"

    def initialize_settings(self) -> None:
        """Open the state store and record the start, or exit with one clear line."""
        self._started_at = time.monotonic()
        try:
            self.state = SecureState.open(
                self.state_dir,
                db_url=self.db_url,
                source="server",
                user_agent=f"jupyter-secure/{__version__} (server)",
                verify=cast(VerifyMode, self.verify_on_start),
                parent=self,
            )
        except StartupRefused as exc:
            self.log.critical("jupyter-secure refused to start: %s", exc)
            raise SystemExit(EXIT_REFUSED) from None
        # A server that exits without stop_extension (an error elsewhere during start-up)
        # still writes its final checkpoint.
        atexit.register(self.state.close)
        self._check_root_dir()
        server = self.server
        verified = self.state.verify_report.records if self.state.verify_report else 0
        self.state.audit.record(
            "ServerStarted",
            identity=Identity.system(),
            request={
                "version": __version__,
                "ip": server.ip or "",
                "port": int(server.port),
                "baseUrl": server.base_url,
                "rootDir": str(server.root_dir),
            },
            response={"pid": os.getpid(), "verifiedRecords": verified},
            resources=[Resource("server", f"{server.ip or 'localhost'}:{server.port}")],
        )
        self.settings["jupyter_secure_state"] = self.state
        self.log.info(
            "jupyter-secure %s: state in %s, audit trail %s",
            __version__,
            self.state.state_dir,
            self.state.trail_id,
        )

    def _check_root_dir(self) -> None:
        """Refuse a notebook root that contains the state directory: it would be served."""
        root = os.path.realpath(self.server.root_dir)
        state = os.path.realpath(self.state.state_dir)
        if state == root or state.startswith(root.rstrip(os.sep) + os.sep):
            self.state.close()
            self.log.critical(
                "jupyter-secure refused to start: the state directory %s is inside the "
                "notebook root %s, which would serve it; move one of them",
                state,
                root,
            )
            raise SystemExit(EXIT_REFUSED)

    async def stop_extension(self) -> None:
        """Record the stop and close the trail with a final signed checkpoint."""
        state: SecureState | None = getattr(self, "state", None)
        if state is None or state.closed:
            return
        try:
            await state.audit.record_async(
                "ServerStopped",
                identity=Identity.system(),
                response={
                    "pid": os.getpid(),
                    "uptimeSeconds": round(time.monotonic() - self._started_at, 3),
                },
            )
        finally:
            state.close()

    @property
    def server(self) -> ServerApp:
        """The linked ServerApp (always set once jupyter_server has linked us)."""
        if self.serverapp is None:  # pragma: no cover - jupyter_server links before loading
            raise RuntimeError("SecureApp used before it was linked to a server")
        return self.serverapp
