"""SecureAuthorizer: the policy's object-level checks, for handlers that ask.

jupyter_server's ``@authorized`` handlers call :meth:`is_authorized` with the
handler, so the object is in reach: the file path in the URL, the kernel or
session id, the kernel type in the request body. This class resolves it and
asks the policy — path rules for files, ownership for kernels and sessions
(alice may not list, connect to or interrupt bob's kernel), and which kernel
types a role may start. The route guard in ``access.py`` has already checked
the route's scope for every request; this adds what only the object tells.

Deny by default: a user that is not ours, a resource with no scope, or no
loaded policy is refused. The decision itself has no side effects beyond
noting a denial on the request, which ``access.audit_denials`` records.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer

from ..policy import Decision, scope_name
from .access import POLICY_SETTING, deny, json_body, principal_of, request_scope
from .identity_provider import SecureUser

__all__ = ["SecureAuthorizer", "session_kernel_id"]

_PATH_RESOURCES = {"contents", "nbconvert"}


def session_kernel_id(session_manager: Any, session_id: str) -> str | None:
    """The kernel a session uses, read synchronously from jupyter_server's session table."""
    try:
        row = session_manager.cursor.execute(
            "SELECT kernel_id FROM session WHERE session_id=?", (session_id,)
        ).fetchone()
    except Exception:
        return None
    return row[0] if row else None


class SecureAuthorizer(Authorizer):
    """Deny by default; the policy decides, with the object the request names."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if not isinstance(user, SecureUser):
            return False
        live = handler.settings.get(POLICY_SETTING)
        if live is None:
            return False
        if getattr(handler, "auth_scopes", None) is not None:
            # The handler names its exact scope per method (the route guard asked the same).
            wanted = request_scope(handler)
            if wanted is None:
                deny(handler, Decision(False, "", f"{handler.request.method} is not allowed here"))
                return False
            scope = wanted
        else:
            scope = scope_name(resource, action)  # an unknown one is denied by decide()
        policy = live.current
        principal = principal_of(user)
        for check in self._checks(handler, resource, scope):
            wanted = check.pop("scope", scope)
            if check.pop("tree", False):
                decision = policy.decide_tree(principal, wanted, check["path"])
            else:
                decision = policy.decide(principal, wanted, **check)
            if decision and user.scopes is not None and decision.scope not in user.scopes:
                decision = Decision(False, decision.scope, "the API token does not hold it")
            if not decision:
                if not _is_permission_probe(handler):
                    deny(
                        handler,
                        decision,
                        object=check.get("path"),
                        owner=check.get("owner"),
                        kernelspec=check.get("kernelspec"),
                    )
                return False
        return True

    def _checks(self, handler: Any, resource: str, scope: str) -> list[dict[str, Any]]:
        """Each decision this request needs: the object in the URL, and those in the body."""
        kwargs = getattr(handler, "path_kwargs", None) or {}
        method = handler.request.method
        km = handler.settings.get("kernel_manager")
        if resource in _PATH_RESOURCES:
            return _path_checks(handler, resource, method, kwargs)
        if type(handler).__name__ == "PathResolverHandler":
            return _resolver_checks(handler, km)
        checks: list[dict[str, Any]] = []
        if resource == "kernels":
            kernel_id = kwargs.get("kernel_id")
            if kernel_id is not None:
                checks.append({"owner": _owner(km, kernel_id)})
            elif method == "POST":
                body = json_body(handler)
                name = body.get("name") or getattr(km, "default_kernel_name", "")
                checks.append({"kernelspec": str(name)})
                if isinstance(body.get("path"), str):  # the kernel's working directory
                    checks.append({"scope": "contents:read", "path": body["path"].strip("/")})
            return checks or [{}]
        if resource == "sessions":
            session_id = kwargs.get("session_id")
            if session_id is not None:
                sm = handler.settings.get("session_manager")
                kernel_id = session_kernel_id(sm, session_id)
                checks.append({"owner": _owner(km, kernel_id) if kernel_id else ""})
            if method in {"POST", "PATCH"}:
                checks.extend(_session_body_checks(json_body(handler), km, method))
            return checks or [{}]
        return [{}]


def _is_permission_probe(handler: Any) -> bool:
    """jupyter_server's ``GET /api/me?permissions=…`` asks "may I?" for many scopes
    and answers 200 either way: its "no" answers are not refused requests."""
    return type(handler).__name__ == "IdentityHandler"


def _path_checks(
    handler: Any, resource: str, method: str, kwargs: dict[str, Any]
) -> list[dict[str, Any]]:
    """Files: the path in the URL and, for copies and renames, the paths in the body.

    Operations that move a whole directory (copy, rename, delete) are checked on
    everything below it too (``decide_tree``): a copy of ``shared`` would carry
    ``shared/raw`` along.
    """
    args = getattr(handler, "path_args", None) or []
    path = kwargs.get("path")
    if path is None and args and resource == "contents":
        path = args[0]
    if path is None and resource != "contents":
        return []
    here = (path or "").strip("/")
    checks: list[dict[str, Any]] = [{"path": here, "tree": method in {"PATCH", "DELETE"}}]
    if resource != "contents" or method not in {"POST", "PATCH", "PUT"}:
        return checks
    body = json_body(handler)
    if isinstance(body.get("copy_from"), str):
        # Copying reads the source (and all below it), not only writes the target.
        source = body["copy_from"].strip("/")
        checks.append({"scope": "contents:read", "path": source, "tree": True})
    if method == "PATCH" and isinstance(body.get("path"), str):
        checks.append({"path": body["path"].strip("/"), "tree": True})  # the rename target
    return checks


def _resolver_checks(handler: Any, km: Any) -> list[dict[str, Any]]:
    """``/api/resolvePath?path=…&kernel=…`` says whether a file exists: a read of it."""
    checks: list[dict[str, Any]] = [
        {"scope": "contents:read", "path": handler.get_query_argument("path", "").strip("/")}
    ]
    kernel_id = handler.get_query_argument("kernel", None)
    if kernel_id:
        checks.append({"scope": "kernels:read", "owner": _owner(km, kernel_id)})
    return checks


def _owner(km: Any, kernel_id: str) -> str:
    """The kernel's owner; "" (nobody, so only an admin scope passes) when unrecorded."""
    owner = getattr(km, "owner", None)
    return (owner(kernel_id) if owner is not None else None) or ""


def session_path(body: dict[str, Any], method: str) -> str | None:
    """The notebook path a session request names, read the way jupyter_server reads it:
    on POST ``notebook.name``, then ``notebook.path``, then ``path``; on PATCH
    ``notebook.path`` wins over ``path``."""
    notebook = body.get("notebook")
    notebook = notebook if isinstance(notebook, dict) else {}
    keys = ("name", "path") if method == "POST" else ("path",)
    for key in keys:
        if key in notebook:
            value = notebook[key]
            return value if isinstance(value, str) else ""
    value = body.get("path")
    return value if isinstance(value, str) else None


def _session_body_checks(body: dict[str, Any], km: Any, method: str) -> list[dict[str, Any]]:
    """A session names a notebook path and a kernel: new (its type) or existing (its owner)."""
    checks: list[dict[str, Any]] = []
    path = session_path(body, method)
    if path is not None:
        checks.append({"scope": "contents:read", "path": path.strip("/")})
    kernel = body.get("kernel")
    kernel = kernel if isinstance(kernel, dict) else {}
    if isinstance(kernel.get("id"), str):
        checks.append({"owner": _owner(km, kernel["id"])})
    elif kernel or (method == "POST" and path is not None):
        name = kernel.get("name") or getattr(km, "default_kernel_name", "")
        checks.append({"scope": "kernels:write", "kernelspec": str(name)})
    return checks
