"""Shared fixtures for the sign-in service tests: a SignIn on both backends, frozen clock."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from helpers import PASSWORD

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.audit.logger import AuditLogger
from jupyter_secure.audit.sink import AuditSink
from jupyter_secure.identity.signin import SignIn, SignInPolicy
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.policy.scopes import scopes_held
from jupyter_secure.storage.database import Database
from jupyter_secure.storage.keys import KeyRing
from jupyter_secure.storage.models import User
from jupyter_secure.storage.secrets import SecretStore

NOW = 1_800_000_000.0


@pytest.fixture
def service(db: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    secrets = SecretStore(db, KeyRing([KeyRing.generate_key()]))
    sink = AuditSink(
        tmp_path / "audit", "trail-r", CheckpointSigner(CheckpointSigner.generate_raw())
    )
    audit = AuditLogger(sink, source="server")
    sink.open()
    clock = [NOW]
    svc = SignIn(
        db, secrets, audit, SignInPolicy(), user_scopes=scopes_held, clock=lambda: clock[0]
    )
    svc.test_clock = clock  # type: ignore[attr-defined]
    with db.write() as s:
        UserDirectory().add(s, "alice", roles=["student"], password=PASSWORD)
    # Enrol directly: a known secret, as if the first code had verified at NOW - 90.
    secret = pyotp.random_base32(32)
    with db.write() as s:
        user = s.query(User).filter_by(name="alice").one()
        secrets.put(s, f"totp/{user.id}", secret.encode())
        user.mfa_enrolled_at = user.created_at
        user.mfa_last_step = int((NOW - 90) // 30)
    yield svc, secret
    sink.close()
