"""Attacks found in a review of the sign-in gate, kept as tests so they stay closed."""

from __future__ import annotations

import asyncio
import json

from helpers import secret_from_enroll_page, start_password, ws_connect

from jupyter_secure.audit.logger import Identity
from jupyter_secure.identity.sessions import end_user_sessions
from jupyter_secure.identity.signin import AccountAdmin
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.storage.models import utcnow


def disable(server, name: str) -> None:  # type: ignore[no-untyped-def]
    """What `jupyter secure user disable` does, from "another process"."""
    with server.state.db.write() as s:
        directory = UserDirectory()
        directory.set_disabled(s, name, True)
        end_user_sessions(s, directory.get(s, name).id, now=utcnow(), reason="disabled")


async def closed_within(ws, seconds: float = 20) -> bool:  # type: ignore[no-untyped-def]
    async def drain() -> None:
        while await ws.read_message() is not None:
            pass

    try:
        await asyncio.wait_for(drain(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def test_a_token_only_reaches_handlers_that_declare_its_scope(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.post("secure/api/tokens", json_body={"name": "t", "scopes": ["api:read"]})
    token = json.loads(r.body)["token"]
    program = server.browser()
    auth = {"Authorization": f"token {token}"}
    assert (await program.get("api/status", headers=auth)).code == 200
    settings = "lab/api/settings/@jupyterlab/apputils-extension:themes"
    put = await program.fetch("PUT", settings, json_body={"raw": "{}"}, headers=auth)
    assert put.code == 403, "JupyterLab's settings never ask the authorizer"
    assert (
        await program.fetch("PUT", "lab/api/workspaces/w", json_body={}, headers=auth)
    ).code == 403
    assert (
        await program.post(
            "lab/api/extensions", json_body={"cmd": "install", "extension_name": "x"}, headers=auth
        )
    ).code == 403
    assert (await program.get("metrics", headers=auth)).code == 403


async def test_disabling_a_user_with_no_session_still_stops_their_kernels(
    server, jp_serverapp
) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.post("api/kernels", json_body={"name": "jupyter-secure"})
    kernel_id = json.loads(r.body)["id"]
    await b.post("logout", form={})
    disable(server, "alice")
    km = jp_serverapp.kernel_manager
    for _ in range(100):
        if kernel_id not in km.list_kernel_ids():
            break
        await asyncio.sleep(0.1)
    assert kernel_id not in km.list_kernel_ids()


async def test_a_token_websocket_closes_when_its_user_is_disabled(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.post(
        "secure/api/tokens", json_body={"name": "t", "scopes": ["kernels:execute", "kernels:write"]}
    )
    token = json.loads(r.body)["token"]
    r = await b.post("api/kernels", json_body={"name": "jupyter-secure"})
    kernel_id = json.loads(r.body)["id"]
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = server.base_url.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels"
    ws = await websocket_connect(
        HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=30)
    )
    disable(server, "alice")
    assert await closed_within(ws)
    ws.close()


async def test_a_terminal_closes_when_its_user_is_disabled(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    server.add_user("carol", roles=("admin",))  # terminals are for admins only
    b = await server.sign_in("carol")
    r = await b.post("api/terminals", json_body={})
    assert r.code == 200, r.body
    name = json.loads(r.body)["name"]
    ws = await ws_connect(b, f"terminals/websocket/{name}")
    disable(server, "carol")
    assert await closed_within(ws)
    ws.close()
    manager = jp_serverapp.web_app.settings["terminal_manager"]
    for _ in range(100):
        if name not in manager.terminals:
            break
        await asyncio.sleep(0.1)
    assert name not in manager.terminals, "the shell is gone too"


async def test_a_websocket_does_not_outlive_its_session(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.post("api/kernels", json_body={"name": "jupyter-secure"})
    kernel_id = json.loads(r.body)["id"]
    ws = await ws_connect(b, f"api/kernels/{kernel_id}/channels")
    server.clock.advance(9 * 3600)  # past the absolute lifetime, no HTTP request since
    assert await closed_within(ws)
    ws.close()
    assert server.events("SessionEnded")[-1]["requestParameters"]["reason"] in {"idle", "lifetime"}


async def test_enrolment_secrets_belong_to_one_sign_in(server) -> None:  # type: ignore[no-untyped-def]
    spy = await start_password(server)  # someone else who knows the password
    spied = secret_from_enroll_page((await spy.get("login/enroll")).body.decode())
    owner = await start_password(server)
    mine = secret_from_enroll_page((await owner.get("login/enroll")).body.decode())
    assert spied != mine
    server.secrets["alice"] = mine
    r = await owner.post("login/enroll", form={"otp": server.code("alice")})
    assert b"recovery-codes" in r.body
    # The spy's half-finished sign-in ended with the enrolment; it cannot enrol over it.
    server.secrets["alice"] = spied
    server.clock.advance(31)
    r = await spy.post("login/enroll", form={"otp": server.code("alice")})
    assert b"recovery-codes" not in r.body
    assert (await spy.get("api/status")).code == 403


async def test_a_half_finished_sign_in_expires(server) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")
    b = await start_password(server)
    server.clock.advance(16 * 60)
    r = await b.post("login/mfa", form={"otp": server.code("alice")})
    assert r.code == 401
    assert (await b.get("api/status")).code == 403


async def test_step_up_respects_the_lockout(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    for _ in range(5):
        server.clock.advance(61)
        await b.post("secure/api/reauth", json_body={"otp": "000000"})
    assert server.events("UserLocked")
    server.clock.advance(61)
    r = await b.post("secure/api/reauth", json_body={"otp": server.code("alice")})
    assert r.code == 401
    assert server.events("StepUp")[-1]["errorCode"] == "AccountLocked"


async def test_junk_from_a_shared_address_does_not_lock_others_out(server) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")
    attacker = server.browser()
    await attacker.get("login")
    for i in range(30):
        await attacker.post("login", form={"username": f"junk{i}", "password": "x" * 12})
    await start_password(server, "alice")  # same address (127.0.0.1), right password
    assert server.events("Login")[-1]["responseElements"] == {"next": "mfa"}


async def test_unicode_digits_are_a_wrong_code_not_a_crash(server) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")
    b = await start_password(server)
    r = await b.post("login/mfa", form={"otp": "١٢٣٤٥٦"})
    assert r.code == 401
    assert server.events("MfaVerify")[-1]["errorCode"] == "MalformedCode"


async def test_a_password_typed_as_a_user_name_is_not_recorded(server) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    await b.post("login", form={"username": "Hunter2-Secret!", "password": "x" * 12})
    recorded = json.dumps(server.events("Login"))
    assert "Hunter2" not in recorded
    assert server.events("Login")[-1]["requestParameters"]["userName"] == "(not a user name)"


async def test_a_proxys_basic_auth_header_does_not_hide_the_session(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.get("api/status", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.code == 200


async def test_signing_in_again_ends_the_previous_session(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    old = dict(b.cookies)
    await server.sign_in("alice", b)
    stale = server.browser()
    stale.cookies = old
    assert (await stale.get("api/status")).code == 403


async def test_an_admin_cannot_enrol_over_an_active_factor(server) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")
    admin = AccountAdmin(server.signin)
    import pytest

    from jupyter_secure.errors import InvalidInput

    with pytest.raises(InvalidInput, match="already"):
        admin.activate("alice", "123456", Identity.os_user())
