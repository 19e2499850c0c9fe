"""Word lists the rule-based detectors need: given names, surnames, titles, street types.

The engine ships no model and downloads nothing. Its name and street-type
lists come from the locale data that Faker (already a dependency of the
product for the demo workspace) installs: the given names and surnames of
each locale's person provider and the USPS street-suffix list of its
address provider. They are loaded lazily, once per process and per locale
set, because importing them costs ~0.1 s that a kernel should not pay unless
it displays text.

If Faker is missing, small built-in lists keep the detectors working at a
lower recall; :attr:`NameLexicon.source` says which lists are in use so that a
report can show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module

__all__ = [
    "COMMON_CAPITALISED",
    "DEFAULT_NAME_LOCALES",
    "NameLexicon",
    "name_lexicon",
    "street_suffixes",
]

DEFAULT_NAME_LOCALES: tuple[str, ...] = (
    "en_US",
    "en_GB",
    "en_IE",
    "de_DE",
    "de_AT",
    "fr_FR",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pt_PT",
    "pt_BR",
    "pl_PL",
    "sv_SE",
    "da_DK",
    "no_NO",
)
"""Locales whose name lists are loaded unless the policy says otherwise."""

TITLES: frozenset[str] = frozenset(
    t.casefold()
    for t in (
        "Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Dame", "Lady", "Lord",
        "Rev", "Fr", "Herr", "Frau", "Hr", "Fr", "M", "Mme", "Mlle", "Me", "Sr", "Sra",
        "Srta", "Sig", "Sig.ra", "Dott", "Dott.ssa", "Ing", "Dipl.-Ing", "Mag",
        "Univ.Prof", "Dipl.-Kfm", "Pan", "Pani", "Don", "Doña",
    )
)  # fmt: skip
"""Honorifics and academic titles (casefolded, without the trailing dot)."""

NAME_SUFFIXES: frozenset[str] = frozenset(
    s.casefold()
    for s in (
        "Jr", "Sr", "II", "III", "IV", "V", "MD", "DDS", "PhD", "DVM", "Esq", "MBA",
        "B.Sc", "B.A", "B.Eng", "M.Sc", "M.A", "RN", "CPA",
    )
)  # fmt: skip
"""Generational and professional suffixes that follow a name."""

PARTICLES: frozenset[str] = frozenset(
    {"van", "von", "de", "der", "den", "da", "di", "du", "la", "le", "del", "della",
     "dos", "das", "do", "ter", "ten", "zu", "zum", "y", "bin", "ibn", "af", "av", "d'"}
)  # fmt: skip
"""Lower-case surname particles that may sit between capitalised name tokens."""

COMMON_CAPITALISED: frozenset[str] = frozenset(
    w.casefold()
    for w in (
        # Calendar words that double as given names.
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December", "Monday", "Tuesday",
        "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Christmas", "Easter",
        # English words that appear capitalised at the start of clauses, in headings
        # and in table headers, and that also occur in given-name or surname lists.
        "The", "A", "An", "And", "Or", "But", "If", "In", "On", "At", "To", "By", "For",
        "From", "With", "Of", "As", "Is", "It", "We", "You", "He", "She", "They", "This",
        "That", "These", "Those", "Will", "Can", "Do", "Did", "Please", "Thanks", "Hi",
        "Hello", "Dear", "Re", "Fwd", "Note", "Notes", "Total", "Amount", "Name", "Date",
        "Order", "Customer", "Client", "Patient", "User", "Account", "Card", "Bank",
        "Street", "Road", "Avenue", "City", "State", "Country", "North", "South", "East",
        "West", "New", "Old", "Great", "Little", "Major", "General", "Grant", "Rose", "Hope",
        "Faith", "Joy", "Grace", "Will", "Mark", "Bill", "Frank", "Chase", "Summer", "Dawn",
        "Miles", "Lane", "Dean", "Rich", "Sterling", "Crystal", "Amber", "Ruby", "Pearl",
        "Holly", "Ivy", "Day", "Violet", "Iris", "Jade", "Sky", "Paris", "Sydney", "London",
        "Berlin", "Florence", "Victoria", "Georgia", "Carolina", "Virginia", "Jersey",
        "Washington", "Lincoln", "Jackson", "Madison", "Austin", "Houston", "Dallas",
        "Phoenix", "Denver", "Boston", "Orlando", "Charlotte", "Chelsea", "Kent",
        "Warning", "Error", "Info", "Debug", "True", "False", "None", "Yes", "No", "OK",
    )
)  # fmt: skip
"""Capitalised words too common to count as a name without stronger evidence.

A word in this list counts as a given name only when a known surname follows
it, and as a surname only when it is in the surname list: "Mark Johnson" is a
name, "May Day" and "North Street" are not.
"""

_FALLBACK_FIRST = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Donald",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Peter",
    "Anna",
    "Hans",
    "Klaus",
    "Jean",
    "Pierre",
    "Marie",
    "Sophie",
    "Luca",
    "Giulia",
    "Maria",
    "Jose",
    "Juan",
    "Carlos",
    "Ana",
    "Lucia",
]
_FALLBACK_LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Martin",
    "Bernard",
    "Dubois",
    "Durand",
    "Rossi",
    "Russo",
    "Ferrari",
]


@dataclass(frozen=True, slots=True)
class NameLexicon:
    """Casefolded given names and surnames, plus where they came from."""

    first: frozenset[str]
    last: frozenset[str]
    source: str

    def is_first(self, token: str) -> bool:
        """True if ``token`` (or any hyphenated part of it) is a known given name."""
        folded = token.casefold()
        if folded in self.first:
            return True
        return "-" in folded and any(p in self.first for p in folded.split("-") if p)

    def is_last(self, token: str) -> bool:
        """True if ``token`` (or any hyphenated part of it) is a known surname."""
        folded = token.casefold()
        if folded in self.last:
            return True
        return "-" in folded and any(p in self.last for p in folded.split("-") if p)


def _words(values: object) -> Iterable[str]:
    """Flatten Faker's tuple or weighted-dict name collections into single words."""
    items: Iterable[object]
    if isinstance(values, Mapping):
        items = values.keys()
    elif isinstance(values, (tuple, list)):
        items = values
    else:
        return ()
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.extend(part for part in item.replace("-", " ").split() if len(part) > 1)
    return out


@lru_cache(maxsize=8)
def name_lexicon(locales: tuple[str, ...] = DEFAULT_NAME_LOCALES) -> NameLexicon:
    """Load the given-name and surname lists for ``locales`` (cached per process)."""
    first: set[str] = set()
    last: set[str] = set()
    loaded: list[str] = []
    for locale in locales:
        try:
            provider = import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for attr in dir(provider):
            if attr.startswith("first_names"):
                first.update(w.casefold() for w in _words(getattr(provider, attr)))
            elif attr.startswith("last_names"):
                last.update(w.casefold() for w in _words(getattr(provider, attr)))
        loaded.append(locale)
    if not loaded:
        first.update(w.casefold() for w in _FALLBACK_FIRST)
        last.update(w.casefold() for w in _FALLBACK_LAST)
        return NameLexicon(frozenset(first), frozenset(last), "built-in fallback lists")
    first -= PARTICLES
    last -= PARTICLES
    return NameLexicon(frozenset(first), frozenset(last), "faker locales " + ",".join(loaded))


_USPS_FALLBACK = [
    "Alley",
    "Avenue",
    "Boulevard",
    "Circle",
    "Court",
    "Cove",
    "Crescent",
    "Drive",
    "Highway",
    "Lane",
    "Parkway",
    "Place",
    "Plaza",
    "Road",
    "Row",
    "Square",
    "Street",
    "Terrace",
    "Trail",
    "Way",
    "Walk",
    "Close",
    "Gardens",
    "Grove",
    "Mews",
]
_STREET_ABBREVIATIONS = [
    "St",
    "Ave",
    "Av",
    "Rd",
    "Blvd",
    "Dr",
    "Ln",
    "Ct",
    "Pl",
    "Sq",
    "Ter",
    "Terr",
    "Hwy",
    "Pkwy",
    "Cir",
    "Trl",
    "Cres",
    "Gdns",
    "Gr",
    "Cl",
    "Pde",
]


@lru_cache(maxsize=1)
def street_suffixes() -> frozenset[str]:
    """Capitalised English street-type words: the USPS list plus common abbreviations."""
    words: set[str] = set(_STREET_ABBREVIATIONS) | set(_USPS_FALLBACK)
    try:
        provider = import_module("faker.providers.address.en_US").Provider
        words.update(str(w) for w in getattr(provider, "street_suffixes", ()))
    except ImportError:
        pass
    words.update({"Close", "Parade", "Gardens", "Mews", "Wharf", "Quay", "Gate", "Hill"})
    return frozenset(words)
