"""What the browser tests share: Debian's Chromium, a JupyterLab server process, screenshots.

Security stays on in every one of them: the server is started exactly as an
operator would start it (sign-in with a second factor, XSRF checks, the route
guard), with one addition, ``LabApp.expose_app_in_browser``, which lets the
test call JupyterLab commands by id instead of hunting for menu items. It
hands the page's own scripts an object they could reach anyway; it opens
nothing to anyone else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from helpers import code_at

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "DOC_IMAGES",
    "free_port",
    "guarded_notebook",
    "lab_server",
    "launch",
    "shot",
    "sign_in_enrolling",
]

CHROMIUM = os.environ.get("JUPYTER_SECURE_CHROMIUM", "/usr/bin/chromium")
#: Where every screenshot goes (CI keeps ``test-artifacts/``).
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts" / "ui"
#: The user guide's pictures: refreshed from a run with JUPYTER_SECURE_DOC_SHOTS=1.
DOC_IMAGES = Path(__file__).parents[1] / "docs" / "images"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(pw: Any) -> Any:
    """Debian's Chromium, headless (Playwright never downloads a browser here)."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)


def shot(page: Any, name: str, *, doc: str | None = None) -> None:
    """A full-page screenshot in the artifacts; also into docs/images as ``doc`` when asked."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if doc and os.environ.get("JUPYTER_SECURE_DOC_SHOTS") == "1":
        shutil.copyfile(path, DOC_IMAGES / f"{doc}.png")


@contextmanager
def lab_server(root: Path, state: Path, env: dict[str, str], *extra: str) -> Iterator[str]:
    """JupyterLab with jupyter-secure on a free port, stopped (SIGTERM, then kill) after."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={root}", f"--SecureApp.state_dir={state}", *extra,
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1][-3000:])
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("JupyterLab did not listen within 90 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def sign_in_enrolling(page: Any, base: str, user: str, password: str, prefix: str) -> str:
    """First sign-in of ``user``: password, enrol the authenticator from the page, land in
    JupyterLab. Returns the TOTP secret."""
    import re

    page.goto(f"{base}/lab")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/login/enroll"))
    secret: str = page.inner_text("#secret").replace(" ", "")
    page.fill("#otp", code_at(secret, time.time()))
    page.click("#activate")
    page.wait_for_selector("#recovery-codes li")
    page.click("#continue")
    page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
    shot(page, f"{prefix}-signed-in")
    return secret


def guarded_notebook(cells: dict[str, str]) -> str:
    """A notebook (JSON text) for the guarded kernel with one code cell per ``id: source``."""
    import json

    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {
                    "name": "jupyter-secure",
                    "display_name": "Python 3 (jupyter-secure)",
                    "language": "python",
                },
                "language_info": {"name": "python"},
            },
            "cells": [
                {"cell_type": "code", "id": cid, "metadata": {}, "execution_count": None,
                 "outputs": [], "source": source}
                for cid, source in cells.items()
            ],
        }
    )  # fmt: skip
