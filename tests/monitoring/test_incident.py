"""Freezing an account: every way in closes, the trail says so, and it still verifies."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from helpers import PASSWORD, run_cli
from sqlalchemy import select

from jupyter_secure.audit.checkpoints import parse_checkpoint
from jupyter_secure.audit.index import QueryFilter
from jupyter_secure.audit.logger import Identity
from jupyter_secure.audit.segments import CHECKPOINTS_FILE
from jupyter_secure.audit.verify import verify_trail
from jupyter_secure.errors import InvalidInput
from jupyter_secure.identity.signin import SignIn, SignInPolicy
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.monitoring.incident import freeze
from jupyter_secure.policy.scopes import scopes_held
from jupyter_secure.state import SecureState, Store
from jupyter_secure.storage.models import ApiToken, LoginSession, User

pytestmark = pytest.mark.timeout(300)

ADMIN = Identity("OSUser", "root")


def run_secure(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, *args, timeout=120)


@dataclass
class Signed:
    state: SecureState
    signin: SignIn
    cookie: str
    api_token: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def signed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Signed]:
    """alice, signed in with her second factor, holding an API token; bob, untouched."""
    db_url = "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    state = SecureState.open(tmp_path / "state", db_url=db_url, source="cli", identity=ADMIN)
    try:
        signin = SignIn(
            state.db, state.secrets, state.audit, SignInPolicy(), user_scopes=scopes_held
        )
        secret = pyotp.random_base32(32)
        with state.db.write() as s:
            UserDirectory().add(s, "alice", roles=["data_scientist"], password=PASSWORD)
            UserDirectory().add(s, "bob", roles=["student"])
            alice = s.scalars(select(User).where(User.name == "alice")).one()
            state.secrets.put(s, f"totp/{alice.id}", secret.encode())
            alice.mfa_enrolled_at = alice.created_at
        first = signin.password("alice", PASSWORD, ip="10.0.0.1", user_agent="test")
        done = signin.second_factor(
            first.token or "", otp=pyotp.TOTP(secret).now(), ip="10.0.0.1", user_agent="test"
        )
        assert done.ok
        assert done.session is not None
        api_token, _ = signin.create_api_token(
            done.session, name="laptop", scopes=["api:read"], days=30, ip=None, user_agent=None
        )
        yield Signed(state, signin, done.token or "", api_token)
    finally:
        state.close()


def trail_bytes(state: SecureState) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(state.audit_dir.iterdir()) if p.is_file()}


def last_checkpoint_seq(state: SecureState) -> int:
    lines = (state.audit_dir / CHECKPOINTS_FILE).read_bytes().splitlines()
    return parse_checkpoint(lines[-1]).seq


def test_freeze_closes_every_way_in(signed: Signed) -> None:
    state, signin = signed.state, signed.signin
    assert signin.resolve(signed.cookie) is not None
    assert signin.token_user(signed.api_token) is not None
    checkpoints = state.sink.stats["checkpoints"]

    result = freeze(state.db, state.audit, "alice", "phone stolen\non the train", ADMIN)

    assert signin.resolve(signed.cookie) is None
    assert signin.token_user(signed.api_token) is None
    with state.db.read() as s:
        alice = s.scalars(select(User).where(User.name == "alice")).one()
        assert alice.disabled
        sessions = s.scalars(select(LoginSession).where(LoginSession.user_id == alice.id)).all()
        assert all(row.ended_at is not None for row in sessions)
        full = [row for row in sessions if row.end_reason == "incident"]
        assert [row.public_id for row in full] == list(result.sessions_ended)
        tokens = s.scalars(select(ApiToken).where(ApiToken.user_id == alice.id)).all()
        assert [t.id for t in tokens] == list(result.tokens_revoked)
        assert all(t.revoked_at is not None for t in tokens)
        bob = s.scalars(select(User).where(User.name == "bob")).one()
        assert not bob.disabled
    assert result.disabled
    assert len(result.sessions_ended) == 1
    assert len(result.tokens_revoked) == 1
    assert result.reason == "phone stolen on the train"  # one line
    assert result.checkpoint_error is None

    # The records, in the order of the steps, the incident record last.
    state.index.flush()
    tail = [e for _, e in state.index.query(QueryFilter(after_seq=result.record_seq - 4))]
    assert [e["eventName"] for e in tail] == [
        "UserDisabled",
        "SessionEnded",
        "ApiTokenRevoked",
        "IncidentFrozen",
    ]
    disabled, ended, revoked, incident = tail
    assert disabled["responseElements"] == {"sessionsEnded": 1, "tokensRevoked": 1}
    assert ended["userIdentity"]["sessionId"] == result.sessions_ended[0]
    assert ended["requestParameters"] == {"reason": "incident"}
    assert revoked["requestParameters"] == {"id": result.tokens_revoked[0]}
    assert incident["seq"] == result.record_seq
    assert incident["userIdentity"]["name"] == "root"
    assert incident["requestParameters"] == {"user": "alice", "reason": result.reason}
    assert incident["responseElements"] == {
        "incidentId": result.incident_id,
        "disabled": True,
        "sessionsEnded": 1,
        "tokensRevoked": 1,
        "kernelsToStop": "server",
    }
    assert {"type": "incident", "name": result.incident_id} in incident["resources"]
    by_resource = list(state.index.query(QueryFilter(resource=f"incident:{result.incident_id}")))
    assert [e["seq"] for _, e in by_resource] == [result.record_seq]

    # A signed checkpoint covers the incident record at once, and the trail verifies.
    assert state.sink.stats["checkpoints"] > checkpoints
    assert last_checkpoint_seq(state) >= result.record_seq
    report = verify_trail(
        state.audit_dir,
        public_keys=state.public_keys,
        expected_trail=state.trail_id,
        witness=state.index.witness(),
    )
    assert report.ok, report.problems
    assert report.signed_seq >= result.record_seq

    lines = result.lines()
    assert lines[1] == "1. account disabled"
    assert lines[2].startswith("2. ended 1 sign-in session(s)")
    assert lines[3].startswith("3. revoked 1 API token(s)")
    assert f"audit record #{result.record_seq}" in lines[4]
    assert lines[5].startswith("5. signed a checkpoint")
    assert "server shuts down alice's kernels" in lines[6]


def test_freezing_twice_says_already_disabled(signed: Signed) -> None:
    state = signed.state
    first = freeze(state.db, state.audit, "alice", "leak suspected", ADMIN)
    again = freeze(state.db, state.audit, "alice", "leak suspected", ADMIN)
    assert not again.disabled
    assert again.sessions_ended == ()
    assert again.tokens_revoked == ()
    assert again.incident_id != first.incident_id
    assert "already disabled" in again.lines()[1]
    state.index.flush()
    names = [e["eventName"] for _, e in state.index.query(QueryFilter(after_seq=first.record_seq))]
    assert names == ["IncidentFrozen"]  # no second UserDisabled: nothing changed


def test_refusals_write_nothing(signed: Signed) -> None:
    state = signed.state
    state.index.flush()
    before = trail_bytes(state)
    with pytest.raises(InvalidInput, match="user: no user named 'mallory'"):
        freeze(state.db, state.audit, "mallory", "typo", ADMIN)
    with pytest.raises(InvalidInput, match="reason: say why"):
        freeze(state.db, state.audit, "alice", "  \n ", ADMIN)
    with pytest.raises(InvalidInput, match="reason: at most 500"):
        freeze(state.db, state.audit, "alice", "x" * 501, ADMIN)
    assert trail_bytes(state) == before
    assert signed.signin.resolve(signed.cookie) is not None
    assert signed.signin.token_user(signed.api_token) is not None


def test_incident_freeze_command(tmp_path: Path) -> None:
    from jupyter_secure.identity.sessions import STAGE_FULL, start_session
    from jupyter_secure.storage.models import utcnow

    state = tmp_path / "state"
    sd = ("--state-dir", str(state))
    assert run_secure(tmp_path, "init", *sd).returncode == 0
    r = run_secure(tmp_path, "user", "add", "sid", "--role", "student", "--no-password", *sd)
    assert r.returncode == 0, r.stderr
    r = run_secure(tmp_path, "user", "add", "ci-bot", "--role", "viewer", "--service", *sd)
    assert r.returncode == 0, r.stderr
    made = run_secure(tmp_path, "token", "create", "ci-bot", "--scope", "api:read", *sd)
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[0]
    store = Store.open(state, create=False)
    try:
        with store.db.write() as s:
            sid = s.scalars(select(User).where(User.name == "sid")).one()
            start_session(s, sid, STAGE_FULL, now=utcnow(), ip=None, user_agent=None)
    finally:
        store.close()

    frozen = run_secure(tmp_path, "incident", "freeze", "sid", "--reason", "lost laptop", *sd)
    assert frozen.returncode == 0, frozen.stderr
    out = frozen.stdout.splitlines()
    assert out[0].startswith("incident ")
    assert "froze sid (reason: lost laptop)" in out[0]
    assert out[1:4] == ["1. account disabled", out[2], "3. revoked 0 API token(s)"]
    assert out[2].startswith("2. ended 1 sign-in session(s): ")
    assert out[5].startswith("5. signed a checkpoint covering record #")
    assert "cannot stop them itself" in out[6]

    again = run_secure(tmp_path, "incident", "freeze", "sid", "--reason", "lost laptop", *sd)
    assert again.returncode == 0, again.stderr
    assert "1. account was already disabled" in again.stdout

    bot = run_secure(tmp_path, "incident", "freeze", "ci-bot", "--reason", "token leaked", *sd)
    assert bot.returncode == 0, bot.stderr
    assert "3. revoked 1 API token(s)" in bot.stdout
    with SecureState.open(state, source="cli", create=False, verify="newest") as opened:
        signin = SignIn(
            opened.db, opened.secrets, opened.audit, SignInPolicy(), user_scopes=scopes_held
        )
        assert signin.token_user(token) is None

    unknown = run_secure(tmp_path, "incident", "freeze", "nobody", "--reason", "typo", *sd)
    assert unknown.returncode == 2
    assert "user: no user named 'nobody'" in unknown.stderr
    no_reason = run_secure(tmp_path, "incident", "freeze", "sid", *sd)
    assert no_reason.returncode == 2
    assert "--reason: say why" in no_reason.stderr
    no_user = run_secure(tmp_path, "incident", "freeze", "--reason", "x", *sd)
    assert no_user.returncode == 2
    assert "user: missing" in no_user.stderr
    group = run_secure(tmp_path, "incident", *sd)
    assert group.returncode == 2

    q = run_secure(tmp_path, "audit", "query", "--event", "IncidentFrozen", "--json", *sd)
    records = [json.loads(line) for line in q.stdout.splitlines()]
    done = [(e["requestParameters"]["user"], e["responseElements"]["disabled"]) for e in records]
    assert done == [("sid", True), ("sid", False), ("ci-bot", True)]
    assert run_secure(tmp_path, "audit", "verify", *sd).returncode == 0
