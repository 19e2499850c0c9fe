"""The closed set of audit event schemas, validated with jupyter_events.

Each event has a versioned schema at ``event_schemas/<snake_name>/v<N>.yaml``
whose ``$id`` ends in ``audit/<snake_name>/v<N>`` (the path mirrors the id).
It describes the event's own ``requestParameters``, ``responseElements`` and
``resources``; the shared CloudTrail-shaped fields come from
``envelope.yaml``. The merged schema is what jupyter_events'
:class:`~jupyter_events.schema.EventSchema` validates against.

These schemas live in a registry of our own, never on the server's shared
``/api/events`` bus, which any user may post to and subscribe to.

Each schema is checked against the Jupyter Events metaschema by
jupyter_events. Each *event* is then checked by a validator that
``fastjsonschema`` compiles from the same merged schema: jsonschema's
interpreter (what jupyter_events uses per event) costs ~165 µs an event here,
which alone caps a process below 6,000 events/s; the compiled one costs
~7 µs. ``tests/audit/test_schemas.py`` checks that the two agree on valid and
mutated events, and that every shipped schema passes the metaschema.

Both the metaschema check and the compilation happen the first time an event
name is used, not when the set is loaded: for all 44 schemas they cost ~1.3 s
in a fresh interpreter (``bench/cli_bench.py``), which every ``jupyter secure``
command paid at start while recording one or two events. Reading, id and path
checks and merging stay eager, so a misnamed or misplaced schema still stops any
process at start; the server, which lives long, also checks and compiles them
all at start (:meth:`SchemaSet.check`).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema
import yaml

if TYPE_CHECKING:
    from jupyter_events.schema import EventSchema

__all__ = ["AuditSchema", "AuditSchemaError", "SchemaSet", "load_schemas", "snake_name"]

SCHEMA_DIR = Path(__file__).with_name("event_schemas")
ENVELOPE = Path(__file__).with_name("envelope.yaml")
ID_PREFIX = "https://schemas.jupyter-secure.org/audit/"
_OVERRIDABLE = {"requestParameters", "responseElements", "resources"}


def snake_name(event_name: str) -> str:
    """``UserAdded`` -> ``user_added`` (the schema's directory name)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event_name).lower()


class AuditSchemaError(ValueError):
    """An event does not fit its schema (a bug in the code that recorded it)."""


@dataclass(frozen=True)
class AuditSchema:
    """One event's merged schema; checked and compiled on first use."""

    name: str
    version: str
    id: str
    path: Path
    merged: dict[str, Any] = field(repr=False, compare=False)

    @functools.cached_property
    def schema(self) -> EventSchema:
        """The schema as jupyter_events loads it.

        Raises :class:`AuditSchemaError` naming the file when the schema breaks the
        Jupyter Events metaschema.
        """
        from jupyter_events.schema import EventSchema

        try:
            return EventSchema(self.merged)
        except Exception as exc:
            raise AuditSchemaError(f"{self.path}: not a valid event schema: {exc}") from None

    @functools.cached_property
    def compiled(self) -> Callable[[Any], Any]:
        """The per-event validator; the metaschema check comes first, as when eager."""
        _ = self.schema
        try:
            return fastjsonschema.compile(self.merged)
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise AuditSchemaError(f"{self.path}: cannot compile: {exc}") from None

    def validate(self, record: dict[str, Any]) -> None:
        """Raise :class:`AuditSchemaError` when ``record`` does not fit."""
        try:
            self.compiled(record)
        except fastjsonschema.JsonSchemaException as exc:
            raise AuditSchemaError(f"{self.name} v{self.version}: {exc}") from None


class SchemaSet:
    """Every event schema shipped with the package, by event name."""

    def __init__(self, schemas: dict[str, AuditSchema]) -> None:
        self._schemas = schemas

    def __contains__(self, name: object) -> bool:
        return name in self._schemas

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._schemas.values(), key=lambda s: s.name))

    def names(self) -> list[str]:
        return sorted(self._schemas)

    def check(self) -> None:
        """Check and compile every schema now (raises :class:`AuditSchemaError`).

        The server calls this at start, so a broken schema stops it there rather
        than failing the first time its event is recorded (perhaps mid-repair);
        a command-line process, which records one or two events, does not.
        """
        for schema in self._schemas.values():
            _ = schema.compiled

    def get(self, name: str) -> AuditSchema:
        try:
            return self._schemas[name]
        except KeyError:
            raise KeyError(f"no audit schema for event {name!r}") from None


def _merge(envelope: dict[str, Any], event: dict[str, Any], name: str) -> dict[str, Any]:
    merged = copy.deepcopy(envelope)
    merged["$id"] = event["$id"]
    merged["version"] = event["version"]
    merged["title"] = event["title"]
    merged["description"] = event["description"]
    extra = set(event.get("properties", {})) - _OVERRIDABLE
    if extra:
        raise ValueError(f"schema {name} may only describe {sorted(_OVERRIDABLE)}, not {extra}")
    merged["properties"]["eventName"] = {**merged["properties"]["eventName"], "const": name}
    merged["properties"]["eventVersion"] = {
        **merged["properties"]["eventVersion"],
        "const": str(event["version"]),
    }
    for key, value in event.get("properties", {}).items():
        merged["properties"][key] = value
    return merged


def _load_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~5x faster
    return yaml.load(path.read_text("utf-8"), Loader=loader)  # noqa: S506 - a safe loader


@functools.cache
def load_schemas() -> SchemaSet:
    """Load every schema once per process (checked and compiled when first used)."""
    envelope = _load_yaml(ENVELOPE)
    found: dict[str, AuditSchema] = {}
    for path in sorted(SCHEMA_DIR.glob("*/v*.yaml")):
        raw = _load_yaml(path)
        name = str(raw["title"])
        version = str(raw["version"])
        expected_id = f"{ID_PREFIX}{path.parent.name}/{path.stem}"
        if raw.get("$id") != expected_id:
            raise ValueError(f"{path}: $id must be {expected_id}")
        if snake_name(name) != path.parent.name or path.stem != f"v{version}":
            raise ValueError(f"{path}: title {name} / version {version} do not match the path")
        found[name] = AuditSchema(name, version, expected_id, path, _merge(envelope, raw, name))
    return SchemaSet(found)
