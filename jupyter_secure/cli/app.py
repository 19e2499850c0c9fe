"""The ``jupyter secure`` command (also installed as ``jupyter-secure``)."""

from __future__ import annotations

import os
import sys

from .._version import __version__
from ..errors import InvalidInput, SecureError
from .alarms import AlarmsCommand
from .audit import AuditCommand
from .base import GroupCommand
from .broker import BrokerCommand
from .incident import IncidentCommand
from .init import InitCommand, LabCommand
from .keys import KeysCommand
from .mfa import MfaCommand
from .policy import AccessCommand, PolicyCommand
from .private import BudgetCommand, DatasetCommand
from .report import ReportCommand
from .tokens import TokenCommand
from .users import UserCommand

__all__ = ["SecureCommand", "main"]

EXIT_FAILED = 1
EXIT_USAGE = 2


class SecureCommand(GroupCommand):
    name = "jupyter-secure"
    version = __version__
    description = """Administer jupyter-secure: the state store, users, keys and the audit trail.

    Every command acts on a state directory (--state-dir, else
    $JUPYTER_SECURE_STATE_DIR, else SecureApp.state_dir from the Jupyter config,
    else <jupyter data dir>/secure) and finds the master key like the server
    does ($JUPYTER_SECURE_KEY, a key file, or the OS keyring). Every change is
    recorded in the audit trail as the OS user who ran it."""
    examples = """
    jupyter secure lab                       # the demo: JupyterLab on embedded defaults
    jupyter secure init --state-dir /srv/secure
    echo "$PW" | jupyter secure user add alice --role data_scientist --password-stdin
    jupyter secure audit verify
    """
    subcommands = {
        "init": (InitCommand, "Create the state store, or migrate it to the newest schema."),
        "user": (UserCommand, UserCommand.description),
        "mfa": (MfaCommand, MfaCommand.description),
        "token": (TokenCommand, TokenCommand.description),
        "policy": (PolicyCommand, PolicyCommand.description),
        "access": (AccessCommand, AccessCommand.description),
        "dataset": (DatasetCommand, DatasetCommand.description),
        "budget": (BudgetCommand, BudgetCommand.description),
        "broker": (BrokerCommand, BrokerCommand.description),
        "keys": (KeysCommand, KeysCommand.description),
        "audit": (AuditCommand, AuditCommand.description),
        "alarms": (AlarmsCommand, AlarmsCommand.description),
        "report": (ReportCommand, "Write a periodic review (HTML and CSV) of a time range."),
        "incident": (IncidentCommand, IncidentCommand.description),
        "lab": (LabCommand, "Start JupyterLab on the demo workspace."),
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``jupyter-secure``: one line on stderr and a status for every refusal."""
    try:
        SecureCommand.launch_instance(argv)
    except BrokenPipeError:
        # The reader went away (`… | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
    except InvalidInput as exc:
        print(f"jupyter-secure: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except SecureError as exc:
        print(f"jupyter-secure: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
