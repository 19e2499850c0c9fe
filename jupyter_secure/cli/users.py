"""``jupyter secure user …``: accounts, with roles and groups as plain data."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from traitlets import Bool, List, Unicode

from ..audit.logger import Identity, Resource
from ..errors import InvalidInput
from ..identity.passwords import PasswordPolicy
from ..identity.sessions import end_user_sessions
from ..identity.signin import AccountAdmin, SignIn, SignInPolicy
from ..identity.users import KNOWN_ROLES, UserDirectory, principal_of_account
from ..policy import load_policy
from ..storage.models import User, utcnow
from .base import GroupCommand, StateCommand, state_aliases, state_flags

__all__ = ["UserCommand"]

T = TypeVar("T")


def read_password(from_stdin: bool, *, confirm: bool = True) -> str:
    """The new password: one line of stdin with ``--password-stdin``, else a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput("--password-stdin", "stdin was empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput(
            "password", "stdin is not a terminal: pass --password-stdin and pipe the password in"
        )
    first = getpass.getpass("New password: ")
    if confirm and getpass.getpass("Repeat it: ") != first:
        raise InvalidInput("password", "the two entries differ")
    return first


class _UserCommand(StateCommand):
    def directory(self) -> UserDirectory:
        return UserDirectory(PasswordPolicy(parent=self))

    def account_admin(self) -> AccountAdmin:
        signin = SignIn(
            self.state.db,
            self.state.secrets,
            self.state.audit,
            SignInPolicy(parent=self),
            user_scopes=self.user_scopes,
        )
        return AccountAdmin(signin)

    def user_scopes(self, user: User) -> frozenset[str]:
        """What a user holds under the state directory's policy (bounds their tokens)."""
        policy = load_policy(self.state.policy_path)
        return policy.effective_scopes(principal_of_account(user))

    def audited_call(
        self,
        event: str,
        name: str,
        action: Callable[[], T],
        request: dict[str, Any] | None = None,
    ) -> T:
        """Run an account action; a refusal is recorded as a failed attempt, then raised."""
        try:
            return action()
        except InvalidInput as exc:
            self.record(
                event,
                request=request if request is not None else {"name": name},
                resources=[Resource("user", name)],
                error_code="InvalidInput",
                error_message=str(exc),
            )
            raise


class UserAdd(_UserCommand):
    name = "jupyter-secure-user-add"
    description = (
        """Create a user with one or more roles and optional groups.

    The password is read from stdin with --password-stdin (so that it never
    appears on a command line or in shell history), or asked for at a
    terminal. Roles: """
        + ", ".join(KNOWN_ROLES)
        + "."
    )
    examples = """
    echo "$PW" | jupyter secure user add alice --role data_scientist --group ward7 --password-stdin
    jupyter secure user add bob --role admin          # asks for the password
    """
    aliases = {**state_aliases, "role": "UserAdd.roles", "group": "UserAdd.groups"}
    flags = {
        **state_flags,
        "password-stdin": (
            {"UserAdd": {"password_stdin": True}},
            "Read the password from the first line of stdin.",
        ),
        "no-password": (
            {"UserAdd": {"no_password": True}},
            "Create the account without a password (it cannot sign in until one is set).",
        ),
        "service": (
            {"UserAdd": {"service": True}},
            "A service account for a program: no password, no sign-in, API tokens only.",
        ),
    }
    roles = List(Unicode(), help="Role to grant (repeat --role for several).").tag(config=True)
    groups = List(Unicode(), help="Group to join (repeat --group for several).").tag(config=True)
    password_stdin = Bool(False, help="Read the password from stdin.").tag(config=True)
    no_password = Bool(False, help="Create the account without a password.").tag(config=True)
    service = Bool(False, help="Create a service account (API tokens only).").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        quiet = self.no_password or self.service
        password = None if quiet else read_password(self.password_stdin)
        roles = sorted(set(self.roles))
        request = {
            "name": name,
            "roles": roles,
            "groups": sorted(set(self.groups)),
            "passwordSet": password is not None,
        }
        with self.audited_change(
            "UserAdded", request=request, resources=[Resource("user", name)]
        ) as (session, _):
            self.directory().add(
                session,
                name,
                roles=self.roles,
                groups=self.groups,
                password=password,
                service=self.service,
            )
        print(f"added user {name} (roles: {', '.join(roles)})")


class UserList(_UserCommand):
    name = "jupyter-secure-user-list"
    description = "List users with their roles, groups, status and last sign-in."
    examples = """
    jupyter secure user list
    jupyter secure user list --json | jq '.[] | select(.disabled)'
    """
    flags = {
        **state_flags,
        "json": ({"UserList": {"as_json": True}}, "Print JSON instead of a table."),
    }
    as_json = Bool(False, help="Print JSON.").tag(config=True)

    def run(self) -> None:
        self.positional()
        with self.state.db.read() as session:
            users = self.directory().list(session)
        self.record(
            "UsersListed",
            request={"format": "json" if self.as_json else "table"},
            response={"users": len(users)},
            read_only=True,
        )
        if self.as_json:
            print(
                json.dumps(
                    [
                        {
                            "name": u.name,
                            "roles": list(u.roles),
                            "groups": list(u.groups),
                            "disabled": u.disabled,
                            "service": u.service,
                            "hasPassword": u.has_password,
                            "createdAt": u.created_at.isoformat(),
                            "lastLoginAt": u.last_login_at.isoformat() if u.last_login_at else None,
                        }
                        for u in users
                    ],
                    indent=2,
                )
            )
            return
        rows: list[tuple[str, ...]] = [("NAME", "ROLES", "GROUPS", "STATUS", "LAST SIGN-IN")]
        for u in users:
            rows.append(
                (
                    u.name,
                    ",".join(u.roles) or "-",
                    ",".join(u.groups) or "-",
                    _status(u),
                    u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
                )
            )
        print_table(rows)


def _status(u: Any) -> str:
    if u.disabled:
        return "disabled"
    if u.service:
        return "service"
    return "active" if u.has_password else "no password"


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


class _UserStatus(_UserCommand):
    disable = True

    def run(self) -> None:
        (name,) = self.positional("name")
        # The same code as the admin panel's disable/enable: the same record either way.
        changed, ended, _ = self.account_admin().set_disabled(
            name, self.disable, actor=Identity.os_user()
        )
        state = "disabled" if self.disable else "enabled"
        print(f"user {name} {state}" if changed else f"user {name} was already {state}")
        if ended:
            print(f"ended {ended} session(s); the server closes their kernels within seconds")


class UserDisable(_UserStatus):
    name = "jupyter-secure-user-disable"
    description = "Disable a user: they can no longer sign in (their data stays)."
    examples = "jupyter secure user disable alice"


class UserEnable(_UserStatus):
    name = "jupyter-secure-user-enable"
    description = "Enable a disabled user again."
    examples = "jupyter secure user enable alice"
    disable = False


class UserUnlock(_UserCommand):
    name = "jupyter-secure-user-unlock"
    description = """Lift a sign-in lockout now (instead of waiting for the cool-down) and
    forgive the user's recent failed attempts."""
    examples = "jupyter secure user unlock alice"

    def run(self) -> None:
        (name,) = self.positional("name")
        admin = self.account_admin()
        was_locked = self.audited_call(
            "UserUnlocked",
            name,
            lambda: admin.unlock(name, Identity.os_user()),
            request={"name": name, "reason": "administrator"},
        )
        print(f"user {name} unlocked" if was_locked else f"user {name} was not locked")


class UserRemove(_UserCommand):
    name = "jupyter-secure-user-remove"
    description = """Remove a user and their role and group grants. Their audit records stay.
    Asks for confirmation at a terminal; give --yes in scripts."""
    examples = "jupyter secure user remove alice --yes"
    flags = {**state_flags, "yes": ({"UserRemove": {"yes": True}}, "Do not ask for confirmation.")}
    yes = Bool(False, help="Do not ask for confirmation.").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        if not self.yes:
            if not sys.stdin.isatty():
                raise InvalidInput("--yes", "removing a user needs --yes when not at a terminal")
            if input(f"Remove user {name}? [y/N] ").strip().lower() not in {"y", "yes"}:
                print("not removed")
                return
        with self.audited_change(
            "UserRemoved", request={"name": name}, resources=[Resource("user", name)]
        ) as (session, _):
            self.directory().remove(session, name)
        print(f"removed user {name}")


class UserSetPassword(_UserCommand):
    name = "jupyter-secure-user-set-password"
    description = "Set or change a user's password (from stdin with --password-stdin, or a prompt)."
    examples = 'printf "%s\\n" "$NEW" | jupyter secure user set-password alice --password-stdin'
    flags = {
        **state_flags,
        "password-stdin": (
            {"UserSetPassword": {"password_stdin": True}},
            "Read the password from the first line of stdin.",
        ),
    }
    password_stdin = Bool(False, help="Read the password from stdin.").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        password = read_password(self.password_stdin)
        with self.audited_change(
            "PasswordChanged", request={"name": name}, resources=[Resource("user", name)]
        ) as (session, response):
            directory = self.directory()
            directory.set_password(session, name, password)
            # A password is changed because it may be known to someone else: every
            # session it opened ends, half-finished sign-ins included.
            user = directory.get(session, name)
            response["sessionsEnded"] = end_user_sessions(
                session, user.id, now=utcnow(), reason="password-changed"
            )
        print(f"password of {name} changed; {response['sessionsEnded']} session(s) ended")


class UserCommand(GroupCommand):
    name = "jupyter-secure-user"
    description = "Manage user accounts."
    examples = "jupyter secure user add alice --role student --password-stdin < pw.txt"
    subcommands = {
        "add": (UserAdd, UserAdd.description.splitlines()[0]),
        "list": (UserList, UserList.description),
        "disable": (UserDisable, UserDisable.description),
        "enable": (UserEnable, UserEnable.description),
        "unlock": (UserUnlock, UserUnlock.description.splitlines()[0]),
        "remove": (UserRemove, UserRemove.description.splitlines()[0]),
        "set-password": (UserSetPassword, UserSetPassword.description),
    }
