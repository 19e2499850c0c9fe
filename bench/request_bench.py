"""What the security layer costs a request: jupyter-secure against plain jupyter_server.

    python bench/request_bench.py                  # ~1 minute on 2 cores
    python bench/request_bench.py --requests 300   # quicker

Two real servers run side by side as subprocesses on this machine, on the
same notebook directory:

* **plain jupyter_server** (the peer): its default token authentication and
  allow-all authorizer, no extension;
* **jupyter-secure**: the extension loaded, a service account's API token
  (``Authorization: token jst_…``) — so every request resolves the token in
  the database, runs the route guard and the authorizer's object checks, and
  filters listings by the path rules.

For each route, requests are made one after another (keep-alive, no
concurrency) and the latency of each is measured at the client. The table
goes to stdout and, with ``--write``, to ``bench/results/requests.md``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

RESULTS = Path(__file__).with_name("results")
ROUTES = [
    ("status", "api/status"),
    ("contents listing", "api/contents/shared"),
    ("file read", "api/contents/shared/report.md"),
    ("kernel list", "api/kernels"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_SECURE")}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    return env


def start(argv: list[str], env: dict[str, str], url: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a")  # noqa: SIM115
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    for _ in range(240):
        try:
            if requests.get(url + "api/status", headers=headers, timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"server at {url} did not come up")


def measure(url: str, headers: dict[str, str], path: str, n: int) -> list[float]:
    with requests.Session() as s:
        s.headers.update(headers)
        for _ in range(20):  # warm-up: connections, caches
            s.get(url + path, timeout=10).raise_for_status()
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = s.get(url + path, timeout=10)
            out.append(time.perf_counter() - t0)
            r.raise_for_status()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "jupyter_secure.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return r.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests per route and server")
    ap.add_argument("--write", action="store_true", help="write bench/results/requests.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = tmp / "notebooks"
        (root / "shared").mkdir(parents=True)
        for i in range(50):
            (root / "shared" / f"notes-{i:02d}.md").write_text("# notes\n" * 20)
        (root / "shared" / "report.md").write_text("# report\n" + "x" * 4000)
        env = env_for(tmp)
        state = tmp / "state"
        cli(env, "init", "--state-dir", str(state))
        cli(env, "user", "add", "bench", "--role", "admin", "--service", "--state-dir", str(state))
        token = cli(
            env,
            "token",
            "create",
            "bench",
            "--scope",
            "api:read",
            "--scope",
            "contents:read",
            "--scope",
            "kernels:read",
            "--state-dir",
            str(state),
        )
        common = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}",
        ]
        plain_port, secure_port = free_port(), free_port()
        plain_token = "bench-token-" + os.urandom(8).hex()
        plain_url = f"http://127.0.0.1:{plain_port}/"
        secure_url = f"http://127.0.0.1:{secure_port}/"
        plain_headers = {"Authorization": f"token {plain_token}"}
        secure_headers = {"Authorization": f"token {token}"}
        plain = start(
            [
                *common,
                f"--port={plain_port}",
                f"--IdentityProvider.token={plain_token}",
                "--ServerApp.jpserver_extensions={'jupyter_secure': False, 'jupyterlab': False}",
            ],
            env,
            plain_url,
            plain_headers,
        )
        secure = start(
            [
                *common,
                f"--port={secure_port}",
                f"--SecureApp.state_dir={state}",
                "--ServerApp.jpserver_extensions={'jupyter_secure': True, 'jupyterlab': False}",
            ],
            env,
            secure_url,
            secure_headers,
        )
        try:
            rows = []
            for label, path in ROUTES:
                p = measure(plain_url, plain_headers, path, args.requests)
                s = measure(secure_url, secure_headers, path, args.requests)
                rows.append((label, path, p, s))
        finally:
            for proc in (plain, secure):
                proc.terminate()
                proc.wait(30)
    lines = [
        f"Request latency, {args.requests} sequential GETs per route, 2 cores "
        f"({time.strftime('%Y-%m-%d')}, `python bench/request_bench.py`)",
        "",
        "| route | plain jupyter_server p50 / p99 ms | jupyter-secure p50 / p99 ms "
        "| p50 ratio | added p50 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, path, p, s in rows:
        pm, sm = statistics.median(p) * 1e3, statistics.median(s) * 1e3
        lines.append(
            f"| {label} (`{path}`) | {pm:.2f} / {pct(p, 0.99):.2f} | "
            f"{sm:.2f} / {pct(s, 0.99):.2f} | {sm / pm:.2f}x | {sm - pm:+.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "requests.md").write_text(text)


if __name__ == "__main__":
    main()
