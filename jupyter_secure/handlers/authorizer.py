"""SecureAuthorizer: API tokens do only what their scopes say.

A request made with an API token may perform ``<resource>:<action>`` only
when that scope is among the token's. Session users keep the permissions
jupyter_server gives any signed-in user; the policy room (roles, groups,
path rules) narrows those next. Anything that is not one of our users is
denied.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer

from .identity_provider import SecureUser

__all__ = ["SecureAuthorizer"]


class SecureAuthorizer(Authorizer):
    """Deny by default; token scopes bound token requests."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if not isinstance(user, SecureUser):
            return False
        if user.scopes is not None:
            return f"{resource}:{action}" in user.scopes
        return True
