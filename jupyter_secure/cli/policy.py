"""``jupyter secure policy …``: check the access policy file and explain its decisions.

``check`` validates a policy file (the state directory's ``policy.toml`` by
default, or any file, e.g. an edit before it is copied into place) and lists
every problem by file, line and field; its warnings (direct grants, shadowed
rules) are what an access review looks at. ``explain`` answers "may this user
do this, and which rule says so" with the user's stored roles and groups.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import select
from traitlets import Bool, Int, Unicode

from ..errors import InvalidInput
from ..identity.users import UserDirectory, principal_of_account
from ..policy import POLICY_FILENAME, explain, load_policy, scope_name, validate_scopes
from ..policy.review import access_review
from ..policy.scopes import UnknownScope
from ..storage.models import User, utcnow
from ..storage.paths import resolve_state_dir
from .base import GroupCommand, StateCommand, state_aliases, state_flags
from .users import print_table

__all__ = ["AccessCommand", "PolicyCommand"]


class _PolicyFileCommand(StateCommand):
    def policy_file(self, given: str | None = None) -> Path:
        if given:
            return Path(given)
        return resolve_state_dir(self.resolved_state_dir() or None) / POLICY_FILENAME


class PolicyCheck(_PolicyFileCommand):
    name = "jupyter-secure-policy-check"
    description = """Validate an access policy file: every problem with its file, line and
    field (exit status 1), or a summary and the warnings an access review should read."""
    examples = """
    jupyter secure policy check
    jupyter secure policy check ./policy.toml.new && cp ./policy.toml.new "$STATE/policy.toml"
    """

    def run(self) -> None:
        args = list(self.extra_args)
        if len(args) > 1:
            raise InvalidInput("file", "give at most one policy file")
        path = self.policy_file(args[0] if args else None)
        policy = load_policy(path)  # PolicyError: every problem, one a line, exit 1
        print(
            f"{path}: valid — {len(policy.roles)} roles, {len(policy.groups)} groups, "
            f"{len(policy.paths)} path rules; {policy.digest()}"
        )
        for warning in policy.warnings:
            print(f"warning: {warning}", file=sys.stderr)


class PolicyExplain(_PolicyFileCommand):
    name = "jupyter-secure-policy-explain"
    description = """Explain a decision: may USER do ACTION on RESOURCE (and PATH), and which
    rule of the policy decides. Uses the user's roles and groups as stored."""
    examples = """
    jupyter secure policy explain --user alice --action read --resource contents --path shared/x
    jupyter secure policy explain --user bob --action execute --resource terminals
    """
    aliases = {
        **state_aliases,
        "user": "PolicyExplain.user",
        "action": "PolicyExplain.action",
        "resource": "PolicyExplain.resource",
        "path": "PolicyExplain.path",
        "owner": "PolicyExplain.owner",
        "kernelspec": "PolicyExplain.kernelspec",
        "policy-file": "PolicyExplain.file",
    }
    user = Unicode("", help="The user the decision is about.").tag(config=True)
    action = Unicode("", help="read, write or execute.").tag(config=True)
    resource = Unicode("", help="e.g. contents, kernels, terminals, secure:audit.").tag(config=True)
    path = Unicode("", help="The file path, for contents and nbconvert.").tag(config=True)
    owner = Unicode("", help="Who owns the kernel or session acted on.").tag(config=True)
    kernelspec = Unicode("", help="The kernel type to start.").tag(config=True)
    file = Unicode("", help="A policy file to use instead of the state directory's.").tag(
        config=True
    )

    def run(self) -> None:
        self.positional()
        for field in ("user", "action", "resource"):
            if not getattr(self, field):
                raise InvalidInput(field, f"missing (--{field})")
        try:
            scope = validate_scopes([scope_name(self.resource, self.action)])[0]
        except UnknownScope as exc:
            raise InvalidInput("action", str(exc)) from None
        policy = load_policy(self.policy_file(self.file or None))
        with self.state.db.read() as s:
            user = s.scalar(select(User).where(User.name == self.user))
            if user is None:
                raise InvalidInput("user", f"no user named {self.user!r}")
            principal = principal_of_account(user)
        print(
            explain(
                policy,
                principal,
                scope,
                path=self.path or None,
                owner=self.owner or None,
                kernelspec=self.kernelspec or None,
            )
        )


class PolicyCommand(GroupCommand):
    name = "jupyter-secure-policy"
    description = "Check the access policy file and explain its decisions."
    examples = "jupyter secure policy check"
    subcommands = {
        "check": (PolicyCheck, PolicyCheck.description),
        "explain": (PolicyExplain, PolicyExplain.description),
    }


class AccessReview(_PolicyFileCommand):
    name = "jupyter-secure-access-review"
    description = """Review who has access: every account with its effective roles and
    groups, how it got them, its last sign-in, and findings — stale accounts (no sign-in
    for --stale-days), direct grants, admins, service accounts. A table, or CSV for a
    spreadsheet or a ticket. Run it regularly; the run is recorded."""
    examples = """
    jupyter secure access review
    jupyter secure access review --stale-days 30 --csv > review-2026-q4.csv
    """
    aliases = {**state_aliases, "stale-days": "AccessReview.stale_days"}
    flags = {
        **state_flags,
        "csv": ({"AccessReview": {"as_csv": True}}, "Print CSV instead of a table."),
    }
    stale_days = Int(90, help="Days without a sign-in after which an account is stale.").tag(
        config=True
    )
    as_csv = Bool(False, help="Print CSV.").tag(config=True)

    def run(self) -> None:
        self.positional()
        if self.stale_days < 1:
            raise InvalidInput("stale-days", "must be at least 1")
        policy = load_policy(self.state.policy_path)
        with self.state.db.read() as session:
            accounts = UserDirectory().list(session)
        review = access_review(policy, accounts, now=utcnow(), stale_days=self.stale_days)
        summary = review.summary()
        self.record(
            "AccessReviewed",
            request={"staleDays": self.stale_days, "format": "csv" if self.as_csv else "table"},
            response=summary,
            read_only=True,
        )
        if self.as_csv:
            sys.stdout.write(review.csv())
            return
        print_table(review.table())
        print(
            f"\n{summary['accounts']} accounts ({summary['enabled']} enabled): "
            f"{summary['admins']} admins, {summary['stale']} stale "
            f"(no sign-in for {self.stale_days} days), {summary['directGrants']} with direct "
            f"grants (prefer groups), {summary['serviceAccounts']} service accounts."
        )


class AccessCommand(GroupCommand):
    name = "jupyter-secure-access"
    description = "Access reviews: who holds which roles, and who should not any more."
    examples = "jupyter secure access review --stale-days 30"
    subcommands = {"review": (AccessReview, AccessReview.description)}
