"""Small regex helpers shared by the detectors (internal)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["trie_alternation"]

_Trie = dict[str, "_Trie"]


def trie_alternation(words: Iterable[str]) -> str:
    """A regex alternation of ``words`` factored by common prefixes.

    CPython's regex engine tries alternatives one by one; factoring shared
    prefixes turns a 200-word alternation into a few character tests per
    position, which is what keeps the text scan above 5 MB/s.

    >>> re.fullmatch(trie_alternation(["street", "st", "stravenue"]), "stravenue") is not None
    True
    """
    tree: _Trie = {}
    for word in words:
        if not word:
            continue
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _emit(tree) or "(?!x)x"


def _emit(node: _Trie) -> str:
    branches = []
    for ch, child in sorted(node.items()):
        if ch:
            branches.append(re.escape(ch) + _emit(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body
