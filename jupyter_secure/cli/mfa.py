"""``jupyter secure mfa …``: second factors, for administrators."""

from __future__ import annotations

import io
import sys

import qrcode
from traitlets import Bool

from ..audit.logger import Identity
from ..errors import InvalidInput
from .base import GroupCommand, state_flags
from .users import _UserCommand

__all__ = ["MfaCommand"]


def terminal_qr(data: str) -> str:
    """A QR code drawn with block characters, scannable from most terminals."""
    code = qrcode.QRCode(border=2)
    code.add_data(data)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


class MfaEnroll(_UserCommand):
    name = "jupyter-secure-mfa-enroll"
    description = """Enrol a user's authenticator with them at hand: prints a QR code, the
    setup link and the secret, then asks for the first code the app shows (or reads it from
    stdin with --code-stdin) and prints the user's ten recovery codes. Without a code the
    secret stays pending and the user confirms it at their next sign-in."""
    examples = """
    jupyter secure mfa enroll alice
    """
    flags = {
        **state_flags,
        "code-stdin": ({"MfaEnroll": {"code_stdin": True}}, "Read the first code from stdin."),
    }
    code_stdin = Bool(False, help="Read the first code from stdin.").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        admin = self.account_admin()
        enrollment = self.audited_call(
            "MfaSecretIssued", name, lambda: admin.issue_secret(name, Identity.os_user())
        )
        print(f"Scan this with {name}'s authenticator app:\n")
        print(terminal_qr(enrollment.uri))
        print(f"setup link: {enrollment.uri}")
        print(f"secret:     {enrollment.secret}  (time-based, 6 digits, 30 s)")
        code = self.read_code()
        if not code:
            print(f"\nno code given: {name} confirms the secret at their next sign-in")
            return
        codes = admin.activate(name, code, Identity.os_user())
        print(f"\nsecond factor active for {name}. Give them these recovery codes (shown once):")
        for recovery_code in codes:
            print(f"  {recovery_code}")

    def read_code(self) -> str:
        if self.code_stdin:
            return sys.stdin.readline().strip()
        if sys.stdin.isatty():
            return input("\nfirst code from the app (empty to leave it pending): ").strip()
        return ""


class MfaReset(_UserCommand):
    name = "jupyter-secure-mfa-reset"
    description = """Remove a user's second factor (a lost phone): their secret and recovery
    codes are deleted, their sessions end, their kernels stop and their API tokens are
    revoked. They enrol again at their next sign-in. Asks for confirmation at a terminal."""
    examples = "jupyter secure mfa reset alice --yes"
    flags = {**state_flags, "yes": ({"MfaReset": {"yes": True}}, "Do not ask for confirmation.")}
    yes = Bool(False, help="Do not ask for confirmation.").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        if not self.yes:
            if not sys.stdin.isatty():
                raise InvalidInput("--yes", "resetting MFA needs --yes when not at a terminal")
            if input(f"Reset {name}'s second factor? [y/N] ").strip().lower() not in {"y", "yes"}:
                print("not reset")
                return
        admin = self.account_admin()
        ended, revoked = self.audited_call(
            "MfaReset", name, lambda: admin.reset(name, Identity.os_user())
        )
        print(
            f"second factor of {name} removed; {ended} session(s) ended, "
            f"{revoked} API token(s) revoked; they enrol again at their next sign-in"
        )


class MfaCommand(GroupCommand):
    name = "jupyter-secure-mfa"
    description = "Manage users' second factors (TOTP authenticator apps)."
    examples = "jupyter secure mfa reset alice --yes"
    subcommands = {
        "enroll": (MfaEnroll, "Enrol a user's authenticator app with them."),
        "reset": (MfaReset, "Remove a user's second factor (lost phone)."),
    }
