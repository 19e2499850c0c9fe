"""`jupyter secure lab`: the README's first command, end to end, as a real process."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from helpers import cli_env, code_at, run_cli, secret_from_enroll_page

from jupyter_secure.demo.workspace import prepare, teaching_notebooks

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign_in(base: str, user: str, password: str):  # type: ignore[no-untyped-def]
    """Sign in as a person does: password, then enrol the authenticator from the page."""
    import requests

    web = requests.Session()
    web.get(f"{base}/login", timeout=10)
    r = web.post(
        f"{base}/login",
        data={"username": user, "password": password, "_xsrf": web.cookies["_xsrf"]},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, r.text[:500]
    assert "/login/enroll" in r.headers["Location"]
    secret = secret_from_enroll_page(web.get(f"{base}/login/enroll", timeout=10).text)
    r = web.post(
        f"{base}/login/enroll",
        data={"otp": code_at(secret, time.time()), "_xsrf": web.cookies["_xsrf"]},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:500]
    return web


def test_lab_starts_jupyterlab_on_the_demo_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    port = free_port()
    env = cli_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_secure.cli", "lab", "--workspace", str(ws),
         "--port", str(port), "--no-browser", "--rows", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            try:
                status = requests.get(f"{base}/login", timeout=5).status_code
            except requests.ConnectionError:
                status = 0
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200
        assert requests.get(f"{base}/api/status", timeout=5).status_code == 403
        password = dict(
            line.split("\t") for line in (ws / "demo-credentials.txt").read_text().splitlines()
        )["admin"]
        web = sign_in(base, "admin", password)
        names = {
            item["name"] for item in web.get(f"{base}/api/contents", timeout=10).json()["content"]
        }
        assert names == {"home", "shared"}, "the notebook root holds no state"
        shared = web.get(f"{base}/api/contents/shared", timeout=10).json()["content"]
        assert sorted(item["name"] for item in shared) == ["README.md", "labs"]
        labs = web.get(f"{base}/api/contents/home/admin/labs", timeout=10).json()["content"]
        assert sorted(item["name"] for item in labs) == [p.name for p in teaching_notebooks()]
        assert web.get(f"{base}/api/contents/home/admin", timeout=10).status_code == 200
        assert web.get(f"{base}/lab", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=60)
    assert "demo users" in out
    state = ws / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    creds = ws / "demo-credentials.txt"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert {line.split("\t")[0] for line in creds.read_text().splitlines()} == {
        "admin",
        "dana",
        "sam",
        "ines",
    }
    df = pl.read_parquet(state / "protected" / "datasets" / "patients.parquet")
    assert df.height == 200
    users = json.loads(
        run_cli(tmp_path, "user", "list", "--json", "--state-dir", str(state)).stdout
    )
    assert {u["name"]: u["roles"] for u in users} == {
        "admin": ["admin"],
        "dana": ["data_scientist"],
        "sam": ["student"],
        "ines": ["instructor"],
    }
    query = run_cli(tmp_path, "audit", "query", "--json", "--state-dir", str(state))
    names = [json.loads(x)["eventName"] for x in query.stdout.splitlines()]
    assert names[:10] == [
        "StateInitialized",
        "UserAdded",
        "UserAdded",
        "UserAdded",
        "UserAdded",
        "DemoWorkspaceCreated",
        "DatasetChanged",  # the demo data, protected for private queries
        "BudgetChanged",
        "BudgetChanged",
        "ServerStarted",
    ]
    assert {"Login", "MfaEnrolled"} <= set(names)
    assert "ServerStopped" in names
    assert run_cli(tmp_path, "audit", "verify", "--state-dir", str(state)).returncode == 0


def test_a_second_run_keeps_users_data_and_passwords(tmp_path: Path) -> None:
    first = prepare(tmp_path / "ws", rows=10)
    assert set(first.new_passwords) == {"admin", "dana", "sam", "ines"}
    data = first.dataset.read_bytes()
    again = prepare(tmp_path / "ws", rows=10)
    assert again.new_passwords == {}
    assert again.dataset.read_bytes() == data
    assert len(first.credentials.read_text().splitlines()) == 4


def test_the_demo_data_is_a_protected_dataset_for_the_demo_groups(tmp_path: Path) -> None:
    """dana (research) and sam (class-2026) can query it privately; nobody reads its rows."""
    from jupyter_secure.privacy.broker import Broker
    from jupyter_secure.state import SecureState

    ws = prepare(tmp_path / "ws", rows=50)
    prepare(tmp_path / "ws", rows=50)  # a second run adds nothing twice
    with SecureState.open(ws.state_dir, source="cli", create=False) as state:
        broker = Broker(state.db, state.state_dir / "private", state.audit)
        shown = broker.show("patients")
        assert {(g["principal"], g["budget"]) for g in shown["grants"]} == {
            ("research", "1"), ("class-2026", "0.5")}  # fmt: skip
        assert "name" not in shown["spec"]["columns"]
        dana = broker.asker("dana")
        out = broker.query(dana, "patients", {"kind": "mean", "column": "age", "rho": "0.5"})
        assert 18 <= out["value"] <= 95
        assert broker.datasets(broker.asker("admin")) == []  # staff holds no grant
    assert not list((ws.state_dir / "protected").glob(".patients-dp*"))


def test_the_labs_are_handed_out_and_edits_are_kept(tmp_path: Path) -> None:
    """shared/labs for the class, home/<user>/labs for each demo user; nothing overwritten."""
    shipped = teaching_notebooks()
    assert len(shipped) == 5
    ws = prepare(tmp_path / "ws", rows=10)
    names = sorted(p.name for p in shipped)
    for place in ["shared", *(f"home/{user}" for user in ("admin", "dana", "sam", "ines"))]:
        assert sorted(p.name for p in (ws.notebooks / place / "labs").iterdir()) == names
    assert (ws.notebooks / "shared" / "labs" / names[0]).read_bytes() == shipped[0].read_bytes()
    home = ws.notebooks / "home" / "sam"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700, "a home is private, as the server makes it"
    edited = home / "labs" / names[1]
    edited.write_text("my work")
    (ws.notebooks / "shared" / "labs" / names[2]).unlink()  # an instructor withdrew one
    prepare(tmp_path / "ws", rows=10)
    assert edited.read_text() == "my work"
    assert (ws.notebooks / "shared" / "labs" / names[2]).exists(), "a missing one comes back"
