from __future__ import annotations

import pytest
from sqlalchemy import func, select

from jupyter_secure.errors import InvalidInput
from jupyter_secure.identity.passwords import verify_password
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.storage.database import Database
from jupyter_secure.storage.models import User, UserRole


def test_add_list_disable_enable_remove(db: Database) -> None:
    users = UserDirectory()
    with db.write() as s:
        info = users.add(
            s, "alice", roles=["data_scientist", "student"], groups=["ward7"], password="p" * 12
        )
    assert info.roles == ("data_scientist", "student")
    with db.write() as s:
        assert users.set_disabled(s, "alice", True)
        assert not users.set_disabled(s, "alice", True)
    with db.read() as s:
        [listed] = users.list(s)
        assert listed.disabled
        assert listed.groups == ("ward7",)
    with db.write() as s:
        users.remove(s, "alice")
    with db.read() as s:
        assert users.list(s) == []
        assert s.scalar(select(func.count()).select_from(UserRole)) == 0


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"name": "Alice"}, "name", "use lower case"),
        ({"name": "1abc"}, "name", "not a valid name"),
        ({"name": "a" * 65}, "name", "not a valid name"),
        ({"roles": ["admn"]}, "role", "did you mean 'admin'"),
        ({"roles": []}, "role", "at least one role"),
        ({"groups": ["Bad Group"]}, "group", "not a valid name"),
        ({"password": "short"}, "password", "at least 12"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    db: Database, kwargs: dict[str, object], field: str, message: str
) -> None:
    args: dict[str, object] = {"name": "bob", "roles": ["student"], "groups": [], "password": None}
    args.update(kwargs)
    name = args.pop("name")
    with pytest.raises(InvalidInput, match=message) as info, db.write() as s:
        UserDirectory().add(s, name, **args)  # type: ignore[arg-type]
    assert info.value.field == field
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_duplicate_names_are_refused(db: Database) -> None:
    with db.write() as s:
        UserDirectory().add(s, "carol", roles=["viewer"])
    with pytest.raises(InvalidInput, match="already exists"), db.write() as s:
        UserDirectory().add(s, "carol", roles=["viewer"])


def test_set_password(db: Database) -> None:
    users = UserDirectory()
    with db.write() as s:
        users.add(s, "dave", roles=["viewer"])
        users.set_password(s, "dave", "a much longer secret")
    with db.read() as s:
        stored = users.get(s, "dave").password_hash
    assert verify_password(stored, "a much longer secret")
    with pytest.raises(InvalidInput, match="no user named 'erin'"), db.write() as s:
        users.set_password(s, "erin", "a much longer secret")
