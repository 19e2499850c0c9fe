"""Storage room: the SQL schema and migrations, the state directory, secrets at rest.

Imports nothing from Jupyter; the server and the CLI both open the store
through :mod:`jupyter_secure.state`.
"""

from .database import Database as Database
from .database import sqlite_url as sqlite_url
from .keys import KeyRing as KeyRing
from .keys import MasterKey as MasterKey
from .keys import WrongKey as WrongKey
from .paths import default_state_dir as default_state_dir
from .paths import ensure_private_dir as ensure_private_dir
from .paths import resolve_state_dir as resolve_state_dir
from .secrets import SecretStore as SecretStore

__all__ = [
    "Database",
    "KeyRing",
    "MasterKey",
    "SecretStore",
    "WrongKey",
    "default_state_dir",
    "ensure_private_dir",
    "resolve_state_dir",
    "sqlite_url",
]
