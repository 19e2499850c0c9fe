"""The kernel websocket connection, guarded: the authoritative kernel guard.

jupyter_server hands every ``/api/kernels/<id>/channels`` websocket to its
``kernel_websocket_connection_class``; SecureApp makes that this class. It
sits between the browser and the kernel's ZMQ sockets and, for both the v1
binary protocol and the legacy JSON one:

* takes the identity from the server session (the websocket handler's current
  user), never from a message header, and writes that name into the header it
  forwards;
* refuses what the user's roles do not grant (:mod:`.messages`): running code
  as a viewer, the debugger, widget messages; a refused ``execute_request``
  gets an error the notebook shows, and a ``KernelMessageRefused`` record;
* records each ``execute_request`` (``CellExecuteRequested``) before
  forwarding it, and each reply (``CellExecuted``);
* masks every data-bearing message on its way back for the user's role
  (:mod:`.outputs`) and marks masked outputs in their metadata;
* drops frames that are too large or unreadable with a record, without
  closing the connection (other tabs share the kernel).

Messages from the kernel are signed with the kernel's key; this class checks
the signature when it decodes one (``Session.deserialize``). What it sends the
browser is not signed (the browser never had the key); what it forwards to
the kernel is signed by the server's session as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.websocket import WebSocketClosedError

from ..monitoring import metrics
from ..policy import Decision
from .guard import KernelGuard, Person
from .outputs import SAFE_HEADER_VALUE, STATUS_STATES, OutputMasker

__all__ = ["GuardedChannelsConnection"]

V1 = "v1.kernel.websocket.jupyter.org"


class _Refused(Exception):
    def __init__(self, decision: Decision, error_code: str) -> None:
        super().__init__(decision.rule)
        self.decision = decision
        self.error_code = error_code


class GuardedChannelsConnection(ZMQChannelsWebsocketConnection):
    """ZMQChannelsWebsocketConnection with role checks, execution records and masking."""

    _person: Person | None = None
    _masker: OutputMasker | None = None

    # -- who is connected ------------------------------------------------------------
    @property
    def guard(self) -> KernelGuard | None:
        guard = getattr(self.multi_kernel_manager, "guard", None)
        return guard if isinstance(guard, KernelGuard) else None

    @property
    def owner(self) -> str:
        owner_of = getattr(self.multi_kernel_manager, "owner", None)
        return (owner_of(self.kernel_id) if owner_of else None) or ""

    def person(self) -> Person | None:
        if self._person is None:
            user = getattr(self.websocket_handler, "current_user", None)
            if user is None or not getattr(user, "username", None):
                return None
            self._person = Person.of(user)
        return self._person

    def masker(self) -> OutputMasker | None:
        guard, person = self.guard, self.person()
        if guard is None or person is None:
            return None
        if self._masker is None:
            self._masker = guard.masker_for(person)
        return self._masker

    @property
    def _ip(self) -> str | None:
        ip = self.websocket_handler.request.remote_ip
        return str(ip) if ip else None

    def connect(self) -> Any:
        """As jupyter_server's, with TCP_NODELAY on the socket.

        A cell produces a burst of small messages (busy, execute_input, output,
        reply, idle); with Nagle's algorithm on, each waits for the client's
        delayed ACK of the one before, ~40 ms per cell on Linux.
        """
        try:
            self.websocket_handler.set_nodelay(True)
        except Exception:  # the connection may already be gone; connect() will notice
            self.log.debug("could not set TCP_NODELAY", exc_info=True)
        return super().connect()

    # -- browser -> kernel -----------------------------------------------------------
    def handle_incoming_message(self, incoming_msg: str) -> None:
        if not self.channels:
            return
        guard, person = self.guard, self.person()
        size = len(incoming_msg)
        channel, msg_type = "", ""
        try:
            if guard is None or person is None:
                raise _Refused(Decision(False, "", "no guard or no signed-in user"), "AccessDenied")
            if size > guard.max_message_bytes:
                raise _Refused(
                    Decision(False, "", f"frame of {size} bytes is over {guard.max_message_bytes}"),
                    "MessageTooLarge",
                )
            channel, msg, msg_list = self._decode_incoming(incoming_msg)
            header = msg["header"]
            msg_type = str(header.get("msg_type", ""))
            decision = guard.check_message(person, channel, msg_type, self.owner)
            if not decision:
                raise _Refused(decision, "AccessDenied")
        except _Refused as refused:
            self._refuse(refused, channel, msg_type, size, locals().get("msg"))
            return
        except Exception as exc:  # unreadable: drop it, keep the connection
            self.log.warning("dropping a malformed kernel message: %s", exc)
            if guard is not None:
                guard.refused(
                    person,
                    Decision(False, "", f"malformed frame: {type(exc).__name__}"),
                    kernel_id=self.kernel_id,
                    owner=self.owner,
                    channel=channel,
                    msg_type=msg_type,
                    size=size,
                    error_code="MalformedMessage",
                    source_ip=self._ip,
                )
            return
        # The name the kernel sees is the session's, whatever the client wrote.
        header["username"] = person.name
        if msg_type == "execute_request":
            content = msg["content"]
            metadata = msg.get("metadata") or {}
            code = str(content.get("code", ""))
            expressions = content.get("user_expressions") or {}
            if isinstance(expressions, dict) and expressions:
                # user_expressions are code too, and no IPython hook sees them run
                code += "".join(f"\n# user_expression {k!s}: {v!s}" for k, v in expressions.items())
            guard.execute_requested(
                person,
                kernel_id=self.kernel_id,
                owner=self.owner,
                msg_id=str(header.get("msg_id", "")),
                code=code,
                cell_id=str(metadata.get("cellId") or "") or None,
                notebook=self._notebook(),
                silent=bool(content.get("silent", False)),
                source_ip=self._ip,
            )
        self._forward(channel, msg, msg_list)

    def _decode_incoming(self, ws_msg: Any) -> tuple[str, dict[str, Any], list[Any]]:
        """``(channel, msg, msg_list)`` with header (and content for execute) decoded."""
        if self.subprotocol == V1:
            channel, msg_list = deserialize_msg_from_ws_v1(ws_msg)
            header = self.session.unpack(msg_list[0])
            msg: dict[str, Any] = {"header": header}
            if header.get("msg_type") == "execute_request":
                msg["content"] = self.session.unpack(msg_list[3])
                msg["metadata"] = self.session.unpack(msg_list[2])
        else:
            if isinstance(ws_msg, bytes):
                msg = deserialize_binary_message(ws_msg)
            else:
                msg = json.loads(ws_msg)
            if not isinstance(msg, dict) or not isinstance(msg.get("header"), dict):
                raise ValueError("not a message object")
            channel = msg.pop("channel", None) or "shell"
            msg_list = []
        if not isinstance(msg["header"], dict):
            raise ValueError("header is not an object")
        if msg["header"].get("msg_type") == "execute_request" and not (
            isinstance(msg.get("content"), dict) and isinstance(msg.get("metadata") or {}, dict)
        ):
            raise ValueError("execute_request content or metadata is not an object")
        if channel not in self.channels:
            raise _Refused(Decision(False, "", f"no such channel: {channel!r}"), "AccessDenied")
        return str(channel), msg, msg_list

    def _forward(self, channel: str, msg: dict[str, Any], msg_list: list[Any]) -> None:
        allowed = self.multi_kernel_manager.allowed_message_types
        if allowed and msg["header"].get("msg_type") not in allowed:
            return
        stream = self.channels[channel]
        if self.subprotocol == V1:
            msg_list[0] = self.session.pack(msg["header"])
            self.session.send_raw(stream, msg_list)
        else:
            self.session.send(stream, msg)

    def _notebook(self) -> str:
        notebooks = getattr(self.multi_kernel_manager, "notebooks", {})
        return str(notebooks.get(self.kernel_id, ""))[:1024]

    def _refuse(self, refused: _Refused, channel: str, msg_type: str, size: int, msg: Any) -> None:
        guard = self.guard
        self.log.warning(
            "kernel %s: refused %s/%s: %s", self.kernel_id, channel, msg_type, refused.decision.rule
        )
        if guard is not None:
            guard.refused(
                self.person(),
                refused.decision,
                kernel_id=self.kernel_id,
                owner=self.owner,
                channel=channel,
                msg_type=msg_type,
                size=size,
                error_code=refused.error_code,
                source_ip=self._ip,
            )
        header = msg.get("header") if isinstance(msg, dict) else None
        if isinstance(header, dict) and msg_type.endswith("_request"):
            self._answer_refusal(channel, header, msg_type, refused.decision)

    def _answer_refusal(
        self, channel: str, parent: dict[str, Any], msg_type: str, decision: Decision
    ) -> None:
        """Tell the client: an error in the notebook and a reply, so the cell finishes."""
        reason = f"jupyter-secure refused this {msg_type}: {decision.rule}"
        error = {
            "ename": "PermissionError",
            "evalue": reason,
            "traceback": [f"PermissionError: {reason}"],
        }
        if msg_type == "execute_request":
            self._send_to_client("iopub", "status", {"execution_state": "busy"}, parent)
            self._send_to_client("iopub", "error", error, parent)
            self._send_to_client("iopub", "status", {"execution_state": "idle"}, parent)
            reply = {"status": "error", "execution_count": None, **error}
        else:
            reply = {"status": "error", **error}
        self._send_to_client(channel, msg_type.replace("_request", "_reply"), reply, parent)

    def _send_to_client(
        self, channel: str, msg_type: str, content: dict[str, Any], parent: dict[str, Any]
    ) -> None:
        msg = self.session.msg(msg_type, content=content, parent=parent)
        try:
            if self.subprotocol == V1:
                frame = serialize_msg_to_ws_v1(msg, channel, self.session.pack)
                self.write_message(frame, binary=True)
            else:
                msg["channel"] = channel
                self.write_message(json.dumps(msg, default=json_default))
        except WebSocketClosedError:
            pass

    # -- kernel -> browser -----------------------------------------------------------
    _chain: asyncio.Future[None] | None = None

    def handle_outgoing_message(self, stream: Any, outgoing_msg: list[Any]) -> None:
        """Deliver now, or after the messages before it when a long one is being masked
        in the worker processes (the order a kernel sent in is the order delivered)."""
        received = time.perf_counter()
        pending = self._chain is not None and not self._chain.done()
        if not pending and not self._wants_pool(outgoing_msg):
            try:
                if self._deliver(stream, outgoing_msg):
                    metrics.output_guarded(time.perf_counter() - received)
            except Exception:  # a message the kernel mangled: drop it, keep the connection
                self.log.exception("dropped a message from kernel %s", self.kernel_id)
            return
        previous = self._chain if pending else None
        self._chain = asyncio.ensure_future(
            self._deliver_after(previous, stream, outgoing_msg, received)
        )

    def _wants_pool(self, outgoing_msg: list[Any]) -> bool:
        guard = self.guard
        if guard is None or not guard.pool.enabled:
            return False
        return sum(len(part) for part in outgoing_msg) >= guard.pool.threshold

    async def _deliver_after(
        self,
        previous: asyncio.Future[None] | None,
        stream: Any,
        outgoing_msg: list[Any],
        received: float,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        precomputed: dict[str, tuple[str, dict[str, int]]] = {}
        if self._wants_pool(outgoing_msg):
            try:
                precomputed = await self._premask(outgoing_msg)
            except Exception:  # the pool failed: mask on the event loop instead
                self.log.warning("masking in the worker processes failed", exc_info=True)
        try:
            if self._deliver(stream, outgoing_msg, precomputed):
                metrics.output_guarded(time.perf_counter() - received)
        except Exception:
            self.log.exception("could not deliver a message from kernel %s", self.kernel_id)

    async def _premask(self, outgoing_msg: list[Any]) -> dict[str, tuple[str, dict[str, int]]]:
        guard, masker = self.guard, self.masker()
        if guard is None or masker is None or masker.passthrough:
            return {}
        _, fed = self.session.feed_identities(outgoing_msg)
        strings = masker.long_strings(self.session.unpack(fed[4]), guard.pool.threshold // 2)
        results = await asyncio.gather(*(guard.pool.mask_text(t, masker.policy) for t in strings))
        return dict(zip(strings, results, strict=True))

    def _deliver(
        self,
        stream: Any,
        outgoing_msg: list[Any],
        precomputed: dict[str, tuple[str, dict[str, int]]] | None = None,
    ) -> bool:
        """Mask one kernel message and write it to the browser (or drop it).

        True when the message was decoded, guarded and written (the time it took is
        then worth a metric); False when it passed unread, was dropped or was held
        back by the rate limit.
        """
        if isinstance(stream, str):
            stream = self.channels[stream]
        channel = getattr(stream, "channel", None)
        _, fed = self.session.feed_identities(outgoing_msg)
        parts = fed[1:]
        try:
            header = self.session.unpack(parts[0])
        except Exception:
            self.log.warning("dropping an unreadable message from kernel %s", self.kernel_id)
            return False
        msg_type = str(header.get("msg_type", ""))
        masker = self.masker()
        if masker is None:  # no guard or no user: nothing leaves unmasked
            return False
        if msg_type == "status" and self._plain_status(header, parts):
            super().handle_outgoing_message(stream, outgoing_msg)
            return False  # passed unread: nothing to time
        msg = self.session.deserialize(fed)  # checks the kernel's signature
        if msg_type == "execute_reply" and self.guard is not None:
            self.guard.execute_replied(
                self.kernel_id, str(msg["parent_header"].get("msg_id", "")), msg["content"]
            )
        if msg_type.startswith(("comm_", "debug_")) and not self._may_receive(msg_type):
            return False
        masker.precomputed = precomputed or {}
        try:
            outcome = masker.message(msg_type, msg["content"])
        finally:
            masker.precomputed = {}
        if not masker.passthrough:
            # Everything else the kernel wrote is untrusted too: headers keep their
            # standard keys (odd values masked), metadata is walked, and binary buffers,
            # which nothing can scan, are withheld.
            msg["header"] = masker.header(msg["header"], outcome.counts)
            msg["parent_header"] = masker.header(msg["parent_header"], outcome.counts)
            msg["metadata"] = masker.json(msg.get("metadata") or {}, outcome.counts)
            if msg.get("buffers"):
                outcome.counts["BINARY_WITHHELD"] = len(msg["buffers"])
                msg["buffers"] = []
        msg["content"] = outcome.content
        if outcome.masked:
            mark = {
                "masked": True,
                "by": "server",
                "role": masker.policy.role,
                "entities": outcome.counts,
            }
            msg["metadata"] = {**(msg.get("metadata") or {}), "jupyter_secure": mark}
            if msg_type in ("display_data", "execute_result", "update_display_data"):
                meta = msg["content"].get("metadata")
                meta = dict(meta) if isinstance(meta, dict) else {}
                msg["content"]["metadata"] = {**meta, "jupyter_secure": mark}
        self._on_error(channel, msg, parts)
        if self._limit_rate(channel, msg, parts):
            return False  # held back, not written: not a delivery to time
        self._count_rows(msg_type, msg["content"], outcome.masked, masker.passthrough)
        self._write_decoded(stream, channel, msg)
        return True

    def _count_rows(self, msg_type: str, content: Any, masked: bool, raw_role: bool) -> None:
        """Rows shown to this user (metrics, and the monitor's per-user baseline).

        Masked: this server replaced values, or the kernel's display guard says it did
        (a DataFrame is masked in the kernel, leaving the server nothing to replace).
        The kernel's word is never taken for a role that sees raw values.
        """
        if msg_type in metrics.ROW_MSG_TYPES and (person := self.person()) is not None:
            masked = masked or (not raw_role and metrics.marked_masked(content))
            metrics.output_shown(person.name, content, masked, msg_type=msg_type)

    def _plain_status(self, header: dict[str, Any], parts: list[Any]) -> bool:
        """A status message that says nothing but a state: pass its bytes unread."""
        masker = self.masker()
        if masker is not None and masker.passthrough:
            return True
        try:
            content = self.session.unpack(parts[3])
            parent = self.session.unpack(parts[1])
            metadata = self.session.unpack(parts[2])
        except Exception:
            return False
        if len(parts) > 4 or metadata:
            return False
        if set(content) != {"execution_state"} or content["execution_state"] not in STATUS_STATES:
            return False
        return all(
            isinstance(v, str) and SAFE_HEADER_VALUE.fullmatch(v)
            for h in (header, parent)
            for v in h.values()
        )

    def _may_receive(self, msg_type: str) -> bool:
        guard, person = self.guard, self.person()
        if guard is None or person is None:
            return False
        scope = "comms:execute" if msg_type.startswith("comm_") else "debugger:execute"
        return bool(guard.policy.current.decide(person.principal, scope, owner=self.owner))

    def _write_decoded(self, stream: Any, channel: str | None, msg: dict[str, Any]) -> None:
        if stream.closed():
            self.disconnect()
            return
        try:
            if self.subprotocol == V1:
                pack = self.session.pack
                parts = [
                    pack(msg["header"]),
                    pack(msg["parent_header"]),
                    pack(msg["metadata"]),
                    pack(msg["content"]),
                    *[bytes(b) for b in msg.get("buffers") or []],
                ]
                self.write_message(serialize_msg_to_ws_v1(parts, channel or ""), binary=True)
            else:
                self._on_zmq_reply(stream, msg)
        except WebSocketClosedError as exc:
            self.log.warning(str(exc))
