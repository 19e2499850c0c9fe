"""Helpers the tests import (``pythonpath`` puts this directory on sys.path)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.audit.logger import AuditLogger, Identity, Resource
from jupyter_secure.audit.sink import AuditSink

PASSWORD = "correct horse battery staple"
SECURE_ENV = ("JUPYTER_SECURE_KEY", "JUPYTER_SECURE_KEY_FILE", "JUPYTER_SECURE_STATE_DIR")


class Trail:
    """An audit sink and logger on a temporary directory, without the database."""

    def __init__(self, directory: Path, signer: CheckpointSigner, **traits: object) -> None:
        self.directory = directory
        self.signer = signer
        self.trail_id = "trail-test"
        self.sink = AuditSink(directory, self.trail_id, signer, **traits)
        self.logger = AuditLogger(self.sink, source="cli")
        self.sink.open()

    @property
    def keys(self) -> dict[str, object]:
        return {self.signer.key_id: self.signer.public_key}

    def add(self, n: int, user: str = "alice") -> None:
        futures = [
            self.logger.submit(
                "UserDisabled",
                identity=Identity("OSUser", "root"),
                request={"name": f"{user}{i}"},
                resources=[Resource("user", f"{user}{i}")],
            )
            for i in range(n)
        ]
        for f in futures:
            f.result(10)

    def close(self) -> None:
        self.sink.close()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment a CLI subprocess runs in: isolated like the tests themselves."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECURE_ENV and not k.startswith(("PYTEST", "COV_"))
    }
    env.update(
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.update(extra)
    return env


def run_cli(
    tmp_path: Path,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``jupyter-secure ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "jupyter_secure.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(tmp_path),
        timeout=timeout,
        check=False,
    )


class Browser:
    """A cookie-keeping HTTP client for a server in this test's event loop.

    It signs in the way a person does: forms, XSRF cookie and all.
    """

    def __init__(self, base_url: str) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self.base = base_url.rstrip("/") + "/"
        self.cookies: dict[str, str] = {}
        self.client = AsyncHTTPClient()

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _remember(self, response) -> None:  # type: ignore[no-untyped-def]
        from http.cookies import SimpleCookie

        for header in response.headers.get_list("Set-Cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                expired = (
                    morsel["max-age"] == "0" or "1970" in morsel["expires"] or not morsel.value
                )
                if expired:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def fetch(self, method: str, path: str, *, form=None, json_body=None, headers=None):  # type: ignore[no-untyped-def]
        import json as _json
        from urllib.parse import urlencode

        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["Cookie"] = self.cookie_header()
        body = None
        if form is not None:
            form = dict(form)
            form.setdefault("_xsrf", self.cookies.get("_xsrf", ""))
            body = urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = _json.dumps(json_body)
            hdrs["Content-Type"] = "application/json"
            hdrs.setdefault("X-XSRFToken", self.cookies.get("_xsrf", ""))
        elif method in {"POST", "PUT", "PATCH"}:
            body = ""
        if method in {"POST", "PUT", "PATCH", "DELETE"} and "_xsrf" in self.cookies:
            hdrs.setdefault("X-XSRFToken", self.cookies["_xsrf"])
        response = await self.client.fetch(
            self.base + path.lstrip("/"),
            method=method,
            body=body,
            headers=hdrs,
            follow_redirects=False,
            raise_error=False,
            request_timeout=30,
        )
        self._remember(response)
        return response

    async def get(self, path: str, **kw):  # type: ignore[no-untyped-def]
        return await self.fetch("GET", path, **kw)

    async def post(self, path: str, **kw):  # type: ignore[no-untyped-def]
        return await self.fetch("POST", path, **kw)


def secret_from_enroll_page(html: str) -> str:
    """The manual-entry secret shown on the enrolment page (what a person would type)."""
    import re

    found = re.search(r'id="secret"[^>]*>([A-Z2-7 ]+)<', html)
    assert found, html[:2000]
    return found.group(1).replace(" ", "")


def code_at(secret: str, now: float) -> str:
    import pyotp

    return str(pyotp.TOTP(secret).at(now))


async def start_password(server, name: str = "alice") -> Browser:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    r = await b.post("login", form={"username": name, "password": PASSWORD})
    assert r.code == 302
    return b


async def ws_connect(browser: Browser, path: str):  # type: ignore[no-untyped-def]
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = browser.base.replace("http://", "ws://") + path
    request = HTTPRequest(url, headers={"Cookie": browser.cookie_header()}, request_timeout=30)
    return await websocket_connect(request)


async def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that.

    For what the server does after the client has its response: a denial is
    recorded when tornado logs the request and written by the audit sink's
    thread. Fails the test after ``timeout`` seconds rather than hanging.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = condition()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        await asyncio.sleep(0.1)
