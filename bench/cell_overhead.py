"""What the kernel guard costs a cell: guarded server + kernel against plain Jupyter.

    python bench/cell_overhead.py                     # ~2 minutes on 2 cores
    python bench/cell_overhead.py --cells 200 --big 20  # quicker

Three real servers run side by side as subprocesses on one notebook directory:

* **plain jupyter_server + ipykernel** (the peer): token authentication, the
  ``python3`` kernel, the stock websocket connection;
* **plain + TCP_NODELAY**: the same with ``bench/nodelay.py``'s connection class,
  which only turns Nagle's algorithm off (jupyter-secure does; stock
  jupyter_server does not, and then each small reply waits ~40 ms for the
  client's delayed ACK). Against this peer the difference is the guard's own cost;
  against stock Jupyter it is what a user notices;
* **jupyter-secure**: a data scientist's API token, the guarded kernel
  (Landlock sandbox, scrubbed environment, display guard, witness), and the
  channel guard (role check, ``CellExecuteRequested``/``CellExecuted`` in the
  audit trail, every output masked for the data scientist's role).

A websocket client (tornado, the legacy JSON protocol) runs cells one after
another and times each from sending the ``execute_request`` to having both
the ``execute_reply`` and the kernel's idle status. Two workloads:

* ``--cells`` trivial cells (``x = 1``): the fixed cost per cell;
* ``--big`` cells each printing 1 MB of log-like text (order lines with an
  e-mail address and a phone number every 20 lines): output masking.

The IOPub data-rate limit is off on both servers (it would drop the big
outputs). The table goes to stdout and, with ``--write``, to
``bench/results/cells.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from request_bench import cli, env_for, free_port, pct, start

RESULTS = Path(__file__).with_name("results")

SETUP = r"""
lines = []
for i in range(20000):
    if i % 20 == 0:
        lines.append(f"order {i:06d} for customer{i}@example.com, call +1 202-555-{i % 9999:04d}")
    else:
        lines.append(f"order {i:06d} shipped: 3 items, total {i * 1.37:.2f} EUR, store B{i % 7}")
BLOCK = "\n".join(lines)[:1_000_000]
len(BLOCK)
"""


def execute_request(code: str) -> dict[str, object]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": "bench",
            "session": uuid.uuid4().hex,
            "date": "2027-01-01T00:00:00Z",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": True,
                    "user_expressions": {}, "allow_stdin": False},
        "channel": "shell",
        "buffers": [],
    }  # fmt: skip


async def run_cells(ws_url: str, headers: dict[str, str], code: str, n: int) -> list[float]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(
        HTTPRequest(ws_url, headers=headers, request_timeout=60), max_message_size=64 << 20
    )
    # Without TCP_NODELAY on the client socket, Nagle + delayed ACK add ~40 ms to every
    # small request and hide everything else.
    stream = getattr(ws, "stream", None) or getattr(getattr(ws, "protocol", None), "stream", None)
    if stream is not None:
        stream.set_nodelay(True)
    times: list[float] = []
    received = 0
    try:
        for _ in range(n):
            msg = execute_request(code)
            msg_id = msg["header"]["msg_id"]  # type: ignore[index]
            t0 = time.perf_counter()
            await ws.write_message(json.dumps(msg))
            replied = idle = False
            while not (replied and idle):
                raw = await asyncio.wait_for(ws.read_message(), 120)
                if raw is None:
                    raise SystemExit("websocket closed")
                m = json.loads(raw)
                if m.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if m["msg_type"] == "stream":
                    received += len(m["content"]["text"])
                if m["msg_type"] == "execute_reply":
                    if m["content"]["status"] != "ok":
                        raise SystemExit(f"cell failed: {m['content']}")
                    replied = True
                idle = idle or (
                    m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                )
            times.append(time.perf_counter() - t0)
    finally:
        ws.close()
    return times


def start_kernel(url: str, headers: dict[str, str], name: str) -> str:
    r = requests.post(url + "api/kernels", json={"name": name}, headers=headers, timeout=60)
    r.raise_for_status()
    return str(r.json()["id"])


def measure_server(
    url: str, headers: dict[str, str], kernel: str, cells: int, big: int
) -> dict[str, list[float]]:
    """Both workloads on one server, after a warm-up (imports, the masking pool)."""
    kid = start_kernel(url, headers, kernel)
    ws_url = url.replace("http://", "ws://") + f"api/kernels/{kid}/channels"
    asyncio.run(run_cells(ws_url, headers, SETUP, 1))
    asyncio.run(run_cells(ws_url, headers, "x = 1", 50))
    asyncio.run(run_cells(ws_url, headers, "print(BLOCK)", 3))
    return {
        "trivial": asyncio.run(run_cells(ws_url, headers, "x = 1", cells)),
        "big": asyncio.run(run_cells(ws_url, headers, "print(BLOCK)", big)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=1000, help="trivial cells per server")
    ap.add_argument("--big", type=int, default=100, help="1 MB cells per server")
    ap.add_argument("--write", action="store_true", help="write bench/results/cells.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = tmp / "notebooks"
        (root / "home").mkdir(parents=True)
        env = env_for(tmp)
        state = tmp / "state"
        cli(env, "init", "--state-dir", str(state))
        cli(env, "user", "add", "bench", "--role", "data_scientist", "--service",
            "--state-dir", str(state))  # fmt: skip
        scopes = ["api:read", "kernels:read", "kernels:write", "kernels:execute"]
        token = cli(env, "token", "create", "bench", *[a for s in scopes for a in ("--scope", s)],
                    "--state-dir", str(state))  # fmt: skip
        common = [
            sys.executable, "-m", "jupyter_server", "--no-browser",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
            "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0",
            "--ZMQChannelsWebsocketConnection.iopub_msg_rate_limit=0",
        ]  # fmt: skip
        plain_port, secure_port, nodelay_port = free_port(), free_port(), free_port()
        plain_token = "bench-token-" + os.urandom(8).hex()
        plain_url = f"http://127.0.0.1:{plain_port}/"
        secure_url = f"http://127.0.0.1:{secure_port}/"
        nodelay_url = f"http://127.0.0.1:{nodelay_port}/"
        plain_headers = {"Authorization": f"token {plain_token}"}
        secure_headers = {"Authorization": f"token {token}"}
        plain = start(
            [*common, f"--port={plain_port}", f"--IdentityProvider.token={plain_token}",
             "--ServerApp.jpserver_extensions={'jupyter_secure': False, 'jupyterlab': False}"],
            env, plain_url, plain_headers,
        )  # fmt: skip
        nodelay_env = {
            **env,
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parent), env.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
        }
        nodelay = start(
            [*common, f"--port={nodelay_port}", f"--IdentityProvider.token={plain_token}",
             "--ServerApp.kernel_websocket_connection_class=nodelay.NoDelayChannels",
             "--ServerApp.jpserver_extensions={'jupyter_secure': False, 'jupyterlab': False}"],
            nodelay_env, nodelay_url, plain_headers,
        )  # fmt: skip
        secure = start(
            [*common, f"--port={secure_port}", f"--SecureApp.state_dir={state}",
             "--ServerApp.jpserver_extensions={'jupyter_secure': True, 'jupyterlab': False}"],
            env, secure_url, secure_headers,
        )  # fmt: skip
        servers = [
            ("plain", plain_url, plain_headers, "python3"),
            ("nodelay", nodelay_url, plain_headers, "python3"),
            ("secure", secure_url, secure_headers, "jupyter-secure"),
        ]
        try:
            results = {label: measure_server(url, headers, kernel, args.cells, args.big)
                       for label, url, headers, kernel in servers}  # fmt: skip
        finally:
            for proc in (plain, nodelay, secure):
                proc.terminate()
                proc.wait(30)
    s = results["secure"]

    def row(what: str, key: str, peer: str, digits: int) -> str:
        p = results[peer]
        pm, sm = statistics.median(p[key]) * 1e3, statistics.median(s[key]) * 1e3
        return (
            f"| {what} | {pm:.{digits}f} / {pct(p[key], 0.99):.{digits}f} | "
            f"{sm:.{digits}f} / {pct(s[key], 0.99):.{digits}f} | {sm / pm:.2f}x | "
            f"{sm - pm:+.{digits}f} |"
        )

    big_added = statistics.median(s["big"]) - statistics.median(results["nodelay"]["big"])
    mbps = 1.0 / big_added if big_added > 0 else float("inf")
    lines = [
        f"Cell round trip through the websocket, 2 cores ({time.strftime('%Y-%m-%d')}, "
        f"`python bench/cell_overhead.py`; {args.cells} trivial cells, {args.big} cells of 1 MB)",
        "",
        "| workload (peer) | peer p50 / p99 ms | jupyter-secure p50 / p99 ms "
        "| p50 ratio | added p50 ms |",
        "|---|---:|---:|---:|---:|",
        row("trivial cell `x = 1` (plain + TCP_NODELAY)", "trivial", "nodelay", 2),
        row("1 MB printed (plain + TCP_NODELAY)", "big", "nodelay", 1),
        row("trivial cell `x = 1` (stock jupyter_server)", "trivial", "plain", 2),
        row("1 MB printed (stock jupyter_server)", "big", "plain", 1),
        "",
        f"Output masking end to end: {mbps:.1f} MB/s of printed output (1 MB divided by the "
        "added p50 time of a 1 MB cell against plain + TCP_NODELAY).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "cells.md").write_text(text)


if __name__ == "__main__":
    main()
