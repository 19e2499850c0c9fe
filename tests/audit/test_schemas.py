"""The event schemas: closed set, paths mirror ids, every field described, limits stated."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_secure.audit.logger import AuditLogger, Identity
from jupyter_secure.audit.schemas import (
    ID_PREFIX,
    SCHEMA_DIR,
    AuditSchema,
    AuditSchemaError,
    SchemaSet,
    load_schemas,
    snake_name,
)


def _walk(props: dict[str, object], where: str):  # type: ignore[no-untyped-def]
    for name, spec in props.items():
        assert isinstance(spec, dict), where
        yield f"{where}.{name}", spec
        if isinstance(spec.get("properties"), dict):
            yield from _walk(spec["properties"], f"{where}.{name}")


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*/v*.yaml")), ids=lambda p: p.parent.name)
def test_schema_file_conventions(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert raw["$id"] == f"{ID_PREFIX}{path.parent.name}/{path.stem}"
    assert snake_name(raw["title"]) == path.parent.name
    assert "Limitations:" in raw["description"], "say what the event does not record"
    for where, spec in _walk(raw["properties"], raw["title"]):
        assert spec.get("description"), f"{where} has no description"


def test_envelope_fields_are_described() -> None:
    envelope = yaml.safe_load((SCHEMA_DIR.parent / "envelope.yaml").read_text())
    for where, spec in _walk(envelope["properties"], "envelope"):
        if where.count(".") == 1 or "userIdentity" in where:
            assert spec.get("description"), f"{where} has no description"


def test_unknown_event_names_are_refused(trail) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError, match="no audit schema"):
        trail.logger.build("UserAdd", identity=Identity.system())


def test_events_that_do_not_fit_their_schema_are_refused(trail) -> None:  # type: ignore[no-untyped-def]
    logger: AuditLogger = trail.logger
    with pytest.raises(AuditSchemaError):
        logger.build("UserAdded", identity=Identity.system(), request={"name": "x"})
    with pytest.raises(AuditSchemaError):
        logger.build(
            "UserAdded",
            identity=Identity.system(),
            request={"name": "x", "roles": [], "groups": [], "passwordSet": True, "password": "pw"},
        )


def test_all_schemas_load() -> None:
    """Every shipped schema passes the Jupyter Events metaschema and compiles.

    The product does both on an event's first use, not at start (that cost every
    CLI command ~1.3 s), so this test is where a broken schema is caught.
    """
    schemas = load_schemas()
    names = schemas.names()
    assert "StateInitialized" in names
    assert len(names) == len(list(SCHEMA_DIR.glob("*/v*.yaml")))
    for schema in schemas:
        assert schema.schema.id == schema.id
        assert callable(schema.compiled)
    schemas.check()


@pytest.mark.parametrize(
    "breakage",
    [
        {"$id": "not a URI"},  # the Jupyter Events metaschema wants a URI
        {"properties": {"eventName": {"type": 5}}},  # not a JSON Schema at all
    ],
)
def test_a_broken_schema_is_named_when_checked(breakage: dict) -> None:  # type: ignore[type-arg]
    """What the server's start-up check (SchemaSet.check) raises for a schema that a
    modified install broke: AuditSchemaError naming the file, not a library's error."""
    good = load_schemas().get("UserAdded")
    merged = copy.deepcopy(good.merged)
    for key, value in breakage.items():
        if isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    broken = AuditSchema(good.name, good.version, good.id, good.path, merged)
    with pytest.raises(AuditSchemaError, match="user_added"):
        SchemaSet({good.name: broken}).check()


VALID = {
    "eventVersion": "1",
    "eventID": "01a218e1-b8f0-7000-9155-bac5b1b501ca",
    "eventTime": "2026-11-26T17:22:55.856575Z",
    "eventSource": "jupyter-secure.cli",
    "eventName": "UserAdded",
    "userIdentity": {
        "type": "OSUser",
        "name": "root",
        "roles": [],
        "groups": [],
        "sessionId": None,
        "mfa": False,
    },
    "sourceIPAddress": None,
    "userAgent": "x",
    "requestParameters": {"name": "a", "roles": ["admin"], "groups": [], "passwordSet": True},
    "responseElements": None,
    "errorCode": None,
    "errorMessage": None,
    "resources": [{"type": "user", "name": "a"}],
    "readOnly": False,
}
PATHS = [
    ("eventVersion",),
    ("eventID",),
    ("eventTime",),
    ("eventSource",),
    ("eventName",),
    ("userIdentity", "type"),
    ("userIdentity", "mfa"),
    ("userIdentity", "roles"),
    ("requestParameters", "name"),
    ("requestParameters", "passwordSet"),
    ("resources",),
    ("readOnly",),
    ("errorCode",),
]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=40),
    st.lists(st.text(max_size=5), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PATHS), junk, st.booleans())
def test_compiled_validation_agrees_with_jupyter_events(path, value, delete) -> None:  # type: ignore[no-untyped-def]
    """The fast per-event validator accepts and refuses exactly what jupyter_events does."""
    schema = load_schemas().get("UserAdded")
    event = copy.deepcopy(VALID)
    target = event
    for key in path[:-1]:
        target = target[key]
    if delete:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    try:
        schema.schema.validate(event)
        reference_ok = True
    except jsonschema.ValidationError:
        reference_ok = False
    try:
        schema.validate(event)
        fast_ok = True
    except AuditSchemaError:
        fast_ok = False
    assert fast_ok == reference_ok, (path, value, delete)
