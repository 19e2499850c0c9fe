"""Role -> entity -> strategy: who sees what, validated, with a fail-closed default.

The default table follows the product's roles:

* ``admin`` sees values raw; every masked-or-not decision is still
  reported, so the audit trail records what an admin looked at.
* ``instructor`` sees partial values (last four digits, initials) and
  generalised quasi-identifiers.
* ``data_scientist`` gets keyed tokens for direct identifiers (joinable
  across tables) and generalised quasi-identifiers, with k-anonymity.
* ``student`` gets realistic fakes and generalised quasi-identifiers.
* ``auditor`` and ``viewer`` get everything detected redacted.

A role the policy does not know gets the most restrictive treatment:
every detected entity redacted, FREE_TEXT redacted whole, unlabelled text
columns scanned cell by cell. Unknown strategies, entities or roles in a
policy file are errors that name the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .config import ConfigError, CustomIdentifier, DetectionConfig
from .entities import ENTITY_INFO, Entity
from .strategies import GENERALIZE_DEPTH, Strategy
from .tokens import check_key

__all__ = [
    "DEFAULT_TABLE",
    "ROLES",
    "KAnonymityConfig",
    "MaskingPolicy",
    "PolicyError",
    "RolePolicy",
]

ROLES: tuple[str, ...] = ("admin", "instructor", "data_scientist", "student", "auditor", "viewer")
"""Role names used across the product."""

ANY = "*"
"""Table key for "every entity not listed" (custom identifiers, country packs)."""


class PolicyError(ConfigError):
    """A masking policy is invalid; the message names the offending field."""


def _table(**rows: str) -> dict[str, Strategy]:
    return {(ANY if k == "ANY" else k): Strategy(v) for k, v in rows.items()}


DEFAULT_TABLE: Mapping[str, Mapping[str, Strategy]] = {
    "admin": _table(ANY="raw", FREE_TEXT="raw", UNCLASSIFIED="raw"),
    "instructor": _table(
        ANY="partial", IP_ADDRESS="generalize", STREET_ADDRESS="redact",
        DATE_OF_BIRTH="generalize", POSTCODE="generalize", AGE="generalize", SEX="raw",
        FREE_TEXT="spans", UNCLASSIFIED="redact",
    ),
    "data_scientist": _table(
        ANY="token", DATE_OF_BIRTH="generalize", POSTCODE="generalize", AGE="generalize",
        SEX="raw", FREE_TEXT="spans", UNCLASSIFIED="redact",
    ),
    "student": _table(
        ANY="fake", DATE_OF_BIRTH="generalize", POSTCODE="generalize", AGE="generalize",
        SEX="generalize", FREE_TEXT="spans", UNCLASSIFIED="redact",
    ),
    "auditor": _table(ANY="redact", FREE_TEXT="redact", UNCLASSIFIED="redact"),
    "viewer": _table(ANY="redact", FREE_TEXT="redact", UNCLASSIFIED="redact"),
}  # fmt: skip
"""Strategy per role and entity; ``*`` covers entities a row does not name."""

_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


@dataclass(frozen=True)
class KAnonymityConfig:
    """k-anonymity over quasi-identifiers before row-level frames are shown.

    ``max_suppression`` is the share of shown rows that may be suppressed
    instead of generalising a whole column one level further.
    """

    k: int = 5
    max_suppression: float = 0.05
    exempt_roles: frozenset[str] = frozenset({"admin"})

    def __post_init__(self) -> None:
        if not 2 <= self.k <= 1000:
            raise PolicyError("k_anonymity.k: must be between 2 and 1000")
        if not 0.0 <= self.max_suppression <= 1.0:
            raise PolicyError("k_anonymity.max_suppression: must be between 0 and 1")


def _check_strategy(entity: str, strategy: Strategy, where: str) -> None:
    if strategy is Strategy.SPANS and entity not in (Entity.FREE_TEXT, ANY):
        raise PolicyError(f"{where}: strategy 'spans' only applies to FREE_TEXT")
    if strategy is Strategy.GENERALIZE and entity not in GENERALIZE_DEPTH and entity != ANY:
        raise PolicyError(
            f"{where}: strategy 'generalize' is not defined for {entity}"
            f" (only for {', '.join(sorted(GENERALIZE_DEPTH))})"
        )
    if entity == Entity.FREE_TEXT and strategy not in (
        Strategy.RAW, Strategy.REDACT, Strategy.SPANS, Strategy.SUPPRESS, Strategy.DROP
    ):  # fmt: skip
        raise PolicyError(
            f"{where}: FREE_TEXT takes raw, redact, spans, suppress or drop, not {strategy}"
        )


def _parse_strategy(value: object, where: str) -> Strategy:
    try:
        return Strategy(str(value))
    except ValueError:
        known = ", ".join(s.value for s in Strategy)
        raise PolicyError(f"{where}: unknown strategy {value!r} (choose one of {known})") from None


@dataclass(frozen=True, eq=False)
class RolePolicy:
    """Everything ``mask_frame`` needs to mask for one role.

    Built by :meth:`MaskingPolicy.for_role`. ``key`` (>= 32 bytes, from the
    secret store) drives tokens and fakes; without it those strategies fall
    back to redaction.
    """

    role: str
    known_role: bool
    strategies: Mapping[str, Strategy]
    detection: DetectionConfig
    column_strategies: Mapping[str, Strategy] = field(default_factory=dict)
    kanon: KAnonymityConfig | None = None
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.key is not None:
            object.__setattr__(self, "key", check_key(self.key))

    def strategy_for(self, entity: str, column: str | None = None) -> Strategy:
        """The strategy for ``entity`` (in ``column``, if a per-column override exists)."""
        if column is not None and column in self.column_strategies:
            return self.column_strategies[column]
        found = self.strategies.get(entity)
        if found is not None:
            return found
        return self.strategies.get(ANY, Strategy.REDACT)

    @cached_property
    def restricted(self) -> bool:
        """True unless every strategy is ``raw``: restricted roles get cells scanned too."""
        return any(s is not Strategy.RAW for s in self.strategies.values()) or any(
            s is not Strategy.RAW for s in self.column_strategies.values()
        )

    @cached_property
    def free_text_spans_allowed(self) -> bool:
        """Span-level masking of FREE_TEXT needs an NER model or the explicit opt-in."""
        return self.detection.ner is not None or self.detection.free_text_rules_only

    @cached_property
    def fingerprint(self) -> str:
        """Digest of everything that changes masking output (the key by digest only)."""
        parts = [
            self.role,
            repr(self.known_role),
            repr(sorted((k, v.value) for k, v in self.strategies.items())),
            repr(sorted((k, v.value) for k, v in self.column_strategies.items())),
            repr(self.kanon),
            self.detection.fingerprint,
            hashlib.sha256(self.key).hexdigest() if self.key else "-",
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _most_restrictive(entities: Iterable[str]) -> dict[str, Strategy]:
    table = dict.fromkeys(entities, Strategy.REDACT)
    table[ANY] = Strategy.REDACT
    return table


@dataclass(frozen=True, eq=False)
class MaskingPolicy:
    """The site's masking policy: the role table, detection settings, k-anonymity.

    >>> policy = MaskingPolicy()
    >>> policy.for_role("student").strategy_for("EMAIL")
    <Strategy.FAKE: 'fake'>
    >>> policy.for_role("intruder").strategy_for("FREE_TEXT")
    <Strategy.REDACT: 'redact'>
    """

    roles: Mapping[str, Mapping[str, Strategy]] = field(default_factory=lambda: DEFAULT_TABLE)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    column_strategies: Mapping[str, Mapping[str, Strategy]] = field(default_factory=dict)
    k_anonymity: KAnonymityConfig = field(default_factory=KAnonymityConfig)

    def __post_init__(self) -> None:
        known = self.detection.known_entities | {ANY}
        for role, table in self.roles.items():
            if not _ROLE_NAME.fullmatch(role):
                raise PolicyError(f"roles.{role}: role names are lower-case words")
            for entity, strategy in table.items():
                where = f"roles.{role}.{entity}"
                if entity not in known:
                    raise PolicyError(f"{where}: unknown entity {entity!r}")
                if not isinstance(strategy, Strategy):
                    raise PolicyError(f"{where}: not a Strategy")
                _check_strategy(entity, strategy, where)
            if ANY not in table:
                raise PolicyError(f"roles.{role}: needs a '*' entry for unlisted entities")
        for role, columns in self.column_strategies.items():
            if role not in self.roles:
                raise PolicyError(f"columns.{role}: unknown role {role!r}")
            for column, strategy in columns.items():
                if strategy is Strategy.SPANS:
                    raise PolicyError(f"columns.{role}.{column}: 'spans' is not a column strategy")

    def for_role(self, role: str, *, key: bytes | None = None) -> RolePolicy:
        """The policy for one role; an unknown role gets the most restrictive one."""
        table = self.roles.get(role)
        kanon = None if role in self.k_anonymity.exempt_roles else self.k_anonymity
        if table is None:
            return RolePolicy(
                role=role,
                known_role=False,
                strategies=_most_restrictive(str(e) for e in ENTITY_INFO),
                detection=self.detection,
                kanon=self.k_anonymity,
                key=key,
            )
        return RolePolicy(
            role=role,
            known_role=True,
            strategies=dict(table),
            detection=self.detection,
            column_strategies=dict(self.column_strategies.get(role, {})),
            kanon=kanon,
            key=key,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MaskingPolicy:
        """Build a policy from parsed YAML/JSON; errors name the field.

        Role tables in ``data["roles"]`` are merged over the defaults (a new
        role must list ``*``). See ``docs/masking.md`` for the format.
        """
        allowed = {"roles", "detection", "columns", "k_anonymity"}
        extra = sorted(set(data) - allowed)
        if extra:
            raise PolicyError(f"{extra[0]}: unknown policy section (known: {sorted(allowed)})")
        detection = _detection_from_mapping(_mapping(data.get("detection", {}), "detection"))
        roles: dict[str, dict[str, Strategy]] = {r: dict(t) for r, t in DEFAULT_TABLE.items()}
        for role, rows in _mapping(data.get("roles", {}), "roles").items():
            table = roles.setdefault(str(role), {})
            for entity, strategy in _mapping(rows, f"roles.{role}").items():
                table[str(entity)] = _parse_strategy(strategy, f"roles.{role}.{entity}")
        columns: dict[str, dict[str, Strategy]] = {}
        for role, rows in _mapping(data.get("columns", {}), "columns").items():
            columns[str(role)] = {
                str(col): _parse_strategy(s, f"columns.{role}.{col}")
                for col, s in _mapping(rows, f"columns.{role}").items()
            }
        kanon_data = _mapping(data.get("k_anonymity", {}), "k_anonymity")
        unknown = sorted(set(kanon_data) - {"k", "max_suppression", "exempt_roles"})
        if unknown:
            raise PolicyError(f"k_anonymity.{unknown[0]}: unknown setting")
        kanon = KAnonymityConfig(
            k=int(kanon_data.get("k", 5)),
            max_suppression=float(kanon_data.get("max_suppression", 0.05)),
            exempt_roles=frozenset(kanon_data.get("exempt_roles", ("admin",))),
        )
        return cls(roles=roles, detection=detection, column_strategies=columns, k_anonymity=kanon)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: expected a mapping")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError(f"{where}: expected a list of strings")
    return tuple(str(v) for v in value)


_DETECTION_KEYS = {
    "phone_regions", "name_locales", "country_packs", "custom", "allow_values",
    "allow_patterns", "deny_terms", "deny_patterns", "column_entities",
    "quasi_identifier_columns", "sample_size", "free_text_rules_only",
}  # fmt: skip
_CUSTOM_KEYS = {
    "name", "pattern", "validator", "context_words", "header_hints", "requires_context",
    "description",
}  # fmt: skip


def _custom_from_mapping(item: object, where: str) -> CustomIdentifier:
    spec = _mapping(item, where)
    unknown = sorted(set(spec) - _CUSTOM_KEYS)
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: unknown setting")
    if "name" not in spec or "pattern" not in spec:
        raise PolicyError(f"{where}: needs a name and a pattern")
    try:
        return CustomIdentifier(
            name=str(spec["name"]),
            pattern=str(spec["pattern"]),
            validator=None if spec.get("validator") is None else str(spec["validator"]),
            context_words=_strings(spec.get("context_words", ()), f"{where}.context_words"),
            header_hints=_strings(spec.get("header_hints", ()), f"{where}.header_hints"),
            requires_context=bool(spec.get("requires_context", False)),
            description=str(spec.get("description", "")),
        )
    except PolicyError:
        raise
    except ConfigError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def _detection_from_mapping(data: Mapping[str, Any]) -> DetectionConfig:
    unknown = sorted(set(data) - _DETECTION_KEYS)
    if unknown:
        raise PolicyError(f"detection.{unknown[0]}: unknown setting")
    kwargs: dict[str, Any] = {}
    for name in ("phone_regions", "name_locales", "allow_patterns", "quasi_identifier_columns"):
        if name in data:
            kwargs[name] = _strings(data[name], f"detection.{name}")
    if "country_packs" in data:
        kwargs["country_packs"] = frozenset(
            _strings(data["country_packs"], "detection.country_packs")
        )
    if "allow_values" in data:
        kwargs["allow_values"] = frozenset(_strings(data["allow_values"], "detection.allow_values"))
    for name in ("deny_terms", "deny_patterns"):
        if name in data:
            kwargs[name] = {
                str(entity): _strings(terms, f"detection.{name}.{entity}")
                for entity, terms in _mapping(data[name], f"detection.{name}").items()
            }
    if "column_entities" in data:
        kwargs["column_entities"] = {
            str(col): (None if ent is None else str(ent))
            for col, ent in _mapping(data["column_entities"], "detection.column_entities").items()
        }
    if "sample_size" in data:
        kwargs["sample_size"] = int(data["sample_size"])
    if "free_text_rules_only" in data:
        kwargs["free_text_rules_only"] = bool(data["free_text_rules_only"])
    kwargs["custom"] = tuple(
        _custom_from_mapping(item, f"detection.custom[{i}]")
        for i, item in enumerate(data.get("custom", ()) or ())
    )
    try:
        return DetectionConfig(**kwargs)
    except PolicyError:
        raise
    except ConfigError as exc:
        raise PolicyError(str(exc)) from None
