"""``jupyter secure token …``: API tokens for service accounts.

People create their own tokens from a signed-in session (``/secure/api/tokens``,
after a fresh second factor). A program that runs on its own acts as a
*service account* (``user add NAME --service``), whose tokens an administrator
makes here.
"""

from __future__ import annotations

import json
import sys

from traitlets import Bool, Int, List, Unicode

from ..audit.logger import Identity
from .base import GroupCommand, state_aliases, state_flags
from .users import _UserCommand, print_table

__all__ = ["TokenCommand"]


class TokenCreate(_UserCommand):
    name = "jupyter-secure-token-create"
    description = """Create an API token for a service account, limited to the scopes given
    and expiring after --days. The token is printed once; only its hash is stored."""
    examples = """
    jupyter secure token create ci-bot --scope api:read --scope contents:read --days 30
    """
    aliases = {
        **state_aliases,
        "scope": "TokenCreate.scopes",
        "days": "TokenCreate.days",
        "label": "TokenCreate.label",
    }
    scopes = List(Unicode(), help="A scope the token may use (repeat --scope).").tag(config=True)
    days = Int(30, help="Days until the token expires.").tag(config=True)
    label = Unicode("", help="A label to recognise the token by (default: the account name).").tag(
        config=True
    )

    def run(self) -> None:
        (name,) = self.positional("name")
        admin = self.account_admin()
        token, created = self.audited_call(
            "ApiTokenCreated",
            name,
            lambda: admin.service_token(
                name,
                label=self.label or name,
                scopes=list(self.scopes),
                days=self.days,
                actor=Identity.os_user(),
            ),
            request={"name": self.label or name, "scopes": list(self.scopes), "days": self.days},
        )
        print(token)
        print(
            f"token {created.id} for {name}: scopes {', '.join(created.scopes)}, "
            f"expires {created.expires_at:%Y-%m-%d}. Shown once; send it as "
            '"Authorization: token …".',
            file=sys.stderr,
        )


class TokenList(_UserCommand):
    name = "jupyter-secure-token-list"
    description = "List a user's API tokens (never the tokens themselves)."
    examples = "jupyter secure token list ci-bot --json"
    flags = {**state_flags, "json": ({"TokenList": {"as_json": True}}, "Print JSON.")}
    as_json = Bool(False, help="Print JSON.").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        found = self.account_admin().tokens_of(name)
        if self.as_json:
            print(json.dumps([t.as_dict() for t in found], indent=2))
            return
        rows: list[tuple[str, ...]] = [("ID", "LABEL", "SCOPES", "EXPIRES", "STATUS")]
        for t in found:
            status = "revoked" if t.revoked_at else "active"
            rows.append((t.id, t.name, ",".join(t.scopes), f"{t.expires_at:%Y-%m-%d}", status))
        print_table(rows)


class TokenRevoke(_UserCommand):
    name = "jupyter-secure-token-revoke"
    description = "Revoke one of a user's API tokens by its id (from token list)."
    examples = "jupyter secure token revoke ci-bot 3f2a9c1e5b7d8a60"

    def run(self) -> None:
        name, token_id = self.positional("name", "id")
        admin = self.account_admin()
        self.audited_call(
            "ApiTokenRevoked",
            name,
            lambda: admin.revoke_token(name, token_id, Identity.os_user()),
            request={"id": token_id},
        )
        print(f"token {token_id} of {name} revoked")


class TokenCommand(GroupCommand):
    name = "jupyter-secure-token"
    description = "API tokens for service accounts."
    examples = "jupyter secure token create ci-bot --scope api:read --days 7"
    subcommands = {
        "create": (TokenCreate, "Create a scoped, expiring token for a service account."),
        "list": (TokenList, TokenList.description),
        "revoke": (TokenRevoke, TokenRevoke.description),
    }
