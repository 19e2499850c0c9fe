"""Which masking role a person's outputs get, and their per-person key."""

from __future__ import annotations

from jupyter_secure.channel.audience import NO_ROLE, Audience, masking_role, person_key
from jupyter_secure.masking import MaskingPolicy

POLICY = MaskingPolicy()


def test_least_restrictive_known_role_wins() -> None:
    assert masking_role(["student", "data_scientist"], [], POLICY) == "data_scientist"
    assert masking_role(["viewer"], [], POLICY) == "viewer"


def test_admin_raw_view_needs_the_unmask_scope() -> None:
    assert masking_role(["admin"], ["secure:unmask"], POLICY) == "admin"
    assert masking_role(["admin"], [], POLICY) == NO_ROLE
    assert masking_role(["admin", "instructor"], [], POLICY) == "instructor"


def test_unknown_roles_get_the_most_restrictive_policy() -> None:
    role = masking_role(["intern"], [], POLICY)
    assert role == NO_ROLE
    assert POLICY.for_role(role).known_role is False


def test_person_keys_differ_per_person_and_are_stable() -> None:
    site = b"s" * 32
    assert person_key(site, "alice") == person_key(site, "alice")
    assert person_key(site, "alice") != person_key(site, "bob")
    assert len(person_key(site, "alice")) == 32
    audience = Audience(POLICY, site)
    a = audience.role_policy("alice", ["student"], [])
    assert a is audience.role_policy("alice", ["student"], [])
    assert a.key == person_key(site, "alice")
