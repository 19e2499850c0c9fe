"""Concurrent sign-in attempts on both backends: a code is accepted once, a lockout holds.

The handlers run these steps on a thread pool, so two requests carrying the
same code can reach the database at the same moment; on PostgreSQL only the
user-row lock serialises them.
"""

from __future__ import annotations

import threading

import pyotp
from helpers import PASSWORD

from jupyter_secure.identity.signin import SignIn
from jupyter_secure.storage.database import Database
from jupyter_secure.storage.models import User


def pre_mfa_tokens(svc: SignIn, n: int) -> list[str]:
    tokens = []
    for _ in range(n):
        out = svc.password("alice", PASSWORD, ip="10.0.0.1", user_agent=None)
        assert out.ok
        assert out.next == "mfa"
        tokens.append(out.token)
    return tokens


def run_together(fns):  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = fns[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_one_code_in_parallel_is_accepted_once(service) -> None:  # type: ignore[no-untyped-def]
    svc, secret = service
    code = pyotp.TOTP(secret).at(svc.test_clock[0])
    tokens = pre_mfa_tokens(svc, 6)
    results = run_together(
        [lambda t=t: svc.second_factor(t, otp=code, ip=None, user_agent=None) for t in tokens]
    )
    assert sum(r.ok for r in results) == 1


def test_one_recovery_code_in_parallel_is_used_once(service, db: Database) -> None:  # type: ignore[no-untyped-def]
    svc, _ = service
    from jupyter_secure.identity import recovery
    from jupyter_secure.storage.models import RecoveryCode

    code = recovery.new_codes(1)[0]
    with db.write() as s:
        user = s.query(User).filter_by(name="alice").one()
        s.add(
            RecoveryCode(
                user_id=user.id,
                code_hash=recovery.hash_code(svc.recovery_key, code),
                created_at=user.created_at,
            )
        )
    tokens = pre_mfa_tokens(svc, 5)
    results = run_together(
        [
            lambda t=t: svc.second_factor(t, recovery_code=code, ip=None, user_agent=None)
            for t in tokens
        ]
    )
    assert sum(r.ok for r in results) == 1


def test_a_burst_of_wrong_codes_is_throttled_then_locked(service, db: Database) -> None:  # type: ignore[no-untyped-def]
    svc, secret = service
    clock = svc.test_clock
    tokens = pre_mfa_tokens(svc, 12)
    results = run_together(
        [lambda t=t: svc.second_factor(t, otp="000000", ip=None, user_agent=None) for t in tokens]
    )
    assert not any(r.ok for r in results)
    # Two free failures, then every attempt waits: a burst checks two codes, not twelve.
    assert sum(r.error == "invalid" for r in results) == 2
    assert sum(r.error == "throttled" for r in results) == 10
    # Bursts spaced past each wait still end in a lockout, and then even the right
    # code is refused.
    for _ in range(svc.policy.max_failures):
        clock[0] += svc.policy.throttle_max + 1
        burst = run_together(
            [
                lambda t=t: svc.second_factor(t, otp="000000", ip=None, user_agent=None)
                for t in tokens[:4]
            ]
        )
        assert not any(r.ok for r in burst)
    with db.read() as s:
        assert s.query(User).filter_by(name="alice").one().locked_until is not None
    right = pyotp.TOTP(secret).at(clock[0])
    clock[0] += svc.policy.throttle_max + 1
    refused = svc.second_factor(tokens[-1], otp=right, ip=None, user_agent=None)
    assert not refused.ok
    assert not svc.password("alice", PASSWORD, ip=None, user_agent=None).ok
