"""Role checks through a real server: every route x every default role, ownership, paths.

The expectation table below is written by hand from the issue and the role
descriptions, independently of the guard's own map: a route the running server
exposes that is missing here fails the test, so a new extension's routes cannot
slip in unreviewed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import wait_for, ws_connect
from routes import route_targets

from jupyter_secure.policy import Principal, default_policy

ROLES = ("admin", "instructor", "data_scientist", "student", "auditor", "viewer")

#: handler class -> the resource a GET on it needs (None: no scope, it shows nothing).
EXPECTED_RESOURCE: dict[str, str | None] = {
    "jupyter_lsp.handlers.LanguageServersHandler": "lsp",
    "jupyter_lsp.handlers.LanguageServerWebSocketHandler": "lsp",
    "jupyter_secure.handlers.tokens.TokensHandler": "secure:tokens",
    "jupyter_secure.handlers.tokens.TokenHandler": "secure:tokens",
    "jupyter_secure.handlers.alarms.AlarmsHandler": "secure:alarms",
    "jupyter_secure.handlers.alarms.RulesHandler": "secure:alarms",
    "jupyter_secure.handlers.alarms.AckHandler": "secure:alarms",
    "jupyter_secure.handlers.tokens.ReauthApiHandler": None,
    "jupyter_secure.handlers.tokens.MeHandler": "api",
    # Routes that name their scope per method (auth_scopes): see SCOPE_OF below.
    "jupyter_secure.handlers.admin.UsersHandler": "secure:users",
    "jupyter_secure.handlers.admin.UserActionHandler": "secure:users",
    "jupyter_secure.handlers.admin.AccessReviewHandler": "secure:users",
    "jupyter_secure.handlers.admin.BudgetsAdminHandler": "secure:budgets",
    "jupyter_secure.handlers.admin.AuditHandler": "secure:audit",
    "jupyter_secure.handlers.admin.AuditVerifyHandler": "secure:audit",
    "jupyter_secure.handlers.budgets.BudgetsHandler": "secure:budgets",
    "jupyter_server_terminals.handlers.TermSocket": "terminals",
    "jupyter_server_terminals.api_handlers.TerminalRootHandler": "terminals",
    "jupyter_server_terminals.api_handlers.TerminalHandler": "terminals",
    "jupyterlab.handlers.build_handler.BuildHandler": "build",
    "jupyterlab.handlers.extension_manager_handler.ExtensionHandler": "extension_manager",
    "jupyterlab.handlers.plugin_manager_handler.PluginHandler": "plugins",
    "jupyterlab.handlers.announcements.CheckForUpdateHandler": "announcements",
    "jupyterlab.handlers.announcements.NewsHandler": "announcements",
    "jupyterlab_server.handlers.LabHandler": "lab",
    "jupyterlab_server.settings_handler.SettingsHandler": "settings",
    "jupyterlab_server.translations_handler.TranslationsHandler": "translations",
    "jupyterlab_server.workspaces_handler.WorkspacesHandler": "workspaces",
    "jupyterlab_server.listings_handler.ListingsHandler": "listings",
    "jupyterlab_server.themes_handler.ThemesHandler": "themes",
    "jupyterlab_server.licenses_handler.LicensesHandler": "licenses",
    "jupyterlab_server.handlers.NotFoundHandler": None,
    "jupyter_server.base.handlers.FileFindHandler": None,
    "jupyter_server.services.api.handlers.APISpecHandler": "api",
    "jupyter_server.services.api.handlers.APIStatusHandler": "api",
    "jupyter_server.services.api.handlers.IdentityHandler": "api",
    "jupyter_server.services.api.handlers.PathResolverHandler": "api",
    "jupyter_server.services.config.handlers.ConfigHandler": "config",
    "jupyter_server.services.contents.handlers.CheckpointsHandler": "contents",
    "jupyter_server.services.contents.handlers.ModifyCheckpointsHandler": "contents",
    "jupyter_server.services.contents.handlers.TrustNotebooksHandler": "contents",
    "jupyter_server.services.contents.handlers.ContentsHandler": "contents",
    "jupyter_server.services.contents.handlers.NotebooksRedirectHandler": None,
    "jupyter_server.services.kernels.handlers.MainKernelHandler": "kernels",
    "jupyter_server.services.kernels.handlers.KernelHandler": "kernels",
    "jupyter_server.services.kernels.handlers.KernelActionHandler": "kernels",
    "jupyter_server.services.kernels.websocket.KernelWebsocketHandler": "kernels",
    "jupyter_server.kernelspecs.handlers.KernelSpecResourceHandler": "kernelspecs",
    "jupyter_server.services.kernelspecs.handlers.MainKernelSpecHandler": "kernelspecs",
    "jupyter_server.services.kernelspecs.handlers.KernelSpecHandler": "kernelspecs",
    "jupyter_server.nbconvert.handlers.NbconvertPostHandler": "nbconvert",
    "jupyter_server.nbconvert.handlers.NbconvertFileHandler": "nbconvert",
    "jupyter_server.services.nbconvert.handlers.NbconvertRootHandler": "nbconvert",
    "jupyter_server.services.security.handlers.CSPReportHandler": "csp",
    "jupyter_server.services.sessions.handlers.SessionHandler": "sessions",
    "jupyter_server.services.sessions.handlers.SessionRootHandler": "sessions",
    "jupyter_server.services.shutdown.ShutdownHandler": "server",
    "jupyter_server.view.handlers.ViewHandler": "contents",
    "jupyter_server.services.events.handlers.EventHandler": "events",
    # Replaced by SubscribeEvents once every extension has loaded (handlers/events.py).
    "jupyter_server.services.events.handlers.SubscribeWebsocket": "events",
    "jupyter_secure.handlers.events.SubscribeEvents": "events",
    "jupyter_server.base.handlers.AuthenticatedFileHandler": "contents",
    "jupyter_secure.handlers.login.LoginHandler": None,
    "jupyter_secure.handlers.login.MfaHandler": None,
    "jupyter_secure.handlers.login.EnrollHandler": None,
    "jupyter_secure.handlers.login.ReauthHandler": None,
    "jupyter_secure.handlers.login.LogoutHandler": None,
    # A kernel's route, not a person's: its own KernelToken check (POST only), tested in
    # test_kernel_guard.py; a GET from anyone is 405.
    "jupyter_secure.handlers.witness.WitnessHandler": None,
    # Also a kernel's route: its own KernelToken check; anyone else gets 401 (tested in
    # tests/handlers/test_private_queries.py).
    "jupyter_secure.handlers.private.PrivateHandler": None,
    # Also a kernel's route (jupyter_secure.trail): no kernel token is 401 (tested in
    # tests/handlers/test_trail.py).
    "jupyter_secure.handlers.trail.TrailHandler": None,
    "jupyter_server.base.handlers.TrailingSlashHandler": None,
    "jupyter_server.base.handlers.APIVersionHandler": None,
    "jupyter_server.base.handlers.PublicStaticFileHandler": None,
    "jupyter_server.base.handlers.PrometheusMetricsHandler": "secure:metrics",
    "jupyter_server.base.handlers.MainHandler": None,
    "jupyter_server.base.handlers.Template404": None,
}
#: handler class -> the exact scope a GET needs, for handlers whose scope is not
#: ``<resource>:read`` (None: GET is not one of its methods, refused for everyone). Written
#: from docs/rest-api.md, not read from the handlers.
SCOPE_OF: dict[str, str | None] = {
    "jupyter_secure.handlers.admin.UsersHandler": "secure:users:admin",
    "jupyter_secure.handlers.admin.UserActionHandler": None,
    "jupyter_secure.handlers.admin.AccessReviewHandler": "secure:users:admin",
    "jupyter_secure.handlers.admin.BudgetsAdminHandler": "secure:budgets:admin",
    "jupyter_secure.handlers.admin.AuditHandler": "secure:audit:read",
    "jupyter_secure.handlers.admin.AuditVerifyHandler": "secure:audit:admin",
    "jupyter_secure.handlers.budgets.BudgetsHandler": "secure:budgets:read",
}
#: handler class -> the scope that lets a non-holder of its own scope in to a quiet
#: version serving nothing (the event bus: tests/handlers/test_quiet_ui.py checks nothing
#: arrives).
QUIET_VIA: dict[str, str] = {"jupyter_secure.handlers.events.SubscribeEvents": "lab:read"}
WEBSOCKETS = {
    "jupyter_secure.handlers.events.SubscribeEvents",
    "jupyter_lsp.handlers.LanguageServerWebSocketHandler",
    "jupyter_server_terminals.handlers.TermSocket",
    "jupyter_server.services.kernels.websocket.KernelWebsocketHandler",
    "jupyter_server.services.events.handlers.SubscribeWebsocket",
}


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@pytest.fixture
def workspace(jp_root_dir: Path) -> Path:
    for d in ("home/alice", "home/bob", "shared/raw"):
        (jp_root_dir / d).mkdir(parents=True, exist_ok=True)
    (jp_root_dir / "shared/raw/patients.csv").write_text("name,ssn\nAda,078-05-1120\n")
    (jp_root_dir / "shared/intro.md").write_text("# Welcome\n")
    (jp_root_dir / "home/bob/notes.txt").write_text("bob's\n")
    return jp_root_dir


async def test_every_route_answers_each_role_as_the_scope_table_says(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    routes = route_targets(jp_serverapp.web_app)
    unknown = sorted({qualname(t) for _, _, t in routes} - set(EXPECTED_RESOURCE))
    assert not unknown, f"routes nobody has decided on: {unknown}"
    policy = default_policy()
    base = jp_serverapp.base_url
    mismatches = []
    for role in ROLES:
        name = f"x{role.replace('_', '')}"
        server.add_user(name, roles=(role,))
        b = await server.sign_in(name)
        held = policy.effective_scopes(Principal(name, [role]))
        for pattern, path, target in routes:
            cls = qualname(target)
            if cls == "jupyter_secure.handlers.login.LogoutHandler" or "shutdown" in pattern:
                continue  # would end this session / the server
            resource = EXPECTED_RESOURCE[cls]
            if not path.startswith(base):
                continue  # a route outside the base URL (the catch-all 404)
            r = await b.get(path[len(base) :])
            body = r.body or b""
            if resource is None:
                ok = r.code != 403
                expected = "not 403 (no scope needed)"
            elif cls in SCOPE_OF and SCOPE_OF[cls] is None:
                ok = r.code == 403
                expected = "403 (GET is not one of its methods)"
            else:
                action = "execute" if cls in WEBSOCKETS else "read"
                scope = SCOPE_OF.get(cls) or f"{resource}:{action}"
                if scope not in held and QUIET_VIA.get(cls) in held:
                    ok = not (r.code == 403 and b"not allowed:" in body)
                    expected = f"route allowed, quietly ({QUIET_VIA[cls]} held)"
                elif scope in held:
                    # Object-level refusals (a path rule, another's kernel) are fine;
                    # the route guard itself must let the role through.
                    ok = not (r.code == 403 and b"not allowed:" in body)
                    expected = f"route allowed ({scope} held)"
                else:
                    ok = r.code == 403
                    expected = f"403 ({scope} not held)"
            if not ok:
                mismatches.append(f"{role:15} GET {path}: {r.code}, expected {expected}")
    assert not mismatches, "\n".join(mismatches)


async def test_alice_cannot_see_or_use_bobs_kernel(server, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    bob = await server.sign_in("bob")
    r = await bob.post("api/kernels", json_body={"name": "jupyter-secure"})
    assert r.code == 201, r.body
    kernel_id = json.loads(r.body)["id"]
    r = await bob.post(
        "api/sessions",
        json_body={"path": "home/bob/n.ipynb", "type": "notebook", "kernel": {"id": kernel_id}},
    )
    assert r.code == 201, r.body
    session_id = json.loads(r.body)["id"]

    alice = await server.sign_in("alice")
    assert kernel_id not in [k["id"] for k in json.loads((await alice.get("api/kernels")).body)]
    assert json.loads((await alice.get("api/sessions")).body) == []
    assert (await alice.get(f"api/kernels/{kernel_id}")).code == 403
    assert (await alice.post(f"api/kernels/{kernel_id}/interrupt")).code == 403
    assert (await alice.post(f"api/kernels/{kernel_id}/restart")).code == 403
    assert (await alice.fetch("DELETE", f"api/kernels/{kernel_id}")).code == 403
    assert (await alice.get(f"api/sessions/{session_id}")).code == 403
    hijack = {"path": "home/alice/h.ipynb", "type": "notebook", "kernel": {"id": kernel_id}}
    assert (await alice.post("api/sessions", json_body=hijack)).code == 403
    with pytest.raises(Exception, match="403"):
        await ws_connect(alice, f"api/kernels/{kernel_id}/channels")
    # Bob still sees and uses his own; an admin sees everyone's.
    assert kernel_id in [k["id"] for k in json.loads((await bob.get("api/kernels")).body)]
    assert (await bob.get(f"api/sessions/{session_id}")).code == 200
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    assert kernel_id in [k["id"] for k in json.loads((await admin.get("api/kernels")).body)]

    def alice_denied_bobs() -> bool:
        return any(
            e["userIdentity"]["name"] == "alice"
            and e["requestParameters"].get("owner") == "bob"
            and "owner" in e["responseElements"]["rule"]
            for e in server.events("AccessDenied")
        )

    await wait_for(alice_denied_bobs)
    await bob.fetch("DELETE", f"api/kernels/{kernel_id}")


async def test_path_rules_hold_for_every_way_into_a_file(server, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    alice = await server.sign_in("alice")  # data_scientist
    assert (await alice.get("api/contents/home/alice")).code == 200
    # Listings name only what the reader may open: not bob's home, not shared/raw.
    homes = json.loads((await alice.get("api/contents/home")).body)["content"]
    assert [e["name"] for e in homes] == ["alice"]
    shared = json.loads((await alice.get("api/contents/shared")).body)["content"]
    assert sorted(e["name"] for e in shared) == ["intro.md"]
    assert (await alice.get("api/contents/shared/intro.md")).code == 200
    assert (await alice.get("api/contents/home/bob/notes.txt")).code == 403
    assert (await alice.get("api/contents/shared/raw/patients.csv")).code == 403
    assert (await alice.get("files/shared/raw/patients.csv")).code == 403
    assert (await alice.get("files/home/bob/notes.txt")).code == 403
    assert (await alice.get("view/shared/raw/patients.csv")).code == 403
    assert (await alice.get("nbconvert/html/home/bob/notes.txt")).code == 403
    assert (await alice.get("api/contents/shared/raw/patients.csv/checkpoints")).code == 403
    assert (await alice.get("api/contents/home/alice/../bob/notes.txt")).code in {403, 404}
    new = {"type": "file", "format": "text", "content": "hi"}
    assert (await alice.fetch("PUT", "api/contents/home/alice/a.txt", json_body=new)).code == 201
    assert (await alice.fetch("PUT", "api/contents/shared/a.txt", json_body=new)).code == 403
    copy = {"copy_from": "shared/raw/patients.csv"}
    assert (await alice.post("api/contents/home/alice", json_body=copy)).code == 403
    assert not list((workspace / "home/alice").glob("patients*"))
    rename = {"path": "shared/a.txt"}
    assert (
        await alice.fetch("PATCH", "api/contents/home/alice/a.txt", json_body=rename)
    ).code == 403
    assert (workspace / "home/alice/a.txt").exists()
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    assert (await admin.get("api/contents/shared/raw/patients.csv")).code == 200


async def test_kernel_types_per_role(server, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    alice = await server.sign_in("alice")
    assert (await alice.post("api/kernels", json_body={"name": "python3"})).code == 403
    r = await alice.post(
        "api/sessions",
        json_body={"path": "home/alice/x.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert r.code == 403
    me = json.loads((await alice.get("secure/api/me")).body)
    assert me["kernelspecs"] == ["jupyter-secure"]
    listed = json.loads((await alice.get("api/kernelspecs")).body)
    assert sorted(listed["kernelspecs"]) == ["jupyter-secure"]
    assert listed["default"] == "jupyter-secure"
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    assert "python3" in json.loads((await admin.get("api/kernelspecs")).body)["kernelspecs"]
    r = await alice.post("api/kernels", json_body={})  # the default is the guarded type
    assert r.code == 201, r.body
    assert json.loads(r.body)["name"] == "jupyter-secure"
    await alice.fetch("DELETE", f"api/kernels/{json.loads(r.body)['id']}")


async def test_me_says_what_the_ui_may_offer(server) -> None:  # type: ignore[no-untyped-def]
    alice = await server.sign_in("alice")
    me = json.loads((await alice.get("secure/api/me")).body)
    assert me["name"] == "alice"
    assert me["roles"] == ["data_scientist"]
    assert "kernels:execute" in me["scopes"]
    assert "terminals:execute" not in me["scopes"]
    assert "secure:users:admin" not in me["scopes"]
    assert me["mfa"]["fresh"] is True
    assert me["via"] == "session"
    assert me["policy"].startswith("sha256:")


async def test_the_extension_manager_is_read_only_even_for_admins(server) -> None:  # type: ignore[no-untyped-def]
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    r = await admin.post("lab/api/extensions", json_body={"cmd": "install", "extension_name": "x"})
    assert r.code == 403
    assert b"read-only" in r.body


async def test_a_token_cannot_reach_beyond_its_owners_roles(server) -> None:  # type: ignore[no-untyped-def]
    alice = await server.sign_in("alice")
    r = await alice.post("secure/api/tokens", json_body={"name": "t", "scopes": ["terminals:read"]})
    assert r.code == 400, r.body
    r = await alice.post("secure/api/tokens", json_body={"name": "t", "scopes": ["kernels:read"]})
    assert r.code == 201, r.body
    token = json.loads(r.body)["token"]
    auth = {"Authorization": f"token {token}"}
    program = server.browser()
    assert (await program.get("api/kernels", headers=auth)).code == 200
    # Taking the role away binds the token at its next request.
    with server.state.db.write() as s:
        from jupyter_secure.storage.models import User

        user = s.query(User).filter_by(name="alice").one()
        for role in list(user.roles):
            s.delete(role)
    assert (await program.get("api/kernels", headers=auth)).code == 403
    assert (await alice.get("api/kernels")).code == 403


async def test_a_policy_edit_applies_at_once_and_a_broken_one_is_refused(server) -> None:  # type: ignore[no-untyped-def]
    live = server.ext.policy

    def rejected_with(text: str) -> bool:
        return any(text in e.get("errorMessage", "") for e in server.events("PolicyRejected"))

    alice = await server.sign_in("alice")
    assert (await alice.get("api/terminals")).code == 403
    text = live.path.read_text()
    live.path.write_text(
        text
        + '\n[groups.ops]\nmembers = ["alice"]\nroles = ["admin"]\n'
        + 'description = "On call this week."\n'
    )
    await wait_for(lambda: live.refresh() or "ops" in live.current.groups)
    assert (await alice.get("api/terminals")).code == 200
    # Audit records are written asynchronously: wait for each one to land.
    await wait_for(
        lambda: any(
            "ops" in line
            for e in server.events("PolicyChanged")
            for line in e["responseElements"]["diff"]
        )
    )
    # A misspelt scope: refused, the previous policy stays, and the refusal is recorded.
    live.path.write_text(
        text + '\n[roles.helper]\ndescription = "x"\nscopes = ["kernels:exeucte"]\n'
    )
    live.refresh()
    live.refresh()  # a change applies once the file has held still for one check
    assert "ops" in live.current.groups
    assert (await alice.get("api/terminals")).code == 200
    await wait_for(lambda: rejected_with("kernels:execute"))
    # An empty (or cut-short) file is not "the defaults": refused too.
    live.path.write_text("")
    live.refresh()
    live.refresh()
    assert "ops" in live.current.groups
    await wait_for(lambda: rejected_with("version"))
