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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..masking import RolePolicy, Strategy, mask_text

__all__ = [
    "DATA_MESSAGES",
    "RAW_MESSAGES",
    "MaskOutcome",
    "OutputMasker",
    "mask_notebook_outputs",
]

#: Message types that carry no output data and pass unchanged. Every other type —
#: the data-bearing ones below and any type a kernel makes up — is decoded and masked:
#: a kernel (which the user programs) must not get raw values past the guard by
#: inventing a message type.
RAW_MESSAGES: frozenset[str] = frozenset(
    {
        "status",
        "execute_input",  # the code the user typed, echoed
        "clear_output",
        "shutdown_reply",
        "interrupt_reply",
        "kernel_info_reply",
        "is_complete_reply",
        "comm_info_reply",
        "usage_reply",
    }
)

#: Message types known to carry output data (masked field by field; unknown types are
#: masked by walking their whole content).
DATA_MESSAGES: frozenset[str] = frozenset(
    {
        "stream",
        "display_data",
        "execute_result",
        "update_display_data",
        "error",
        "execute_reply",
        "inspect_reply",
        "complete_reply",
        "history_reply",
        "input_request",
        "comm_open",
        "comm_msg",
        "comm_close",
        "debug_reply",
        "debug_event",
    }
)

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
        """The masked content of one kernel message (unchanged for non-data types)."""
        counts: dict[str, int] = {}
        if msg_type in RAW_MESSAGES or self.passthrough or not isinstance(content, dict):
            return MaskOutcome(content, counts)
        c = dict(content)
        if msg_type == "stream":
            c["text"] = self.text(str(c.get("text", "")), counts)
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            c["data"] = self.bundle(c.get("data", {}), counts)
            if "metadata" in c:
                c["metadata"] = self.json(c["metadata"], counts)
        elif msg_type == "error":
            c = self._error(c, counts)
        elif msg_type == "execute_reply":
            if c.get("status") == "error":
                c = self._error(c, counts)
            if "user_expressions" in c:
                c["user_expressions"] = {
                    self.text(str(name), counts): self._expression(value, counts)
                    for name, value in (c.get("user_expressions") or {}).items()
                }
            if "payload" in c:
                c["payload"] = self.json(c.get("payload"), counts)
        elif msg_type == "inspect_reply":
            c["data"] = self.bundle(c.get("data", {}), counts)
        else:  # completion, history, input prompts, comms, debugger: walk everything
            c = self.json(c, counts)
        return MaskOutcome(c, counts)

    def _error(self, c: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
        c["ename"] = self.text(str(c.get("ename", "")), counts)
        c["evalue"] = self.text(str(c.get("evalue", "")), counts)
        c["traceback"] = [self.text(str(line), counts) for line in c.get("traceback") or []]
        return c

    def _expression(self, value: Any, counts: dict[str, int]) -> Any:
        if not isinstance(value, dict):
            return self.json(value, counts)
        v = dict(value)
        if "data" in v:
            v["data"] = self.bundle(v["data"], counts)
        if v.get("status") == "error":
            v = self._error(v, counts)
        return v


def mask_notebook_outputs(nb: Any, masker: OutputMasker) -> dict[str, int]:
    """Mask every output of every code cell of an nbformat-4 notebook dict, in place.

    Returns the counts per entity. Used by the contents manager when a notebook is
    saved, so raw PII in outputs does not reach the disk whatever the browser sent
    (the browser's copy is not trusted: any client can PUT a notebook).
    """
    counts: dict[str, int] = {}
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for cell in cells or []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs") or []
        for i, original in enumerate(outputs):
            if not isinstance(original, dict):
                continue
            output = original
            kind = str(output.get("output_type", ""))
            before = dict(counts)
            if kind == "stream":
                text = output.get("text", "")
                text = "".join(text) if isinstance(text, list) else str(text)
                output["text"] = masker.text(text, counts)
            elif kind in ("display_data", "execute_result"):
                output["data"] = masker.bundle(output.get("data", {}), counts)
            elif kind == "error":
                outputs[i] = output = masker._error(output, counts)
            else:
                outputs[i] = output = masker.json(output, counts)
            if counts != before and kind in ("display_data", "execute_result"):
                meta = output.setdefault("metadata", {})
                if isinstance(meta, dict):
                    meta["jupyter_secure"] = {
                        "masked": True,
                        "by": "save",
                        "role": masker.policy.role,
                        "entities": {k: counts[k] - before.get(k, 0) for k in counts},
                    }
    return counts
