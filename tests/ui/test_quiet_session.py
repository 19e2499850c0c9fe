"""A least-privileged user's ordinary JupyterLab session leaves no refusals behind.

JupyterLab's own background traffic (the event bus subscription, the terminal
poll, settings it writes when the user answers a notification) used to be
refused for a student and recorded as ``AccessDenied``, every second, which
flooded the trail and raised ``denial-burst`` for every student. Here the
student ``sam`` signs in (real Chromium, TOTP), opens a notebook, runs a cell
and idles; afterwards the trail holds no ``AccessDenied`` for sam and no
``denial-burst`` alarm is raised. Explicit attempts are refused and recorded
still: the server tests in ``tests/handlers/test_quiet_ui.py`` check those.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import guarded_notebook, lab_server, launch, shot, sign_in_enrolling
from helpers import cli_env

from jupyter_secure.demo.workspace import prepare

pytestmark = [pytest.mark.ui, pytest.mark.timeout(120)]

NOTEBOOK = "home/sam/quiet.ipynb"
#: How long the student leaves JupyterLab open with nothing to do.
IDLE_SECONDS = 20


def _cli(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_secure.cli", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_a_students_idle_session_is_not_refused_anything(tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    ws = prepare(tmp_path / "demo", rows=50)
    (ws.notebooks / NOTEBOOK).parent.mkdir(parents=True, exist_ok=True)
    (ws.notebooks / NOTEBOOK).write_text(guarded_notebook({"sum": "6 * 7"}), encoding="utf-8")
    env = cli_env(tmp_path)
    refused: list[str] = []  # what the browser saw refused, to say which call it was
    with (
        lab_server(ws.notebooks, ws.state_dir, env, "--LabApp.expose_app_in_browser=True") as base,
        sync_playwright() as pw,
    ):
        browser = launch(pw)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on(
                "response",
                lambda r: (
                    refused.append(f"{r.request.method} {r.url}") if r.status == 403 else None
                ),
            )
            sign_in_enrolling(page, base, "sam", ws.new_passwords["sam"], "quiet-01")
            page.goto(f"{base}/lab/tree/{NOTEBOOK}")
            page.wait_for_selector(".jp-Notebook", timeout=30_000)
            # JupyterLab asks which kernel (the guarded one is preselected) on a new notebook.
            select = page.locator(".jp-Dialog button.jp-mod-accept", has_text="Select")
            with contextlib.suppress(PlaywrightTimeout):
                select.wait_for(state="visible", timeout=10_000)
                select.click()
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=30_000
            )
            # A user who is asked about news answers; a student is not asked at all.
            news = page.locator(".jp-toast-button", has_text="No")
            if news.count():
                news.first.click()
            page.evaluate("() => { void window.jupyterapp.commands.execute("
                          "'notebook:run-all-cells'); }")  # fmt: skip
            expect(page.locator(".jp-OutputArea-output").first).to_contain_text(
                "42", timeout=30_000
            )
            page.wait_for_timeout(IDLE_SECONDS * 1000)
            shot(page, "quiet-02-idle")
            context.close()
        finally:
            browser.close()
    # The server has stopped and flushed its trail.
    state = f"--state-dir={ws.state_dir}"
    denied = _cli(env, "audit", "query", "--event=AccessDenied", "--user=sam", state)
    summary = [(r["requestParameters"].get("method"), r["requestParameters"].get("path"))
               for r in denied]  # fmt: skip
    assert denied == [], f"{len(denied)} AccessDenied for sam: {summary}; browser saw {refused}"
    # No denial-burst (or any) alarm about sam: AlarmRaised records in the trail itself.
    raised = [
        event
        for segment in sorted((ws.state_dir / "audit").glob("segment-*.jsonl"))
        for event in map(json.loads, segment.read_bytes().splitlines())
        if event.get("eventName") == "AlarmRaised"
    ]
    assert not [e for e in raised if "denial-burst" in json.dumps(e)], raised
