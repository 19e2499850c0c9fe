"""A least-privileged user's JupyterLab asks for nothing it would be refused; asking still is.

Through a real server: the page config a student gets has no terminals and no
news prompt (an admin's has both, and the shared page config is not changed by
either), a student's event subscription is accepted and stays silent while an
admin's carries the event, and everything a student does by hand on those
routes is still refused with 403 and recorded as ``AccessDenied``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from helpers import wait_for, ws_connect

from jupyter_secure.handlers.page_config import HIDDEN_PLUGINS

NEWS = "@jupyterlab/apputils-extension:announcements"
CONTENTS_SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"


async def _page_config(browser: Any) -> dict[str, Any]:
    r = await browser.get("lab")
    assert r.code == 200, r.code
    found = re.search(
        rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>', r.body, re.S
    )
    assert found, r.body[:500]
    return json.loads(found.group(1))


def _denials(server: Any, user: str) -> list[tuple[str, str]]:
    """(method, path after the base URL) of each AccessDenied recorded for ``user``."""
    base = re.sub(r"^https?://[^/]+", "", server.base_url).rstrip("/")
    return [
        (e["requestParameters"]["method"], e["requestParameters"]["path"].removeprefix(base))
        for e in server.events("AccessDenied")
        if e["userIdentity"]["name"] == user
    ]


async def _until_denied(server: Any, user: str, *wanted: tuple[str, str]) -> list[tuple[str, str]]:
    """The denials recorded for ``user`` once all of ``wanted`` are among them."""
    found: list[tuple[str, str]] = await wait_for(
        lambda: set(wanted) <= set(denied := _denials(server, user)) and denied
    )
    return found


async def test_the_page_config_offers_a_student_no_terminals_and_no_news_prompt(server) -> None:  # type: ignore[no-untyped-def]
    server.add_user("sam", roles=("student",))
    server.add_user("root", roles=("admin",))
    sam = await server.sign_in("sam")
    root = await server.sign_in("root")
    for _ in range(2):  # alternately: one user's page config must not leak into the other's
        student = await _page_config(sam)
        assert student["terminalsAvailable"] is False
        assert NEWS in student["disabledExtensions"]
        assert set(HIDDEN_PLUGINS) <= set(student["disabledExtensions"])
        admin = await _page_config(root)
        assert admin["terminalsAvailable"] is True
        assert not set(HIDDEN_PLUGINS) & set(admin["disabledExtensions"])
    assert _denials(server, "sam") == []


async def test_a_students_event_subscription_is_accepted_and_silent(server, jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    server.add_user("sam", roles=("student",))
    server.add_user("root", roles=("admin",))
    sam = await server.sign_in("sam")
    root = await server.sign_in("root")
    quiet = await ws_connect(sam, "api/events/subscribe")
    full = await ws_connect(root, "api/events/subscribe")
    try:
        jp_serverapp.event_logger.emit(
            schema_id=CONTENTS_SCHEMA, data={"action": "save", "path": "home/root/secret.ipynb"}
        )
        message = await asyncio.wait_for(full.read_message(), timeout=10)
        assert message is not None
        assert json.loads(message)["path"] == "home/root/secret.ipynb"
        # Nothing for the student, whatever they send, and the socket stays open (None
        # would mean closed, and JupyterLab would reconnect).
        await quiet.write_message(json.dumps({"subscribe": "everything"}))
        waiting = asyncio.ensure_future(quiet.read_message())
        done, _ = await asyncio.wait({waiting}, timeout=2)
        assert not done, f"the student's socket said {waiting.result()!r}"
        waiting.cancel()
    finally:
        quiet.close()
        full.close()
    assert _denials(server, "sam") == []


async def test_a_student_asking_by_hand_is_still_refused_and_recorded(server) -> None:  # type: ignore[no-untyped-def]
    server.add_user("sam", roles=("student",))
    sam = await server.sign_in("sam")
    assert (await sam.get("api/terminals")).code == 403
    assert (await sam.post("api/terminals", json_body={})).code == 403
    r = await sam.fetch(
        "PUT",
        "lab/api/settings/@jupyterlab/apputils-extension:notification",
        json_body={"raw": '{"fetchNews": "true"}'},
    )
    assert r.code == 403
    # Posting to the event bus needs events:write, which students lack.
    r = await sam.post(
        "api/events",
        json_body={
            "schema_id": CONTENTS_SCHEMA,
            "version": "1",
            "data": {"action": "get", "path": "x"},
        },
    )
    assert r.code == 403
    denied = await _until_denied(
        server,
        "sam",
        ("GET", "/api/terminals"),
        ("POST", "/api/terminals"),
        ("PUT", "/lab/api/settings/@jupyterlab/apputils-extension:notification"),
        ("POST", "/api/events"),
    )
    assert ("GET", "/api/terminals") in denied
    assert ("POST", "/api/terminals") in denied
    assert ("PUT", "/lab/api/settings/@jupyterlab/apputils-extension:notification") in denied
    assert ("POST", "/api/events") in denied


async def test_a_token_without_lab_read_gets_no_quiet_subscription(server) -> None:  # type: ignore[no-untyped-def]
    """The quiet socket is for people using JupyterLab, not an allow-all: a token that
    holds neither events:execute nor lab:read is refused, and that is recorded."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    alice = await server.sign_in("alice")
    r = await alice.post("secure/api/tokens", json_body={"name": "t", "scopes": ["kernels:read"]})
    assert r.code == 201, r.body
    token = json.loads(r.body)["token"]
    url = server.base_url.replace("http://", "ws://") + "api/events/subscribe"
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=30)
    with pytest.raises(HTTPClientError) as refused:
        socket = await websocket_connect(request)
        socket.close()
    assert refused.value.code == 403
    denied = await _until_denied(server, "alice", ("GET", "/api/events/subscribe"))
    assert ("GET", "/api/events/subscribe") in denied
