"""Sign-in in a real browser (Debian's Chromium driven by Playwright), security on.

A fresh user enrols by reading the manual-entry secret off the page and
computing the code, lands in JupyterLab, signs out, and signs in again with a
code. Screenshots of each step go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browser_helpers import lab_server, launch, shot
from helpers import PASSWORD, cli_env, code_at, run_cli

pytestmark = pytest.mark.ui


@pytest.fixture
def lab(tmp_path: Path):  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    root = tmp_path / "notebooks"
    root.mkdir()
    assert run_cli(tmp_path, "init", "--state-dir", str(state)).returncode == 0
    added = run_cli(
        tmp_path,
        "user", "add", "robin", "--role", "data_scientist", "--password-stdin",
        "--state-dir", str(state),
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with lab_server(root, state, cli_env(tmp_path)) as base:
        yield base


def test_enrol_sign_out_and_sign_in_again(lab: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{lab}/lab")
            page.wait_for_url(re.compile(r"/login"))
            shot(page, "01-sign-in", doc="sign-in")
            page.fill("#username", "robin")
            page.fill("#password", PASSWORD)
            page.click("#sign-in")
            page.wait_for_url(re.compile(r"/login/enroll"))
            assert page.locator(".qr svg").count() == 1
            shot(page, "02-enrol", doc="enrol")
            secret = page.inner_text("#secret").replace(" ", "")
            assert re.fullmatch(r"[A-Z2-7]{32}", secret)
            enrolled_at = time.time()
            page.fill("#otp", code_at(secret, enrolled_at))
            page.click("#activate")
            page.wait_for_selector("#recovery-codes li")
            assert page.locator("#recovery-codes li").count() == 10
            shot(page, "03-recovery-codes", doc="recovery-codes")
            page.click("#continue")
            page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
            shot(page, "04-jupyterlab")
            page.goto(f"{lab}/logout")
            page.click("#sign-out")
            page.wait_for_selector("#sign-in-again")
            shot(page, "05-signed-out")
            page.goto(f"{lab}/lab")
            page.wait_for_url(re.compile(r"/login"))
            page.fill("#username", "robin")
            page.fill("#password", PASSWORD)
            page.click("#sign-in")
            page.wait_for_url(re.compile(r"/login/mfa"))
            shot(page, "06-code", doc="code")
            # A code is good once: wait for the next 30-second step after enrolment.
            next_step = (int(enrolled_at // 30) + 1) * 30
            time.sleep(max(0.0, next_step - time.time() + 0.5))
            page.fill("#otp", code_at(secret, time.time()))
            page.click("#verify")
            page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
            shot(page, "07-jupyterlab-again")
        finally:
            browser.close()
