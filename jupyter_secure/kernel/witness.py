"""The execution witness: the kernel tells the server what it actually ran.

The server's channel guard sees the ``execute_request`` messages it relays;
the witness is the kernel's own account, sent on a separate HTTP channel, so
the server can hold the two against each other (an execution the server never
relayed, a cell that ran longer than it should, a request that never ran).

IPython's hooks, and which executions they see (IPython 9, ipykernel 7):

* ``pre_execute`` / ``post_execute`` fire for every non-empty execution,
  silent ones included; ``pre_run_cell(info)`` / ``post_run_cell(result)``
  only for non-silent ones. A client may send ``silent: true`` to run code
  with no ``execute_input`` broadcast, so the witness reports silent
  executions too (from the parent request: code, ``cellId``).
* ``user_expressions`` in an execute request are evaluated *after* the cell
  and fire no hook at all: the witness cannot see them (the server must).
* ``post_execute``/``post_run_cell`` also fire for empty cells, which fired
  no ``pre``: those are not reported (nothing ran).

The message id is the parent ``execute_request``'s, from
``kernel.get_parent("shell")`` (a ContextVar in ipykernel 7, so it is right
even with subshells). A cell pays for a SHA-256 of its source, a dict and a
``SimpleQueue.put``; one daemon thread sends batches
``{"kernelId": …, "events": […]}`` with ``Authorization: KernelToken …``,
never through a proxy, retrying a few times with backoff and otherwise
dropping the batch (counted on the kernel's stderr): the witness never
blocks or fails a cell. At exit it flushes for a bounded time.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Witness"]

_STOP = object()


@dataclass
class _Frame:
    """One execution between ``pre_execute`` and ``post_execute``."""

    started: float
    ts: float
    msg_id: str | None
    silent: bool = True
    reported: bool = False
    cell_id: str | None = None
    code_sha256: str = ""


def _sha256(code: object) -> str:
    return hashlib.sha256(str(code or "").encode("utf-8", "surrogatepass")).hexdigest()


class Witness:
    """Reports each execution (``pre`` and ``post``) to the server's witness URL."""

    def __init__(
        self,
        url: str,
        token: str,
        kernel_id: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.25,
        batch_max: int = 200,
        flush_timeout: float = 3.0,
        linger: float = 0.5,
    ) -> None:
        self.url = url
        self.kernel_id = kernel_id
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.batch_max = batch_max
        self.flush_timeout = flush_timeout
        #: seconds to wait for more events after the first of a batch: back-to-back
        #: cells then share one request instead of each paying for one on the server's
        #: event loop (reports still arrive well inside the 60 s the server allows)
        self.linger = linger
        self.sent = 0
        self.dropped = 0
        self._token = token
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stack: list[_Frame] = []
        self._awaiting: list[_Frame] = []
        self._shell: Any = None
        self._thread: threading.Thread | None = None
        # The witness talks to the server directly: an http_proxy in the
        # environment must never see the kernel token.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"Witness(url={self.url!r}, kernel_id={self.kernel_id!r}, token=<hidden>)"

    # -- the IPython side (runs in the cell's thread; must stay cheap) -----------

    def register(self, shell: Any) -> None:
        """Hook into ``shell.events`` and start the sender thread."""
        self._shell = shell
        events = shell.events
        events.register("pre_execute", self._pre_execute)
        events.register("pre_run_cell", self._pre_run_cell)
        events.register("post_execute", self._post_execute)
        events.register("post_run_cell", self._post_run_cell)
        self.start()

    def _parent(self) -> Mapping[str, Any]:
        kernel = getattr(self._shell, "kernel", None)
        if kernel is None:
            return {}
        try:
            parent = kernel.get_parent("shell")
        except Exception:
            return {}
        return parent if isinstance(parent, Mapping) else {}

    def _pre_execute(self) -> None:
        try:
            parent = self._parent()
            msg_id = (parent.get("header") or {}).get("msg_id")
            frame = _Frame(time.perf_counter(), time.time(), msg_id)
            top = not self._stack
            self._stack.append(frame)
            content = parent.get("content") or {}
            if top and content.get("silent"):
                # No pre_run_cell will follow: report from the request itself.
                frame.cell_id = (parent.get("metadata") or {}).get("cellId")
                frame.code_sha256 = _sha256(content.get("code"))
                frame.reported = True
                self._put(frame, "pre")
        except Exception as err:  # a hook must never fail the cell
            _log(err)

    def _pre_run_cell(self, info: Any) -> None:
        try:
            if not self._stack:
                return
            frame = self._stack[-1]
            frame.silent = False
            frame.reported = True
            frame.cell_id = getattr(info, "cell_id", None)
            frame.code_sha256 = _sha256(getattr(info, "raw_cell", ""))
            self._put(frame, "pre")
        except Exception as err:
            _log(err)

    def _post_execute(self) -> None:
        try:
            if not self._stack:
                return  # an empty cell: post without pre
            frame = self._stack.pop()
            if not frame.reported:
                return  # a silent run_cell nested in a witnessed cell
            if frame.silent:
                success = bool(getattr(self._shell, "last_execution_succeeded", False))
                self._put(frame, "post", success=success)
            else:
                self._awaiting.append(frame)  # post_run_cell follows with the result
        except Exception as err:
            _log(err)

    def _post_run_cell(self, result: Any) -> None:
        try:
            if not self._awaiting:
                return
            frame = self._awaiting.pop()
            success = bool(getattr(result, "success", False)) if result is not None else False
            self._put(frame, "post", success=success)
        except Exception as err:
            _log(err)

    def _put(self, frame: _Frame, phase: str, *, success: bool | None = None) -> None:
        event: dict[str, Any] = {
            "phase": phase,
            "msgId": frame.msg_id,
            "cellId": frame.cell_id,
            "codeSha256": frame.code_sha256,
            "ts": frame.ts if phase == "pre" else time.time(),
            "silent": frame.silent,
        }
        if phase == "post":
            event["success"] = bool(success)
            event["durationMs"] = (time.perf_counter() - frame.started) * 1000.0
        self._queue.put(event)

    # -- the sender thread ------------------------------------------------------

    def start(self) -> None:
        """Start the sender thread (idempotent) and the flush at exit."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="jupyter-secure-witness", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """Flush what is queued, waiting at most ``flush_timeout`` seconds."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put(_STOP)
        thread.join(self.flush_timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            deadline = time.monotonic() + self.linger
            while len(batch) < self.batch_max:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._send(batch)

    def _send(self, events: list[object]) -> None:
        body = json.dumps({"kernelId": self.kernel_id, "events": events}).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL was checked to be http(s)
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"KernelToken {self._token}",
            },
        )
        for attempt in range(self.retries + 1):
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    response.read()
                self.sent += len(events)
                return
            except urllib.error.HTTPError as err:
                if 400 <= err.code < 500 and err.code not in (408, 429):
                    break  # refused: retrying will not help
            except (OSError, ValueError):
                pass
            if attempt < self.retries:
                time.sleep(self.backoff * (2**attempt))
        self.dropped += len(events)
        _log(None, f"witness: dropped {len(events)} event(s) ({self.dropped} so far)")


def _log(err: BaseException | None, message: str | None = None) -> None:
    stream = sys.__stderr__
    if stream is None:
        return
    text = message or f"witness hook failed: {type(err).__name__}"
    print(f"jupyter-secure: {text}", file=stream)
