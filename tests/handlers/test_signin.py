"""Sign-in through a real jupyter_server and real HTTP, with the clock under the test's control.

Every attack the issue names is tried from the attacker's side: replayed and
stale codes, brute force, skipped enrolment, forged XSRF, session fixation,
expired sessions, a disabled user's open kernel, Jupyter's ?token=, and API
tokens beyond their scopes.
"""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import urlencode

import pytest
from helpers import PASSWORD, start_password, ws_connect

from jupyter_secure.audit.logger import Identity
from jupyter_secure.errors import InvalidInput
from jupyter_secure.identity.sessions import end_user_sessions
from jupyter_secure.identity.signin import AccountAdmin
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.storage.models import utcnow


def without_xsrf(body: bytes) -> str:
    """Tornado masks the XSRF token afresh in every form; everything else must match."""
    return re.sub(r'name="_xsrf" value="[^"]+"', "", body.decode())


def names(server) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["eventName"] for e in server.events()]


async def test_enrolment_then_sign_in_with_a_code(server) -> None:  # type: ignore[no-untyped-def]
    b = await start_password(server)
    r = await b.get("login/enroll")
    html = r.body.decode()
    assert r.headers["Cache-Control"] == "no-store"
    assert "<svg" in html, "an inline QR code"
    assert "otpauth://totp/jupyter-secure:alice?secret=" in html
    assert re.search(r'id="secret"[^>]*>[A-Z2-7 ]{32,}<', html)
    assert (await b.get("api/status")).code == 403, "not signed in before the first code"
    from helpers import secret_from_enroll_page

    server.secrets["alice"] = secret_from_enroll_page(html)
    r = await b.post("login/enroll", form={"otp": server.code("alice")})
    assert b"recovery-codes" in r.body
    b2 = b
    assert (await b2.get("api/status")).code == 200
    assert (await b2.get("lab")).code == 200
    enrolled = server.events("MfaEnrolled")[-1]
    assert enrolled["responseElements"] == {"recoveryCodes": 10}
    assert enrolled["userIdentity"]["mfa"] is True
    # Out and in again, now with a code.
    confirm = await b2.get("logout")
    assert b"sign-out" in confirm.body
    assert (await b2.get("api/status")).code == 200, "a GET of /logout signs nobody out"
    r = await b2.post("logout", form={})
    assert r.code == 200
    assert (await b2.get("api/status")).code == 403
    b3 = await server.sign_in("alice")
    assert (await b3.get("api/status")).code == 200
    assert [n for n in names(server) if n in {"Login", "MfaVerify", "Logout"}] == [
        "Login",
        "Logout",
        "Login",
        "MfaVerify",
    ]


async def test_a_replayed_code_and_a_stale_code_are_refused(server) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")  # enrols; its code's step is now used
    b = await start_password(server)
    used = server.code("alice")  # same step as the enrolment code
    r = await b.post("login/mfa", form={"otp": used})
    assert r.code == 401
    assert server.events("MfaVerify")[-1]["errorCode"] == "ReplayedCode"
    server.clock.advance(90)
    stale = server.code("alice", offset=-60)  # two steps ago
    r = await b.post("login/mfa", form={"otp": stale})
    assert r.code == 401
    assert server.events("MfaVerify")[-1]["errorCode"] == "InvalidCode"
    server.clock.advance(60)
    r = await b.post("login/mfa", form={"otp": server.code("alice")})
    assert r.code == 302


async def test_lockout_after_five_failed_factors_then_unlock(server) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")
    b = await start_password(server)
    for _ in range(5):
        server.clock.advance(61)  # past each growing delay
        r = await b.post("login/mfa", form={"otp": "000000"})
        assert r.code == 401
    assert len(server.events("UserLocked")) == 1
    # The right password and the right code no longer get in ...
    server.clock.advance(61)
    b2 = server.browser()
    await b2.get("login")
    r = await b2.post("login", form={"username": "alice", "password": PASSWORD})
    assert r.code == 401
    assert server.events("Login")[-1]["errorCode"] == "AccountLocked"
    # ... and the answer is the same as for a wrong password: no oracle.
    server.clock.advance(120)
    wrong = await b2.post("login", form={"username": "alice", "password": "not the password"})
    assert without_xsrf(r.body) == without_xsrf(wrong.body)
    # An administrator unlocks; sign-in works again.
    AccountAdmin(server.signin).unlock("alice", Identity.os_user())
    assert "UserUnlocked" in names(server)
    b3 = await server.sign_in("alice")
    assert (await b3.get("api/status")).code == 200


async def test_a_lockout_lifts_after_the_cool_down(server) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")
    b = await start_password(server)
    for _ in range(5):
        server.clock.advance(61)
        await b.post("login/mfa", form={"otp": "000000"})
    server.clock.advance(15 * 60 + 1)
    b2 = await server.sign_in("alice")
    assert (await b2.get("api/status")).code == 200
    lifted = server.events("UserUnlocked")[-1]
    assert lifted["requestParameters"] == {"name": "alice", "reason": "cool-down"}
    assert lifted["userIdentity"]["type"] == "System"


async def test_growing_delays_answer_429_with_retry_after(server) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    codes = []
    for _ in range(4):
        r = await b.post("login", form={"username": "bob", "password": "wrong password!"})
        codes.append(r.code)
    assert codes[:2] == [401, 401]
    assert 429 in codes[2:]
    throttled = next(r for r in [r] if r.code == 429)
    assert int(throttled.headers["Retry-After"]) >= 1
    assert server.events("Login")[-1]["errorCode"] == "Throttled"


async def test_unknown_user_and_wrong_password_look_the_same(server) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    unknown = await b.post("login", form={"username": "mallory", "password": PASSWORD})
    server.clock.advance(120)
    wrong = await b.post("login", form={"username": "bob", "password": "wrong password!"})
    assert unknown.code == wrong.code == 401
    assert without_xsrf(unknown.body) == without_xsrf(wrong.body)
    [first, second] = server.events("Login")[-2:]
    assert first["userIdentity"]["name"] == "(unknown)"
    assert first["requestParameters"]["userName"] == "mallory"
    assert second["errorCode"] == "InvalidCredentials"
    assert PASSWORD not in json.dumps(server.events())


async def test_a_recovery_code_works_once(server) -> None:  # type: ignore[no-untyped-def]
    b = await start_password(server)
    page = await b.get("login/enroll")
    from helpers import secret_from_enroll_page

    server.secrets["alice"] = secret_from_enroll_page(page.body.decode())
    r = await b.post("login/enroll", form={"otp": server.code("alice")})
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", r.body.decode())
    assert len(codes) == 10
    await b.post("logout", form={})
    b2 = await start_password(server)
    r = await b2.post("login/mfa", form={"recovery_code": codes[3].upper()})
    assert r.code == 302
    used = server.events("RecoveryCodeUsed")[-1]
    assert used["responseElements"] == {"remaining": 9}
    server.clock.advance(120)
    b3 = await start_password(server)
    r = await b3.post("login/mfa", form={"recovery_code": codes[3]})
    assert r.code == 401
    assert server.events("MfaVerify")[-1]["errorCode"] == "InvalidRecoveryCode"


async def test_enrolment_cannot_be_skipped(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    """A session that has only passed the password reaches nothing but the sign-in pages."""
    half = await start_password(server)
    full = await server.sign_in("bob")
    paths = [
        "api/status",
        "api/me",
        "api/contents",
        "api/contents/x.ipynb",
        "api/kernels",
        "api/kernelspecs",
        "api/sessions",
        "api/terminals",
        "api/config/notebook",
        "api/nbconvert",
        "files/x.txt",
        "lab",
        "lab/api/settings",
        "lab/api/workspaces",
        "secure/api/tokens",
    ]
    for path in paths:
        r = await half.get(path)
        assert r.code in {302, 403}, (path, r.code)
        if r.code == 302:
            assert "/login" in r.headers["Location"], path
    assert (await half.post("api/kernels", json_body={})).code == 403
    assert (await full.get("api/status")).code == 200, "the same paths work when signed in"
    assert (await full.get("lab")).code == 200
    # The kernel websocket, too.
    r = await full.post("api/kernels", json_body={"name": "jupyter-secure"})
    assert r.code == 201, r.body
    kernel_id = json.loads(r.body)["id"]
    channels = f"api/kernels/{kernel_id}/channels"
    assert (await half.get(channels)).code == 403, "refused before any upgrade"
    ws = await ws_connect(full, channels)
    ws.close()


# Public by design: jupyter_server's landing page and version, and the sign-in pages.
PUBLIC = {"", "api", "login", "login/enroll", "logout"}
# jupyterlab_server's LicensesHandler never answers an unauthenticated request (its
# finish() override breaks tornado's error path): no data leaks, the connection hangs.
UPSTREAM_HANGS = {"lab/api/licenses/x"}


async def test_no_route_answers_a_session_without_its_second_factor(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    """Every route the running server exposes, walked from its router."""
    from routes import all_routes

    half = await start_password(server)
    nobody = server.browser()
    base = jp_serverapp.base_url
    checked = 0
    for pattern, path in all_routes(jp_serverapp.web_app):
        if not path.startswith(base):
            continue
        rel = path[len(base) :]
        if rel in UPSTREAM_HANGS:
            continue
        for client in (half, nobody):
            r = await client.get(rel)
            if rel in PUBLIC:
                continue
            location = r.headers.get("Location", "")
            allowed = (
                # 401: the kernel-token routes (broker) name the credential they want
                r.code in {401, 403, 404, 405}
                or (r.code == 302 and ("/login" in location or location == path.rstrip("/")))
                or (r.code == 302 and rel.startswith("api/notebooks"))
            )
            assert allowed, (pattern, rel, r.code, location)
            if r.code == 404:
                assert rel.startswith(("static/", "lab/extensions/", "lab/api/themes/")), rel
        checked += 1
    assert checked > 45


async def test_forms_without_a_matching_xsrf_token_are_refused(server) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    missing = await b.fetch(
        "POST",
        "login",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-XSRFToken": ""},
        form=None,
    )
    assert missing.code == 403
    forged = await b.post(
        "login", form={"username": "alice", "password": PASSWORD, "_xsrf": "2|forged|token|1"}
    )
    assert forged.code == 403
    assert "Login" not in names(server)


async def test_session_fixation_is_impossible(server) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    cookie = next(
        iter(k for k in ["jupyter-secure-session-" + server.base_url.split(":")[2].split("/")[0]])
    )
    b.cookies[cookie] = "planted-by-the-attacker"
    r = await b.post("login", form={"username": "alice", "password": PASSWORD})
    assert r.code == 302
    pre_mfa = b.cookies[cookie]
    assert pre_mfa != "planted-by-the-attacker"
    full = await server.sign_in("alice", b)
    assert full.cookies[cookie] not in {pre_mfa, "planted-by-the-attacker"}
    # The pre-MFA token is dead: replaying it reaches nothing.
    stale = server.browser()
    stale.cookies = {**full.cookies, cookie: pre_mfa}
    assert (await stale.get("api/status")).code == 403
    assert (await full.get("api/status")).code == 200


async def test_idle_and_absolute_expiry(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    server.clock.advance(29 * 60)
    assert (await b.get("api/status")).code == 200
    server.clock.advance(31 * 60)
    assert (await b.get("api/status")).code == 403
    assert server.events("SessionEnded")[-1]["requestParameters"] == {"reason": "idle"}
    server.clock.advance(60)
    b2 = await server.sign_in("alice")
    for _ in range(17):  # active every 29 minutes for over 8 hours
        server.clock.advance(29 * 60)
        if (await b2.get("api/status")).code != 200:
            break
    assert (await b2.get("api/status")).code == 403
    assert server.events("SessionEnded")[-1]["requestParameters"] == {"reason": "lifetime"}


async def test_a_disabled_user_loses_an_open_kernel_connection(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.post("api/kernels", json_body={"name": "jupyter-secure"})
    assert r.code == 201, r.body
    kernel_id = json.loads(r.body)["id"]
    km = jp_serverapp.kernel_manager
    assert km.owner(kernel_id) == "alice"
    ws = await ws_connect(b, f"api/kernels/{kernel_id}/channels")
    with server.state.db.write() as s:  # what `jupyter secure user disable alice` does
        directory = UserDirectory()
        directory.set_disabled(s, "alice", True)
        end_user_sessions(s, directory.get(s, "alice").id, now=utcnow(), reason="disabled")
    message = await asyncio.wait_for(ws.read_message(), timeout=20)
    while message is not None:  # kernel status messages may still arrive before the close
        message = await asyncio.wait_for(ws.read_message(), timeout=20)
    for _ in range(100):
        if kernel_id not in km.list_kernel_ids():
            break
        await asyncio.sleep(0.1)
    assert kernel_id not in km.list_kernel_ids(), "the disabled user's kernel was shut down"
    assert (await b.get("api/status")).code == 403
    ws.close()


async def test_jupyters_token_login_is_off(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    for token in ("", jp_serverapp.identity_provider.token, "anything"):
        query = urlencode({"token": token})
        assert (await b.get(f"api/status?{query}")).code == 403
        r = await b.get(f"lab?{query}")
        assert r.code == 302
        assert "/login" in r.headers["Location"]
    assert jp_serverapp.identity_provider.token == ""


async def test_an_api_token_is_limited_to_its_scopes(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.post(
        "secure/api/tokens",
        json_body={"name": "ci job", "scopes": ["api:read", "contents:read"], "expiresInDays": 7},
    )
    assert r.code == 201, r.body
    created = json.loads(r.body)
    token = created["token"]
    assert token.startswith("jst_")
    program = server.browser()  # no cookies: only the header
    auth = {"Authorization": f"token {token}"}
    assert (await program.get("api/status", headers=auth)).code == 200
    assert (await program.get("api/contents", headers=auth)).code == 200
    put = await program.fetch(
        "PUT",
        "api/contents/new.txt",
        json_body={"type": "file", "format": "text", "content": "x"},
        headers=auth,
    )
    assert put.code == 403
    assert (await program.get("api/kernels", headers=auth)).code == 403
    assert (await program.post("api/kernels", json_body={}, headers=auth)).code == 403
    # A token cannot mint tokens, and the tokens API needs a session.
    assert (await program.post("secure/api/tokens", json_body={}, headers=auth)).code == 403
    listed = json.loads((await b.get("secure/api/tokens")).body)
    assert [t["id"] for t in listed] == [created["id"]]
    assert token not in json.dumps(server.events())
    r = await b.fetch("DELETE", f"secure/api/tokens/{created['id']}")
    assert r.code == 204
    assert (await program.get("api/status", headers=auth)).code == 403
    assert {"ApiTokenCreated", "ApiTokenRevoked"} <= set(names(server))


async def test_bad_token_requests_name_the_field(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    for body, field in (
        ({"name": "x", "scopes": ["contents:reed"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["api:read"]}, "name"),
        ({"name": "x", "scopes": ["api:read"], "expiresInDays": 10_000}, "expiresInDays"),
    ):
        r = await b.post("secure/api/tokens", json_body=body)
        assert r.code == 400, body
        assert json.loads(r.body)["field"] == field
    assert (
        "did you mean 'contents:read'"
        in json.loads(
            (
                await b.post(
                    "secure/api/tokens", json_body={"name": "x", "scopes": ["contents:reed"]}
                )
            ).body
        )["error"]
    )


async def test_sensitive_actions_need_a_fresh_second_factor(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    server.clock.advance(6 * 60)
    body = {"name": "later", "scopes": ["api:read"]}
    r = await b.post("secure/api/tokens", json_body=body)
    assert r.code == 403
    assert json.loads(r.body)["error"] == "step-up required"
    r = await b.post("secure/api/reauth", json_body={"otp": "123456"})
    assert r.code == 401
    server.clock.advance(31)
    r = await b.post("secure/api/reauth", json_body={"otp": server.code("alice")})
    assert r.code == 200, r.body
    assert (await b.post("secure/api/tokens", json_body=body)).code == 201
    steps = server.events("StepUp")
    assert steps[-2]["errorCode"] == "InvalidCode"
    assert steps[-1]["responseElements"] == {"validSeconds": 300}


async def test_an_mfa_reset_ends_sessions_and_forces_enrolment(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    ended, _ = AccountAdmin(server.signin).reset("alice", Identity.os_user())
    assert ended == 1
    assert (await b.get("api/status")).code == 403
    again = await start_password(server)
    r = await again.get("login/enroll")
    assert r.code == 200, "the user enrols again"


async def test_redirects_stay_on_this_server(server) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    for evil in (
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        r = await b.post(
            "login?" + urlencode({"next": evil}), form={"username": "bob", "password": PASSWORD}
        )
        assert r.code == 302
        assert "evil" not in r.headers["Location"]
        server.clock.advance(1)


async def test_a_service_account_works_only_through_its_tokens(server) -> None:  # type: ignore[no-untyped-def]
    with server.state.db.write() as s:
        UserDirectory().add(s, "ci-bot", roles=("viewer",), service=True)
    admin = AccountAdmin(server.signin)
    token, created = admin.service_token(
        "ci-bot", label="nightly", scopes=["api:read"], days=7, actor=Identity.os_user()
    )
    b = server.browser()
    await b.get("login")
    r = await b.post("login", form={"username": "ci-bot", "password": ""})
    assert r.code == 401, "a service account never signs in"
    program = server.browser()
    auth = {"Authorization": f"Bearer {token}"}
    assert (await program.get("api/status", headers=auth)).code == 200
    assert (await program.get("api/contents", headers=auth)).code == 403
    with pytest.raises(InvalidInput, match="is a person"):
        admin.service_token(
            "alice", label="x", scopes=["api:read"], days=1, actor=Identity.os_user()
        )
    admin.revoke_token("ci-bot", created.id, Identity.os_user())
    assert (await program.get("api/status", headers=auth)).code == 403
