from __future__ import annotations

import hashlib
import json

import pytest

from jupyter_secure.audit.logger import AuditLogger, Identity, Resource


def test_record_shape_is_cloudtrail_like(trail) -> None:  # type: ignore[no-untyped-def]
    logger: AuditLogger = trail.logger
    receipt = logger.record(
        "UserAdded",
        identity=Identity("OSUser", "root"),
        request={"name": "alice", "roles": ["student"], "groups": [], "passwordSet": True},
        resources=[Resource("user", "alice")],
    )
    line = (trail.directory / "segment-00000001.jsonl").read_bytes().splitlines()[-1]
    event = json.loads(line)
    assert event["seq"] == receipt.seq
    assert event["hash"] == receipt.hash
    for key in (
        "eventID",
        "eventTime",
        "eventSource",
        "eventName",
        "userIdentity",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "errorCode",
        "resources",
        "readOnly",
        "prev",
    ):
        assert key in event
    assert event["userIdentity"] == {
        "type": "OSUser",
        "name": "root",
        "roles": [],
        "groups": [],
        "sessionId": None,
        "mfa": False,
    }
    assert event["eventTime"].endswith("Z")


def test_code_is_kept_as_text_and_hash_by_default(trail) -> None:  # type: ignore[no-untyped-def]
    code = "df = load('patients')\nprint(df.head())"
    fields = trail.logger.code_fields(code)
    assert fields["code"] == code
    assert fields["codeSha256"] == hashlib.sha256(code.encode()).hexdigest()
    assert fields["codeTruncated"] is False


def test_hash_only_mode_keeps_no_text(trail) -> None:  # type: ignore[no-untyped-def]
    trail.logger.code_record = "hash"
    fields = trail.logger.code_fields("token = 'sk-live-123'")
    assert "code" not in fields
    assert fields["codeBytes"] == len("token = 'sk-live-123'")


def test_long_code_is_cut_but_hashed_whole(trail) -> None:  # type: ignore[no-untyped-def]
    trail.logger.code_max_bytes = 10
    code = "x = 1\n" * 100
    fields = trail.logger.code_fields(code)
    assert len(fields["code"].encode()) <= 10
    assert fields["codeTruncated"] is True
    assert fields["codeSha256"] == hashlib.sha256(code.encode()).hexdigest()


def test_unknown_source_is_refused(trail) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="unknown event source"):
        AuditLogger(trail.sink, source="browser")
