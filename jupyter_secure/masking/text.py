"""``scan_text``: find personal data inside free text and output streams.

Built for throughput on what notebooks print (tables of numbers, logs,
tracebacks) as much as on prose. Each entity family has its own cheap regex
pass that C code runs over the whole text, and Python only looks at the few
candidates: a validator where a real check exists (Luhn and issuer ranges,
SSA rules, IBAN mod-97, ``ipaddress``, libphonenumber), name lists and an
address grammar for people and places. Bare digit runs (nine digits, sixteen
digits, five digits) count only when a context word is near or the caller
passes a column-name hint, because otherwise every order id would be an SSN.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from .addresses import find_addresses
from .config import DetectionConfig
from .entities import Entity
from .hints import CONTEXT_WORDS, ContextWords, header_entities
from .names import find_names
from .resources import name_lexicon
from .validators import (
    card_issuer,
    email_valid,
    generalised_value,
    iban_length,
    iban_valid,
    luhn_valid,
    parse_date,
    phone_possible,
    ssn_valid,
)

__all__ = ["DEFAULT_CONFIG", "Span", "scan_text"]

# Plain strings for the hot path: a Span built from an Entity member would
# carry the enum subclass into every report.
_E_PHONE = Entity.PHONE.value
_E_POSTCODE = Entity.POSTCODE.value
_E_US_SSN = Entity.US_SSN.value
_E_CREDIT_CARD = Entity.CREDIT_CARD.value
_E_EMAIL = Entity.EMAIL.value
_E_IP_ADDRESS = Entity.IP_ADDRESS.value
_E_DATE_OF_BIRTH = Entity.DATE_OF_BIRTH.value
_E_STREET_ADDRESS = Entity.STREET_ADDRESS.value
_E_PERSON = Entity.PERSON.value
_IP = _E_IP_ADDRESS
_IBAN_NAME = Entity.IBAN.value

DEFAULT_CONFIG = DetectionConfig()
"""The configuration used when a caller passes none: built-ins only, no packs."""

_CONTEXT_WINDOW = 60
_DOB_WINDOW = 48


@dataclass(frozen=True, slots=True)
class Span:
    """One finding in a text: offsets, entity name, the rule that fired, a score."""

    start: int
    end: int
    entity: str
    rule: str
    score: float

    def __len__(self) -> int:
        return self.end - self.start


# Every pattern starts with a character class, never with a look-behind or
# \b: CPython then skips ahead with a fast first-character search, which is
# the difference between ~10 and ~30+ MB/s. Boundaries are checked after the
# first character or in Python.
_NUMERIC = re.compile(
    r"[+(\d](?<![\w+/@.\-].)"
    # Separated numbers only: a '+' or '(' start, or a dash/space/slash/paren
    # separator, or at least two dots. Bare runs and decimals (the bulk of a
    # printed table) never become candidates here; bare runs are looked for
    # near context words instead (_bare_runs).
    r"(?:(?<=[+(])|(?=\d*(?:[ \-/()][\d(]|\.\d+\.\d)))"
    r"(?!\d{3}-\d\d-\d\d(?![\d\-]))"
    r"(?:(?<=\+)\(?\d|(?<=\()\d|(?<=\d))"
    r"(?:(?:[ .\-/]|\)[ ]?|[ ]?\()?\d){4,48}"
    r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,6})?(?![\w@]|[.\-/:]\d)"
)
_CHAIN = re.compile(r"(?:[ .\-/]?\d)+")
_GLUED_MAX_TOKENS = 8  # no single number (phone, card, IBAN) has more space-separated groups
_BARE = re.compile(r"\d(?<![\w+/@.\-]\d)\d{4,18}(?![\w@]|[.\-/:]\d)")
_BARE_ENTITIES = frozenset({Entity.PHONE, Entity.US_SSN, Entity.CREDIT_CARD, Entity.POSTCODE})
_EXTENSION = re.compile(r"[ ]?(?:x|ext\.?)[ ]?\d{1,6}$")
_NON_DIGIT = re.compile(r"\D")
_DATE_SHAPE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_SSN_DASHED = re.compile(r"\d{3}-\d{2}-\d{4}")
_SSN_SPACED = re.compile(r"\d{3} \d{2} \d{4}")
_CARD_GROUPED = re.compile(
    r"\d{4}([ \-])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ \-])\d{6}\2\d{4,5}"
)
_PHONE_STRONG = re.compile(
    r"(?:1[ .\-])?\d{3}([.\-])\d{3}\1\d{4}(?:[ ]?(?:x|ext\.?)[ ]?\d{1,6})?"
    r"|0\d(?:([ .])\d{2}){4}"
    r"|0\d{2,4}[ \-]\d{3,4}[ \-]?\d{3,4}"
)
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9].)[A-Z]\d{2}(?:[ ]?[A-Z0-9]){11,30}")
_IPV6_TRIGGER = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{3,39}(?![\w:])")
_POSTCODE = re.compile(
    r"[A-Z](?<![A-Za-z0-9].)"
    r"(?:[A-Z]?[0-9][A-Z0-9]? ?[0-9][A-Z]{2}|IR ?0AA|[0-9][A-Z] ?[0-9][A-Z][0-9])(?![A-Za-z0-9])"
)
_EMAIL_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])")
_DATE_IN_TEXT = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}"
    r"|[A-Za-zÀ-ÿ]{3,9}\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4}"
    r"|\d{1,2}(?:st|nd|rd|th|\.)? [A-Za-zÀ-ÿ]{3,9}\.?,? \d{4}"
)


class _Context:
    """Context words of one text, found lazily (only if a candidate needs them)."""

    __slots__ = ("_extra", "_lowered", "_positions", "_text", "hinted")

    def __init__(self, text: str, hinted: frozenset[str], extra: ContextWords | None) -> None:
        self._text = text
        self.hinted = hinted
        self._extra = extra
        self._positions: dict[str, list[int]] | None = None
        self._lowered: str | None = None

    @property
    def lowered(self) -> str:
        """The text lower-cased with offsets preserved (computed once, shared)."""
        if self._lowered is None:
            self._lowered = _lower(self._text)
        return self._lowered

    def _scan(self) -> dict[str, list[int]]:
        positions: dict[str, list[int]] = {}
        lowered = self.lowered
        for words in (_BUILTIN_CONTEXT, self._extra):
            if words is None:
                continue
            for end, entities in words.find(lowered):
                for entity in entities:
                    positions.setdefault(entity, []).append(end)
        for ends in positions.values():
            ends.sort()
        return positions

    def positions(self, entity: str) -> list[int]:
        """End offsets of the context words for ``entity``, in order."""
        if self._positions is None:
            self._positions = self._scan()
        return self._positions.get(entity, [])

    def near(self, entity: str, start: int, end: int) -> bool:
        """True if the entity is hinted, or a context word is close to [start, end).

        Close means ending at most 60 characters before the candidate, or
        right after it ("555 1234 (mobile)"); a label right before the number
        that names it as something else ("order no. …") wins over context.
        """
        if entity in self.hinted:
            return True
        ends = self.positions(entity)
        if not ends:
            return False
        i = bisect_left(ends, start - _CONTEXT_WINDOW)
        if i >= len(ends) or ends[i] > end + 16:
            return False
        if ends[i] > start and _SENTENCE_BREAK.search(self._text, end, ends[i]):
            return False  # "…123. Call us" : the word belongs to the next sentence
        return not _labelled_otherwise(self._text, start)


_BUILTIN_CONTEXT = ContextWords(CONTEXT_WORDS)
_SENTENCE_BREAK = re.compile(r"[.!?;]")


def _lower(text: str) -> str:
    """``text.lower()`` with offsets preserved (a few characters grow when lowered)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch if len(low := ch.lower()) != 1 else low for ch in text)


_OTHER_NUMBER_WORDS = frozenset(
    {
        "order", "invoice", "ticket", "ref", "reference", "id", "batch", "case", "tracking",
        "sku", "item", "transaction", "txn", "po", "serial", "version", "build", "run", "job",
        "account", "acct", "contract",
    }
)  # fmt: skip
_NUMBER_WORDS = frozenset(
    [
        "order",
        "invoice",
        "ticket",
        "ref",
        "reference",
        "id",
        "batch",
        "case",
        "tracking",
        "sku",
        "item",
        "transaction",
        "txn",
        "po",
        "serial",
        "version",
        "build",
        "run",
        "job",
        "account",
        "acct",
        "contract",
    ]
)
_NUMBER_WORDS = frozenset({"no", "nr", "number", "num"})
_LAST_WORDS = re.compile(r"[a-z]+")


def _labelled_otherwise(text: str, start: int) -> bool:
    """True if the word right before a number names it as something else ("order 123…")."""
    words = _LAST_WORDS.findall(text[max(0, start - 24) : start].lower())
    if not words:
        return False
    last = words[-1]
    if last in _NUMBER_WORDS and len(words) > 1:
        last = words[-2]
    gap = text[max(0, start - 24) : start].lower()
    tail = gap[gap.rfind(last) + len(last) :]
    return last in _OTHER_NUMBER_WORDS and len(tail.strip(" #:.-no")) == 0


def _classify_number(
    candidate: str, start: int, end: int, ctx: _Context, regions: Sequence[str]
) -> Span | None:
    """Decide what one digit run is; ``None`` if it is just a number.

    Context words make bare runs count, unless the words right before the run
    label it as another kind of number ("order 123456789"). The order of the
    tests is also the order of cost: a printed table yields thousands of
    candidates and most must be dismissed in a microsecond.
    """
    if candidate[0] == "(" and ")" not in candidate:
        # An opening paren that nothing closes belongs to a printed tuple or call,
        # "(2025550143, …)": it is neither part of the span nor phone formatting.
        candidate = candidate[1:]
        start += 1
    if candidate.isdigit():
        return _bare_number(candidate, start, end, ctx, regions)
    if "." in candidate:
        parts = candidate.split(".")
        if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
            return _ipv4(candidate, parts, start, end)
        if not _DOTTED.fullmatch(candidate):
            return None  # decimals, versions, a number glued to a date in a table
    ext = _EXTENSION.search(candidate) if "x" in candidate else None
    core = candidate[: ext.start()] if ext else candidate
    digits = _NON_DIGIT.sub("", core)
    if ext is None:
        if _DATE_SHAPE.fullmatch(candidate):
            return None
        found = _grouped_identifier(candidate, digits, start, end, ctx)
        if found is not None:
            return found
    where = (start, end)
    return _phone_or_zip(candidate, digits, where, ctx, regions, has_extension=ext is not None)


def _ipv4(candidate: str, parts: list[str], start: int, end: int) -> Span | None:
    """Dotted quads in range, without leading zeros (as ``ipaddress`` reads them), not loopback."""
    for part in parts:
        if int(part) > 255 or (len(part) > 1 and part[0] == "0"):
            return None
    if parts[0] == "127":
        return None
    return Span(start, end, _IP, "ipaddress", 0.95)


def _phone_or_zip(
    candidate: str,
    digits: str,
    where: tuple[int, int],
    ctx: _Context,
    regions: Sequence[str],
    *,
    has_extension: bool,
) -> Span | None:
    start, end = where
    if 7 <= len(digits) <= 15 and not generalised_value(candidate):  # "1940-1944" is a band
        strong = (
            candidate[0] == "+"
            or candidate.startswith("00")
            or "(" in candidate
            or _PHONE_STRONG.fullmatch(candidate) is not None
        )
        if (strong or ctx.near(Entity.PHONE, start, end)) and phone_possible(candidate, regions):
            rule = "libphonenumber (formatted)" if strong else "libphonenumber + context"
            return Span(start, end, _E_PHONE, rule, 0.85 if strong else 0.8)
    zip4 = not has_extension and len(digits) == 9 and _ZIP4.fullmatch(candidate)
    if zip4 and ctx.near(Entity.POSTCODE, start, end):
        return Span(start, end, _E_POSTCODE, "ZIP + context", 0.7)
    return None


def _grouped_identifier(
    candidate: str, digits: str, start: int, end: int, ctx: _Context
) -> Span | None:
    """SSNs and card numbers written in groups (dashes or spaces)."""
    n = len(digits)
    if n == 9:
        if _SSN_DASHED.fullmatch(candidate) and ssn_valid(digits):
            return Span(start, end, _E_US_SSN, "SSA rules (dashed)", 0.9)
        spaced = _SSN_SPACED.fullmatch(candidate) and ssn_valid(digits)
        if spaced and ctx.near(Entity.US_SSN, start, end):
            return Span(start, end, _E_US_SSN, "SSA rules + context", 0.85)
    if 12 <= n <= 19 and _CARD_GROUPED.fullmatch(candidate) and luhn_valid(digits):
        if card_issuer(digits):
            return Span(start, end, _E_CREDIT_CARD, "Luhn + issuer (grouped)", 0.95)
        if ctx.near(Entity.CREDIT_CARD, start, end):
            return Span(start, end, _E_CREDIT_CARD, "Luhn + context", 0.7)
    return None


def _bare_number(
    digits: str, start: int, end: int, ctx: _Context, regions: Sequence[str]
) -> Span | None:
    """A run of digits with no separators: only context (or a hint) can make it PII."""
    n = len(digits)
    if n == 9 and ssn_valid(digits) and ctx.near(Entity.US_SSN, start, end):
        return Span(start, end, _E_US_SSN, "SSA rules + context", 0.85)
    if 12 <= n <= 19 and ctx.near(Entity.CREDIT_CARD, start, end) and luhn_valid(digits):
        issuer = card_issuer(digits)
        rule = "Luhn + issuer + context" if issuer else "Luhn + context"
        return Span(start, end, _E_CREDIT_CARD, rule, 0.9 if issuer else 0.7)
    if 7 <= n <= 15:
        strong = digits.startswith("00")
        if (strong or ctx.near(Entity.PHONE, start, end)) and phone_possible(digits, regions):
            rule = "libphonenumber (formatted)" if strong else "libphonenumber + context"
            return Span(start, end, _E_PHONE, rule, 0.85 if strong else 0.8)
    if n == 5 and ctx.near(Entity.POSTCODE, start, end):
        return Span(start, end, _E_POSTCODE, "ZIP + context", 0.7)
    return None


_ZIP4 = re.compile(r"\d{5}-\d{4}")
_DOTTED = re.compile(
    r"\d{1,3}(?:\.\d{1,3}){3}|(?:\+|00)?[\d ()]*\d{2,4}\.\d{2,4}\.\d{2,4}(?:\.\d{2,4})*"
    r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,6})?"
)


def _numbers(text: str, ctx: _Context, regions: Sequence[str]) -> Iterable[Span]:
    pos = 0
    while (m := _NUMERIC.search(text, pos)) is not None:
        candidate = m.group()
        span = _classify_number(candidate, m.start(), m.end(), ctx, regions)
        if span is not None:
            yield span
        elif " " in candidate:
            yield from _split_glued(candidate, m.start(), ctx, regions)
        pos = m.end()
        tail = _CHAIN.match(text, pos)
        if tail is not None and tail.end() > pos:
            # The candidate stopped inside a longer chain of numbers ("IBAN SSN SSN card"
            # hits the length cap): take the chain to its end and split it into numbers,
            # so a number the cap cut in two is seen whole.
            chain = text[m.start() : tail.end()]
            yield from _split_glued(chain, m.start(), ctx, regions)
            pos = tail.end()
    for start, end in _bare_runs(text, ctx):
        span = _bare_number(text[start:end], start, end, ctx, regions)
        if span is not None:
            yield span


def _split_glued(
    candidate: str, offset: int, ctx: _Context, regions: Sequence[str]
) -> Iterable[Span]:
    """Numbers that a single space glued together ("536-22-1234 536-22-1234").

    Tries the longest run of space-separated tokens first from each token, so
    a spaced phone number still wins over its pieces.
    """
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(candidate)]
    i = 0
    while i < len(tokens):
        for j in range(min(len(tokens), i + _GLUED_MAX_TOKENS), i, -1):
            start, end = tokens[i][0], tokens[j - 1][1]
            if j - i == len(tokens):
                continue  # the whole candidate was already tried
            piece = candidate[start:end]
            span = _classify_number(piece, offset + start, offset + end, ctx, regions)
            if span is not None:
                yield span
                i = j
                break
        else:
            i += 1


_TOKEN = re.compile(r"\S+")


def _bare_runs(text: str, ctx: _Context) -> list[tuple[int, int]]:
    """Runs of 5-19 digits that could count: near a context word, or anywhere if hinted."""
    if ctx.hinted & _BARE_ENTITIES:
        return [m.span() for m in _BARE.finditer(text)]
    seen: dict[int, int] = {}
    for entity in _BARE_ENTITIES:
        for word_end in ctx.positions(entity):
            window_end = word_end + _CONTEXT_WINDOW
            # The search runs past the window by more than the longest run (19
            # digits), so a number starting inside it is never cut short.
            for m in _BARE.finditer(text, max(0, word_end - 40), window_end + 24):
                if m.start() > window_end:
                    break
                seen[m.start()] = m.end()
    return sorted(seen.items())


_LOCAL_REVERSED = re.compile(r"[^\W_]*(?:[.!#$%&'*+/=?^_`{|}~-]+[^\W_]*)*")


# RFC 5322 allows these in a local part, but in printed text they delimit it:
# ``user=ann@…`` (key=value logs), ``{ann@…}``, ``|ann@…|``, ``path/ann@…``.
_LOCAL_BREAKS = "=`{}|/"
# Characters a displayed address does not start with: repr quotes and the rest
# of the RFC specials (``'ann@…'``, ``+ann@…``). ``_`` may start one.
_LOCAL_LEAD = ".-'!#$%&*+?^~"
_QUOTES = "'\"`\u2018\u2019\u201c\u201d"


def _local_start(text: str, start: int, at: int, after: int) -> int:
    """Where the local part of the address ending at ``at`` really starts.

    Python and JSON reprs put a quote right before the local part, and the
    RFC lets a quote (and ``=``, ``{``, ``|``…) be *in* a local part, so the
    reversed local-part match reaches back over it: ``['ann@x.org'`` or
    ``b'ann@x.org'``. Delimiters are boundaries; an apostrophe is one when
    the same quote closes the string right after the domain (``'ann@x.org'``)
    or when nothing but punctuation precedes it, and stays inside otherwise
    (``o'brien@x.org``).
    """
    for ch in _LOCAL_BREAKS:
        cut = text.rfind(ch, start, at)
        if cut != -1:
            start = cut + 1
    closing = text[after : after + 1]
    if closing and closing in _QUOTES:
        cut = text.rfind(closing, start, at)
        if cut != -1:
            start = cut + 1
    while start < at and text[start] in _LOCAL_LEAD:
        start += 1
    return start


def _emails(text: str) -> Iterable[Span]:
    at = text.find("@")
    while at != -1:
        floor = max(0, at - 64)
        local = _LOCAL_REVERSED.match(text[floor:at][::-1])
        start = at - (local.end() if local else 0)
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if domain:
            start = _local_start(text, start, at, domain.end())
        if start < at and domain and email_valid(text[start : domain.end()]):
            yield Span(start, domain.end(), _E_EMAIL, "e-mail shape", 0.95)
        at = text.find("@", at + 1)


def _ibans(text: str) -> Iterable[Span]:
    for m in _IBAN.finditer(text):
        raw = m.group()
        length = iban_length(raw[:2])
        if length is None:
            continue
        cut = length if " " not in raw else _cut_after(raw, length)
        if cut <= len(raw) and iban_valid(raw[:cut]):
            yield Span(m.start(), m.start() + cut, _IBAN_NAME, "IBAN mod-97 + length", 0.95)


def _cut_after(raw: str, characters: int) -> int:
    """Offset just after the ``characters``-th non-space character (or past the end)."""
    taken = 0
    for offset, ch in enumerate(raw, start=1):
        if ch != " ":
            taken += 1
            if taken == characters:
                return offset
    return len(raw) + 1


_HEX = frozenset("0123456789abcdefABCDEF")


def _ipv6_groups(candidate: str) -> list[int] | None:
    """The eight 16-bit groups of an IPv6 address, or None (no IPv4 tail, no zone)."""
    if "." in candidate or "%" in candidate:
        return _ipaddress_groups(candidate)
    halves = candidate.split("::")
    if len(halves) > 2:
        return None
    parts = [p.split(":") if p else [] for p in halves]
    groups: list[int] = []
    for part in parts:
        for group in part:
            if not 1 <= len(group) <= 4 or not set(group) <= _HEX:
                return None
            groups.append(int(group, 16))
    if len(halves) == 1:
        return groups if len(groups) == 8 else None
    missing = 8 - len(groups)
    if missing < 1:
        return None
    head = [int(g, 16) for g in parts[0]]
    return head + [0] * missing + groups[len(head) :]


def _ipaddress_groups(candidate: str) -> list[int] | None:
    try:
        value = int(ipaddress.IPv6Address(candidate))
    except ValueError:
        return None
    return [(value >> (16 * (7 - i))) & 0xFFFF for i in range(8)]


def _local_ipv6(groups: list[int]) -> bool:
    """Loopback and unspecified addresses identify no one."""
    return not any(groups[:7]) and groups[7] in (0, 1)


_PREFIX_LENGTH = re.compile(r"/\d{1,3}(?!\d)")


def _network(text: str, candidate: str, end: int) -> bool:
    """True if ``candidate`` is followed by a prefix length that makes it a network."""
    prefix = _PREFIX_LENGTH.match(text, end)
    return prefix is not None and generalised_value(candidate + prefix.group())


def _ipv6(text: str) -> Iterable[Span]:
    seen_end = -1
    for trigger in _IPV6_TRIGGER.finditer(text):
        if trigger.start() < seen_end:
            continue
        lo, hi = max(0, trigger.start() - 40), min(len(text), trigger.end() + 40)
        for m in _IPV6.finditer(text, lo, hi):
            candidate = m.group()
            if m.end() <= seen_end or candidate.count(":") < 2 or len(candidate) < 6:
                continue  # "a::b" in printed C++ or Python is not an address
            groups = _ipv6_groups(candidate)
            if groups is not None and _network(text, candidate, m.end()):
                continue  # "2001:db8:1::/48": a generalised network, not an address
            if groups is not None and not _local_ipv6(groups):
                seen_end = m.end()
                yield Span(m.start(), m.end(), _E_IP_ADDRESS, "ipaddress", 0.95)


def _postcodes(text: str) -> Iterable[Span]:
    for m in _POSTCODE.finditer(text):
        yield Span(m.start(), m.end(), _E_POSTCODE, "postcode shape", 0.7)


def _dates_of_birth(text: str, ctx: _Context, hinted: bool) -> Iterable[Span]:
    if hinted:
        for m in _DATE_IN_TEXT.finditer(text):
            if parse_date(m.group()):
                yield Span(m.start(), m.end(), _E_DATE_OF_BIRTH, "date + header hint", 0.8)
        return
    for word_end in ctx.positions(Entity.DATE_OF_BIRTH):
        near = _DATE_IN_TEXT.search(text, word_end, word_end + _DOB_WINDOW + 32)
        if near and near.start() <= word_end + _DOB_WINDOW and parse_date(near.group()):
            yield Span(near.start(), near.end(), _E_DATE_OF_BIRTH, "date + context", 0.85)


def _identifiers(text: str, config: DetectionConfig, ctx: _Context) -> Iterable[Span]:
    for ident in config.identifiers:
        for m in ident.compiled.finditer(text):
            if m.end() == m.start() or not ident.accepts(m.group()):
                continue
            if ident.requires_context and not ctx.near(ident.name, m.start(), m.end()):
                continue
            yield Span(m.start(), m.end(), str(ident.name), f"custom: {ident.name}", 0.9)


def _deny(text: str, config: DetectionConfig) -> Iterable[Span]:
    for entity, pattern in config.deny_regexes:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                yield Span(m.start(), m.end(), str(entity), "deny-list", 1.0)


def _ner(text: str, config: DetectionConfig) -> Iterable[Span]:
    model = config.ner
    if model is None:
        return
    known = config.known_entities
    for found in model.find(text):
        if 0 <= found.start < found.end <= len(text) and found.entity in known:
            entity = str(found.entity)
            yield Span(found.start, found.end, entity, f"ner: {model.name}", found.score)


_START = attrgetter("start")


def _best(cluster: list[Span]) -> list[Span]:
    """Greedy choice inside a group of overlapping spans: score, then length, then start."""
    if len(cluster) == 1:
        return cluster
    kept: list[Span] = []
    for span in sorted(cluster, key=lambda s: (-s.score, s.start - s.end, s.start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    kept.sort(key=lambda s: s.start)
    return kept


def _resolve(spans: list[Span]) -> list[Span]:
    """Keep the best of overlapping spans: higher score, then longer, then earlier.

    Spans are swept in order of start and cut into clusters of (transitively)
    overlapping spans; only inside a cluster, usually of one, is a choice made.
    """
    if len(spans) <= 1:
        return spans
    spans.sort(key=_START)
    kept: list[Span] = []
    cluster = [spans[0]]
    reach = spans[0].end
    for span in spans[1:]:
        if span.start < reach:
            cluster.append(span)
            reach = max(reach, span.end)
            continue
        kept.extend(_best(cluster))
        cluster = [span]
        reach = span.end
    kept.extend(_best(cluster))
    return kept


def scan_text(
    text: str,
    config: DetectionConfig | None = None,
    *,
    hint: object = None,
    entities: Iterable[str] | None = None,
) -> list[Span]:
    """Find personal data in ``text``; return non-overlapping spans in order.

    ``hint`` is a column label (or any header-like text): entities it hints at
    need no context word for bare numbers, as in a column named ``ssn``.
    ``entities`` restricts the result to those entity names.

    >>> [(s.entity, s.rule) for s in scan_text("Mail jane@example.org, SSN 536-22-1234.")]
    [('EMAIL', 'e-mail shape'), ('US_SSN', 'SSA rules (dashed)')]
    >>> scan_text("order 536221234 shipped")  # a bare nine-digit run is not an SSN
    []
    """
    if not isinstance(text, str) or not text:
        return []
    cfg = config if config is not None else DEFAULT_CONFIG
    hinted = frozenset(header_entities(hint, cfg.hint_table)) if hint is not None else frozenset()
    ctx = _Context(text, hinted, cfg.context_words)
    spans: list[Span] = []
    if "@" in text:
        spans.extend(_emails(text))
    spans.extend(_numbers(text, ctx, cfg.phone_regions))
    spans.extend(_ibans(text))
    if text.count(":") >= 2:
        spans.extend(_ipv6(text))
    spans.extend(_postcodes(text))
    spans.extend(_dates_of_birth(text, ctx, Entity.DATE_OF_BIRTH in hinted))
    spans.extend(_addresses(text, ctx.lowered))
    spans.extend(_people(text, cfg))
    if cfg.identifiers:
        spans.extend(_identifiers(text, cfg, ctx))
    spans.extend(_deny(text, cfg))
    spans.extend(_ner(text, cfg))
    if entities is not None:
        wanted = frozenset(entities)
        spans = [s for s in spans if s.entity in wanted]
    allow = cfg.allow_regex
    if allow is not None:
        spans = [
            s for s in spans if s.rule == "deny-list" or not allow.fullmatch(text, s.start, s.end)
        ]
    return _resolve(spans)


def _addresses(text: str, lowered: str) -> Iterable[Span]:
    for m in find_addresses(text, lowered):
        yield Span(m.start, m.end, _E_STREET_ADDRESS, f"address grammar: {m.rule}", m.score)


def _people(text: str, config: DetectionConfig) -> Iterable[Span]:
    lexicon = name_lexicon(config.name_locales)
    for m in find_names(text, lexicon):
        yield Span(m.start, m.end, _E_PERSON, f"name lists: {m.rule}", m.score)
