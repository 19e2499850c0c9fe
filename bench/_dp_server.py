"""A real jupyter-secure server holding one protected dataset, for ``bench/dp_bench.py``.

The server is set up like ``bench/cell_overhead.py``'s (embedded defaults, a
``data_scientist`` service account with an API token, the guarded kernel over
the websocket), and besides:

* the dataset is added with the real command line, ``jupyter secure dataset add``,
  so it is prepared into the server's own store (``<state>/private``);
* it is granted to the account in-process, as an OS user, in a child process
  with the server's environment (a new grant from the command line needs a
  budget administrator's step-up code, which a benchmark has no use for);
* a copy of the prepared Parquet file goes into the account's workspace
  (``<root>/home/<user>/``), the only place its sandboxed kernel may read, for
  pandas to read in the same kernel.

Every wait has a timeout; the kernel, the server and the temporary directory
are gone when the ``with`` block is left, however it is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import requests
from cell_overhead import execute_request, start_kernel
from request_bench import cli, env_for, free_port

USER = "bench"
SCOPES = ["api:read", "kernels:read", "kernels:write", "kernels:execute"]

_GRANT = """
import sys
from pathlib import Path
from jupyter_secure.audit.logger import Identity
from jupyter_secure.privacy.broker import Broker
from jupyter_secure.state import SecureState

state_dir, dataset, user, budget = sys.argv[1:5]
who = Identity("OSUser", "bench")
state = SecureState.open(state_dir, source="cli", identity=who, create=False)
try:
    Broker(state.db, state.state_dir / "private", state.audit).grant(
        dataset, "user", user, budget, who
    )
finally:
    state.close()
"""


class CellFailed(RuntimeError):
    """A cell ended in an error, or the kernel went away."""


@dataclass
class Server:
    url: str
    headers: dict[str, str]
    kernel_id: str
    #: The copy of the prepared Parquet file in the user's workspace (readable by the kernel).
    peer_file: Path
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + f"api/kernels/{self.kernel_id}/channels"

    def run(self, code: str, timeout: float) -> str:
        """Run one cell; its stdout (as the server let it through), or :class:`CellFailed`."""
        return asyncio.run(asyncio.wait_for(_run_cell(self, code, timeout), timeout + 30))


async def _run_cell(server: Server, code: str, timeout: float) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws = await asyncio.wait_for(
        websocket_connect(
            HTTPRequest(server.ws_url, headers=server.headers, connect_timeout=30),
            max_message_size=64 << 20,
        ),
        60,
    )
    msg = execute_request(code)
    msg_id = msg["header"]["msg_id"]  # type: ignore[index]
    out: list[str] = []
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        await ws.write_message(json.dumps(msg))
        replied = idle = False
        while not (replied and idle):
            left = deadline - time.monotonic()
            if left <= 0:
                raise CellFailed(f"no answer within {timeout:.0f} s")
            raw = await asyncio.wait_for(ws.read_message(), left)
            if raw is None:
                raise CellFailed("websocket closed")
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = m["msg_type"], m["content"]
            if kind == "stream":
                (out if content.get("name") == "stdout" else errors).append(content["text"])
            elif kind == "error":
                trace = "\n".join(content.get("traceback") or [content.get("evalue", "")])
                errors.append("\n".join(re.sub(r"\x1b\[[0-9;]*m", "", trace).splitlines()[-30:]))
            elif kind == "execute_reply":
                if content["status"] != "ok":
                    detail = "\n".join(errors) or json.dumps(content)[:2000]
                    raise CellFailed(f"cell failed:\n{detail}")
                replied = True
            elif kind == "status":
                idle = idle or content["execution_state"] == "idle"
    finally:
        ws.close()
    return "".join(out)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_up(proc: subprocess.Popen[bytes], url: str, headers: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if requests.get(url + "api/status", headers=headers, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server at {url} did not come up; its log ends:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _prepare(tmp: Path, data: Path, spec: dict[str, Any], budget: str) -> tuple[str, Path]:
    """The store, the account, its token, the dataset and its grant; the token, the copy."""
    home = tmp / "notebooks" / "home" / USER
    home.mkdir(parents=True, mode=0o700)
    env, state = env_for(tmp), tmp / "state"
    cli(env, "init", "--state-dir", str(state))
    cli(env, "user", "add", USER, "--role", "data_scientist", "--service",
        "--state-dir", str(state))  # fmt: skip
    token = cli(env, "token", "create", USER, *[a for s in SCOPES for a in ("--scope", s)],
                "--state-dir", str(state))  # fmt: skip
    spec_file = tmp / "spec.json"
    spec_file.write_text(json.dumps(spec))
    name = str(spec["name"])
    cli(env, "dataset", "add", name, str(data), "--spec", str(spec_file),
        "--state-dir", str(state))  # fmt: skip
    subprocess.run(
        [sys.executable, "-c", _GRANT, str(state), name, USER, budget],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    prepared = sorted((state / "private").glob("*.parquet"))
    if len(prepared) != 1:
        raise RuntimeError(f"expected one prepared file in {state / 'private'}: {prepared}")
    peer_file = home / "peer.parquet"
    shutil.copyfile(prepared[0], peer_file)
    return token, peer_file


@contextmanager
def dp_server(data: Path, spec: dict[str, Any], budget: str) -> Iterator[Server]:
    """A running server whose user ``bench`` may query ``spec["name"]`` made from ``data``."""
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)  # so `finally` runs on SIGTERM
    tmp = Path(tempfile.mkdtemp(prefix="dp-bench-e2e-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        try:
            token, peer_file = _prepare(tmp, data, spec, budget)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"setup command failed ({exc.returncode}): {exc.cmd[:5]}\n{exc.stderr or ''}"
            ) from None
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        headers = {"Authorization": f"token {token}"}
        log = tmp / "server.log"
        argv = [
            sys.executable, "-m", "jupyter_server", "--no-browser",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            "--ServerApp.port_retries=0", f"--ServerApp.root_dir={tmp / 'notebooks'}",
            f"--port={port}",
            "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0",
            "--ZMQChannelsWebsocketConnection.iopub_msg_rate_limit=0",
            f"--SecureApp.state_dir={tmp / 'state'}",
            "--ServerApp.jpserver_extensions={'jupyter_secure': True, 'jupyterlab': False}",
        ]  # fmt: skip
        with open(log, "ab") as sink:
            proc = subprocess.Popen(argv, env=env_for(tmp), stdout=sink, stderr=sink)
        _wait_up(proc, url, headers, log)
        kid = start_kernel(url, headers, "jupyter-secure")
        server = Server(url, headers, kid, peer_file, log)
        try:
            try:
                server.run("1", timeout=120)  # the kernel is up and answers
            except CellFailed as exc:
                raise RuntimeError(f"{exc}; the server's log ends:\n{_tail(log)}") from None
            yield server
        finally:
            with suppress(requests.RequestException):
                requests.delete(url + f"api/kernels/{kid}", headers=headers, timeout=30)
    finally:
        try:
            if proc is not None:
                _stop(proc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)
