"""``jupyter secure incident …``: the first moves of incident response.

``freeze`` is :func:`jupyter_secure.monitoring.incident.freeze` as the OS user
who runs it. It asks for no second factor: it only takes access away (see
that module for why). docs/incident-response.md is the runbook around it.
"""

from __future__ import annotations

from traitlets import Unicode

from ..audit.logger import Identity
from ..errors import InvalidInput
from ..monitoring.incident import freeze
from .base import GroupCommand, StateCommand, state_aliases, state_flags

__all__ = ["IncidentCommand"]

EXIT_FAILED = 1


class IncidentFreeze(StateCommand):
    name = "jupyter-secure-incident-freeze"
    description = """Freeze an account now: disable it, end its sign-in sessions, revoke
    its API tokens, record an IncidentFrozen incident record and force a signed
    checkpoint; prints each step. The running server shuts the user's kernels down
    when it reads the record. Needs no second factor (it only takes access away) and
    is safe to repeat. Undo with `user enable` once the account is safe again."""
    examples = """
    jupyter secure incident freeze alice --reason "password in a phishing reply, ticket 4711"
    """
    aliases = {**state_aliases, "reason": "IncidentFreeze.reason"}
    flags = state_flags
    reason = Unicode(
        "", help="Why (required; recorded in the incident record, at most 500 characters)."
    ).tag(config=True)

    def run(self) -> None:
        (user,) = self.positional("user")
        if not self.reason.strip():
            raise InvalidInput("--reason", "say why (it goes into the incident record)")
        try:
            result = freeze(self.state.db, self.state.audit, user, self.reason, Identity.os_user())
        except InvalidInput as exc:
            if exc.field == "reason":
                raise InvalidInput("--reason", exc.message) from None
            raise
        for line in result.lines():
            print(line)
        if result.checkpoint_error is not None:
            self.exit(EXIT_FAILED)


class IncidentCommand(GroupCommand):
    name = "jupyter-secure-incident"
    description = "Incident response: freeze an account (see docs/incident-response.md)."
    examples = 'jupyter secure incident freeze alice --reason "stolen laptop"'
    subcommands = {
        "freeze": (
            IncidentFreeze,
            "Disable an account, end its sessions, revoke its tokens, record the incident.",
        )
    }
