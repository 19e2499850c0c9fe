"""Street addresses in text and in column values, from an address grammar.

Addresses follow a few national grammars closely enough that a grammar beats
a word list: "<number> <words> <street type> [unit] [, city, ST ZIP]" in
English-speaking countries (street types from the USPS list), "<name>straße
<number>" and its Dutch and Nordic cousins, "[<number>,] rue|calle|via <words>
[<number>]" in Romance languages, and US military APO/FPO/DPO addresses. A
trailing locality (city plus a US, UK or continental postcode) is part of the
span when present.

What it misses: addresses without a street type or number ("The Old Rectory,
Little Snoring"), PO boxes, and grammars outside the families above. Those
need an NER model (:mod:`.ner`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from ._regex import trie_alternation
from .resources import street_suffixes

__all__ = ["AddressMatch", "find_addresses", "looks_like_address"]

_U = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f"
# Apostrophes only between letters ("Children's", "Val d'Isère"): a trailing
# one closes a quoted string ('12, rue de la Paix' in a printed list).
_INNER = r"[\w\-]*(?:['\u2019][\w\-]+)*"
_WORD = rf"(?:[{_U}]{_INNER}(?:\.[\w\-]+(?:['\u2019][\w\-]+)*)*|[{_U}][a-z]?\.)"
# What may open a quoted or bracketed value right before an address: quotes,
# brackets and a Python string prefix (b'…', r"…").
_OPENING = re.compile(r"[\"`(\[{\u2018\u201c]*(?:[bBrRuUfF]{1,2}(?=['\"]))?['\"`(\[{\u2018\u201c]*")
_ORDINAL = r"\d{1,3}(?:st|nd|rd|th)"
_NUM = r"\d{1,6}[A-Za-z]?(?:[-/]\d{1,5}[A-Za-z]?)?"
_UNIT = (
    r"(?:Flat|Studio|Apartment|Apt\.?|Unit|Suite|Ste\.?|Room|Rm\.?|Floor|Fl\.?|\#)"
    r"(?![a-z])[ ]?(?:\d[\w-]{0,5}|[A-Z]\b)"
)
_UK_POSTCODE = r"(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR) ?[0-9][A-Z]{2}"
_PARTICLES = r"(?:de la|de l'|des|du|de|d'|la|le|les|l'|del|della|di|da|do|dos|y)"
_CITY_PARTICLES = r"(?:am|an der|an|im|in|de|la|le|sur|sous|upon|on|en|bei|ob)"
_TAIL = (
    rf"(?:,?\s(?:{_WORD}\s){{0,3}}{_WORD},?\s[A-Z]{{2}}\s\d{{5}}(?:-\d{{4}})?\b"
    rf"|,?\s(?:{_WORD}\s){{0,3}}{_WORD},?\s{_UK_POSTCODE}\b"
    rf"|,?\s\d{{4,5}}\s{_WORD}(?:[\s-](?:{_CITY_PARTICLES}\s)?{_WORD}){{0,3}})?"
)
_GERMANIC_TYPES = (
    "straße|strasse|str\\.|gasse|platz|ring|weg|allee|damm|ufer|chaussee|pfad|steig|markt"
    "|straat|laan|gracht|kade|plein|singel|dreef|gatan|vägen|gade|vej|gata|veien"
)
_ROMANCE_FREE = (
    "rue|boulevard|bd|chemin|allée|impasse|quai|avenue|calle|avenida|paseo|viale|piazza"
    "|vicolo|rua|travessa|praça|ulica|aleja"
)
_ROMANCE_NUMBERED = "via|place|plaza|largo|corso|camino|route|cours|plac|ul\\.|al\\."


@dataclass(frozen=True, slots=True)
class _Grammar:
    """One address grammar and the cheap trigger that says where to try it.

    The full grammars are slow to try at every position, so each has a
    trigger (a street-type word) found with a fast scan; the grammar then
    runs only in a window around each trigger.
    """

    pattern: re.Pattern[str]
    trigger: re.Pattern[str]
    lowered: bool
    before: int
    after: int
    rule: str
    score: float


@lru_cache(maxsize=1)
def _grammars() -> tuple[_Grammar, ...]:
    suffixes = sorted(street_suffixes())
    suffix = trie_alternation(suffixes)
    germanic_types = _GERMANIC_TYPES.replace("\\", "").split("|")
    romance_types = (_ROMANCE_FREE + "|" + _ROMANCE_NUMBERED).replace("\\", "").split("|")
    english = re.compile(
        rf"(?<![\w.])(?:{_UNIT},?\s(?:{_NUM},?\s)?|{_NUM},?\s)"
        rf"(?:(?:{_WORD}|{_ORDINAL})\s){{0,4}}(?:{suffix})\b\.?"
        rf"(?:,?\s{_UNIT})?{_TAIL}"
    )
    germanic = re.compile(
        rf"(?<![\w\-])(?=[{_U}]|(?:van|von|de|zu)[ ])"
        rf"((?:(?:[{_U}][\w'\u2019.]*|van|von|de|der|den|zu|am|an|im)"
        rf"(?:-|[ ](?=[\w'\u2019. ]*-)))*[\w'\u2019]*?)(?i:{_GERMANIC_TYPES})\s+{_NUM}{_TAIL}"
    )
    romance = re.compile(
        rf"(?<![\w])(?:(?P<num>{_NUM}(?:\s?(?:bis|ter))?),?\s+)?"
        rf"(?P<type>(?i:{_ROMANCE_FREE})|(?i:{_ROMANCE_NUMBERED})(?=\s+(?:{_PARTICLES}\s*)?{_WORD}))"
        rf"\s+(?:{_PARTICLES}\s*)?{_WORD}(?:\s+(?:{_PARTICLES}\s*)?{_WORD}){{0,3}}"
        rf"(?P<after>,?\s+(?:n[º°o]\.?\s*)?\d{{1,4}}[A-Za-z]?\b)?{_TAIL}"
    )
    military = re.compile(
        rf"(?:(?:PSC|Unit)\s+\d{{4}},?\s+Box\s+\d{{4}}|(?:USNS|USNV|USS|USCGC)\s+{_WORD})"
        r",?\s+(?:APO|FPO|DPO)\s+A[AEP]\s+\d{5}\b"
    )
    return (
        _Grammar(
            english, re.compile(rf"(?:{suffix})\b"), False, 110, 150, "number + street type", 0.92
        ),
        _Grammar(
            germanic,
            re.compile(rf"(?:{trie_alternation(germanic_types)})\s+\d"),
            True, 90, 120, "street-type compound + number", 0.92,
        ),
        _Grammar(
            romance,
            re.compile(rf"(?:{trie_alternation(romance_types)})\s"),
            True, 30, 220, "street type + name", 0.92,
        ),
        _Grammar(military, re.compile(r"PO\s"), False, 60, 20, "APO/FPO/DPO address", 0.95),
    )  # fmt: skip


_ROMANCE_NEEDS_NUMBER = frozenset(_ROMANCE_NUMBERED.replace("\\", "").split("|"))


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """A street address found in text."""

    start: int
    end: int
    score: float
    rule: str


def _plausible(match: re.Match[str], rule: str) -> bool:
    """Reject grammar matches that are English words in disguise ("Offering 5")."""
    if rule == "street-type compound + number":
        stem = match.group(1)
        word = match.group(0)[len(stem) :].split(None, 1)[0].lower()
        if word == "ring" and not stem.endswith("-"):
            # "-ering" is mostly English gerunds ("Offering 5"): only with a locality.
            has_locality = "," in match.group(0)
            return len(stem) >= 3 and (has_locality or stem[-1].lower() not in "aeiouy")
        return bool(stem) or word[:1].isupper()
    if rule == "street type + name":
        kind = match.group("type").lower()
        if kind in _ROMANCE_NEEDS_NUMBER:
            return bool(match.group("num") or match.group("after"))
    return True


_TOKEN = re.compile(r"\S+")


def _after_opening(text: str, start: int, end: int) -> int:
    """``start`` moved past an opening quote or bracket (and a b'/r" prefix) before ``end``."""
    m = _OPENING.match(text, start, end)
    return m.end() if m else start


_STREET_WORD = re.compile(rf"(?:[{_U}][\w'\u2019.\-]*|{_ORDINAL}),?")


_UNIT_WORDS = frozenset(
    {"flat", "studio", "apartment", "apt", "apt.", "unit", "suite", "ste", "ste.", "room"}
)


def _english_starts(text: str, trigger_start: int) -> list[int]:
    """Where an English-style address could start before a street-type word.

    The grammar needs a house number (or a flat/unit) followed only by up to
    four street-name words, single-spaced, before the street type. Walking
    back over a few tokens and then trying the grammar at that one offset is
    far cheaper than letting it try every position near every capitalised
    "Park" or "Lake" in a printed table.
    """
    floor = max(0, trigger_start - 80)
    tokens = list(_TOKEN.finditer(text, floor, trigger_start))
    starts: list[int] = []
    for back, token in enumerate(reversed(tokens[-7:])):
        word = token.group()
        start = _after_opening(text, token.start(), token.end())  # "['12 Main St'"
        if text[start : start + 1].isdigit():
            starts.append(start)
            index = len(tokens) - back - 2
            for earlier in tokens[max(0, index - 1) : index + 1]:
                if earlier.group().lower().rstrip(",") in _UNIT_WORDS:
                    starts.insert(0, earlier.start())
            return starts
        if back >= 6 or not (_STREET_WORD.fullmatch(word) or word.lower() in _UNIT_WORDS):
            return starts
    return starts


def _windows(text: str, grammar: _Grammar, lowered: str) -> list[tuple[int, int]]:
    """Merged [lo, hi) windows around the grammar's triggers."""
    windows: list[tuple[int, int]] = []
    source = lowered if grammar.lowered else text
    for hit in grammar.trigger.finditer(source):
        lo = max(0, hit.start() - grammar.before)
        hi = min(len(text), hit.end() + grammar.after)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
        else:
            windows.append((lo, hi))
    return windows


def _english(text: str, grammar: _Grammar) -> Iterator[re.Match[str]]:
    last_end = -1
    for hit in grammar.trigger.finditer(text):
        if hit.start() < last_end:
            continue
        for start in _english_starts(text, hit.start()):
            m = grammar.pattern.match(text, start)
            if m is not None and m.end() >= hit.end():
                last_end = m.end()
                yield m
                break


@lru_cache(maxsize=1)
def _continental_trigger() -> re.Pattern[str]:
    """One pass for both the Germanic and the Romance street-type words."""
    words = (_GERMANIC_TYPES + "|" + _ROMANCE_FREE + "|" + _ROMANCE_NUMBERED).replace("\\", "")
    return re.compile(trie_alternation(sorted(set(words.split("|")))))


def _word_starts(text: str, pos: int, words_before: int) -> list[int]:
    """Starts of the word at ``pos`` and of up to ``words_before`` words before it."""
    floor = max(0, pos - 24 * (words_before + 1))
    starts: list[int] = []
    end = pos
    for _ in range(words_before + 1):
        gap = max(text.rfind(" ", floor, end), text.rfind("\n", floor, end))
        starts.append(gap + 1 if gap >= 0 else floor)
        if gap < 0:
            break
        end = gap
        while end > floor and text[end - 1] in " \n":
            end -= 1
        if end <= floor:
            break
    starts.reverse()
    # "['Hauptstraße 5'" in a printed list: the address starts after the quote.
    return [_after_opening(text, start, pos) for start in starts]


def _continental(
    text: str, lowered: str, germanic: _Grammar, romance: _Grammar
) -> Iterator[tuple[_Grammar, re.Match[str]]]:
    """Germanic and Romance grammars, tried only where a street-type word occurs.

    One pass finds the street-type words; each grammar is then *matched* at
    the few offsets where its address could start (the compound word holding
    the type and up to three words before it; the type word or the house
    number before it), instead of searched through a window.
    """
    germanic_words = frozenset(_GERMANIC_TYPES.replace("\\", "").split("|"))
    last_end = -1
    for hit in _continental_trigger().finditer(lowered):
        if hit.start() < last_end:
            continue
        if hit.group() in germanic_words:
            grammar, starts = germanic, _word_starts(text, hit.start(), 3)
        else:
            grammar, starts = romance, _word_starts(text, hit.start(), 2)
        for start in starts:
            m = grammar.pattern.match(text, start)
            if m is not None and m.end() >= hit.end():
                last_end = m.end()
                yield grammar, m
                break


def find_addresses(text: str, lowered: str | None = None) -> Iterator[AddressMatch]:
    """Yield street addresses in ``text``; overlapping grammar matches are all yielded.

    ``lowered`` may pass ``text.lower()`` in when the caller has it already.
    """
    english, germanic, romance, military = _grammars()
    if lowered is None:
        lowered = text.lower()
    if len(lowered) != len(text):
        lowered = text
    found: list[tuple[_Grammar, re.Match[str]]] = [(english, m) for m in _english(text, english)]
    found.extend(_continental(text, lowered, germanic, romance))
    if "PO" in text:
        found.extend(
            (military, m)
            for lo, hi in _windows(text, military, lowered)
            for m in military.pattern.finditer(text, lo, hi)
        )
    for grammar, m in found:
        if not _plausible(m, grammar.rule):
            continue
        end = m.end()
        if text[end - 1] == "." and len(m.group().rsplit(None, 1)[-1]) > 5:
            end -= 1  # a full stop after the town, not an abbreviation
        yield AddressMatch(m.start(), end, grammar.score, grammar.rule)


def looks_like_address(value: str) -> bool:
    """True if a grammar match covers most of a cell value."""
    text = value.strip()
    if len(text) < 6 or len(text) > 200:
        return False
    covered = max((m.end - m.start for m in find_addresses(text)), default=0)
    return covered >= 0.6 * len(text)
