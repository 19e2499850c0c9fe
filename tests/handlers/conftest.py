"""A real jupyter_server with jupyter-secure, users in its store, and a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import PASSWORD, Browser, code_at, secret_from_enroll_page

from jupyter_secure.identity.users import UserDirectory

T0 = 1_800_000_000.0  # a fixed instant (2027-01-15), aligned to a 30 s TOTP step


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "secure-state"


@pytest.fixture
def jp_server_config(state_dir: Path):  # type: ignore[no-untyped-def]
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_secure": True, "jupyterlab": True}},
        "SecureApp": {"state_dir": str(state_dir)},
    }


class Server:
    def __init__(self, app, base_url: str, clock: Clock) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.ext = app.extension_manager.extension_points["jupyter_secure"].app
        self.signin = self.ext.signin
        self.state = self.ext.state
        self.base_url = base_url
        self.clock = clock
        self.secrets: dict[str, str] = {}

    def add_user(self, name: str, roles: tuple[str, ...] = ("data_scientist",)) -> None:
        with self.state.db.write() as s:
            UserDirectory().add(s, name, roles=roles, password=PASSWORD)

    def browser(self) -> Browser:
        return Browser(self.base_url)

    def code(self, name: str, offset: float = 0.0) -> str:
        return code_at(self.secrets[name], self.clock.now + offset)

    async def sign_in(self, name: str, browser: Browser | None = None) -> Browser:
        """Password, then enrolment (first time) or a code: a full session."""
        b = browser or self.browser()
        await b.get("login")
        r = await b.post("login", form={"username": name, "password": PASSWORD})
        assert r.code == 302, r.body[:500]
        location = r.headers["Location"]
        if "login/enroll" in location:
            page = await b.get("login/enroll")
            self.secrets[name] = secret_from_enroll_page(page.body.decode())
            r = await b.post("login/enroll", form={"otp": self.code(name)})
            assert r.code == 200, r.body[:500]
            assert b"recovery-codes" in r.body
        else:
            assert "login/mfa" in location, location
            self.clock.advance(30)  # a new time step: codes are single-use
            r = await b.post("login/mfa", form={"otp": self.code(name)})
            assert r.code == 302, r.body[:500]
        return b

    def events(self, name: str | None = None) -> list[dict]:  # type: ignore[type-arg]
        import json

        out = []
        for seg in sorted((self.state.audit_dir).glob("segment-*.jsonl")):
            for line in seg.read_bytes().splitlines():
                event = json.loads(line)
                if name is None or event["eventName"] == name:
                    out.append(event)
        return out


@pytest.fixture
def server(jp_serverapp, jp_http_port, jp_base_url, http_server_client):  # type: ignore[no-untyped-def]
    clock = Clock()
    srv = Server(jp_serverapp, f"http://localhost:{jp_http_port}{jp_base_url}", clock)
    srv.signin.clock = clock
    srv.add_user("alice")
    srv.add_user("bob")
    return srv
