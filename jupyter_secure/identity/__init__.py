"""Identity room: who a person is — accounts, passwords (and, next, second factors and sessions)."""

from .passwords import PasswordPolicy as PasswordPolicy
from .users import KNOWN_ROLES as KNOWN_ROLES
from .users import UserDirectory as UserDirectory
from .users import UserInfo as UserInfo

__all__ = ["KNOWN_ROLES", "PasswordPolicy", "UserDirectory", "UserInfo"]
