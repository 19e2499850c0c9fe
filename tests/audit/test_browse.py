"""The audit browser's pure rules: parameters, who may be read about, the record shape."""

from __future__ import annotations

import datetime as dt

import pytest

from jupyter_secure.audit import browse
from jupyter_secure.errors import InvalidInput

NOW = 1_800_000_000.0


def refused(args: dict[str, str | None]) -> str:
    with pytest.raises(InvalidInput) as caught:
        browse.parse_request(args, now=NOW, known_events=["Login", "UserDisabled"])
    return caught.value.field


def test_defaults_and_durations() -> None:
    req = browse.parse_request({}, now=NOW)
    assert (req.limit, req.since_us, req.before, req.user) == (100, None, None, None)
    req = browse.parse_request({"since": "15m", "until": "1m", "limit": "500"}, now=NOW)
    assert req.since_us == int((NOW - 900) * 1e6)
    assert req.until_us == int((NOW - 60) * 1e6)
    assert req.limit == 500
    assert browse.parse_request({"since": "7d"}, now=NOW).since_us == int((NOW - 7 * 86400) * 1e6)
    iso = browse.parse_request({"since": "2027-01-15T08:00:00+01:00"}, now=NOW)
    seven_utc = dt.datetime(2027, 1, 15, 7, tzinfo=dt.UTC).timestamp()
    assert iso.since_us == int(seven_utc * 1_000_000)
    naive = browse.parse_request({"since": "2027-01-15T07:00:00"}, now=NOW)
    assert naive.since_us == iso.since_us  # no zone: UTC


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "garbage"}, "since"),
        ({"since": "3 fortnights"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"since": "1h", "until": "2h"}, "until"),
        ({"before": "0"}, "before"),
        ({"before": "x"}, "before"),
        ({"event": "NoSuchEvent"}, "event"),
        ({"event": "'; drop table"}, "event"),
        ({"user": "Robert'); --"}, "user"),
        ({"users": "sam"}, "users"),
    ],
)
def test_each_bad_parameter_is_refused_by_name(args: dict[str, str], field: str) -> None:
    assert refused(args) == field


def test_visible_users_are_the_viewer_and_members_of_their_groups() -> None:
    accounts = [("sam", ("c1",)), ("kim", ("c1", "c2")), ("bo", ("c2",)), ("root", ())]
    seen = browse.visible_users("ida", {"c1"}, accounts, {"c1": ("tia",), "c2": ("zed",)})
    assert seen == {"ida", "sam", "kim", "tia"}
    assert browse.visible_users("ida", set(), accounts) == {"ida"}


def test_a_record_is_visible_by_its_actor_or_a_user_resource_only() -> None:
    mine = {"userIdentity": {"name": "sam"}, "resources": []}
    about = {"userIdentity": {"name": "root"}, "resources": [{"type": "user", "name": "sam"}]}
    other = {"userIdentity": {"name": "bo"}, "resources": [{"type": "dataset", "name": "sam"}]}
    users = frozenset({"sam"})
    assert browse.is_visible(mine, users)
    assert browse.is_visible(about, users)
    assert not browse.is_visible(other, users)  # a dataset called "sam" is not sam
    assert browse.is_visible(other, None)


def test_a_visible_actor_does_not_reveal_what_they_did_to_someone_else() -> None:
    """sam is visible, but his record about bo (or about sam and bo) is about bo too."""
    to_bo = {"userIdentity": {"name": "sam"}, "resources": [{"type": "user", "name": "bo"}]}
    both = {
        "userIdentity": {"name": "root"},
        "resources": [{"type": "user", "name": "sam"}, {"type": "user", "name": "bo"}],
    }
    assert not browse.is_visible(to_bo, frozenset({"sam"}))
    assert not browse.is_visible(both, frozenset({"sam"}))
    assert browse.is_visible(both, frozenset({"sam", "bo"}))
    assert browse.is_visible(to_bo, None)


def test_summary_shape() -> None:
    event = {
        "seq": 7,
        "eventTime": "2026-11-27T10:00:00.123456Z",
        "eventName": "UserDisabled",
        "userIdentity": {"type": "User", "name": "root", "roles": ["admin"]},
        "sourceIPAddress": "127.0.0.1",
        "errorCode": None,
        "resources": [{"type": "user", "name": "sam"}],
        "requestParameters": {"name": "sam"},
        "responseElements": {"sessionsEnded": 1},
    }
    assert browse.summary(event) == {
        "seq": 7,
        "time": "2026-11-27T10:00:00.123456+00:00",
        "event": "UserDisabled",
        "user": "root",
        "roles": ["admin"],
        "sourceIp": "127.0.0.1",
        "errorCode": None,
        "resources": [{"type": "user", "name": "sam"}],
        "request": {"name": "sam"},
        "response": {"sessionsEnded": 1},
    }
