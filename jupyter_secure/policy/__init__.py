"""Policy room: what identities may do — scopes, roles, groups, path rules, decisions.

A pure room: no tornado, jupyter_server or IPython imports, so the CLI and
the tests use it directly and a decision costs microseconds. The server's
Authorizer and route guard are thin adapters over :meth:`Policy.decide`.

Start with :func:`load_policy` (or :func:`default_policy`), build a
:class:`Principal` from an account, and ask :meth:`Policy.decide`; the
:class:`Decision` says what decided, for the audit trail.
"""

from .decide import ANY_KERNELSPEC as ANY_KERNELSPEC
from .decide import OWNER as OWNER
from .decide import Decision as Decision
from .decide import Principal as Principal
from .decide import compile_pattern as compile_pattern
from .decide import normalise_path as normalise_path
from .document import DEFAULT_KERNELSPECS as DEFAULT_KERNELSPECS
from .document import DEFAULT_PATHS as DEFAULT_PATHS
from .document import DEFAULT_TERMINALS as DEFAULT_TERMINALS
from .document import GUARDED_KERNELSPEC as GUARDED_KERNELSPEC
from .document import POLICY_VERSION as POLICY_VERSION
from .document import Group as Group
from .document import PathRule as PathRule
from .document import Policy as Policy
from .document import PolicyError as PolicyError
from .document import PolicyProblem as PolicyProblem
from .document import UserGrant as UserGrant
from .document import default_policy as default_policy
from .document import default_policy_text as default_policy_text
from .document import load_policy as load_policy
from .document import parse_policy as parse_policy
from .explain import explain as explain
from .live import POLICY_FILENAME as POLICY_FILENAME
from .live import LivePolicy as LivePolicy
from .live import ensure_policy_file as ensure_policy_file
from .markdown import roles_markdown as roles_markdown
from .markdown import scopes_markdown as scopes_markdown
from .review import Review as Review
from .review import access_review as access_review
from .roles import BUILTIN_ROLE_NAMES as BUILTIN_ROLE_NAMES
from .roles import DEFAULT_ROLES as DEFAULT_ROLES
from .roles import Role as Role
from .scopes import RESOURCES as RESOURCES
from .scopes import SCOPES as SCOPES
from .scopes import UnknownScope as UnknownScope
from .scopes import owner_scope as owner_scope
from .scopes import scope as scope
from .scopes import scope_name as scope_name
from .scopes import scopes_held as scopes_held
from .scopes import validate_scopes as validate_scopes

__all__ = [
    "ANY_KERNELSPEC",
    "BUILTIN_ROLE_NAMES",
    "DEFAULT_KERNELSPECS",
    "DEFAULT_PATHS",
    "DEFAULT_ROLES",
    "DEFAULT_TERMINALS",
    "GUARDED_KERNELSPEC",
    "OWNER",
    "POLICY_FILENAME",
    "POLICY_VERSION",
    "RESOURCES",
    "SCOPES",
    "Decision",
    "Group",
    "LivePolicy",
    "PathRule",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "Principal",
    "Review",
    "Role",
    "UnknownScope",
    "UserGrant",
    "access_review",
    "compile_pattern",
    "default_policy",
    "default_policy_text",
    "ensure_policy_file",
    "explain",
    "load_policy",
    "normalise_path",
    "owner_scope",
    "parse_policy",
    "roles_markdown",
    "scope",
    "scope_name",
    "scopes_held",
    "scopes_markdown",
    "validate_scopes",
]
