"""Masking what a kernel sends back: every data-bearing message, per role.

A pure core (no tornado, jupyter_server or IPython): it takes a message type
and its ``content`` as decoded JSON and returns the masked content with counts
of what was masked. The server's channel guard calls it for every message on
its way to a browser; the notebook save hook calls it for saved outputs.

Where text can hold personal data it is scanned with the PII engine
(:func:`~jupyter_secure.masking.mask_text`): output streams, every textual MIME
type of a display bundle, tracebacks, inspection and completion replies,
widget (comm) data and debugger replies, recursively through JSON. Binary MIME
types (images, PDFs) are passed unchanged: text drawn into a picture is not
found (the threat model says so).

Why recursion over JSON rather than a list of known fields: a frontend
extension or widget can put data anywhere in a comm message or a JSON bundle,
and a field we did not list would be a hole.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..masking import RolePolicy, Strategy, mask_text

__all__ = [
    "SAFE_HEADER_VALUE",
    "STATUS_STATES",
    "MaskOutcome",
    "OutputMasker",
    "mask_notebook_outputs",
]

#: The states a ``status`` message may report: the one kernel message that passes
#: unread, and only when its content is exactly ``{"execution_state": <one of these>}``.
#: Every other message — including the types a kernel makes up — is decoded and masked:
#: a kernel is programmed by its user and must not get values past the guard by
#: choosing a message type or a field nobody reads.
STATUS_STATES: frozenset[str] = frozenset(
    {"busy", "idle", "starting", "restarting", "dead", "autorestarting"}
)

#: Header values passed unread: ids, names, versions, dates (no '@', no spaces).
SAFE_HEADER_VALUE = re.compile(r"[\w.:+\-]{0,128}")
_HEADER_KEYS = ("msg_id", "msg_type", "username", "session", "date", "version", "subshell_id")

_SHORT = 256  # strings up to this long are cached per connection
_SHORT_ENTRIES = 8192

#: MIME types that are text even though they do not start with ``text/``.
_TEXTUAL = ("application/javascript", "application/x-latex", "image/svg+xml")


@dataclass
class MaskOutcome:
    """The masked content and, per entity, how many values were masked (no values)."""

    content: Any
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def masked(self) -> bool:
        return bool(self.counts)


def _all_raw(policy: RolePolicy) -> bool:
    return all(s is Strategy.RAW for s in policy.strategies.values()) and not any(
        s is not Strategy.RAW for s in policy.column_strategies.values()
    )


def _is_text_mime(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXTUAL


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json")


class OutputMasker:
    """Masks kernel message content for one role (one instance per connection)."""

    def __init__(self, policy: RolePolicy) -> None:
        self.policy = policy
        #: a role that sees every value raw skips scanning altogether (admin by default)
        self.passthrough = _all_raw(policy)
        #: results computed elsewhere (the process pool) for long strings: text -> result
        self.precomputed: dict[str, tuple[str, dict[str, int]]] = {}
        #: short strings already masked (dict keys, stream names, status words, ids):
        #: masking is deterministic per role and key, so a repeat costs a lookup
        self._short: dict[str, tuple[str, dict[str, int]]] = {}

    def long_strings(self, content: Any, threshold: int) -> list[str]:
        """The distinct strings of at least ``threshold`` characters in ``content``."""
        found: dict[str, None] = {}
        stack = [content]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                if len(value) >= threshold:
                    found[value] = None
            elif isinstance(value, Mapping):
                stack.extend(value.values())
            elif isinstance(value, list | tuple):
                stack.extend(value)
        return list(found)

    # --- building blocks -------------------------------------------------------------
    def text(self, value: str, counts: dict[str, int]) -> str:
        if self.passthrough or not value:
            return value
        done = self.precomputed.get(value) if self.precomputed else None
        if done is None and len(value) <= _SHORT:
            done = self._short.get(value)
            if done is None:
                result = mask_text(value, self.policy)
                done = (result.text, result.counts)
                if len(self._short) >= _SHORT_ENTRIES:
                    self._short.clear()
                self._short[value] = done
        if done is not None:
            for entity, n in done[1].items():
                counts[entity] = counts.get(entity, 0) + n
            return done[0]
        result = mask_text(value, self.policy)
        for entity, n in result.counts.items():
            counts[entity] = counts.get(entity, 0) + n
        return result.text

    def json(self, value: Any, counts: dict[str, int], depth: int = 0) -> Any:
        """Every string in a JSON value masked (keys too: a dict keyed by e-mail leaks)."""
        if isinstance(value, str):
            return self.text(value, counts)
        if depth > 64:  # pathological nesting: withhold rather than recurse forever
            counts["WITHHELD"] = counts.get("WITHHELD", 0) + 1
            return None
        if isinstance(value, Mapping):
            return {
                self.text(k, counts) if isinstance(k, str) else k: self.json(v, counts, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.json(v, counts, depth + 1) for v in value]
        return value

    def bundle(self, data: Any, counts: dict[str, int]) -> Any:
        """A MIME bundle: textual types scanned, JSON types walked, binary types kept."""
        if not isinstance(data, Mapping):
            return self.json(data, counts)
        out: dict[str, Any] = {}
        for mime, value in data.items():
            mime_s = str(mime)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                # nbformat stores multi-line strings as lists of lines
                out[mime] = self.text("".join(value), counts) if _is_text_mime(mime_s) else value
            elif isinstance(value, str) and (_is_text_mime(mime_s) or _is_json_mime(mime_s)):
                out[mime] = self.text(value, counts)
            elif _is_json_mime(mime_s) or not isinstance(value, str):
                out[mime] = self.json(value, counts)
            else:
                out[mime] = value  # base64 images and other binary payloads
        return out

    # --- messages -------------------------------------------------------------------
    def message(self, msg_type: str, content: Any) -> MaskOutcome:
        """The masked content of one kernel message.

        Known fields are masked by what they hold; every other field of the content
        is walked as JSON, so a field nobody listed cannot carry a value past.
        """
        counts: dict[str, int] = {}
        if self.passthrough:
            return MaskOutcome(content, counts)
        if not isinstance(content, dict):
            return MaskOutcome(self.json(content, counts), counts)
        if msg_type == "status":
            state = content.get("execution_state")
            return MaskOutcome({"execution_state": state if state in STATUS_STATES else "busy"})
        c = dict(content)
        handled: set[str] = set()
        if msg_type == "stream":
            name = c.get("name")
            c["name"] = name if name in ("stdout", "stderr") else self.text(str(name), counts)
            c["text"] = self.text(str(c.get("text", "")), counts)
            handled = {"name", "text"}
        elif msg_type in ("display_data", "execute_result", "update_display_data", "inspect_reply"):
            c["data"] = self.bundle(c.get("data", {}), counts)
            handled = {"data"}
        elif msg_type == "error":
            c = self._error(c, counts)
            handled = {"ename", "evalue", "traceback"}
        elif msg_type == "execute_reply":
            if c.get("status") == "error":
                c = self._error(c, counts)
                handled = {"ename", "evalue", "traceback"}
            expressions = c.get("user_expressions")
            if isinstance(expressions, dict):
                c["user_expressions"] = {
                    self.text(str(name), counts): self._expression(value, counts)
                    for name, value in expressions.items()
                }
                handled.add("user_expressions")
        for key in list(c):
            if key not in handled:
                c[key] = self.json(c[key], counts)
        return MaskOutcome(c, counts)

    def header(self, value: Any, counts: dict[str, int]) -> dict[str, Any]:
        """A message header for the browser: the standard keys only, odd values masked."""
        if not isinstance(value, Mapping):
            return {}
        out: dict[str, Any] = {}
        for key in _HEADER_KEYS:
            if key not in value:
                continue
            v = value[key]
            if isinstance(v, dt.datetime) or (
                isinstance(v, str) and SAFE_HEADER_VALUE.fullmatch(v)
            ):
                out[key] = v
            else:
                out[key] = self.text(str(v), counts)
        return out

    def _error(self, c: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
        c["ename"] = self.text(str(c.get("ename", "")), counts)
        c["evalue"] = self.text(str(c.get("evalue", "")), counts)
        lines = c.get("traceback")
        if not isinstance(lines, list):
            lines = [] if lines is None else [lines]
        c["traceback"] = [self.text(str(line), counts) for line in lines]
        return c

    def _expression(self, value: Any, counts: dict[str, int]) -> Any:
        if not isinstance(value, dict):
            return self.json(value, counts)
        v = dict(value)
        handled = set()
        if "data" in v:
            v["data"] = self.bundle(v["data"], counts)
            handled.add("data")
        if v.get("status") == "error":
            v = self._error(v, counts)
            handled |= {"ename", "evalue", "traceback"}
        for key in list(v):
            if key not in handled:
                v[key] = self.json(v[key], counts)
        return v


_OUTPUT_MESSAGE = {
    "stream": "stream",
    "display_data": "display_data",
    "execute_result": "execute_result",
    "error": "error",
}


def mask_notebook_outputs(nb: Any, masker: OutputMasker) -> dict[str, int]:
    """Mask every output of every code cell of an nbformat-4 notebook dict, in place.

    Returns the counts per entity. Used by the contents manager when a notebook is
    saved, so raw PII in outputs does not reach the disk whatever the browser sent
    (the browser's copy is not trusted: any client can PUT a notebook). Outputs are
    masked like the kernel messages they came from, every field of them; notebook
    and cell metadata are walked too. Cell sources are the author's own text and are
    kept; binary attachments and image outputs cannot be scanned and are kept.
    """
    counts: dict[str, int] = {}
    if not isinstance(nb, dict) or masker.passthrough:
        return counts
    if isinstance(nb.get("metadata"), dict):
        nb["metadata"] = masker.json(nb["metadata"], counts)
    cells = nb.get("cells")
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        if isinstance(cell.get("metadata"), dict):
            cell["metadata"] = masker.json(cell["metadata"], counts)
        outputs = cell.get("outputs")
        if cell.get("cell_type") != "code" or not isinstance(outputs, list):
            continue
        for i, output in enumerate(outputs):
            outputs[i] = _mask_output(output, masker, counts)
    return counts


def _mask_output(output: Any, masker: OutputMasker, counts: dict[str, int]) -> Any:
    if not isinstance(output, dict):
        return masker.json(output, counts)
    kind = str(output.get("output_type", ""))
    item = dict(output)
    if kind == "stream" and isinstance(item.get("text"), list):
        item["text"] = "".join(str(t) for t in item["text"])
    outcome = masker.message(_OUTPUT_MESSAGE.get(kind, "unknown_output"), item)
    masked = outcome.content
    for entity, n in outcome.counts.items():
        counts[entity] = counts.get(entity, 0) + n
    if outcome.masked and kind in ("display_data", "execute_result"):
        meta = masked.get("metadata")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta["jupyter_secure"] = {
            "masked": True,
            "by": "save",
            "role": masker.policy.role,
            "entities": dict(outcome.counts),
        }
        masked["metadata"] = meta
    return masked
