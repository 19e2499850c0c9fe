"""Every route the running server exposes, with a concrete path for each (for route tests)."""

from __future__ import annotations

import re
from typing import Any

SAMPLES = ["x", "a-b-c-d-e", "/x", "restart", "python3", "notebook", "", "/", "x/y"]


def _groups(pattern: str) -> list[tuple[int, int]]:
    """Spans of the top-level groups in a regex pattern (escapes and classes respected)."""
    spans, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
                if i + 1 < len(pattern) and pattern[i + 1] in "?*+":
                    spans[-1] = (start, i + 2)
        i += 1
    return spans


def sample_path(pattern: str) -> str | None:
    """A path the pattern matches, built by filling each group with a sample value."""
    full = re.compile(pattern)
    body = pattern.rstrip("$")
    while True:
        spans = _groups(body)
        if not spans:
            break
        start, end = spans[0]
        for candidate in SAMPLES:
            trial = body[:start] + re.escape(candidate) + body[end:]
            probe = re.sub(r"\\(.)", r"\1", _literal(trial))
            if probe is not None and full.fullmatch(probe + "") and True:
                body = trial
                break
        else:
            body = body[:start] + body[end:]
    path = re.sub(r"\\(.)", r"\1", body).replace(".*", "x")
    return path if full.fullmatch(path) else None


def _literal(pattern: str) -> str:
    """The pattern with remaining groups filled crudely, to test a candidate early."""
    out = pattern
    for start, end in reversed(_groups(out)):
        out = out[:start] + "x" + out[end:]
    return out.replace(".*", "x")


def all_routes(web_app: Any) -> list[tuple[str, str]]:
    """(pattern, sample path) for every route, in routing order."""
    return [(pattern, path) for pattern, path, _ in route_targets(web_app)]


def route_targets(web_app: Any) -> list[tuple[str, str, Any]]:
    """(pattern, sample path, handler class) for every route, in routing order."""
    found: list[tuple[str, str, Any]] = []

    def walk(router: Any) -> None:
        for rule in router.rules:
            if hasattr(rule.target, "rules"):
                walk(rule.target)
                continue
            pattern = rule.matcher.regex.pattern
            path = sample_path(pattern)
            if path is not None:
                found.append((pattern, path, rule.target))

    walk(web_app.default_router)
    return found
