"""Errors that jupyter-secure raises on purpose.

Every refusal the product makes is one of these, so that the server, the CLI
and the tests can tell a deliberate "no" (with a message meant for a person)
apart from a bug. Messages name the field or file at fault and never contain
secret material.
"""

from __future__ import annotations

__all__ = ["InvalidInput", "SecureError", "StartupRefused"]


class SecureError(Exception):
    """Base class for deliberate refusals; ``str(err)`` is safe to show an operator."""


class InvalidInput(SecureError):
    """A value given by a person or a file was refused.

    ``field`` names what was wrong (a CLI flag, a form field, a config trait)
    so that the message can point at it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StartupRefused(SecureError):
    """The state store, key or audit sink is unusable: refuse to run at all."""
