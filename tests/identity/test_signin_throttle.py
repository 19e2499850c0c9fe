"""Growing delays, from the attacker's side: spraying from one address, guessing one account."""

from __future__ import annotations

from helpers import PASSWORD

from jupyter_secure.identity.signin import SignIn
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.storage.database import Database
from jupyter_secure.storage.models import User


def test_spraying_from_one_address_is_slowed_without_locking_anyone(service, db: Database) -> None:  # type: ignore[no-untyped-def]
    svc: SignIn = service[0]
    free = svc.policy.ip_free_failures
    names = [f"target{i:02d}" for i in range(free + 3)]
    with db.write() as s:
        for name in names:
            UserDirectory().add(s, name, roles=["student"], password=PASSWORD)
    outcomes = [
        svc.password(name, "Summer2026!Summer", ip="203.0.113.9", user_agent=None) for name in names
    ]
    # Each account sees one failure (its own free one); the address has used up its allowance.
    assert [o.error for o in outcomes[:free]] == ["invalid"] * free
    assert {o.error for o in outcomes[free + 1 :]} == {"throttled"}
    assert all(o.retry_after and o.retry_after >= 1 for o in outcomes[free + 1 :])
    # The right password from that address waits too; from another address it goes through.
    assert svc.password("alice", PASSWORD, ip="203.0.113.9", user_agent=None).error == "throttled"
    assert svc.password("alice", PASSWORD, ip="198.51.100.7", user_agent=None).ok
    with db.read() as s:
        assert all(u.locked_until is None for u in s.query(User).all())


def test_the_address_limit_can_be_switched_off(service, db: Database) -> None:  # type: ignore[no-untyped-def]
    svc: SignIn = service[0]
    svc.policy.ip_free_failures = 0
    with db.write() as s:
        for i in range(40):
            UserDirectory().add(s, f"pupil{i:02d}", roles=["student"], password=PASSWORD)
    errors = {
        svc.password(f"pupil{i:02d}", "typo typo typo", ip="10.1.1.1", user_agent=None).error
        for i in range(40)
    }
    assert errors == {"invalid"}


def test_guessing_one_account_waits_longer_each_time(service) -> None:  # type: ignore[no-untyped-def]
    svc: SignIn = service[0]
    clock = svc.test_clock  # type: ignore[attr-defined]
    waits = []
    for _ in range(4):
        out = svc.password("alice", "not the password", ip=None, user_agent=None)
        if out.error == "throttled":
            waits.append(out.retry_after)
            clock[0] += out.retry_after or 0
            out = svc.password("alice", "not the password", ip=None, user_agent=None)
        assert out.error == "invalid"
    assert waits == [1, 2]
