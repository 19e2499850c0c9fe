"""The kernel guard end to end: a real server, real guarded kernels, a real websocket client.

Everything here is checked from the attacker's side: what a client actually
receives, what notebook code can actually open, what the trail records when
someone drives a kernel around the server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for, ws_connect

from jupyter_secure.channel.guard import landlock_abi

pytestmark = pytest.mark.timeout(180)

EMAIL, SSN = "alice@example.com", "123-45-6789"
needs_landlock = pytest.mark.skipif(landlock_abi() == 0, reason="Landlock is not available")


def request(
    code: str,
    *,
    user_expressions: dict[str, str] | None = None,
    who: str = "mallory",
    msg_type: str = "execute_request",
    channel: str = "shell",
) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": who,  # a forged name: the server must ignore it
            "session": uuid.uuid4().hex,
            "date": "2027-01-15T00:00:00Z",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {"cellId": "cell-1"},
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": user_expressions or {},
            "allow_stdin": False,
        },
        "channel": channel,
        "buffers": [],
    }


V1 = "v1.kernel.websocket.jupyter.org"


def _pack(obj: Any) -> bytes:
    return json.dumps(obj).encode()


class Client:
    """A kernel websocket client: the v1 binary protocol JupyterLab uses, or legacy JSON."""

    def __init__(self, ws: Any, protocol: str = "json") -> None:
        self.ws = ws
        self.protocol = protocol

    async def send(self, msg: dict[str, Any]) -> None:
        if self.protocol == "v1":
            from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

            frame = serialize_msg_to_ws_v1(msg, msg["channel"], _pack)
            await self.ws.write_message(frame, binary=True)
        else:
            await self.ws.write_message(json.dumps(msg))

    def decode(self, raw: Any) -> dict[str, Any]:
        if self.protocol == "v1":
            from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1

            channel, parts = deserialize_msg_from_ws_v1(raw)
            header, parent, metadata, content = (json.loads(p) for p in parts[:4])
            return {"channel": channel, "header": header, "msg_type": header["msg_type"],
                    "parent_header": parent, "metadata": metadata, "content": content}  # fmt: skip
        return dict(json.loads(raw))

    async def run(self, code: str, **kw: Any) -> list[dict[str, Any]]:
        """Send one request; every message until its reply *and* the idle status."""
        msg = request(code, **kw)
        await self.send(msg)
        return await self.collect(msg["header"]["msg_id"], msg["header"]["msg_type"])

    async def collect(
        self, msg_id: str, msg_type: str, timeout: float = 60
    ) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        reply_type = msg_type.replace("_request", "_reply")
        while not (replied and idle):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply to {msg_type} in {timeout}s: {got[-5:]}")
            raw = await asyncio.wait_for(self.ws.read_message(), left)
            assert raw is not None, "the websocket closed"
            m = self.decode(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            got.append(m)
            replied = replied or m["msg_type"] == reply_type
            idle = (
                idle
                or (m["msg_type"] == "status" and m["content"]["execution_state"] == "idle")
                or msg_type != "execute_request"
            )
        return got


def text_of(messages: list[dict[str, Any]]) -> str:
    """What came back, except the echo of the code the user typed (execute_input)."""
    return json.dumps([m["content"] for m in messages if m["msg_type"] != "execute_input"])


async def open_notebook(
    server: Any, name: str, notebook: str = "n.ipynb", protocol: str = "json"
) -> tuple[Any, str, Client]:
    b = await server.sign_in(name)
    body = {"path": f"home/{name}/{notebook}", "type": "notebook", "name": notebook}
    r = await b.post("api/sessions", json_body=body)
    assert r.code == 201, r.body[:500]
    kernel = json.loads(r.body)["kernel"]
    assert kernel["name"] == "jupyter-secure"
    path = f"api/kernels/{kernel['id']}/channels"
    if protocol == "v1":
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = b.base.replace("http://", "ws://") + path
        req = HTTPRequest(url, headers={"Cookie": b.cookie_header()}, request_timeout=30)
        ws = await websocket_connect(req, subprotocols=[V1])
        assert ws.selected_subprotocol == V1
    else:
        ws = await ws_connect(b, path)
    return b, kernel["id"], Client(ws, protocol)


FRAME = f"""
import pandas as pd
df = pd.DataFrame({{"name": ["Alice Lindqvist", "Bob Marley", "Carol King"],
                    "email": ["{EMAIL}", "bob@example.org", "carol@example.net"],
                    "ssn": ["{SSN}", "219-09-9999", "078-05-1120"],
                    "spend": [10.5, 20.0, 30.25]}})
"""


@pytest.mark.parametrize("protocol", ["v1", "json"])
async def test_what_a_data_scientist_receives_holds_no_raw_pii(server: Any, protocol: str) -> None:
    _, kernel_id, client = await open_notebook(server, "alice", protocol=protocol)
    assert not [m for m in await client.run(FRAME) if m["msg_type"] == "error"]
    cases = {
        "print": f'print("{EMAIL} {SSN}")',
        "last expression": "df",
        "display": "display(df)",
        "to_string": "print(df.to_string())",
        "exception": f'raise ValueError("write to {EMAIL}")',
        "user_expressions": "x = 1",
    }
    for what, code in cases.items():
        kw = {"user_expressions": {"e": f"'{EMAIL}'"}} if what == "user_expressions" else {}
        got = await client.run(code, **kw)
        received = text_of(got)
        assert EMAIL not in received, (what, received[:3000])
        assert SSN not in received, (what, received[:3000])
        if what == "exception":
            assert any(m["msg_type"] == "error" for m in got)
        if what in ("last expression", "display"):
            data = next(m for m in got if m["msg_type"] in ("execute_result", "display_data"))
            assert "text/html" in data["content"]["data"]
            assert data["content"]["metadata"]["jupyter_secure"]["masked"] is True
            assert data["content"]["data"]["text/html"].count("<tr") >= 4  # shape kept
    # The kernel saw the session's name, never the forged one.
    got = await client.run("print(get_ipython().kernel.get_parent()['header']['username'])")
    assert "alice" in text_of(got)
    assert "mallory" not in text_of(got)

    # Every cell is in the trail under alice, before and after.
    def requested_events() -> list[dict[str, Any]]:
        return [e for e in server.events("CellExecuteRequested")
                if e["requestParameters"]["kernelId"] == kernel_id]  # fmt: skip

    await wait_for(lambda: len(requested_events()) >= len(cases) + 2)
    requested = requested_events()
    assert len(requested) == len(cases) + 2
    assert {e["userIdentity"]["name"] for e in requested} == {"alice"}
    assert requested[0]["requestParameters"]["cellId"] == "cell-1"
    assert requested[0]["requestParameters"]["notebook"].endswith("home/alice/n.ipynb")
    await wait_for(lambda: len([
        e for e in server.events("CellExecuted") if e["requestParameters"]["kernelId"] == kernel_id
    ]) == len(cases) + 2)  # fmt: skip
    launched = [e for e in server.events("KernelLaunched")
                if e["requestParameters"]["kernelId"] == kernel_id]  # fmt: skip
    assert launched
    assert launched[0]["responseElements"]["maskingRole"] == "data_scientist"


async def test_an_admin_with_unmask_sees_raw_values(server: Any) -> None:
    server.add_user("root", roles=("admin",))
    _, _, client = await open_notebook(server, "root")
    got = await client.run(f'print("{EMAIL}")')
    assert EMAIL in text_of(got)


async def test_debugger_and_unknown_requests_are_refused_with_a_reply(server: Any) -> None:
    _, kernel_id, client = await open_notebook(server, "alice")
    for msg_type, channel in (("debug_request", "control"), ("evil_request", "shell")):
        msg = request("", msg_type=msg_type, channel=channel)
        await client.send(msg)
        got = await client.collect(msg["header"]["msg_id"], msg_type, timeout=20)
        reply = next(m for m in got if m["msg_type"] == msg_type.replace("_request", "_reply"))
        assert reply["content"]["status"] == "error"
        assert "refused" in reply["content"]["evalue"]
    # Malformed frames are dropped with a record; the connection keeps working.
    await client.ws.write_message("{not json")
    odd = request("x")
    odd["content"] = ["not", "an", "object"]
    await client.send(odd)
    assert "2" in text_of(await client.run("print(1 + 1)"))

    def refused() -> list[dict[str, Any]]:
        return [e for e in server.events("KernelMessageRefused")
                if e["requestParameters"]["kernelId"] == kernel_id]  # fmt: skip

    await wait_for(lambda: len(refused()) >= 4)
    codes = sorted(e["errorCode"] for e in refused())
    assert codes == ["AccessDenied", "AccessDenied", "MalformedMessage", "MalformedMessage"], codes


@needs_landlock
async def test_notebook_code_cannot_reach_the_state_other_homes_or_connection_files(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret")
    _, bob_kernel, _bob = await open_notebook(server, "bob")
    root = Path(server.app.root_dir)
    (root / "home" / "bob" / "diary.txt").write_text("bob's secret")
    km = server.app.kernel_manager
    state = Path(server.state.state_dir)
    segment = next(state.rglob("segment-*.jsonl"))
    targets = {
        "database": state / "state.db",
        "audit trail": segment,
        "bob's file": root / "home" / "bob" / "diary.txt",
        "bob's connection file": Path(km.get_kernel(bob_kernel).connection_file),
        "server environ": Path(f"/proc/{os.getpid()}/environ"),
    }
    _, _, client = await open_notebook(server, "alice")
    probe = "\n".join(
        [
            "import json, os",
            "out = {}",
            f"for label, path in {json.dumps({k: str(v) for k, v in targets.items()})}.items():",
            "    try:",
            "        open(path, 'rb').read(1); out[label] = 'READ'",
            "    except PermissionError: out[label] = 'DENIED'",
            "    except OSError as e: out[label] = type(e).__name__",
            "open('mine.txt', 'w').write('ok'); out['own workspace'] = open('mine.txt').read()",
            # A symlink or hard link in the user's own workspace does not widen anything.
            f"os.symlink({str(state)!r}, 'state-link')",
            "try:",
            "    open('state-link/state.db', 'rb').read(1); out['via symlink'] = 'READ'",
            "except PermissionError: out['via symlink'] = 'DENIED'",
            "try:",
            f"    os.link({str(root / 'home' / 'bob' / 'diary.txt')!r}, 'stolen.txt')",
            "    out['hard link'] = 'LINKED'",
            # Landlock answers EXDEV for a link it refuses: either way, no link.
            "except OSError: out['hard link'] = 'DENIED'",
            # /dev/shm is shared by every kernel of the server's account: not allowed.
            "try:",
            "    open('/dev/shm/jupyter-secure-probe', 'w').write('x'); out['/dev/shm'] = 'WROTE'",
            "except PermissionError: out['/dev/shm'] = 'DENIED'",
            "out['env'] = sorted(k for k in os.environ if 'SECRET' in k or 'JUPYTER_SECURE' in k)",
            "print(json.dumps(out))",
        ]
    )
    got = await client.run(probe)
    streams = [m["content"]["text"] for m in got if m["msg_type"] == "stream"]
    assert streams, [m["content"] for m in got if m["msg_type"] == "error"]
    stream = streams[0]
    result = json.loads(stream)
    assert result.pop("own workspace") == "ok"
    assert result.pop("env") == []
    assert set(result.values()) == {"DENIED"}, result


def _running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (an orphan may wait for a reaper in a container)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


#: Starts, from a notebook, one plain child and one that ignores SIGINT and SIGTERM (as a
#: shell's background job ignores SIGINT: jupyter_client's graceful stop only interrupts
#: the kernel's process group), and prints their pids.
CHILDREN = "\n".join(
    [
        "import signal, subprocess",
        "def deaf():",
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)",
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)",
        "plain = subprocess.Popen(['sleep', '300'])",
        "stubborn = subprocess.Popen(['sleep', '300'], preexec_fn=deaf)",
        "print('children', plain.pid, stubborn.pid)",
    ]
)


async def _start_children(client: Client) -> list[int]:
    printed = text_of(await client.run(CHILDREN)).split("children ", 1)[1].split("\\n", 1)[0]
    pids = [int(p) for p in printed.split()]
    assert len(pids) == 2
    assert all(_running(pid) for pid in pids)
    return pids


async def _until_gone(pids: list[int]) -> None:
    try:
        await wait_for(lambda: not any(_running(pid) for pid in pids), timeout=30)
    finally:
        for pid in pids:
            if _running(pid):
                os.kill(pid, 9)


@needs_landlock
async def test_a_stopped_kernel_leaves_no_process_and_no_traceback(
    server: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """What a notebook started ends with its kernel (an incident freeze relies on it), and
    ipykernel's failed look at /proc (hidden by the sandbox) no longer logs a traceback."""
    b, kernel_id, client = await open_notebook(server, "alice")
    pids = await _start_children(client)
    r = await b.fetch("DELETE", f"api/kernels/{kernel_id}")
    assert r.code == 204
    await _until_gone(pids)
    err = capfd.readouterr().err
    assert "Permission denied: b'/proc'" not in err
    assert "Traceback" not in err or "_process_children" not in err


async def test_a_restart_ends_what_the_previous_kernel_started(server: Any) -> None:
    b, kernel_id, client = await open_notebook(server, "alice")
    pids = await _start_children(client)
    r = await b.post(f"api/kernels/{kernel_id}/restart", json_body={})
    assert r.code == 200, r.body[:300]
    await _until_gone(pids)
    await b.fetch("DELETE", f"api/kernels/{kernel_id}")


async def test_a_direct_zmq_execution_is_recorded_as_unreconciled(server: Any) -> None:
    from jupyter_client.asynchronous import AsyncKernelClient

    _, kernel_id, client = await open_notebook(server, "alice")
    await client.run("x = 1")  # through the guard: reconciles
    km = server.app.kernel_manager.get_kernel(kernel_id)
    thief = AsyncKernelClient()
    thief.load_connection_file(km.connection_file)  # what a stolen connection file gives
    thief.start_channels()
    try:
        msg_id = thief.execute("y = 2")
        reply = await asyncio.wait_for(thief._async_get_shell_msg(timeout=30), 40)
        assert reply["parent_header"]["msg_id"] == msg_id
    finally:
        thief.stop_channels()

    def unreconciled() -> list[dict[str, Any]]:
        return [e for e in server.events("ExecutionUnreconciled")
                if e["requestParameters"]["kernelId"] == kernel_id]  # fmt: skip

    await wait_for(lambda: bool(unreconciled()), timeout=60)
    found = unreconciled()
    assert [e["requestParameters"]["msgId"] for e in found] == [msg_id]
    assert found[0]["userIdentity"]["name"] == "alice"


async def test_the_witness_refuses_a_wrong_kernel_token(server: Any) -> None:
    _, kernel_id, _client = await open_notebook(server, "alice")
    b = server.browser()
    body = {"events": [{"phase": "pre", "msgId": "forged"}]}
    for auth in ("", "KernelToken wrong", "Bearer x"):
        r = await b.fetch("POST", f"secure/api/kernels/{kernel_id}/witness", json_body=body,
                          headers={"Authorization": auth} if auth else {})  # fmt: skip
        assert r.code == 403
    await wait_for(lambda: any("kernel witness" in e["responseElements"]["rule"]
                               for e in server.events("AccessDenied")))  # fmt: skip
    assert not [e for e in server.events("ExecutionUnreconciled")
                if e["requestParameters"]["msgId"] == "forged"]  # fmt: skip


async def test_a_saved_notebook_holds_no_raw_pii_from_outputs(server: Any) -> None:
    b = await server.sign_in("alice")
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": f"{EMAIL} {SSN}\n"},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
         "data": {"text/plain": f"'{EMAIL}'", "text/html": f"<b>{SSN}</b>"}},
        {"output_type": "error", "ename": "ValueError", "evalue": EMAIL, "traceback": [EMAIL]},
    ]  # fmt: skip
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [{"cell_type": "code", "id": "c1", "execution_count": 1, "metadata": {},
                   "source": "print(x)", "outputs": outputs}],
    }  # fmt: skip
    r = await b.fetch("PUT", "api/contents/home/alice/saved.ipynb",
                      json_body={"type": "notebook", "format": "json", "content": nb})  # fmt: skip
    assert r.code in (200, 201), r.body[:500]
    on_disk = (Path(server.app.root_dir) / "home" / "alice" / "saved.ipynb").read_text()
    assert EMAIL not in on_disk
    assert SSN not in on_disk
    assert "print(x)" in on_disk


async def test_long_outputs_are_masked_off_the_loop_and_stay_in_order(server: Any) -> None:
    _, _, client = await open_notebook(server, "alice")
    code = (
        "import sys\n"
        f"print('\\n'.join(f'row {{i}} {EMAIL} {SSN}' for i in range(8000)))\n"
        "sys.stdout.flush()\n"
        "display('after the long output')\n"
    )
    got = await client.run(code)
    kinds = [m["msg_type"] for m in got if m["msg_type"] in ("stream", "display_data")]
    assert kinds[-1] == "display_data"
    assert "stream" in kinds
    streamed = "".join(m["content"]["text"] for m in got if m["msg_type"] == "stream")
    assert len(streamed) > 64 * 1024
    assert streamed.count("row ") == 8000
    assert server.ext.guard.pool._executor is not None  # the worker processes masked it
    assert EMAIL not in text_of(got)
    assert SSN not in text_of(got)


# A kernel is programmed by its user: every field of every message it sends is untrusted.
ROUTE_AROUND = r"""
k = get_ipython().kernel
s, io, p = k.session, k.iopub_socket, k.get_parent()
E = "alice" + "@" + "example.com"
s.send(io, "status", {"execution_state": "busy", "x": E}, parent=p)
s.send(io, "execute_input", {"code": E, "execution_count": 1}, parent=p)
s.send(io, "display_data", {"data": {"text/plain": "ok"}, "metadata": {},
                            "transient": {"display_id": E}}, parent=p)
s.send(io, "stream", {"name": "stdout " + E, "text": "hi\\n"}, parent=p)
s.send(io, "display_data", {"data": {"text/plain": "b"}, "metadata": {}}, parent=p,
       buffers=[E.encode()])
s.send(io, "stream", {"name": "stdout", "text": "x"}, parent={"header": dict(p["header"], leak=E)})
h = s.msg_header("stream"); h["leak"] = E
s.send(io, "stream", {"name": "stdout", "text": "x"}, parent=p, header=h)
s.send(io, "made_up", {"deep": {"er": [E]}}, parent=p)
"""


@pytest.mark.parametrize("protocol", ["v1", "json"])
async def test_a_kernel_cannot_route_raw_values_around_the_masker(
    server: Any, protocol: str
) -> None:
    _, _, client = await open_notebook(server, "alice", protocol=protocol)
    msg = request(ROUTE_AROUND)
    await client.send(msg)
    msg_id = msg["header"]["msg_id"]
    frames: list[Any] = []
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "no idle status"
        raw = await asyncio.wait_for(client.ws.read_message(), 30)
        assert raw is not None
        frames.append(raw)
        try:
            m = client.decode(raw)
        except ValueError:
            continue  # a binary legacy frame (buffers): checked as bytes below
        if (
            m["msg_type"] == "status"
            and m["content"].get("execution_state") == "idle"
            and m["parent_header"].get("msg_id") == msg_id
        ):
            break
    for raw in frames:
        data = raw if isinstance(raw, bytes) else raw.encode()
        assert EMAIL.encode() not in data, data[:2000]


async def test_a_mangled_kernel_message_does_not_kill_the_connection(server: Any) -> None:
    _, _, client = await open_notebook(server, "alice")
    mangled = (
        "k = get_ipython().kernel\n"
        "k.session.send(k.iopub_socket, 'error', {'ename': 'E', 'evalue': 'v', 'traceback': 5},"
        " parent=k.get_parent())\n"
    )
    await client.run(mangled)
    assert "42" in text_of(await client.run("print(40 + 2)"))


async def test_a_notebook_saved_as_a_plain_file_is_masked_too(server: Any) -> None:
    b = await server.sign_in("alice")
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"note": EMAIL},
        "cells": [{"cell_type": "code", "id": "c1", "execution_count": 1,
                   "metadata": {"tag": SSN}, "source": "x",
                   "outputs": [{"output_type": "stream", "name": "stdout", "text": [EMAIL]},
                               {"output_type": "display_data", "data": {"text/plain": "x"},
                                "metadata": {"m": EMAIL}}]}],
    }  # fmt: skip
    root = Path(server.app.root_dir) / "home" / "alice"
    for name, fmt, content in (
        ("as-text.ipynb", "text", json.dumps(nb)),
        ("as-b64.ipynb", "base64", base64.b64encode(json.dumps(nb).encode()).decode()),
    ):
        body = {"type": "file", "format": fmt, "content": content}
        r = await b.fetch("PUT", f"api/contents/home/alice/{name}", json_body=body)
        assert r.code in (200, 201), r.body[:500]
        on_disk = (root / name).read_text()
        assert EMAIL not in on_disk
        assert SSN not in on_disk
    body = {"type": "file", "format": "text", "content": "not json"}
    r = await b.fetch("PUT", "api/contents/home/alice/bad.ipynb", json_body=body)
    assert r.code == 400
    assert not (root / "bad.ipynb").exists()


async def test_execution_refused_after_the_policy_takes_the_right_away(server: Any) -> None:
    """Connected while allowed; the policy changes; the next cell gets an error reply."""
    from jupyter_secure.policy import DEFAULT_ROLES, Principal, default_policy_text

    _, kernel_id, client = await open_notebook(server, "alice")
    assert "2" in text_of(await client.run("print(1 + 1)"))
    scopes = sorted(set(DEFAULT_ROLES["data_scientist"].scopes) - {"kernels:execute"})
    policy = server.state.policy_path
    policy.write_text(
        default_policy_text() + f"\n[roles.data_scientist]\nscopes = {json.dumps(scopes)}\n"
    )
    live = server.ext.policy

    def reloaded() -> bool:
        live.refresh()
        alice = Principal("alice", {"data_scientist"})
        return "kernels:execute" not in live.current.effective_scopes(alice)

    await wait_for(reloaded, timeout=30)
    got = await client.run("print('should not run')")
    errors = [m for m in got if m["msg_type"] == "error"]
    assert errors
    assert "refused" in errors[0]["content"]["evalue"]
    reply = next(m for m in got if m["msg_type"] == "execute_reply")
    assert reply["content"]["status"] == "error"
    streams = [m["content"] for m in got if m["msg_type"] == "stream"]
    assert "should not run" not in json.dumps(streams)
    await wait_for(lambda: any(
        e["requestParameters"]["kernelId"] == kernel_id
        and e["requestParameters"]["msgType"] == "execute_request"
        for e in server.events("KernelMessageRefused")
    ))  # fmt: skip
