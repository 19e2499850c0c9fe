"""Person names in text and in column values, from name lists and a little grammar.

Without a language model the best evidence a shipped resource gives is a
given-name list and a surname list (see :mod:`.resources`). The rule: a run
of capitalised tokens is a name when a known given name starts it and a
plausible surname ends it, or when an honorific ("Dr.", "Frau") introduces
it. Titles and suffixes ("PhD", "Jr.") are part of the span because they are
part of what identifies the person. Single given names without a title are
not reported: in prose they are too often ordinary words. A site that needs
better recall plugs in an NER model (:mod:`.ner`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .resources import (
    COMMON_CAPITALISED,
    NAME_SUFFIXES,
    PARTICLES,
    TITLES,
    NameLexicon,
    street_suffixes,
)

__all__ = ["NameMatch", "find_names", "looks_like_person"]

# Latin-1 capitals and the Latin Extended-A block (which interleaves cases,
# so candidates are checked with str.isupper() afterwards).
_UPPER = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f"
# An apostrophe belongs to a name only between letters ("O'Brien", "D'Angelo"):
# a trailing one closes a quoted string ('Ann Lee' in a printed list) and
# "'s" is a possessive ("Ann Lee's"), so neither is part of the span.
_APOSTROPHE = r"(?:['\u2019](?![sS](?!\w))\w+)"
_TOKEN = rf"[{_UPPER}]\w*{_APOSTROPHE}*(?:(?:\.-|[.\-])\w+{_APOSTROPHE}*)*\.?"
_PARTICLE = "|".join(sorted((re.escape(p) for p in PARTICLES), key=len, reverse=True))
_RUN = re.compile(rf"{_TOKEN}(?:,?[ ]+(?:(?:{_PARTICLE})[ ]+)*{_TOKEN})*")
_HOUSE_NUMBER = re.compile(r"\d[\dA-Za-z/-]*,?\s+$")
_PIECE = re.compile(rf"{_TOKEN}|(?:{_PARTICLE})(?=[ ])")


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A person name found in text."""

    start: int
    end: int
    score: float
    rule: str


def _bare(token: str) -> str:
    return token.rstrip(".,").casefold()


def _is_title(token: str) -> bool:
    return _bare(token) in TITLES


def _is_suffix(token: str) -> bool:
    return _bare(token) in NAME_SUFFIXES


def _is_common(token: str) -> bool:
    return _bare(token) in COMMON_CAPITALISED


def _surname_ok(token: str, lexicon: NameLexicon, streets: frozenset[str]) -> bool:
    word = token.rstrip(".,")
    if not word[:1].isupper():
        return False
    if word.isupper() and len(word) <= 4:
        return lexicon.is_last(word)  # an acronym ("QQ", "USA") unless it is a known surname
    if lexicon.is_last(word):
        return True
    return not _is_common(word) and len(word) > 1


_Piece = tuple[int, int, str]


def _bounds(tokens: list[_Piece], lexicon: NameLexicon) -> tuple[int | None, int, int]:
    """(index of the first title or None, start of the name core, end of the core).

    Leading words that are neither titles nor given names ("Customer",
    "Refund") are skipped; trailing suffixes ("PhD", "Jr.") are left out of
    the core but stay in the span.
    """
    i = 0
    while i < len(tokens) and not (
        _is_title(tokens[i][2]) or lexicon.is_first(tokens[i][2].rstrip(".,"))
    ):
        i += 1
    first_title: int | None = None
    while i < len(tokens) and _is_title(tokens[i][2]):
        first_title = i if first_title is None else first_title
        i += 1
    j = len(tokens)
    while j > i + 1 and _is_suffix(tokens[j - 1][2]):
        j -= 1
    return first_title, i, j


def _rule(
    core: list[_Piece], titled: bool, lexicon: NameLexicon, streets: frozenset[str]
) -> tuple[float, str] | None:
    """Score and rule name if the core tokens make a name, else None."""
    if titled:
        words = [t[2].rstrip(".,") for t in core]
        known = any(lexicon.is_first(w) or lexicon.is_last(w) for w in words)
        if known and all(_surname_ok(w, lexicon, streets) or lexicon.is_first(w) for w in words):
            return 0.85, "title + name"
        return None
    if len(core) < 2:
        return None
    given, family = core[0][2].rstrip(".,"), core[-1][2].rstrip(".,")
    if _is_common(given):
        ok = lexicon.is_last(family) and not _is_common(family)
        return (0.7, "given name + surname list") if ok else None
    if not _surname_ok(family, lexicon, streets):
        return None
    return (0.9 if lexicon.is_last(family) else 0.75), "given name list + surname"


def _judge(pieces: list[_Piece], lexicon: NameLexicon, streets: frozenset[str]) -> NameMatch | None:
    """Decide whether one run of capitalised pieces holds a name, and where.

    ``streets`` is the street-type list when the run follows a house number
    ("12 Maple Grove"), where a street type as last word means an address;
    elsewhere ("Samantha Hill") it is empty.
    """
    tokens = [p for p in pieces if p[2][:1].isupper()]
    first_title, i, j = _bounds(tokens, lexicon)
    core = tokens[i:j][:5]
    if not core:
        return None
    if core[-1][2].rstrip(".,") in streets:
        return None
    verdict = _rule(core, first_title is not None, lexicon, streets)
    if verdict is None:
        return None
    end = tokens[-1][1] if j < len(tokens) else core[-1][1]
    if j == len(tokens) and core[-1][2].endswith(".") and len(core[-1][2]) > 2:
        end -= 1  # a sentence's full stop, not an abbreviation
    start = tokens[first_title][0] if first_title is not None else core[0][0]
    return NameMatch(start, end, verdict[0], verdict[1])


def _pieces(run_text: str, base: int) -> list[_Piece]:
    """Split a run into (start, end, token) on spaces; commas stay with the token."""
    pieces: list[tuple[int, int, str]] = []
    offset = base
    for word in run_text.split(" "):
        if word:
            token = word.rstrip(",")
            pieces.append((offset, offset + len(token), token))
        offset += len(word) + 1
    return pieces


def _segments(
    text: str, pieces: list[tuple[int, int, str]]
) -> Iterator[list[tuple[int, int, str]]]:
    """Cut a run where a comma or a sentence-ending full stop separates two names."""
    segment: list[tuple[int, int, str]] = []
    for index, piece in enumerate(pieces):
        if segment:
            gap = text[segment[-1][1] : piece[0]]
            if "," in gap and not _is_suffix(piece[2]):
                yield segment
                segment = []
        segment.append(piece)
        word = piece[2]
        ends_sentence = (
            word.endswith(".")
            and len(word.rstrip(".")) > 1
            and not _is_title(word)
            and not _is_suffix(word)
            and index + 1 < len(pieces)
            and not _is_suffix(pieces[index + 1][2])
        )
        if ends_sentence:
            yield segment
            segment = []
    if segment:
        yield segment


def find_names(text: str, lexicon: NameLexicon) -> Iterator[NameMatch]:
    """Yield person names in ``text`` (spans include titles and suffixes)."""
    streets = street_suffixes()
    first = lexicon.first
    for run in _RUN.finditer(text):
        run_text = run.group()
        if " " not in run_text:
            continue
        words = [w.rstrip(".,").casefold() for w in run_text.split()]
        if not any(w in first or w in TITLES or "-" in w for w in words):
            continue
        pieces = _pieces(run_text, run.start())
        after_number = _HOUSE_NUMBER.search(text, max(0, run.start() - 12), run.start())
        for segment in _segments(text, pieces):
            if len(segment) < 2:
                continue
            match = _judge(segment, lexicon, streets if after_number else frozenset())
            if match is not None:
                yield match


def looks_like_person(value: str, lexicon: NameLexicon) -> bool:
    """True if a whole cell value reads as a person's name (or a lone given/surname).

    Used by column classification: a ``first_name`` column holds single
    tokens, a ``customer`` column full names with titles.
    """
    text = value.strip()
    if not text or len(text) > 80 or not text[:1].isupper():
        return False
    pieces = [(m.start(), m.end(), m.group()) for m in _PIECE.finditer(text)]
    if not pieces or sum(e - s for s, e, _ in pieces) < 0.7 * len(text.replace(" ", "")):
        return False
    words = [p[2].rstrip(".,") for p in pieces if p[2][:1].isupper()]
    words = [w for w in words if not _is_title(w) and not _is_suffix(w)]
    if not words or len(words) > 5:
        return False
    if len(words) == 1:
        return lexicon.is_first(words[0]) or lexicon.is_last(words[0])
    return lexicon.is_first(words[0]) or lexicon.is_last(words[-1])
