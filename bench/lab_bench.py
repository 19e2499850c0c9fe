"""What jupyter-secure costs a person in JupyterLab: the extension against plain JupyterLab.

    python bench/lab_bench.py --write    # ~4 minutes on 2 cores, 10 iterations
    python bench/lab_bench.py --quick    # 2 iterations, no file written

Two JupyterLab servers (the same JupyterLab, the same server extensions but
ours) run side by side as subprocesses, each on its own copy of the demo
workspace's notebook directory (``jupyter_secure.demo.workspace.prepare``):

* **plain JupyterLab** (the peer): ``python -m jupyterlab`` with a token, the
  ``jupyter_secure`` server extension off and its labextension disabled in the
  page config; the notebook uses the stock ``python3`` kernel;
* **JupyterLab + jupyter-secure**: security on as an operator runs it, the demo
  student ``sam`` signed in with password and TOTP (enrolled once, before any
  timing); the notebook uses the guarded ``jupyter-secure`` kernel and every
  output is masked for the student's role.

Debian's Chromium runs headless through Playwright (nothing is downloaded; the
only network is loopback; both servers have JupyterLab's news and update check
off). One signed-in browser context per server, so a visit is a returning
person's: cookies set, static bundles in the HTTP cache. Each iteration opens a
new page on each server, alternating which goes first; times are read in the
page (``performance.now()``, from the start of the navigation):

1. ``/lab`` until ``#jp-main-dock-panel`` exists and the file browser lists
   items; for ours also until ``#jp-secure-status`` names the user (the
   extension's handshake with ``/secure/api/me`` done);
2. ``/lab/tree/<notebook>`` until the notebook is shown and its kernel is idle,
   then Run All on one cell that displays a 200-row x 6-column frame of Faker
   people (names, e-mails, phones, ages, cities, jobs; ``display.max_rows`` is
   200, so every row is rendered) until the table's 200 rows are in the page --
   ours masked and with ``.jp-secure-masked-badge`` (checked: no raw e-mail in
   ours, the raw ones in plain). Then the same cell 3 more times in the same
   kernel, split at the kernel beginning its ``execute_result`` (the message
   header's date: ipykernel stamps it *before* the display formatters run, so
   what follows includes the formatting, and for ours the kernel-side masking)
   and at the message reaching the page; for ours, the server guard's own time on
   the run's messages is read from ``jupyter_secure_output_guard_seconds`` in
   ``/metrics`` (a service account's token) before and after; pandas is imported in
   both by then (the guarded kernel imports it at start, for its display
   guard; plain's first run did). Kernels are shut down and the notebook
   restored on disk between iterations, so each iteration starts a kernel;
3. the extension's own REST calls, ``fetch`` in the page, sequential, p50/p95:
   ``/secure/api/me`` and ``/secure/api/budgets``, the peer being JupyterLab's
   own ``/api/me`` on plain; and, on both, three of JupyterLab's own calls:
   ``/api/me``, the notebook's contents and ``/api/kernelspecs``.

One untimed warm-up of 1 and 2 on each server first. The table goes to stdout
and, with ``--write``, to ``bench/results/lab.md``. A watchdog ends the run
(servers killed) if it ever exceeds its deadline; every wait has a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from request_bench import env_for, free_port

RESULTS = Path(__file__).with_name("results")
CHROMIUM = os.environ.get("JUPYTER_SECURE_CHROMIUM", "/usr/bin/chromium")
#: The flags tests/browser_helpers.py launches Debian's Chromium with.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USER = "sam"
#: In the student's own home: the only place (with shared/) their role may write.
NOTEBOOK = "home/sam/lab-bench.ipynb"
ROWS = 200
#: Re-runs of the cell per iteration, in the kernel the iteration started.
AGAIN = 3
#: The notebook as JupyterLab reads it on opening (step 3 times it too).
CONTENTS = f"/api/contents/{NOTEBOOK}?type=notebook&content=1"
WAIT_MS = 120_000
#: Both servers: the app object for the page's scripts (commands, kernel state), and
#: JupyterLab's news and update check off (they would reach the internet).
LAB_FLAGS = [
    "--LabApp.expose_app_in_browser=True",
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
]

#: Step 1: resolves {core, full} (ms since navigation) once usable; ``core`` is the dock
#: and the file list, ``full`` also the status bar naming ``want`` (ours; "" for plain).
USABLE_JS = """(want) => {
  const items = document.querySelectorAll('.jp-DirListing-content .jp-DirListing-item');
  if (window.__benchCore === undefined && document.querySelector('#jp-main-dock-panel')
      && items.length > 0) {
    window.__benchCore = performance.now();
  }
  if (window.__benchCore === undefined) return false;
  if (want) {
    const s = document.querySelector('#jp-secure-status');
    if (!s || !(s.textContent || '').includes(want)) return false;
  }
  return {core: window.__benchCore, full: performance.now()};
}"""

#: Step 2a: resolves {doc, idle} once the notebook's cells are shown (doc) and its kernel
#: is connected and idle (idle). Accepts JupyterLab's kernel dialog if it ever asks.
OPEN_JS = """(path) => {
  const dialog = document.querySelector('.jp-Dialog button.jp-mod-accept');
  if (dialog && /Select/.test(dialog.textContent || '')) {
    window.__benchDialogs = (window.__benchDialogs || 0) + 1;
    dialog.click();
    return false;
  }
  const app = window.jupyterapp;
  if (!app) return false;
  let panel = null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path) panel = w;
  }
  if (!panel || !panel.content || !panel.content.widgets.length
      || !panel.node.querySelector('.jp-Cell')) return false;
  if (window.__benchDoc === undefined) window.__benchDoc = performance.now();
  const session = panel.sessionContext && panel.sessionContext.session;
  const kernel = session && session.kernel;
  if (!kernel || kernel.connectionStatus !== 'connected' || kernel.status !== 'idle') {
    return false;
  }
  return {doc: window.__benchDoc, idle: performance.now()};
}"""

#: The notebook panel at ``path`` and its one cell (in the page: ``panel``, ``cell``).
CELL_OF = """
  let panel = null;
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.context && w.context.path === path) panel = w;
  }
  const cell = panel && panel.content.widgets[0];
"""

#: Runs the cell; resolves when the run started, having noted the cell's execution count.
#: Also notes when the kernel's ``execute_result`` reaches the page (window.__benchResult).
RUN_JS = (
    "(path) => {"
    + CELL_OF
    + """
  const kernel = panel.sessionContext.session.kernel;
  if (window.__benchKernel !== kernel) {
    window.__benchKernel = kernel;
    kernel.anyMessage.connect((_, args) => {
      if (args.direction === 'recv' && args.msg.header.msg_type === 'execute_result') {
        window.__benchResult = performance.now();
        // ipykernel stamps the header when it begins the result, before the display
        // formatters (ours mask there) run; the same host's clock.
        window.__benchTransit =
          performance.timeOrigin + performance.now() - Date.parse(args.msg.header.date);
      }
    });
  }
  window.__benchResult = undefined;
  window.__benchCount = cell.model.executionCount;
  void window.jupyterapp.commands.execute('notebook:run-all-cells');
  return performance.now();
}"""
)

#: Step 2b: resolves {done, result} once the cell has a new execution count and its output
#: shows the frame's rows (and, for ours, the masked-output badge beside them); ``result``
#: is when the execute_result message arrived.
RENDERED_JS = (
    "([path, rows, badge]) => {"
    + CELL_OF
    + """
  const count = cell && cell.model.executionCount;
  if (count === null || count === undefined || count === window.__benchCount) return false;
  if (window.__benchResult === undefined) return false;
  for (const child of cell.node.querySelectorAll('.jp-OutputArea-child')) {
    const table = child.querySelector('.jp-OutputArea-output table');
    if (table && table.querySelectorAll('tbody tr').length >= rows) {
      if (badge && !child.querySelector(':scope > .jp-secure-masked-badge')) return false;
      return {done: performance.now(), result: window.__benchResult,
              transit: window.__benchTransit};
    }
  }
  return false;
}"""
)

SHUTDOWN_JS = """async () => {
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('shutting the kernels down took > 30 s')), 30000));
  await Promise.race([window.jupyterapp.serviceManager.sessions.shutdownAll(), timeout]);
}"""

#: Step 3: sequential GETs in the page as the extension makes them (cookie, XSRF header,
#: ``cache: 'no-cache'``); ms each, after 5 untimed.
FETCH_JS = """async ([paths, n]) => {
  const m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
  const headers = m ? {'X-XSRFToken': decodeURIComponent(m[1])} : {};
  const out = {};
  for (const path of paths) {
    const times = [];
    for (let i = 0; i < n + 5; i++) {
      const t0 = performance.now();
      const r = await fetch(path, {cache: 'no-cache', credentials: 'same-origin', headers,
                                   signal: AbortSignal.timeout(10000)});
      await r.text();
      const dt = performance.now() - t0;
      if (r.status !== 200) throw new Error(path + ' answered ' + r.status);
      if (i >= 5) times.push(dt);
    }
    out[path] = times;
  }
  return out;
}"""


def people(n: int = ROWS, seed: int = 29) -> list[dict[str, Any]]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return [
        {
            "name": fake.name(),
            "email": fake.email(),
            "phone": fake.phone_number(),
            "age": fake.random_int(18, 90),
            "city": fake.city(),
            "job": fake.job(),
        }
        for _ in range(n)
    ]


def notebook(rows: list[dict[str, Any]], kernel: str, display_name: str) -> str:
    source = (
        "import pandas as pd\n"
        f'pd.set_option("display.max_rows", {ROWS})\n'
        f"people = pd.DataFrame({json.dumps(rows)})\n"
        "people"
    )
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": kernel, "display_name": display_name,
                               "language": "python"},
                "language_info": {"name": "python"},
            },
            "cells": [{"cell_type": "code", "id": "frame", "metadata": {},
                       "execution_count": None, "outputs": [], "source": source}],
        }
    )  # fmt: skip


class Lab:
    """One JupyterLab server process and what the page needs to know about it."""

    def __init__(self, name: str, root: Path, env: dict[str, str], extra: list[str]) -> None:
        self.name = name
        self.root = root
        #: a token that may read /metrics (ours only): the guard's time is read there
        self.metrics_token: str | None = None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser",
             *(["--allow-root"] if os.geteuid() == 0 else []),
             f"--port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.root_dir={root}", *LAB_FLAGS, *extra],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()

    def wait_up(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} JupyterLab exited ({self.proc.returncode}); "
                                 "BENCH_SERVER_LOG=path keeps its log")  # fmt: skip
            with contextlib.suppress(requests.RequestException):
                requests.get(self.base + "/api/status", timeout=2, allow_redirects=False)
                return
            time.sleep(0.3)
        raise SystemExit(f"{self.name} JupyterLab did not answer within {seconds:.0f} s")

    def guard_seconds(self) -> float | None:
        """The server's ``jupyter_secure_output_guard_seconds_sum`` (None without a token)."""
        if self.metrics_token is None:
            return None
        r = requests.get(
            self.base + "/metrics",
            headers={"Authorization": f"token {self.metrics_token}"},
            timeout=10,
            allow_redirects=False,
        )
        r.raise_for_status()
        found = re.search(r"^jupyter_secure_output_guard_seconds_sum (\S+)$", r.text, re.M)
        if found is None:
            raise SystemExit(f"{self.name}: /metrics has no jupyter_secure_output_guard_seconds")
        return float(found.group(1))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextlib.contextmanager
def watchdog(seconds: float, labs: list[Lab]) -> Iterator[None]:
    """Past ``seconds``, kill the servers and leave: a benchmark must never hang CI."""

    def fire() -> None:
        print(f"lab_bench: still running after {seconds:.0f} s; giving up", file=sys.stderr)
        for lab in labs:
            with contextlib.suppress(Exception):
                lab.proc.kill()
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def sign_in(context: Any, lab: Lab, password: str) -> None:
    """sam's first sign-in: password, enrol the authenticator from the page, land in /lab."""
    import pyotp

    page = context.new_page()
    page.goto(f"{lab.base}/lab")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#username", USER)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/login/enroll"))
    secret = page.inner_text("#secret").replace(" ", "")
    page.fill("#otp", pyotp.TOTP(secret).now())
    page.click("#activate")
    page.wait_for_selector("#recovery-codes li")
    page.click("#continue")
    page.wait_for_selector("#jp-main-dock-panel", timeout=WAIT_MS)
    page.close()


def token_sign_in(context: Any, lab: Lab, token: str) -> None:
    """The token in the URL once: jupyter_server answers with its cookie."""
    page = context.new_page()
    page.goto(f"{lab.base}/lab?token={token}")
    page.wait_for_selector("#jp-main-dock-panel", timeout=WAIT_MS)
    page.close()


def metrics_token(state_dir: Path, env: dict[str, str]) -> str:
    """A service account that may read /metrics, made with the command line."""

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "jupyter_secure.cli", *args, "--state-dir", str(state_dir)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"jupyter secure {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    cli("user", "add", "bench-metrics", "--role", "auditor", "--service")
    return cli("token", "create", "bench-metrics", "--scope", "secure:metrics:read", "--days", "1")


def wait_js(page: Any, js: str, arg: Any = None) -> Any:
    return page.wait_for_function(js, arg=arg, polling="raf", timeout=WAIT_MS).json_value()


def time_lab(context: Any, lab: Lab, want: str) -> dict[str, float]:
    """Step 1 on a new page: ms to usable, and how many requests it took."""
    page = context.new_page()
    paths: list[str] = []
    page.on("request", lambda r: paths.append(urlparse(r.url).path))
    try:
        page.goto(f"{lab.base}/lab", wait_until="commit", timeout=WAIT_MS)
        t = wait_js(page, USABLE_JS, want)
        return {
            "core": t["core"],
            "full": t["full"],
            "requests": len(paths),
            "secure_requests": sum(p.startswith("/secure/") for p in paths),
        }
    finally:
        page.close()


def run_cell(page: Any, masked: bool) -> tuple[float, float, float]:
    """Run the cell: ms until rendered, ms of that until the result reached the page, and
    ms of that from the kernel sending the result (its header's date) to the page."""
    t_run = page.evaluate(RUN_JS, NOTEBOOK)
    t = wait_js(page, RENDERED_JS, [NOTEBOOK, ROWS, masked])
    return t["done"] - t_run, t["result"] - t_run, t["transit"]


def time_notebook(
    context: Any, lab: Lab, masked: bool, original: str, emails: list[str]
) -> dict[str, list[float]]:
    """Step 2 on a new page: open the notebook, kernel idle, run, table rendered; again."""
    (lab.root / NOTEBOOK).write_text(original, encoding="utf-8")
    page = context.new_page()
    try:
        page.goto(f"{lab.base}/lab/tree/{NOTEBOOK}", wait_until="commit", timeout=WAIT_MS)
        opened = wait_js(page, OPEN_JS, NOTEBOOK)
        run, arrived, _ = run_cell(page, masked)
        html = "\n".join(
            page.locator(".jp-OutputArea").evaluate_all("els => els.map(e => e.innerHTML)")
        )
        shown = sum(e in html for e in emails)
        if masked and shown:
            raise SystemExit(f"{lab.name}: {shown} raw e-mail addresses in the output")
        if not masked and shown < len(emails) // 2:
            raise SystemExit(f"{lab.name}: the raw table is not in the output ({shown} e-mails)")
        # Again, in the same kernel: pandas is imported in both now (the guarded kernel
        # imports it at start for its display guard; plain's first run did).
        again = []
        guard: list[float] = []
        for _ in range(AGAIN):
            before = lab.guard_seconds()
            again.append(run_cell(page, masked))
            after = lab.guard_seconds()
            if before is not None and after is not None:
                guard.append(1000 * (after - before))
        dialogs = page.evaluate("() => window.__benchDialogs || 0")
        page.evaluate(SHUTDOWN_JS)
        return {
            "doc": [opened["doc"]],
            "open": [opened["idle"]],
            "kernel": [opened["idle"] - opened["doc"]],
            "run": [run],
            "run_arrived": [arrived],
            "total": [opened["idle"] + run],
            "again": [t for t, _, _ in again],
            "again_kernel": [a - w for _, a, w in again],
            "again_transit": [w for _, _, w in again],
            "again_render": [t - a for t, a, _ in again],
            "again_guard": guard,
            "dialogs": [dialogs],
        }
    finally:
        page.close()


def rest(context: Any, lab: Lab, paths: list[str], n: int) -> dict[str, list[float]]:
    page = context.new_page()
    try:
        page.goto(f"{lab.base}/lab", wait_until="commit", timeout=WAIT_MS)
        wait_js(page, USABLE_JS, "")
        result: dict[str, list[float]] = page.evaluate(FETCH_JS, [paths, n])
        return result
    finally:
        page.close()


def q(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def row(what: str, plain: list[float] | None, ours: list[float], digits: int = 0) -> str:
    def cell(v: list[float] | None) -> str:
        if not v:
            return "n/a"
        return f"{statistics.median(v):,.{digits}f} / {q(v, 0.95):,.{digits}f}"

    if not plain:
        return f"| {what} | n/a | {cell(ours)} | | |"
    pm, om = statistics.median(plain), statistics.median(ours)
    return f"| {what} | {cell(plain)} | {cell(ours)} | {om / pm:.2f}x | {om - pm:+,.{digits}f} |"


def report(
    results: dict[str, dict[str, list[float]]],
    rest_times: dict[str, dict[str, list[float]]],
    *,
    n: int,
    fetches: int,
    chromium: str,
    dialogs: int,
) -> str:
    from importlib.metadata import version

    p, o = results["plain"], results["ours"]
    rp, ro = rest_times["plain"], rest_times["ours"]
    reqs = (
        f"Requests until usable (median): plain {statistics.median(p['requests']):.0f}, "
        f"ours {statistics.median(o['requests']):.0f} "
        f"({statistics.median(o['secure_requests']):.0f} of them to `/secure/`)."
    )
    lines = [
        f"JupyterLab {version('jupyterlab')} in headless Chromium {chromium}, 2 cores "
        f"({time.strftime('%Y-%m-%d')}, `python bench/lab_bench.py`; {n} iterations per "
        f"server, alternating; {fetches} GETs per REST route)",
        "",
        "| step | plain JupyterLab p50 / p95 ms | JupyterLab + jupyter-secure p50 / p95 ms "
        "| p50 ratio | added p50 ms |",
        "|---|---:|---:|---:|---:|",
        row("`/lab` to usable: main area and file list shown", p["core"], o["core"]),
        row(
            "`/lab` to usable, ours until the status bar names the user (handshake done)",
            p["core"],
            o["full"],
        ),
        row("open the notebook: cells shown", p["doc"], o["doc"]),
        row("open the notebook: its kernel started and idle", p["open"], o["open"]),
        row("… of which the kernel's start (cells shown → idle)", p["kernel"], o["kernel"]),
        row(
            f"run the cell until the {ROWS} x 6 frame is rendered (ours: masked, badge shown)",
            p["run"],
            o["run"],
        ),
        row(
            "… of which until the result reached the page (kernel, server, websocket)",
            p["run_arrived"],
            o["run_arrived"],
        ),
        row("open + run, total", p["total"], o["total"]),
        row(
            f"run it again in the same kernel, {AGAIN} times (pandas imported in both)",
            p["again"],
            o["again"],
        ),
        row(
            "… of which until the kernel began its result (request in, run)",
            p["again_kernel"],
            o["again_kernel"],
        ),
        row(
            "… of which from there to the page (display formatting, ours masking the frame"
            " in the kernel; server; websocket)",
            p["again_transit"],
            o["again_transit"],
        ),
        row(
            "the server's guard, summed over the run's messages"
            " (`jupyter_secure_output_guard_seconds`; a message queued behind the result"
            " counts its wait too, so not a share of the line above; no peer)",
            None,
            o["again_guard"],
            1,
        ),
        row("… of which rendering it (ours: and the badge)", p["again_render"], o["again_render"]),
        row("`GET /api/me` in the page (JupyterLab's own)", rp["/api/me"], ro["/api/me"], 2),
        row("`GET` the notebook (`/api/contents/…`, 36 KB of JSON)", rp[CONTENTS], ro[CONTENTS], 2),
        row("`GET /api/kernelspecs`", rp["/api/kernelspecs"], ro["/api/kernelspecs"], 2),
        row(
            "`GET /secure/api/me` (the handshake; peer: plain `/api/me`)",
            rp["/api/me"],
            ro["/secure/api/me"],
            2,
        ),
        row(
            "`GET /secure/api/budgets` (the budget panel; no peer)",
            None,
            ro["/secure/api/budgets"],
            2,
        ),
        "",
        reqs,
    ]
    if dialogs:
        lines.append(f"JupyterLab asked for a kernel {dialogs} time(s) (accepted in the page).")
    return "\n".join(lines) + "\n"


def main() -> None:  # noqa: PLR0915 - one run, told in order
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, help="timed iterations per step and server")
    ap.add_argument("--quick", action="store_true", help="2 iterations (unless --iterations)")
    ap.add_argument("--fetches", type=int, help="GETs per REST route (default 50, quick 10)")
    ap.add_argument("--write", action="store_true", help="write bench/results/lab.md")
    args = ap.parse_args()
    n = args.iterations or (2 if args.quick else 10)
    fetches = args.fetches or (10 if args.quick else 50)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM} (JUPYTER_SECURE_CHROMIUM says where)")
    from playwright.sync_api import sync_playwright

    from jupyter_secure.demo.workspace import prepare

    frame = people()
    emails = [p["email"] for p in frame]
    secure_nb = notebook(frame, "jupyter-secure", "Python 3 (jupyter-secure)")
    plain_nb = notebook(frame, "python3", "Python 3 (ipykernel)")
    token = "bench-token-" + os.urandom(8).hex()
    results: dict[str, dict[str, list[float]]] = {"plain": {}, "ours": {}}
    rest_times: dict[str, dict[str, list[float]]] = {}
    dialogs = 0

    def add(server: str, sample: dict[str, float] | dict[str, list[float]]) -> None:
        for key, value in sample.items():
            values = value if isinstance(value, list) else [value]
            results[server].setdefault(key, []).extend(values)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ws = prepare(tmp / "demo", rows=200)
        (ws.notebooks / NOTEBOOK).parent.mkdir(parents=True, exist_ok=True)
        (ws.notebooks / NOTEBOOK).write_text(secure_nb, encoding="utf-8")
        plain_root = tmp / "plain" / "notebooks"
        shutil.copytree(ws.notebooks, plain_root)
        (plain_root / NOTEBOOK).write_text(plain_nb, encoding="utf-8")
        plain_env = env_for(tmp / "plain")
        labconfig = Path(plain_env["JUPYTER_CONFIG_DIR"]) / "labconfig"
        labconfig.mkdir(parents=True)
        # What `jupyter labextension disable jupyter-secure` writes: without the server
        # extension its handshake would only fail and say so.
        (labconfig / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"jupyter-secure": True}})
        )
        labs: list[Lab] = []
        with watchdog(600 + 120 * n, labs), sync_playwright() as pw:
            browser = None
            try:
                plain = Lab("plain", plain_root, plain_env, [
                    f"--IdentityProvider.token={token}",
                    "--ServerApp.jpserver_extensions={'jupyter_secure': False}",
                ])  # fmt: skip
                labs.append(plain)
                ours_env = env_for(tmp / "ours")
                ours = Lab("jupyter-secure", ws.notebooks, ours_env,
                           [f"--SecureApp.state_dir={ws.state_dir}"])  # fmt: skip
                ours.metrics_token = metrics_token(ws.state_dir, ours_env)
                labs.append(ours)
                plain.wait_up()
                ours.wait_up()
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
                )
                chromium = browser.version
                ctx: dict[str, Any] = {}
                for key in ("plain", "ours"):
                    ctx[key] = browser.new_context(viewport={"width": 1400, "height": 900})
                    ctx[key].set_default_timeout(60_000)
                token_sign_in(ctx["plain"], plain, token)
                sign_in(ctx["ours"], ours, ws.new_passwords[USER])
                # (server, lab, masked, user the status bar names, notebook text)
                runs = [
                    ("plain", plain, False, "", plain_nb),
                    ("ours", ours, True, USER, secure_nb),
                ]

                # 1. /lab to usable: one untimed visit each, then n, alternating who goes first
                for server, lab, _, want, _ in runs:
                    time_lab(ctx[server], lab, want)
                for i in range(n):
                    for server, lab, _, want, _ in runs[:: 1 - 2 * (i % 2)]:
                        add(server, time_lab(ctx[server], lab, want))
                    print(f"  /lab {i + 1}/{n}", file=sys.stderr)
                # 3. the REST calls, in a page at rest
                core = ["/api/me", CONTENTS, "/api/kernelspecs"]
                rest_times["plain"] = rest(ctx["plain"], plain, core, fetches)
                rest_times["ours"] = rest(
                    ctx["ours"], ours, [*core, "/secure/api/me", "/secure/api/budgets"], fetches
                )
                # 2. open the notebook and run the cell: one untimed each, then n
                for server, lab, masked, _, nb in runs:
                    time_notebook(ctx[server], lab, masked, nb, emails)
                for i in range(n):
                    for server, lab, masked, _, nb in runs[:: 1 - 2 * (i % 2)]:
                        sample = time_notebook(ctx[server], lab, masked, nb, emails)
                        dialogs += int(sample.pop("dialogs")[0])
                        add(server, sample)
                    print(f"  notebook {i + 1}/{n}", file=sys.stderr)
            finally:
                if browser is not None:
                    with contextlib.suppress(Exception):
                        browser.close()
                for lab in labs:
                    lab.stop()

    text = report(results, rest_times, n=n, fetches=fetches, chromium=chromium, dialogs=dialogs)
    print(text)
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "lab.md").write_text(text)


if __name__ == "__main__":
    main()
