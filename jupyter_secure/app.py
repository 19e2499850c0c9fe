"""SecureApp: the jupyter_server extension. Wiring only; the work happens in the rooms.

Linked and loaded by jupyter_server through
:func:`jupyter_secure._jupyter_server_extension_points`, and enabled for every
server in the environment by ``jupyter-config/server-config/jupyter_secure.json``
(installed to ``etc/jupyter/jupyter_server_config.d``), which also sets
``reraise_server_extension_failures`` and turns off unauthenticated access.

At link time it installs its own identity provider (sign-in with a second
factor; no Jupyter token), authorizer (API tokens bounded by their scopes)
and kernel manager (kernels know their owner), and refuses to start when the
configuration names a different one: a foreign identity provider would skip
the second factor without anyone noticing.

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
from pathlib import Path
from typing import Any, NoReturn, cast

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import Bool, Enum, Float, List, TraitError, Unicode, default, validate

from ._version import __version__
from .audit.logger import AuditLogger, Identity, Resource
from .audit.schemas import AuditSchemaError, load_schemas
from .audit.sink import AuditSink
from .channel.connection import GuardedChannelsConnection
from .channel.guard import KernelGuard
from .errors import InvalidInput, StartupRefused
from .handlers import page_config
from .handlers.access import POLICY_SETTING, audit_denials, principal_of
from .handlers.authorizer import SecureAuthorizer
from .handlers.base import SIGNIN_SETTING
from .handlers.contents import SecureContentsManager
from .handlers.enforcement import SessionEnforcer
from .handlers.identity_provider import SecureIdentityProvider
from .handlers.kernels import SecureKernelManager, SecureKernelSpecManager, SecureSessionManager
from .identity.passwords import PasswordPolicy
from .identity.signin import SignIn, SignInPolicy
from .kernel.config import is_http_url
from .masking import MaskingPolicy
from .monitoring import metrics
from .monitoring.actions import ActionRunner, AlarmActions
from .monitoring.cloudwatch import CloudWatchExport, CloudWatchExporter
from .monitoring.exporting import FileCursor
from .monitoring.monitor import AlarmMonitor
from .monitoring.otel import OtelExport, OtelExporter
from .monitoring.rules import RulesError
from .policy import GUARDED_KERNELSPEC, LivePolicy, Policy, PolicyError
from .privacy.tokens import TokenRefused, TokenVerifier
from .state import SecureState, VerifyMode
from .storage.keys import MasterKey
from .storage.paths import default_state_dir

__all__ = ["EXIT_REFUSED", "SecureApp"]

#: Exit status of a server that refused to start (EX_CONFIG from sysexits.h).
EXIT_REFUSED = 78
#: Where the guarded kernel type's kernel.json lives (added to the kernel search path).
KERNELSPEC_DIR = Path(__file__).parent / "kernelspecs"
#: Server extensions that run or edit notebook code outside the kernel websocket, which
#: is where the channel guard records and masks: real-time collaboration keeps outputs in
#: a shared document, server-side execution runs cells without a browser connection.
UNGUARDED_EXTENSIONS: dict[str, str] = {
    "jupyter_collaboration": "real-time collaboration stores and relays outputs itself",
    "jupyter_server_ydoc": "real-time collaboration stores and relays outputs itself",
    "jupyter_server_documents": "server-side documents store and relay outputs themselves",
    "jupyter_server_nbmodel": "server-side execution runs cells without the channel guard",
    "jupyter_server_execution": "server-side execution runs cells without the channel guard",
    "jupyter_scheduler": "scheduled jobs run notebooks without the channel guard",
    "voila": "Voila executes notebooks and renders outputs without the channel guard",
}


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
        SignInPolicy,
        KernelGuard,
        AlarmMonitor,
        AlarmActions,
        CloudWatchExport,
        OtelExport,
    ]

    #: ServerApp traits this extension must own, and the class each must be (or extend).
    owned_server_classes = {
        "identity_provider_class": SecureIdentityProvider,
        "authorizer_class": SecureAuthorizer,
        "kernel_manager_class": SecureKernelManager,
        "session_manager_class": SecureSessionManager,
        "contents_manager_class": SecureContentsManager,
        "kernel_spec_manager_class": SecureKernelSpecManager,
        "kernel_websocket_connection_class": GuardedChannelsConnection,
    }

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

    policy_reload_interval = Float(
        1.0,
        min=0.1,
        help="""Seconds between checks of the policy file (policy.toml in the state
        directory) for changes: a valid change takes effect at the next check and is
        recorded as PolicyChanged; an invalid one is refused (PolicyRejected) and the
        previous policy stays.""",
    ).tag(config=True)

    require_sandbox = Bool(
        False,
        help="""Refuse to start guarded kernels where the Landlock sandbox is not
        available (Linux older than 5.13, Landlock disabled at boot, another OS).
        Off by default so that a laptop can run the product; the server then logs
        a loud warning at start and every KernelLaunched record says sandbox
        "none". Turn it on for any deployment with real data.""",
    ).tag(config=True)

    broker_url = Unicode(
        "",
        help="""The private-query broker's base URL when it runs as a separate
        service (``jupyter secure broker serve``), e.g.
        ``http://127.0.0.1:8890/secure/api/private``; guarded kernels are sent
        there and this server's own broker answers nobody. Empty (default): the
        broker runs inside this server.""",
    ).tag(config=True)

    @validate("broker_url")
    def _valid_broker_url(self, proposal: Any) -> str:
        url = str(proposal["value"]).rstrip("/")
        if url and not is_http_url(url):
            raise TraitError(f"SecureApp.broker_url: expected an http(s) URL, got {url!r}")
        return url

    allow_unguarded_extensions = List(
        Unicode(),
        default_value=[],
        help="""Server extensions that bypass the channel guard (real-time
        collaboration, server-side execution, Voila, the scheduler) that may run
        alongside jupyter-secure anyway. By default the server refuses to start
        with any of them enabled: outputs they relay are not masked and cells
        they run are not recorded.""",
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

    def _link_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        """Install our identity provider, authorizer and kernel manager, or refuse."""
        super()._link_jupyter_server_extension(serverapp)
        configured = serverapp.config.get("ServerApp", {})
        from jupyter_server.gateway.gateway_client import GatewayClient

        if GatewayClient.instance(parent=serverapp).gateway_enabled:
            self._refuse("kernel gateways are not supported: kernels must run on this server")
        for trait, ours in self.owned_server_classes.items():
            chosen = configured.get(trait)
            if chosen is not None:
                chosen_cls = getattr(serverapp, trait)
                if not (isinstance(chosen_cls, type) and issubclass(chosen_cls, ours)):
                    self._refuse(
                        f"ServerApp.{trait} is set to {chosen!r}; jupyter-secure needs "
                        f"{ours.__module__}.{ours.__name__} (or a subclass): remove that setting"
                    )
            else:
                setattr(serverapp, trait, ours)
        # Every handler must authenticate unless it says otherwise (the sign-in pages do).
        serverapp.allow_unauthenticated_access = False

    def _check_live_classes(self) -> None:
        """Refuse if what the server actually built is not ours.

        Extensions linked after this one (JupyterLab's own config files) can still
        change ServerApp settings; the objects the server ended up with are the truth.
        """
        server = self.server
        built = {
            "identity provider": (server.identity_provider, SecureIdentityProvider),
            "authorizer": (server.authorizer, SecureAuthorizer),
            "kernel manager": (server.kernel_manager, SecureKernelManager),
            "session manager": (server.session_manager, SecureSessionManager),
            "contents manager": (server.contents_manager, SecureContentsManager),
            "kernel spec manager": (server.kernel_spec_manager, SecureKernelSpecManager),
        }
        for what, (obj, cls) in built.items():
            if not isinstance(obj, cls):
                self._refuse(
                    f"the server's {what} is {type(obj).__module__}.{type(obj).__name__}; "
                    f"jupyter-secure needs {cls.__name__}: remove the setting that replaces it"
                )
        connection = server.web_app.settings.get("kernel_websocket_connection_class")
        if not (isinstance(connection, type) and issubclass(connection, GuardedChannelsConnection)):
            self._refuse(
                f"the server's kernel websocket connection class is {connection!r}; "
                "jupyter-secure needs GuardedChannelsConnection: remove the setting that "
                "replaces it"
            )
        for name in sorted(server.extension_manager.extensions):
            why = UNGUARDED_EXTENSIONS.get(name)
            if why is not None and name not in self.allow_unguarded_extensions:
                self._refuse(
                    f"the server extension {name} is enabled, and {why}; disable it, or list "
                    "it in SecureApp.allow_unguarded_extensions to accept that "
                    "(docs/threat-model.md)"
                )
        if server.web_app.settings.get("allow_unauthenticated_access", True):
            self._refuse("ServerApp.allow_unauthenticated_access must be False")
        if not server.authenticate_prometheus:
            # jupyter_server's /metrics then skips sign-in, and the route guard only
            # sees signed-in users: every metric would be public.
            self._refuse("ServerApp.authenticate_prometheus must be True (/metrics would be "
                         "open to anyone)")  # fmt: skip

    def _refuse(self, reason: object) -> NoReturn:
        self.log.critical("jupyter-secure refused to start: %s", reason)
        raise SystemExit(EXIT_REFUSED)

    def initialize_settings(self) -> None:
        """Open the state store and record the start, or exit with one clear line.

        Any failure here — not only the refusals the rooms raise on purpose — stops
        the server: with ``reraise_server_extension_failures`` off, jupyter_server
        would otherwise log it and serve without sign-in or audit.
        """
        self._started_at = time.monotonic()
        try:
            self._check_live_classes()
            self._check_root_dir()
            self._start()
        except SystemExit:
            raise
        except StartupRefused as exc:
            self._refuse(exc)
        except Exception as exc:
            self.log.debug("start-up failure", exc_info=True)
            self._refuse(f"{type(exc).__name__}: {exc}")

    def _start(self) -> None:
        try:
            load_schemas().check()
        except AuditSchemaError as exc:
            raise StartupRefused(f"audit event schemas: {exc}") from None
        self.state = SecureState.open(
            self.state_dir,
            db_url=self.db_url,
            source="server",
            user_agent=f"jupyter-secure/{__version__} (server)",
            verify=cast(VerifyMode, self.verify_on_start),
            parent=self,
        )
        # A server that exits without stop_extension (an error elsewhere during start-up)
        # still writes its final checkpoint.
        atexit.register(self.state.close)
        beside = self.state.store.key_file_inside()
        if beside is not None:
            self.log.warning(
                "the master key file %s is inside the state directory: whatever can read that "
                "directory can decrypt the audit signing key; outside a demo keep the key in "
                "$JUPYTER_SECURE_KEY, the OS keyring or MasterKey.key_file elsewhere",
                beside,
            )
        self.policy = self._load_policy()
        self.signin = SignIn(
            self.state.db,
            self.state.secrets,
            self.state.audit,
            SignInPolicy(parent=self),
            user_scopes=lambda user: self.policy.current.effective_scopes(principal_of(user)),
        )
        self.settings[SIGNIN_SETTING] = self.signin
        self.metrics = metrics.install(
            self.state,
            alarms_firing=self._alarms_firing,
            sessions=self.signin,
            monitor_health=self._monitor_health,
        )
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
        self.guard = self._make_guard(server)
        from .privacy.broker import Broker

        signer = self.state.broker_token_signer()
        self.guard.broker_signer = signer
        self.token_verifier = TokenVerifier(signer.public_key)
        self.broker: Broker | None = None
        if self.broker_url:
            self.guard.broker_base = lambda: self.broker_url
            self.log.info("jupyter-secure: private queries go to the broker at %s", self.broker_url)
        elif self.guard.abi == 0:
            # Without Landlock a notebook runs as this server's account and could read
            # <state>/private and the ledger directly: no private queries here.
            self.guard.broker_base = None
            self.log.warning(
                "jupyter-secure: private queries are OFF: without Landlock a notebook could "
                "read the protected data; run `jupyter secure broker serve --trust-key` "
                "under its own account and set SecureApp.broker_url"
            )
        else:
            self.guard.guards_private_data = True
            self.broker = Broker(self.state.db, self.state.state_dir / "private", self.state.audit)
        self._wire_policy(server)
        self.enforcer = SessionEnforcer(self.signin, server.kernel_manager, log=self.log)
        self.enforcer.start()
        self.monitor = self._start_monitor()
        self._start_exporters()
        self.log.info(
            "jupyter-secure %s: state in %s, audit trail %s",
            __version__,
            self.state.state_dir,
            self.state.trail_id,
        )

    def _start_monitor(self) -> AlarmMonitor | None:
        """The alarm monitor (a thread following the trail), unless turned off."""
        from .identity.signin import AccountAdmin

        accounts = AccountAdmin(self.signin)
        try:
            runner = ActionRunner(
                AlarmActions(parent=self),
                self.state.audit,
                lock=lambda name, why: accounts.lock(name, reason=why, actor=Identity.system()),
                end_sessions=lambda name, why: accounts.end_sessions(name, reason=why),
            )
            monitor = AlarmMonitor(
                db=self.state.db,
                index=self.state.index,
                audit=self.state.audit,
                sink=self.state.sink,
                runner=runner,
                state_dir=self.state.state_dir,
                parent=self,
            )
        except (RulesError, InvalidInput) as exc:
            raise StartupRefused(str(exc)) from None
        if not monitor.enabled:
            self.log.warning("jupyter-secure: the alarm monitor is off (AlarmMonitor.enabled)")
            return None
        monitor.start()
        metrics.OUTPUT_OBSERVERS.append(monitor.rows_displayed)
        return monitor

    def _start_exporters(self) -> None:
        """CloudWatch and OpenTelemetry exports, when configured (both off by default)."""
        from prometheus_client import REGISTRY

        from .audit.index import QueryFilter

        state = self.state
        self.exporters: list[CloudWatchExporter | OtelExporter] = []
        cloudwatch = CloudWatchExport(parent=self)
        if cloudwatch.enabled:

            def records_after(after: int, limit: int) -> list[tuple[int, bytes]]:
                found = state.index.query(QueryFilter(after_seq=after, limit=limit))
                return [(int(event["seq"]), line) for line, event in found]

            cursor = FileCursor(state.state_dir / "cloudwatch-audit.cursor")
            self.exporters.append(
                CloudWatchExporter(cloudwatch, REGISTRY, records_after, cursor.get, cursor.set)
            )
        otel = OtelExport(parent=self)
        if otel.enabled:
            self.exporters.append(OtelExporter(otel, REGISTRY))
        for exporter in self.exporters:
            exporter.start()

    def _monitor_health(self) -> dict[str, float]:
        monitor: AlarmMonitor | None = getattr(self, "monitor", None)
        return monitor.health() if monitor is not None else {}

    def _alarms_firing(self) -> dict[str, int]:
        monitor: AlarmMonitor | None = getattr(self, "monitor", None)
        return monitor.firing() if monitor is not None else {}

    def _make_guard(self, server: ServerApp) -> KernelGuard:
        """The kernel guard: launches guarded kernels, checks and masks their messages."""
        from jupyter_core.paths import jupyter_runtime_dir
        from jupyter_server.utils import url_path_join

        key_file = self.state.store.key_file_inside()
        forbidden = (
            str(self.state.state_dir),
            jupyter_runtime_dir(),
            str(server.runtime_dir),
            *([str(Path(key_file).parent)] if key_file else []),
        )
        guard = KernelGuard(
            policy=self.policy,
            masking=MaskingPolicy(),
            masking_key=self.state.masking_key(),
            audit=self.state.audit,
            root_dir=str(server.root_dir),
            forbidden=forbidden,
            require_sandbox=self.require_sandbox,
            parent=self,
        )
        guard.witness_base = lambda: url_path_join(server.connection_url, "secure/api/kernels")
        guard.broker_base = lambda: url_path_join(server.connection_url, "secure/api/private")
        guard.trail_base = lambda: url_path_join(server.connection_url, "secure/api/trail")
        if guard.abi == 0:
            self.log.warning(
                "\n%s\nLANDLOCK IS NOT AVAILABLE: guarded kernels will run WITHOUT a file-system "
                "sandbox. Notebook code can then read the state directory (database, audit trail, "
                "keys) with this server's rights. Set SecureApp.require_sandbox = True to refuse "
                "kernels instead; see docs/threat-model.md.\n%s",
                "!" * 78,
                "!" * 78,
            )
        return guard

    def _load_policy(self) -> LivePolicy:
        """The access policy from the state directory; invalid or unreadable: refuse."""
        audit = self.state.audit
        path = self.state.policy_path

        def changed(old: Policy, new: Policy) -> None:
            diff = old.diff(new)
            self.log.warning("access policy reloaded from %s: %s", path, "; ".join(diff[:20]))
            audit.submit(
                "PolicyChanged",
                identity=Identity.system(),
                request={"file": str(path)},
                response={
                    "oldDigest": old.digest(),
                    "newDigest": new.digest(),
                    "diff": [line[:500] for line in diff[:200]],
                },
                resources=[Resource("policy", str(path))],
            )

        def rejected(error: PolicyError) -> None:
            self.log.error("access policy change refused; the previous policy stays:\n%s", error)
            audit.submit(
                "PolicyRejected",
                identity=Identity.system(),
                request={"file": str(path)},
                error_code="PolicyInvalid",
                error_message=str(error)[:2000],
                resources=[Resource("policy", str(path))],
            )

        return LivePolicy(path, on_change=changed, on_reject=rejected)

    def _wire_policy(self, server: ServerApp) -> None:
        """Hand the policy to the route guard, the authorizer and the kernel manager."""
        from tornado.ioloop import IOLoop, PeriodicCallback

        # self.settings is merged into the web app's settings after this method returns
        # (ExtensionApp._prepare_settings), replacing any key set there directly.
        self.settings[POLICY_SETTING] = self.policy
        km = server.kernel_manager
        if not isinstance(km, SecureKernelManager):  # checked at start; keeps mypy honest
            self._refuse("the kernel manager is not SecureKernelManager")
        km.policy = self.policy
        cm = server.contents_manager
        if not isinstance(cm, SecureContentsManager):  # checked at start; keeps mypy honest
            self._refuse("the contents manager is not SecureContentsManager")
        cm.policy = self.policy
        cm.guard = self.guard
        km.guard = self.guard
        # The guarded kernel type: the one non-admin roles may start, and the default.
        ksm = server.kernel_spec_manager
        if not isinstance(ksm, SecureKernelSpecManager):  # checked at start
            self._refuse("the kernel spec manager is not SecureKernelSpecManager")
        ksm.policy = self.policy
        ksm.kernel_dirs.insert(0, str(KERNELSPEC_DIR))
        km.default_kernel_name = GUARDED_KERNELSPEC
        previous = self.settings.get("log_function") or server.web_app.settings.get("log_function")
        self.settings["log_function"] = audit_denials(self.state.audit, previous)
        # JupyterLab's page, per user: no terminal poll or settings prompt for people
        # who would only be refused (handlers/page_config.py).
        self.settings["page_config_hook"] = page_config.hook(
            server.web_app.settings.get("page_config_hook")
        )
        # JupyterLab adds its workspace routes after this extension loads: make them
        # per-user once every extension is in (the guard refuses them until then).
        IOLoop.current().add_callback(self._per_user_workspaces, server)
        # The event subscription turns quiet for non-holders the same way (until then
        # jupyter_server's handler refuses them).
        IOLoop.current().add_callback(self._quiet_event_subscription, server)
        interval_ms = self.policy_reload_interval * 1e3
        self._policy_timer = PeriodicCallback(self._refresh_policy, interval_ms)
        self._policy_timer.start()

    def _per_user_workspaces(self, server: ServerApp) -> None:
        from .handlers import workspaces

        found = workspaces.install(server.web_app)
        self.log.debug("jupyter-secure: %d JupyterLab workspace routes stored per user", found)

    def _quiet_event_subscription(self, server: ServerApp) -> None:
        from .handlers import events

        found = events.install(server.web_app)
        self.log.debug("jupyter-secure: %d event subscription routes made quiet", found)
        # An extension loaded after this one may have set its own hook: keep ours last.
        current = server.web_app.settings.get("page_config_hook")
        if not getattr(current, "jupyter_secure", False):
            server.web_app.settings["page_config_hook"] = page_config.hook(current)

    def _refresh_policy(self) -> None:
        self.policy.refresh()

    def initialize_handlers(self) -> None:
        from .handlers import admin, alarms, budgets, private, tokens, trail, witness

        broker = lambda: getattr(self, "broker", None)  # noqa: E731 - set in initialize_settings
        monitor = lambda: getattr(self, "monitor", None)  # noqa: E731
        self.handlers.extend(tokens.default_handlers)
        self.handlers.extend(alarms.default_handlers(monitor))
        self.handlers.extend(admin.default_handlers(broker))
        self.handlers.extend(budgets.default_handlers(broker))
        self.handlers.extend(trail.default_handlers(self._kernel_caller, monitor))
        self.handlers.extend(witness.default_handlers(lambda: getattr(self, "guard", None)))
        self.handlers.extend(private.default_handlers(self._kernel_caller, broker))

    def _kernel_caller(self, token: str) -> tuple[str, str, None] | None:
        """Who a broker token speaks for: signed by this store, unexpired, and its kernel
        still running for the same owner (a token dies with its kernel here)."""
        verifier = getattr(self, "token_verifier", None)
        guard = getattr(self, "guard", None)
        if verifier is None or guard is None:
            return None
        try:
            claims = verifier.verify(token)
        except TokenRefused:
            return None
        if guard.owner_of(claims.kernel_id) != claims.user:
            return None
        if not guard.broker_token_current(claims.kernel_id, token):
            return None  # a token of an earlier (re)start of this kernel
        return claims.kernel_id, claims.user, None  # groups: fresh from the store

    def _check_root_dir(self) -> None:
        """Refuse a notebook root that contains the state directory: it would be served."""
        root = os.path.realpath(self.server.root_dir)
        state = os.path.realpath(os.path.expanduser(self.state_dir))
        if state == root or state.startswith(root.rstrip(os.sep) + os.sep):
            self._refuse(
                f"the state directory {state} is inside the notebook root {root}, which would "
                "serve it; move one of them"
            )

    async def stop_extension(self) -> None:
        """Record the stop and close the trail with a final signed checkpoint."""
        installed: metrics.Installed | None = getattr(self, "metrics", None)
        if installed is not None:
            installed.close()
        for exporter in getattr(self, "exporters", []):
            exporter.stop(timeout=5)
        monitor: AlarmMonitor | None = getattr(self, "monitor", None)
        if monitor is not None:
            if monitor.rows_displayed in metrics.OUTPUT_OBSERVERS:
                metrics.OUTPUT_OBSERVERS.remove(monitor.rows_displayed)
            monitor.stop()
        state: SecureState | None = getattr(self, "state", None)
        if state is None or state.closed:
            return
        enforcer: SessionEnforcer | None = getattr(self, "enforcer", None)
        if enforcer is not None:
            enforcer.stop()
        guard: KernelGuard | None = getattr(self, "guard", None)
        if guard is not None:
            guard.close()
        timer = getattr(self, "_policy_timer", None)
        if timer is not None:
            timer.stop()
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
