"""What every ``jupyter secure`` command shares: finding the store, auditing, errors, progress.

A command finds the state directory the way the server does (``--state-dir``,
then ``$JUPYTER_SECURE_STATE_DIR``, then ``SecureApp.state_dir`` from the
config files, then ``<jupyter data dir>/secure``) and the master key the way
the server does (``$JUPYTER_SECURE_KEY``, a key file, the keyring). It reads
``jupyter_server_config`` and ``jupyter_secure_config`` so that settings on
``AuditSink``, ``MasterKey`` and friends apply to it exactly as to the server.

Every change a command makes is recorded in the audit trail as the OS user
who ran it, before the change is committed: if the record cannot be written,
nothing changes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, ClassVar, Literal

from jupyter_core.application import JupyterApp, base_aliases, base_flags
from sqlalchemy.orm import Session
from traitlets import Bool, Unicode

from .._version import __version__
from ..audit import browse
from ..audit.logger import AuditLogger, Identity, Resource
from ..audit.sink import AuditSink
from ..errors import InvalidInput, SecureError
from ..identity.passwords import PasswordPolicy
from ..identity.signin import SignInPolicy
from ..state import SecureState, VerifyMode
from ..storage.keys import MasterKey
from ..storage.paths import ENV_STATE_DIR

__all__ = ["CommandError", "GroupCommand", "Progress", "StateCommand", "parse_time"]


class CommandError(SecureError):
    """A command cannot do what was asked; the message says why."""


state_aliases = {
    **base_aliases,
    "state-dir": "StateCommand.state_dir",
    "db-url": "StateCommand.db_url",
    "key-file": "MasterKey.key_file",
}
state_flags = {
    **base_flags,
    "progress": ({"StateCommand": {"progress": True}}, "Always show progress on stderr."),
    "no-progress": ({"StateCommand": {"progress": False}}, "Never show progress."),
}


class GroupCommand(JupyterApp):
    """A command that only groups subcommands (``user``, ``keys``, ``audit``)."""

    def start(self) -> None:
        if self.subapp is None:
            names = ", ".join(sorted(self.subcommands))
            print(f"{self.name}: give a subcommand: {names} (--help for details)", file=sys.stderr)
            self.exit(2)
        super().start()


class StateCommand(JupyterApp):
    """Base of the commands that open the state store."""

    aliases = state_aliases
    flags = state_flags
    classes = [MasterKey, AuditSink, AuditLogger, PasswordPolicy, SignInPolicy]
    #: How much of the trail to check before acting (the newest segment: quick; `audit
    #: verify` reads everything itself).
    verify_mode: ClassVar[VerifyMode] = "newest"
    #: Whether this command may create a state store that does not exist yet.
    creates_store: ClassVar[bool] = False
    #: Who records this command's audit events (the broker service records as "broker").
    audit_source: ClassVar[Literal["cli", "broker"]] = "cli"

    state_dir = Unicode(
        "",
        help=f"""State directory to act on. Default: ${ENV_STATE_DIR}, then
        SecureApp.state_dir from the config files, then <jupyter data dir>/secure.""",
    ).tag(config=True)

    db_url = Unicode(
        "", help="Database URL (default: SecureApp.db_url, else SQLite in the state directory)."
    ).tag(config=True)

    progress = Bool(
        None,
        allow_none=True,
        help="Show progress on stderr (default: only when stderr is a terminal).",
    ).tag(config=True)

    _state: SecureState | None = None

    def load_config_file(self, suppress_errors: bool = True) -> None:  # type: ignore[override]
        """Read the server's config files too, so both see the same settings."""
        for name in ("jupyter_server_config", "jupyter_secure_config"):
            self.config_file_name = name
            super().load_config_file(suppress_errors)

    # -- store ------------------------------------------------------------------------------

    def resolved_state_dir(self) -> str:
        import os

        if self.state_dir:
            return self.state_dir
        if os.environ.get(ENV_STATE_DIR):
            return os.environ[ENV_STATE_DIR]
        configured = self.config.get("SecureApp", {}).get("state_dir")
        return str(configured) if configured else ""

    def resolved_db_url(self) -> str:
        return self.db_url or str(self.config.get("SecureApp", {}).get("db_url") or "")

    @property
    def state(self) -> SecureState:
        if self._state is None:
            self._state = SecureState.open(
                self.resolved_state_dir(),
                db_url=self.resolved_db_url(),
                source=self.audit_source,
                user_agent=self.user_agent,
                identity=Identity.os_user(),
                verify=self.verify_mode,
                parent=self,
                create=self.creates_store,
            )
        return self._state

    @property
    def user_agent(self) -> str:
        return f"jupyter-secure/{__version__} ({self.command_name})"

    @property
    def command_name(self) -> str:
        """``jupyter secure user add`` for the command that runs as ``user add``."""
        words: list[str] = []
        app: Any = self
        while isinstance(app.parent, JupyterApp):
            mapping = getattr(app.parent, "subcommands", {}) or {}
            words.extend(k for k, v in mapping.items() if v[0] is type(app))
            app = app.parent
        return " ".join(["jupyter secure", *reversed(words)])

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.run()
        finally:
            if self._state is not None:
                self._state.close()
                self._state = None

    def run(self) -> None:  # pragma: no cover - every command overrides it
        raise NotImplementedError

    def positional(self, *names: str) -> list[str]:
        """Exactly ``names`` positional arguments, or a usage error naming the first missing."""
        args = list(self.extra_args)
        if len(args) < len(names):
            usage = " ".join([self.command_name, *(n.upper() for n in names)])
            raise InvalidInput(names[len(args)], f"missing (usage: {usage})")
        if len(args) > len(names):
            raise InvalidInput("arguments", f"unexpected {' '.join(args[len(names) :])!r}")
        return args

    # -- auditing ---------------------------------------------------------------------------

    def record(self, name: str, **kwargs: Any) -> None:
        self.state.audit.record(name, identity=Identity.os_user(), **kwargs)

    @contextmanager
    def audited_change(
        self,
        name: str,
        *,
        request: dict[str, Any],
        resources: Sequence[Resource],
    ) -> Iterator[tuple[Session, dict[str, Any]]]:
        """A write transaction that commits only after its audit record is durable.

        The block fills in the ``response`` dict it is given. A refusal
        (:class:`InvalidInput`) is recorded as a failed attempt and re-raised,
        and nothing is written.
        """
        response: dict[str, Any] = {}
        try:
            with self.state.db.write() as session:
                yield session, response
                session.flush()
                self.record(name, request=request, response=response or None, resources=resources)
        except InvalidInput as exc:
            self.record(
                name,
                request=request,
                resources=resources,
                error_code="InvalidInput",
                error_message=str(exc),
            )
            raise

    # -- output -----------------------------------------------------------------------------

    def make_progress(self, label: str) -> Progress:
        enabled = sys.stderr.isatty() if self.progress is None else bool(self.progress)
        return Progress(label, enabled=enabled, interactive=sys.stderr.isatty())


class Progress:
    """Progress on stderr: a live line on a terminal, a line every few seconds in a log."""

    def __init__(
        self,
        label: str,
        *,
        enabled: bool,
        interactive: bool,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.enabled = enabled
        self.interactive = interactive
        self.stream = stream or sys.stderr
        self.clock = clock
        self.interval = 0.2 if interactive else 5.0
        self._last = clock()
        self._shown = False

    def __call__(self, done: int, total: int | None = None, unit: str = "") -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self._last < self.interval and (total is None or done < total):
            return
        self._last = now
        if total:
            text = f"{self.label}: {100 * done / total:5.1f}% ({done:,} of {total:,}{unit})"
        else:
            text = f"{self.label}: {done:,}{unit}"
        if self.interactive:
            self.stream.write("\r" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self.enabled and self.interactive and self._shown:
            self.stream.write("\n")
            self.stream.flush()


def parse_time(value: str, field: str, *, now: float | None = None) -> int:
    """An instant as microseconds since the epoch: ISO 8601 or a duration back from now
    (``30m``, ``12h``, ``7d``, ``2w``); the REST API reads times the same way."""
    return browse.parse_time(value, field, now=time.time() if now is None else now)
