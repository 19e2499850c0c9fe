"""Policy room: what identities may do. Today the scope vocabulary; roles, groups and the
route guard build on it."""

from .scopes import SCOPES as SCOPES
from .scopes import UnknownScope as UnknownScope
from .scopes import scope as scope
from .scopes import validate_scopes as validate_scopes

__all__ = ["SCOPES", "UnknownScope", "scope", "validate_scopes"]
