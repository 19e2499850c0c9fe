from __future__ import annotations

import pytest

from jupyter_secure.masking.addresses import find_addresses, looks_like_address
from jupyter_secure.masking.names import find_names, looks_like_person
from jupyter_secure.masking.resources import name_lexicon, street_suffixes


@pytest.fixture(scope="module")
def lexicon():  # type: ignore[no-untyped-def]
    return name_lexicon()


def names(text: str, lexicon) -> list[str]:  # type: ignore[no-untyped-def]
    return [text[m.start : m.end] for m in find_names(text, lexicon)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Customer Dr. John Smith MD called.", ["Dr. John Smith MD"]),
        ("Met Anna Schmidt, Berlin and Mark Johnson.", ["Anna Schmidt", "Mark Johnson"]),
        (
            "Univ.Prof. Karsten Wieloch-Bolnbach B.Sc. said",
            ["Univ.Prof. Karsten Wieloch-Bolnbach B.Sc."],
        ),
        ("Jean-Pierre de la Fontaine est venu", ["Jean-Pierre de la Fontaine"]),
        ("Samantha Hill called", ["Samantha Hill"]),
        ("The meeting in May Day was fine. New York Times.", []),
        ("lives at 12 Maple Grove", []),
        ("anyone Mr. Login from 1.2.3.4", []),
    ],
)
def test_names_in_text(text: str, expected: list[str], lexicon) -> None:  # type: ignore[no-untyped-def]
    assert names(text, lexicon) == expected


def test_name_values(lexicon) -> None:  # type: ignore[no-untyped-def]
    assert looks_like_person("Dr. John Smith MD", lexicon)
    assert looks_like_person("Jean-Pierre", lexicon)
    assert not looks_like_person("East Jamesfurt", lexicon)
    assert not looks_like_person("Customer Service", lexicon)


def test_lexicon_comes_from_shipped_lists(lexicon) -> None:  # type: ignore[no-untyped-def]
    assert "faker" in lexicon.source
    assert lexicon.is_first("Maria")
    assert lexicon.is_last("Schmidt")
    assert "Street" in street_suffixes()


@pytest.mark.parametrize(
    "address",
    [
        "8906 April Points Apt. 607",
        "244 Park Parks Suite 104, Cooperborough, KS 14756",
        "Flat 7, Pearce Flats, Jonesstad, HS08 7ZA",
        "Studio 12\nO'Neill Isle",
        "Walter-Beyer-Ring 3-3",
        "Slavko-Blümel-Straße 49/98, 92541 Ebern",
        "Sorgatzstr. 6",
        "95, chemin de Fernandez",
        "rue Thibault Fischer",
        "PSC 1234, Box 5678, APO AE 12345",
        "USNS Smith, FPO AA 12345",
    ],
)
def test_address_grammar(address: str) -> None:
    assert looks_like_address(address)


@pytest.mark.parametrize(
    "text",
    [
        "Offering 5 new plans",
        "take place Monday",
        "sent via email",
        "0706  Lake Laura",
        "Main Street",
    ],
)
def test_not_addresses(text: str) -> None:
    assert list(find_addresses(text)) == []
