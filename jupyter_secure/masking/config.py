"""Detection settings: regions, name lists, custom identifiers, allow/deny lists, overrides.

Everything that changes *what is found* lives here; what happens to a
finding for a given role lives in :mod:`.policy`. Both are plain frozen data
validated when built, so that a wrong regex or an unknown entity in a policy
file is an error that names the field, at load time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import phonenumbers

from .entities import COUNTRY_PACKS, ENTITY_INFO, Entity, check_custom_name
from .hints import ContextWords
from .ner import NerModel
from .resources import DEFAULT_NAME_LOCALES
from .validators import resolve_validator

__all__ = ["ConfigError", "CustomIdentifier", "DetectionConfig", "country_pack_identifiers"]


class ConfigError(ValueError):
    """A policy or detection setting is invalid; the message names the field."""


def _compile(pattern: str, where: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ConfigError(f"{where}: invalid regular expression: {exc}") from None


@dataclass(frozen=True)
class CustomIdentifier:
    """An identifier the site declares: a regex, optionally a validator and context words.

    ``requires_context`` should be set for patterns that match ordinary
    numbers (a seven-digit MRN): then a match counts in text only with one of
    ``context_words`` within 40 characters before it, or in a column whose
    name matches one of ``header_hints``.

    >>> mrn = CustomIdentifier("MRN", r"\\bMRN-?\\d{7}\\b", context_words=("mrn",))
    >>> mrn.compiled.pattern
    '\\\\bMRN-?\\\\d{7}\\\\b'
    """

    name: str
    pattern: str
    validator: str | Callable[[str], bool] | None = None
    context_words: tuple[str, ...] = ()
    header_hints: tuple[str, ...] = ()
    requires_context: bool = False
    description: str = ""
    builtin: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        where = f"custom identifier {self.name!r}"
        if not self.builtin:
            try:
                check_custom_name(self.name)
            except ValueError as exc:
                raise ConfigError(f"custom.name: {exc}") from None
        if not self.pattern:
            raise ConfigError(f"{where}: pattern: must not be empty")
        compiled = _compile(self.pattern, f"{where}: pattern")
        if compiled.fullmatch(""):
            raise ConfigError(f"{where}: pattern: must not match the empty string")
        object.__setattr__(self, "compiled", compiled)
        try:
            check = resolve_validator(self.validator) if self.validator is not None else None
        except ValueError as exc:
            raise ConfigError(f"{where}: validator: {exc}") from None
        object.__setattr__(self, "check", check)
        if self.requires_context and not (self.context_words or self.header_hints):
            raise ConfigError(
                f"{where}: requires_context is set but no context_words or header_hints given"
            )

    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)
    check: Callable[[str], bool] | None = field(init=False, repr=False, compare=False)

    def accepts(self, text: str) -> bool:
        """True if the validator (if any) accepts ``text``; never raises."""
        if self.check is None:
            return True
        try:
            return bool(self.check(text))
        except Exception:
            return False


def country_pack_identifiers(packs: frozenset[str]) -> tuple[CustomIdentifier, ...]:
    """The built-in identifiers of the enabled country packs (all off by default)."""
    table: dict[str, tuple[CustomIdentifier, ...]] = {
        "uk": (
            CustomIdentifier(
                Entity.UK_NHS_NUMBER, r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)", "stdnum:gb.nhs",
                ("nhs", "nhs number", "nhs no"), ("nhs", "nhs number"), True, builtin=True,
            ),
            CustomIdentifier(
                Entity.UK_NINO,
                r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
                r" ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
                None, ("nino", "national insurance", "ni number"),
                ("nino", "national insurance", "ni number"), False, builtin=True,
            ),
        ),
        "de": (
            CustomIdentifier(
                Entity.DE_TAX_ID, r"(?<!\d)\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)", "stdnum:de.idnr",
                ("steuer", "steuerid", "steuer-id", "idnr", "identifikationsnummer", "tax id"),
                ("steuerid", "idnr", "tax id", "steuer id"), True, builtin=True,
            ),
        ),
        "fr": (
            CustomIdentifier(
                Entity.FR_NIR,
                r"(?<!\d)[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\d)",
                "stdnum:fr.nir", ("nir", "sécurité sociale", "securite sociale", "insee"),
                ("nir", "insee", "securite sociale"), False, builtin=True,
            ),
        ),
        "ca": (
            CustomIdentifier(
                Entity.CA_SIN, r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{3}(?!\d)", "stdnum:ca.sin",
                ("sin", "social insurance"), ("sin", "social insurance"), True, builtin=True,
            ),
        ),
        "nl": (
            CustomIdentifier(
                Entity.NL_BSN, r"(?<!\d)(?:\d{9}|\d{4}\.\d{2}\.\d{3})(?!\d)", "stdnum:nl.bsn",
                ("bsn", "burgerservicenummer", "sofinummer"), ("bsn", "burgerservicenummer"),
                True, builtin=True,
            ),
        ),
    }  # fmt: skip
    return tuple(ident for pack in sorted(packs) for ident in table.get(pack, ()))


def _callable_name(value: object) -> str:
    module = getattr(value, "__module__", "?")
    qualname = getattr(value, "__qualname__", type(value).__qualname__)
    return f"{module}.{qualname}@{id(value):x}"


@dataclass(frozen=True, eq=False)
class DetectionConfig:
    """What the detectors look for and how they treat hints.

    ``column_entities`` pins a column (by name) to an entity, or to ``None``
    for "not personal data" — the per-column override for when the detectors
    are wrong. ``allow_values`` / ``allow_patterns`` are never reported (your
    own support address); ``deny_terms`` / ``deny_patterns`` (entity -> terms)
    are always reported (a project code name, a list of known patients).

    ``free_text_rules_only`` is the opt-in to mask FREE_TEXT columns span by
    span with the rule detectors alone, i.e. without an NER model. It is off
    because the rules miss names in prose; with it off and no ``ner``, a
    FREE_TEXT column is masked whole for restricted roles.
    """

    phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR")
    name_locales: tuple[str, ...] = DEFAULT_NAME_LOCALES
    country_packs: frozenset[str] = frozenset()
    custom: tuple[CustomIdentifier, ...] = ()
    allow_values: frozenset[str] = frozenset()
    allow_patterns: tuple[str, ...] = ()
    deny_terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    deny_patterns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    column_entities: Mapping[str, str | None] = field(default_factory=dict)
    quasi_identifier_columns: tuple[str, ...] = ()
    sample_size: int = 200
    ner: NerModel | None = None
    free_text_rules_only: bool = False

    def __post_init__(self) -> None:
        bad_regions = [r for r in self.phone_regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if bad_regions or not self.phone_regions:
            raise ConfigError(f"detection.phone_regions: unknown or empty region(s) {bad_regions}")
        unknown_packs = sorted(set(self.country_packs) - COUNTRY_PACKS)
        if unknown_packs:
            raise ConfigError(
                f"detection.country_packs: unknown pack(s) {unknown_packs};"
                f" known: {sorted(COUNTRY_PACKS)}"
            )
        if not 10 <= self.sample_size <= 10_000:
            raise ConfigError("detection.sample_size: must be between 10 and 10000")
        names = [c.name for c in self.custom]
        if len(set(names)) != len(names):
            raise ConfigError("detection.custom: duplicate custom identifier names")
        known = self.known_entities
        for entity in (*self.deny_terms, *self.deny_patterns):
            if entity not in known:
                raise ConfigError(f"detection.deny: unknown entity {entity!r}")
        for column, pinned in self.column_entities.items():
            if pinned is not None and pinned not in known:
                raise ConfigError(
                    f"detection.column_entities[{column!r}]: unknown entity {pinned!r}"
                )
        for index, pattern in enumerate(self.allow_patterns):
            _compile(pattern, f"detection.allow_patterns[{index}]")
        for entity, patterns in self.deny_patterns.items():
            for index, pattern in enumerate(patterns):
                _compile(pattern, f"detection.deny_patterns[{entity!r}][{index}]")
        if self.ner is not None and not isinstance(self.ner, NerModel):
            raise ConfigError("detection.ner: must have a name and a find(text) method")

    @cached_property
    def known_entities(self) -> frozenset[str]:
        """Built-in entity names plus the names of declared custom identifiers."""
        return frozenset(str(e) for e in ENTITY_INFO) | {c.name for c in self.custom}

    @cached_property
    def identifiers(self) -> tuple[CustomIdentifier, ...]:
        """Custom identifiers plus those of the enabled country packs."""
        return country_pack_identifiers(self.country_packs) + self.custom

    @cached_property
    def context_words(self) -> ContextWords | None:
        """Context words of the custom and country-pack identifiers."""
        words = {i.name: i.context_words for i in self.identifiers if i.context_words}
        return ContextWords(words) if words else None

    @cached_property
    def hint_table(self) -> dict[str, tuple[str, ...]]:
        """Header phrases of the custom and country-pack identifiers."""
        return {i.name: i.header_hints for i in self.identifiers if i.header_hints}

    @cached_property
    def allow_regex(self) -> re.Pattern[str] | None:
        """One pattern for all allow-list entries (values are matched case-insensitively)."""
        parts = [re.escape(v) for v in sorted(self.allow_values)] + list(self.allow_patterns)
        if not parts:
            return None
        return re.compile("(?:" + "|".join(f"(?:{p})" for p in parts) + ")", re.IGNORECASE)

    @cached_property
    def deny_regexes(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        """(entity, pattern) for every deny-list entry."""
        out: list[tuple[str, re.Pattern[str]]] = []
        for entity, terms in self.deny_terms.items():
            if terms:
                body = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
                out.append((entity, re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)))
        for entity, patterns in self.deny_patterns.items():
            out.extend((entity, re.compile(p)) for p in patterns)
        return tuple(out)

    @cached_property
    def fingerprint(self) -> str:
        """A stable digest of the settings, used in cache keys (callables by identity)."""
        parts = [
            repr(self.phone_regions),
            repr(self.name_locales),
            repr(sorted(self.country_packs)),
            repr(sorted(self.allow_values)),
            repr(self.allow_patterns),
            repr(sorted((k, v) for k, v in self.deny_terms.items())),
            repr(sorted((k, v) for k, v in self.deny_patterns.items())),
            repr(sorted((str(k), str(v)) for k, v in self.column_entities.items())),
            repr(self.quasi_identifier_columns),
            repr(self.sample_size),
            _callable_name(self.ner) if self.ner is not None else "-",
            repr(self.free_text_rules_only),
        ]
        for ident in self.custom:
            validator = ident.validator
            shown = validator if not callable(validator) else _callable_name(validator)
            settings = (ident.context_words, ident.header_hints, ident.requires_context)
            parts.append(repr((ident.name, ident.pattern, shown, settings)))
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
