"""The scope vocabulary covers every resource and action Jupyter's handlers check."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from typing import Any

import pytest
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION, get_regex_to_resource_map
from tornado.web import RequestHandler

from jupyter_secure.policy import (
    RESOURCES,
    SCOPES,
    UnknownScope,
    owner_scope,
    scope,
    scope_name,
    scopes_markdown,
    validate_scopes,
)
from jupyter_secure.policy.scopes import resource_of, scopes_held

#: Handler modules outside jupyter_server's own service list that declare AUTH_RESOURCE.
EXTRA_MODULES = ("jupyter_server_terminals.api_handlers", "jupyter_lsp.handlers")
#: Websockets call is_authorized(..., "execute", resource) themselves.
WEBSOCKET_SCOPES = ("kernels:execute", "events:execute", "terminals:execute", "lsp:execute")


def _core_handler_modules() -> list[str]:
    from jupyter_server.serverapp import JUPYTER_SERVICE_HANDLERS

    return [m for mods in JUPYTER_SERVICE_HANDLERS.values() if mods for m in mods]


def _import(name: str) -> Any:
    # jupyter_lsp passes traitlets a deprecated keyword at import; not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(name)


def _handlers() -> list[tuple[str, str, type]]:
    out = []
    for name in [*_core_handler_modules(), *EXTRA_MODULES]:
        mod = _import(name)
        for spec in getattr(mod, "default_handlers", []):
            out.append((mod.AUTH_RESOURCE, spec[0], spec[1]))
    return out


def test_every_declared_auth_resource_is_a_resource() -> None:
    declared = set(get_regex_to_resource_map().values())
    declared |= {_import(m).AUTH_RESOURCE for m in EXTRA_MODULES}
    assert declared <= set(RESOURCES), declared - set(RESOURCES)
    # The ones we know are there, so the test cannot pass on an empty map.
    assert {"contents", "kernels", "sessions", "terminals", "lsp", "server"} <= declared


def test_every_handler_method_maps_to_a_scope() -> None:
    missing = []
    handlers = _handlers()
    assert len(handlers) > 25
    for resource, url, cls in handlers:
        for method, action in HTTP_METHOD_TO_AUTH_ACTION.items():
            if method in ("WEBSOCKET", "OPTIONS"):
                # Websockets name their scope themselves (WEBSOCKET_SCOPES); OPTIONS is
                # a CORS preflight jupyter_server answers without authorizing.
                continue
            implemented = getattr(cls, method.lower()) is not getattr(
                RequestHandler, method.lower()
            )
            if implemented and scope_name(resource, action) not in SCOPES:
                missing.append(f"{url} {method} -> {resource}:{action}")
    assert missing == []


@pytest.mark.parametrize("name", WEBSOCKET_SCOPES)
def test_websocket_scopes_exist(name: str) -> None:
    assert scope(name) == name


@pytest.mark.parametrize(
    "resource",
    [
        "lab",
        "settings",
        "workspaces",
        "themes",
        "translations",
        "licenses",
        "listings",
        "extension_manager",
        "plugins",
        "build",
        "announcements",
    ],
)
def test_jupyterlab_resources_have_a_read_scope(resource: str) -> None:
    assert f"{resource}:read" in SCOPES


def test_ours_are_in_the_vocabulary_and_existing_names_kept() -> None:
    ours = {
        "secure:datasets:query",
        "secure:datasets:admin",
        "secure:budgets:read",
        "secure:budgets:admin",
        "secure:audit:read",
        "secure:users:admin",
        "secure:unmask",
        "secure:policy:admin",
        "secure:metrics:read",
        "secure:tokens:read",
        "secure:tokens:write",
        "events:read",
        "csp:write",
    }
    assert ours <= set(SCOPES)


def test_every_scope_has_a_one_line_description() -> None:
    for name, text in SCOPES.items():
        assert text.strip(), name
        assert "\n" not in text, name
        assert resource_of(name) in RESOURCES, name


def test_a_typo_raises_with_a_suggestion() -> None:
    with pytest.raises(
        UnknownScope, match=r"unknown scope 'kernels:exec'; did you mean 'kernels:execute'\?"
    ):
        scope("kernels:exec")
    with pytest.raises(UnknownScope, match=r"^unknown scope 'zzz'$"):
        scope("zzz")
    assert validate_scopes(["kernels:read", "api:read", "api:read"]) == ("api:read", "kernels:read")


def test_owner_scope() -> None:
    assert owner_scope("kernels:execute") == "kernels:admin"
    assert owner_scope("sessions:read") == "sessions:admin"
    assert owner_scope("secure:audit:read") == "secure:audit:admin"
    assert owner_scope("contents:read") is None
    assert owner_scope("secure:unmask") is None


def test_scopes_held_keeps_its_signature() -> None:
    assert scopes_held(object()) == frozenset(SCOPES)


def test_scopes_markdown_lists_every_scope_once() -> None:
    table = scopes_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(SCOPES)
    assert rows[0].startswith("| `api:read` | Read server status")
    assert any(r.startswith("| `terminals:execute` |") for r in rows)


def test_the_policy_room_imports_nothing_from_jupyter() -> None:
    code = (
        "import sys, jupyter_secure.policy as p; p.default_policy(); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tornado', 'jupyter_server', 'IPython', 'jupyter_core', 'traitlets', 'ipykernel')); "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
