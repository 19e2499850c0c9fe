"""``classify_columns``: label each column of a frame with an entity type, and say why.

Columns first, because a column is one decision made once from a sample,
where a cell-by-cell scan makes the same decision a hundred thousand times
and gets some of them wrong. For each column the engine reads up to
``sample_size`` non-null values (evenly spaced, so head, middle and tail all
count), then weighs three kinds of evidence:

* the dtype: floats and booleans never carry identifiers; integers only
  with a header hint or a check digit; datetimes only as birth dates;
* the header: a hint that lowers the bar for values that support it, and
  the only way a bare digit run (ZIP, SSN without dashes) can count;
* the values: the share that pass a shape test and a validator.

Every decision carries its evidence as sentences without values. A header
hint that the values do not support is reported under ``review`` rather
than dropped. If classifying a column raises, the column is labelled
UNCLASSIFIED, which restricted roles get redacted (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .addresses import looks_like_address
from .config import DetectionConfig
from .entities import Entity
from .hints import header_entities
from .names import looks_like_person
from .resources import name_lexicon
from .text import DEFAULT_CONFIG, scan_text
from .validators import (
    DISTINCTIVE_POSTCODES,
    card_issuer,
    email_valid,
    generalised_value,
    iban_valid,
    ip_version,
    luhn_valid,
    parse_date,
    phone_possible,
    postcode_shape,
    ssn_valid,
)

__all__ = ["Classification", "ColumnDecision", "classify_columns", "column_name"]

_STRONG = 0.8
_HINTED = 0.5
_MAX_VALUE_CHARS = 400


@dataclass(frozen=True, slots=True)
class ColumnDecision:
    """What the engine decided about one column (or index level), and why.

    ``entity`` is ``None`` for "not personal data". ``evidence`` and
    ``review`` are sentences built from counts and names only, never from
    cell values, so a decision can go into an audit record as is.
    """

    position: int
    label: Hashable
    name: str
    dtype: str
    entity: str | None
    confidence: float
    evidence: tuple[str, ...]
    review: tuple[str, ...] = ()
    sampled: int = 0

    def __post_init__(self) -> None:
        if self.entity is not None and type(self.entity) is not str:
            object.__setattr__(self, "entity", str(self.entity))

    @property
    def is_pii(self) -> bool:
        """True if the column holds personal data of some kind (including FREE_TEXT)."""
        return self.entity is not None


@dataclass(frozen=True)
class Classification:
    """Decisions for every column (in position order) and every non-default index level."""

    columns: tuple[ColumnDecision, ...]
    index: tuple[ColumnDecision, ...] = ()
    config_fingerprint: str = field(default="", compare=False)

    def __iter__(self) -> Iterator[ColumnDecision]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def labelled(self) -> dict[str, str]:
        """``{column name: entity}`` for the columns that hold personal data."""
        return {d.name: d.entity for d in self.columns if d.entity is not None}

    def for_review(self) -> tuple[ColumnDecision, ...]:
        """Decisions that carry a review note (a hint without support, a near miss)."""
        return tuple(d for d in (*self.columns, *self.index) if d.review)


def column_name(label: Hashable) -> str:
    """A display name for any column label (tuples from a MultiIndex are joined)."""
    text = " / ".join(str(p) for p in label) if isinstance(label, tuple) else str(label)
    return text if len(text) <= 100 else text[:97] + "..."


def _sample(series: pd.Series, size: int) -> list[object]:
    """Up to ``size`` non-null values at evenly spaced positions (deterministic)."""
    length = len(series)
    if length == 0:
        return []
    if length <= size:
        picked = series
    else:
        positions = np.unique(np.linspace(0, length - 1, num=2 * size).astype(np.int64))
        picked = series.iloc[positions]
    kept = [v for v, ok in zip(picked.tolist(), picked.notna().tolist(), strict=True) if ok]
    if len(kept) < size // 2 and length > 2 * size:
        non_null = series.dropna()
        if len(non_null) > len(kept):
            step = max(1, len(non_null) // size)
            kept = non_null.iloc[::step].tolist()
    return kept[:size]


def _as_text(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:_MAX_VALUE_CHARS]


def _pct(rate: float) -> str:
    return f"{round(rate * 100)}%"


@dataclass
class _Candidate:
    entity: str
    rate: float
    confidence: float
    evidence: list[str]


class _Outcome(NamedTuple):
    entity: str | None
    confidence: float
    evidence: list[str]
    review: list[str]


_SEX_VALUES = frozenset(
    [
        "m",
        "f",
        "male",
        "female",
        "man",
        "woman",
        "x",
        "u",
        "unknown",
        "other",
        "non-binary",
        "nonbinary",
        "diverse",
        "d",
        "w",
        "weiblich",
        "männlich",
        "maennlich",
        "divers",
        "homme",
        "femme",
        "h",
        "intersex",
    ]
)
_SEX_WORDS = frozenset({"male", "female", "man", "woman", "weiblich", "männlich", "homme", "femme"})
_EMAIL_SHAPE = re.compile(r"^[^@\n\s]+@[^@\n\s]+\.[^@\n\s]+$", re.MULTILINE)
_IBAN_SHAPE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9 ]{11,40}$", re.MULTILINE)
_CARD_SHAPE = re.compile(r"^\d[\d \-]{10,22}\d$", re.MULTILINE)
_SSN_SHAPE = re.compile(r"^\d{3}-?\d{2}-?\d{4}$", re.MULTILINE)
_IP_SHAPE = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$", re.MULTILINE)
_PHONE_SHAPE = re.compile(
    r"^(?:\+|00)?[\d(][\d ().\-/]{4,24}\d(?:[ ]?(?:x|ext\.?)[ ]?\d{1,6})?$", re.MULTILINE
)
_FORMATTED_PHONE = re.compile(r"[+()]|\d[.\-]\d|^0\d(?: \d{2}){4}$")
_DATE_SHAPE = re.compile(r"^[\w ,./\-]{8,30}$", re.MULTILINE)
_POSTCODE_SHAPE = re.compile(r"^[A-Z0-9][A-Z0-9 \-]{2,9}$", re.MULTILINE | re.IGNORECASE)


def _lines(pattern: re.Pattern[str], joined: str) -> list[str]:
    return pattern.findall(joined) if joined else []


class _Evidence:
    """Value evidence for one column's sample, computed on demand and shared."""

    def __init__(self, texts: Sequence[str], config: DetectionConfig) -> None:
        self.texts = texts
        self.n = len(texts)
        self.config = config
        self.joined = "\n".join(t.replace("\n", " ") for t in texts)
        self.mean_length = sum(len(t) for t in texts) / self.n if self.n else 0.0

    def rate(self, count: int) -> float:
        return count / self.n if self.n else 0.0


class _Rater:
    """Collects candidates for one column: rate thresholds, hints and near misses."""

    def __init__(self, ev: _Evidence, hints: set[str], today: date) -> None:
        self.ev = ev
        self.hints = hints
        self.today = today
        self.out: list[_Candidate] = []
        self.near_misses: list[str] = []

    def add(self, entity: str, rate: float, strong: bool, what: str) -> None:
        """Keep ``entity`` if ``rate`` clears the bar; weak evidence needs a header hint."""
        n = self.ev.n
        hinted = entity in self.hints
        if not strong and not hinted:
            if rate >= _STRONG:
                self.near_misses.append(
                    f"{_pct(rate)} of {n} sampled values {what}, but without a header hint"
                    f" that is not enough for {entity}"
                )
            return
        if rate >= (_HINTED if hinted else _STRONG):
            confidence = min(1.0, rate * 0.9 + (0.1 if hinted else 0.0))
            evidence = [f"{_pct(rate)} of {n} sampled values {what}"]
            if hinted:
                evidence.append("column name hints at it")
            self.out.append(_Candidate(entity, rate, confidence, evidence))


def _rate_email_iban_ip(r: _Rater) -> None:
    ev = r.ev
    if "@" in ev.joined:
        emails = _lines(_EMAIL_SHAPE, ev.joined)
        r.add(Entity.EMAIL, ev.rate(sum(map(email_valid, emails))), True, "are e-mail addresses")
    ibans = _lines(_IBAN_SHAPE, ev.joined)
    if ibans:
        rate = ev.rate(sum(map(iban_valid, ibans)))
        r.add(Entity.IBAN, rate, True, "pass the IBAN mod-97 check")
    ips = _lines(_IP_SHAPE, ev.joined)
    if ips:
        rate = ev.rate(sum(ip_version(i) is not None for i in ips))
        r.add(Entity.IP_ADDRESS, rate, True, "are IP addresses")


def _rate_cards_ssns(r: _Rater) -> None:
    ev = r.ev
    cards = _lines(_CARD_SHAPE, ev.joined)
    if cards:
        digits = [d for d in (re.sub(r"\D", "", c) for c in cards) if 12 <= len(d) <= 19]
        luhn = ev.rate(sum(map(luhn_valid, digits)))
        issuers = ev.rate(sum(card_issuer(d) is not None for d in digits))
        if luhn >= 0.9 and (issuers >= 0.6 or Entity.CREDIT_CARD in r.hints):
            r.add(Entity.CREDIT_CARD, luhn, True, "pass the Luhn check in known issuer ranges")
    ssns = _lines(_SSN_SHAPE, ev.joined)
    if ssns:
        dashed = ev.rate(sum(("-" in s) and ssn_valid(s) for s in ssns))
        bare = ev.rate(sum(("-" not in s) and ssn_valid(s) for s in ssns))
        if dashed >= bare:
            r.add(Entity.US_SSN, dashed, True, "follow the SSA area/group/serial rules")
        else:
            r.add(Entity.US_SSN, bare, False, "are nine digits valid under the SSA rules")


def _rate_phones(r: _Rater) -> None:
    ev = r.ev
    # The engine's own generalisation outputs (birth-year bands "1940-1944", IP
    # networks "81.2.69.0/24") have a phone's shape and digits; they are not phones.
    phones = [p for p in _lines(_PHONE_SHAPE, ev.joined) if not generalised_value(p)]
    if not phones or ev.rate(len(phones)) < _HINTED:
        return
    probe = phones[:60]
    possible = [p for p in probe if phone_possible(p, ev.config.phone_regions)]
    scale = len(phones) / len(probe)
    formatted = ev.rate(round(sum(bool(_FORMATTED_PHONE.search(p)) for p in possible) * scale))
    any_rate = ev.rate(round(len(possible) * scale))
    if formatted >= _STRONG:
        r.add(Entity.PHONE, formatted, True, "are formatted phone numbers of a possible length")
    elif formatted >= _HINTED and any_rate >= 0.9 and Entity.PHONE not in r.hints:
        what = "are phone numbers of a possible length, most of them formatted"
        r.add(Entity.PHONE, any_rate * 0.85, True, what)
    else:
        r.add(Entity.PHONE, any_rate, False, "are phone numbers of a possible length")


def _rate_quasi(r: _Rater) -> None:
    ev = r.ev
    if Entity.DATE_OF_BIRTH in r.hints:
        dates = [parse_date(t) for t in _lines(_DATE_SHAPE, ev.joined)]
        plausible = [d for d in dates if d is not None and 1900 <= d.year <= r.today.year]
        r.add(Entity.DATE_OF_BIRTH, ev.rate(len(plausible)), False, "are plausible birth dates")
    shapes = [postcode_shape(t) for t in _lines(_POSTCODE_SHAPE, ev.joined)]
    if shapes:
        distinctive = ev.rate(sum(s in DISTINCTIVE_POSTCODES for s in shapes))
        if distinctive >= _STRONG:
            r.add(Entity.POSTCODE, distinctive, True, "have a UK or Canadian postcode shape")
        else:
            known = ev.rate(sum(s is not None for s in shapes))
            r.add(Entity.POSTCODE, known, False, "have a postcode shape")
    lowered = [t.strip().lower() for t in ev.texts]
    sexes = [v for v in lowered if v in _SEX_VALUES]
    if sexes and len(set(lowered)) <= 6:
        distinct = set(sexes)
        both = bool(distinct & _SEX_WORDS) or {"m", "f"} <= distinct or {"m", "w"} <= distinct
        rate = ev.rate(len(sexes))
        if Entity.SEX in r.hints:
            r.add(Entity.SEX, rate, False, "are sex or gender codes")
        elif both and rate >= 0.95:
            r.add(Entity.SEX, rate * 0.8, True, "are sex or gender codes")
    if Entity.AGE in r.hints:
        ages = [t for t in ev.texts if t.strip().isdigit() and 0 <= int(t.strip()) <= 120]
        r.add(Entity.AGE, ev.rate(len(ages)), False, "are ages between 0 and 120")


def _rate_people_places(r: _Rater) -> None:
    ev = r.ev
    if ev.mean_length <= 80:
        lexicon = name_lexicon(ev.config.name_locales)
        people = ev.rate(sum(looks_like_person(t, lexicon) for t in ev.texts))
        if people >= _HINTED:
            r.add(Entity.PERSON, people, True, "read as person names (name lists)")
    if ev.mean_length <= 160 and any(ch.isdigit() for ch in ev.joined[:2000]):
        probe = ev.texts[:100]
        streets = sum(looks_like_address(t) for t in probe) / max(1, len(probe))
        if streets >= 0.4:
            what = "match the street-address grammar"
            r.add(Entity.STREET_ADDRESS, min(1.0, streets / 0.9), True, what)


def _rate_site_lists(r: _Rater) -> None:
    ev = r.ev
    for ident in ev.config.identifiers:
        if ident.requires_context and ident.name not in r.hints:
            continue
        hits = sum(
            1 for t in ev.texts if (m := ident.compiled.search(t)) and ident.accepts(m.group())
        )
        r.add(ident.name, ev.rate(hits), True, f"match the {ident.name} pattern")
    for entity, pattern in ev.config.deny_regexes:
        rate = ev.rate(sum(1 for t in ev.texts if pattern.search(t)))
        if rate >= _HINTED:
            r.out.append(
                _Candidate(entity, 1.0, 1.0, [f"{_pct(rate)} of values hit the deny-list"])
            )


def _string_candidates(
    ev: _Evidence, hints: set[str], today: date, near_misses: list[str]
) -> list[_Candidate]:
    """All entities the sampled strings support, each with its rate and evidence.

    Weak evidence (bare digits, postcode shapes) without a header hint is
    not a candidate; it is appended to ``near_misses`` for the review list.
    Validators run first; name lists and the address grammar only if no
    validator settled the column.
    """
    rater = _Rater(ev, hints, today)
    _rate_email_iban_ip(rater)
    _rate_cards_ssns(rater)
    _rate_phones(rater)
    _rate_quasi(rater)
    if max((c.rate for c in rater.out), default=0.0) < 0.95:
        _rate_people_places(rater)
    _rate_site_lists(rater)
    near_misses.extend(rater.near_misses)
    return rater.out


def _free_text(ev: _Evidence, config: DetectionConfig) -> _Candidate | None:
    """Long, mixed strings: prose that may hold any entity."""
    if ev.n == 0 or ev.mean_length < 30:
        return None
    wordy = ev.rate(sum(t.count(" ") >= 4 for t in ev.texts))
    distinct = len(set(ev.texts)) / ev.n
    if wordy < 0.5 or distinct < 0.3:
        return None
    found: set[str] = set()
    carrying = 0
    for text in ev.texts[:12]:
        spans = scan_text(text, config)
        found.update(s.entity for s in spans)
        carrying += bool(spans)
    evidence = [
        f"mean length {round(ev.mean_length)} characters, {_pct(wordy)} of values are sentences"
    ]
    if found:
        probe = min(12, ev.n)
        evidence.append(f"{carrying} of {probe} probed values contain {', '.join(sorted(found))}")
    return _Candidate(Entity.FREE_TEXT, wordy, round(0.5 + wordy / 2, 3), evidence)


def _review_unsupported(
    hints: set[str], chosen: str | None, candidates: list[_Candidate], n: int, why: str = ""
) -> list[str]:
    notes = []
    for entity in sorted(hints - {chosen or ""}):
        if entity == Entity.FREE_TEXT and chosen is not None:
            continue
        if why:
            notes.append(f"column name suggests {entity}, but {why}")
            continue
        rate = max((c.rate for c in candidates if c.entity == entity), default=0.0)
        notes.append(
            f"column name suggests {entity}, but only {_pct(rate)} of {n} sampled values support it"
        )
    return notes


def _decide_strings(
    texts: list[str], hints: set[str], config: DetectionConfig, today: date
) -> _Outcome:
    ev = _Evidence(texts, config)
    near_misses: list[str] = []
    candidates = _string_candidates(ev, hints, today, near_misses)
    if candidates:
        best = max(candidates, key=lambda c: c.confidence)
        review = _review_unsupported(hints, best.entity, candidates, ev.n)
        return _Outcome(best.entity, round(best.confidence, 3), best.evidence, review)
    free = _free_text(ev, config)
    if free is not None:
        review = _review_unsupported(hints - {Entity.FREE_TEXT}, None, candidates, ev.n)
        return _Outcome(free.entity, free.confidence, free.evidence, review)
    review = _review_unsupported(hints, None, candidates, ev.n) + near_misses
    return _Outcome(None, 0.0, [f"no entity is supported by the {ev.n} sampled values"], review)


def _integer_checks(
    config: DetectionConfig,
) -> list[tuple[str, Callable[[str], bool], str]]:
    """(entity, test on the decimal digits, description) for hinted integer columns."""
    checks: list[tuple[str, Callable[[str], bool], str]] = [
        (Entity.PHONE, lambda t: phone_possible(t, config.phone_regions),
         "are phone numbers of a possible length"),
        (Entity.POSTCODE, lambda t: 3 <= len(t) <= 5,
         "fit a numeric postcode (leading zeros lost)"),
        (Entity.US_SSN, lambda t: len(t) <= 9 and ssn_valid(t.zfill(9)), "are valid SSNs"),
        (Entity.AGE, lambda t: 0 <= int(t) <= 120, "are ages between 0 and 120"),
    ]  # fmt: skip
    for ident in config.identifiers:
        checks.append(
            (
                ident.name,
                lambda t, i=ident: bool(i.compiled.search(t)) and i.accepts(t),  # type: ignore[misc]
                f"match the {ident.name} pattern",
            )
        )
    return checks


def _decide_integers(values: list[object], hints: set[str], config: DetectionConfig) -> _Outcome:
    texts = [str(int(v)) for v in values if isinstance(v, (int, np.integer))]
    n = len(texts)
    if n == 0:
        return _Outcome(None, 0.0, ["no integer values sampled"], [])
    luhn = sum(12 <= len(t) <= 19 and luhn_valid(t) and card_issuer(t) is not None for t in texts)
    if luhn / n >= 0.9:
        what = "pass the Luhn check in known issuer ranges"
        return _Outcome(
            Entity.CREDIT_CARD,
            round(luhn / n * 0.95, 3),
            [f"{_pct(luhn / n)} of {n} sampled integers {what}"],
            [],
        )
    rated: list[_Candidate] = []
    for entity, test, what in _integer_checks(config):
        if entity in hints:
            probe = texts[:60]
            rate = sum(map(test, probe)) / len(probe)
            evidence = [f"{_pct(rate)} of {len(probe)} sampled integers {what}"]
            rated.append(_Candidate(entity, rate, min(1.0, rate * 0.9 + 0.1), evidence))
    supported = [c for c in rated if c.rate >= _STRONG]
    if supported:
        best = max(supported, key=lambda c: c.rate)
        review = _review_unsupported(hints, best.entity, rated, n)
        return _Outcome(
            best.entity,
            round(best.confidence, 3),
            [*best.evidence, "column name hints at it"],
            review,
        )
    review = _review_unsupported(hints, None, rated, n)
    return _Outcome(
        None, 0.0, ["integer column: identifiers need a header hint or a check digit"], review
    )


def _decide_datetimes(values: list[object], hints: set[str], today: date) -> _Outcome:
    stamps = [pd.Timestamp(v) for v in values]  # type: ignore[arg-type]  # sampled datetimes
    n = len(stamps)
    if n == 0:
        return _Outcome(None, 0.0, ["no datetime values sampled"], [])
    midnight = sum(s.hour == 0 and s.minute == 0 and s.second == 0 for s in stamps) / n
    years = [s.year for s in stamps]
    plausible = sum(1900 <= y <= today.year for y in years) / n
    if Entity.DATE_OF_BIRTH in hints:
        if plausible >= _STRONG:
            evidence = [
                f"{_pct(plausible)} of {n} sampled dates fall in plausible birth years",
                "column name hints at it",
            ]
            confidence = round(min(1.0, plausible * 0.9 + 0.1), 3)
            return _Outcome(Entity.DATE_OF_BIRTH, confidence, evidence, [])
        why = "the dates are not plausible birth dates"
        return _Outcome(None, 0.0, ["dates outside plausible birth years"],
                        _review_unsupported(hints, None, [], n, why))  # fmt: skip
    review = []
    decades = max(years) - min(years) >= 10 and max(years) < today.year
    if midnight >= 0.99 and plausible >= 0.99 and decades:
        review.append(
            "dates have no time of day and span decades of past years: birth dates?"
            " (no header hint, not labelled)"
        )
    review.extend(
        _review_unsupported(hints, None, [], n, "datetime columns only carry birth dates")
    )
    return _Outcome(None, 0.0, ["datetime column without a birth-date hint"], review)


def _decide_float(values: list[object], hints: set[str]) -> _Outcome:
    n = len(values)
    if Entity.AGE in hints and n:
        ages = sum(0 <= float(v) <= 120 for v in values) / n  # type: ignore[arg-type]
        if ages >= _STRONG:
            evidence = [
                f"{_pct(ages)} of {n} sampled values are ages between 0 and 120",
                "column name hints at it",
            ]
            return _Outcome(Entity.AGE, round(ages * 0.9 + 0.1, 3), evidence, [])
    why = "float columns carry no identifiers (dtype rule)"
    return _Outcome(None, 0.0, ["float column"], _review_unsupported(hints, None, [], n, why))


def _decide(series: pd.Series, hints: set[str], config: DetectionConfig, today: date) -> _Outcome:
    """Dispatch on the dtype: which kinds of evidence a column can carry at all."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        why = "boolean columns carry no identifiers"
        return _Outcome(None, 0.0, ["boolean column"], _review_unsupported(hints, None, [], 0, why))
    if ptypes.is_timedelta64_dtype(dtype) or ptypes.is_complex_dtype(dtype):
        return _Outcome(None, 0.0, [f"{dtype} column"], [])
    values = _sample(series, config.sample_size)
    if ptypes.is_float_dtype(dtype):
        return _decide_float(values, hints)
    if ptypes.is_integer_dtype(dtype):
        return _decide_integers(values, hints, config)
    if ptypes.is_datetime64_any_dtype(dtype):
        return _decide_datetimes(values, hints, today)
    return _decide_strings([_as_text(v) for v in values], hints, config, today)


def _classify(
    series: pd.Series, position: int, label: Hashable, config: DetectionConfig, today: date
) -> ColumnDecision:
    name = column_name(label)
    dtype = str(series.dtype)
    override = _override(label, config)
    if override is not None:
        entity = override[0]
        evidence = (f"pinned to {entity or 'not personal data'} by a per-column override",)
        return ColumnDecision(position, label, name, dtype, entity, 1.0, evidence)
    hints = header_entities(label, config.hint_table)
    outcome = _decide(series, hints, config, today)
    sampled = min(len(series), config.sample_size)
    return ColumnDecision(
        position,
        label,
        name,
        dtype,
        outcome.entity,
        outcome.confidence,
        tuple(outcome.evidence),
        tuple(outcome.review),
        sampled,
    )


def _override(label: Hashable, config: DetectionConfig) -> tuple[str | None] | None:
    if not config.column_entities:
        return None
    for key in (column_name(label), str(label)):
        if key in config.column_entities:
            return (config.column_entities[key],)
    return None


def _classify_safely(
    series: pd.Series, position: int, label: Hashable, config: DetectionConfig, today: date
) -> ColumnDecision:
    try:
        return _classify(series, position, label, config, today)
    except Exception as exc:  # any failure must fail closed (masked), never open
        return ColumnDecision(
            position,
            label,
            column_name(label),
            str(getattr(series, "dtype", "?")),
            Entity.UNCLASSIFIED,
            1.0,
            (f"classification failed ({type(exc).__name__}); treated as personal data",),
        )


def classify_columns(
    df: pd.DataFrame,
    config: DetectionConfig | None = None,
    *,
    today: date | None = None,
    include_index: bool = True,
) -> Classification:
    """Label every column of ``df`` (and non-default index levels) with an entity or none.

    ``today`` bounds plausible birth years; it defaults to the current date.

    >>> frame = pd.DataFrame({"contact": ["ann@example.org", "bob@example.net"], "n": [1, 2]})
    >>> [(d.name, d.entity) for d in classify_columns(frame)]
    [('contact', 'EMAIL'), ('n', None)]
    """
    cfg = config if config is not None else DEFAULT_CONFIG
    day = today if today is not None else date.today()
    decisions = tuple(
        _classify_safely(df.iloc[:, i], i, label, cfg, day) for i, label in enumerate(df.columns)
    )
    index: tuple[ColumnDecision, ...] = ()
    if include_index and not isinstance(df.index, pd.RangeIndex):
        levels = []
        for level in range(df.index.nlevels):
            values = df.index.get_level_values(level)
            label = values.name if values.name is not None else f"index level {level}"
            levels.append(_classify_safely(pd.Series(values), -1 - level, label, cfg, day))
        index = tuple(levels)
    return Classification(decisions, index, cfg.fingerprint)
