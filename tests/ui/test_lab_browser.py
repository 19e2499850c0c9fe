"""The JupyterLab extension in a real browser (Debian's Chromium, Playwright), security on.

One story on the demo workspace, as the user guide tells it:

1. the student ``sam`` enrols and signs in with TOTP; the status bar names them, their
   role and the MFA count-down;
2. opens a notebook and runs a cell that displays a frame of (Faker-made) patients:
   the page shows masked values, never the raw ones, and the masked-output badge
   says why on hover;
3. runs a private query: the budget panel shows the charge;
4. sees no admin panel, and the admin API refuses them;
5. the admin signs in and the admin panel's audit browser shows sam's new records;
6. once the admin's second factor is stale, locking an account asks for a code: a
   wrong one is refused in the dialog, the right one locks the account.

Every step leaves a screenshot in ``test-artifacts/ui/`` (the user guide's pictures
come from here: ``JUPYTER_SECURE_DOC_SHOTS=1`` copies them into ``docs/images``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import guarded_notebook, lab_server, launch, shot, sign_in_enrolling
from faker import Faker
from helpers import cli_env, code_at

from jupyter_secure.demo.workspace import prepare

pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]

#: In the student's own home: the only place (with shared/) their role may open.
NOTEBOOK = "home/sam/ui-tour.ipynb"
STEP_UP_SECONDS = 20


def _people(seed: int = 7) -> list[dict[str, Any]]:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    return [
        {
            "name": fake.name(),
            "email": fake.email(),
            "phone": fake.phone_number(),
            "age": 20 + i * 7,
        }
        for i in range(4)
    ]


def _notebook(people: list[dict[str, Any]]) -> str:
    return guarded_notebook(
        {
            "frame": "import pandas as pd\n"
            f"patients = pd.DataFrame({json.dumps(people)})\npatients",
            "query": "from jupyter_secure import private\n"
            "private.dataset('patients').mean('age', rho=0.05).value",
            # print bypasses the kernel's display guard: the server masks it
            "printed": "print(patients.loc[0, 'email'])\nprint(patients.loc[0, 'name'])",
        }
    )


def _command(page: Any, command: str) -> None:
    """Start a JupyterLab command without waiting for it (Run All resolves only when every
    cell is done; the test waits on the page instead, with timeouts)."""
    page.evaluate("(c) => { void window.jupyterapp.commands.execute(c); }", command)


def _start_kernel(page: Any) -> None:
    """Accept JupyterLab's kernel choice (the guarded kernel, preselected from the
    notebook's metadata) if it asks, and wait until the kernel is idle."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    select = page.locator(".jp-Dialog button.jp-mod-accept", has_text="Select")
    with contextlib.suppress(PlaywrightTimeout):
        select.wait_for(state="visible", timeout=15_000)
        select.click()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    news = page.locator(".jp-toast-button", has_text="No")
    if news.count():
        news.first.click()


def _failure_shot(page: Any) -> None:
    """What the page showed when a step failed (best effort: the page may be gone)."""
    if page is None:
        return
    with contextlib.suppress(Exception):  # the original failure is what matters
        shot(page, "lab-failure")


def _has_command(page: Any, command: str) -> bool:
    return bool(
        page.evaluate(
            "(c) => window.jupyterapp.commands.hasCommand(c) && "
            "window.jupyterapp.commands.isVisible(c)",
            command,
        )
    )


def test_student_sees_masking_and_budget_admin_sees_the_audit(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ws = prepare(tmp_path / "demo", rows=200)
    people = _people()
    (ws.notebooks / NOTEBOOK).parent.mkdir(parents=True, exist_ok=True)
    (ws.notebooks / NOTEBOOK).write_text(_notebook(people), encoding="utf-8")
    env = cli_env(tmp_path)
    with (
        lab_server(
            ws.notebooks,
            ws.state_dir,
            env,
            "--LabApp.expose_app_in_browser=True",
            # A short step-up window, so that the admin's change below needs a fresh code.
            f"--SignInPolicy.step_up_max_age={STEP_UP_SECONDS}",
        ) as base,
        sync_playwright() as pw,
    ):
        browser = launch(pw)
        page = None
        try:
            # 1. the student signs in
            student = browser.new_context(viewport={"width": 1400, "height": 900})
            page = student.new_page()
            page.set_default_timeout(60_000)
            secure_calls: list[str] = []
            page.on(
                "request",
                lambda r: (
                    secure_calls.append(r.url.split("/secure/api/", 1)[1])
                    if "/secure/api/" in r.url
                    else None
                ),
            )
            sign_in_enrolling(page, base, "sam", ws.new_passwords["sam"], "lab-01")
            status = page.locator("#jp-secure-status")
            expect(status).to_contain_text("sam")
            expect(status).to_contain_text("student")
            # One /me (the handshake) before the first budgets read: the first refresh
            # does not read /me again.
            for _ in range(300):  # 30 s at most
                if "budgets" in secure_calls:
                    break
                page.wait_for_timeout(100)  # also lets Playwright deliver request events
            assert "budgets" in secure_calls, secure_calls
            first_load = secure_calls[: secure_calls.index("budgets") + 1]
            assert first_load.count("me") == 1, secure_calls
            # The file browser lists what a student may open: their home and shared/.
            listing = page.locator(".jp-DirListing-itemText")
            expect(listing.filter(has_text=re.compile(r"^home$"))).to_be_visible()
            expect(listing.filter(has_text=re.compile(r"^shared$"))).to_be_visible()
            shot(page, "lab-02-status-bar", doc="status-bar")

            # 2. a frame of patients: masked on the page, with the badge
            page.goto(f"{base}/lab/tree/{NOTEBOOK}")
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            _start_kernel(page)
            _command(page, "jupyter-secure:open-budget")
            budget = page.locator("#jp-secure-budget [data-dataset='patients']")
            remaining_before = Decimal(
                budget.locator(".jp-secure-remaining").first.inner_text().split()[0]
            )
            _command(page, "notebook:run-all-cells")
            badge = page.locator(".jp-secure-masked-badge").first
            expect(badge).to_be_visible(timeout=90_000)
            reason = badge.get_attribute("title") or ""
            assert "student" in reason, reason
            assert re.search(r"PERSON|EMAIL", reason), reason
            # The code cell holds the raw values (the student typed them); no output may.
            outputs = "\n".join(page.locator(".jp-OutputArea").all_inner_texts())
            outputs += "\n".join(
                page.locator(".jp-OutputArea").evaluate_all("els => els.map(e => e.innerHTML)")
            )
            for person in people:
                assert person["email"] not in outputs
                assert person["name"] not in outputs
                assert person["phone"] not in outputs
            badge.hover()
            shot(page, "lab-03-masked-output", doc="masked-output")

            # 3. the private query is charged and the panel shows it
            expect(page.locator(".jp-OutputArea-output").nth(1)).to_contain_text(
                re.compile(r"\d"), timeout=90_000
            )
            expect(budget.locator(".jp-secure-remaining").first).not_to_have_text(
                re.compile(rf"^{re.escape(str(remaining_before))}\b"), timeout=60_000
            )
            remaining_after = Decimal(
                budget.locator(".jp-secure-remaining").first.inner_text().split()[0]
            )
            assert remaining_after == remaining_before - Decimal("0.05")
            shot(page, "lab-04-budget-panel", doc="budget-panel")

            # 3b. printed raw values: masked by the server, and the badge says so
            printed = page.locator(".jp-CodeCell").nth(2)
            printed_badge = printed.locator(".jp-secure-masked-badge")
            expect(printed_badge).to_be_visible(timeout=60_000)
            reason = printed_badge.get_attribute("title") or ""
            assert "by the server" in reason, reason
            assert "student" in reason, reason
            text = printed.locator(".jp-OutputArea").inner_text()
            assert people[0]["email"] not in text
            assert people[0]["name"] not in text

            # 4. no admin panel for a student, and the API says no as well
            assert not _has_command(page, "jupyter-secure:open-admin")
            assert page.locator("#jp-secure-admin").count() == 0
            refused = page.request.get(f"{base}/secure/api/admin/users")
            assert refused.status == 403
            student.close()

            # 5. the admin's audit browser shows what sam just did
            admin = browser.new_context(viewport={"width": 1400, "height": 900})
            page = admin.new_page()
            page.set_default_timeout(60_000)
            enrolled_at = time.time()
            secret = sign_in_enrolling(page, base, "admin", ws.new_passwords["admin"], "lab-05")
            listing = page.locator(".jp-DirListing-itemText")
            expect(listing.filter(has_text=re.compile(r"^shared$"))).to_be_visible()
            assert _has_command(page, "jupyter-secure:open-admin")
            _command(page, "jupyter-secure:open-admin")
            panel = page.locator("#jp-secure-admin")
            expect(panel).to_be_visible()
            panel.locator("[data-tab='audit']").first.click()
            expect(panel.locator("tr[data-event='PrivateQuery']").first).to_be_visible(
                timeout=60_000
            )
            expect(panel.locator("tr[data-event='CellExecuted']").first).to_be_visible()
            expect(panel.locator(".jp-secure-verify")).to_contain_text(
                re.compile(r"verified|intact|ok", re.I), timeout=60_000
            )
            shot(page, "lab-06-admin-audit", doc="admin-audit")
            panel.locator("[data-tab='users']").first.click()
            expect(panel.locator("text=sam").first).to_be_visible()
            shot(page, "lab-07-admin-users", doc="admin-users")

            # 6. a change once the second factor is stale: the step-up dialog
            stale = page.locator("#jp-secure-status .jp-secure-status-mfa.jp-mod-stale")
            expect(stale).to_be_visible(timeout=(STEP_UP_SECONDS + 30) * 1000)
            # A code is good once: the enrolment used this 30-second step's.
            time.sleep(max(0.0, (int(enrolled_at // 30) + 1) * 30 - time.time() + 0.5))
            dana = panel.locator("[data-panel=users] tr[data-user=dana]")
            dana.locator("[data-action=lock]").click()
            dialog = page.locator(".jp-secure-stepup")
            expect(dialog).to_be_visible()
            dialog.locator("input[name=otp]").fill(code_at(secret, time.time() + 3600))
            shot(page, "lab-08-step-up", doc="step-up")
            dialog.locator("button.jp-mod-accept").click()
            expect(page.locator(".jp-secure-stepup .jp-secure-stepup-error")).to_contain_text(
                re.compile("wrong", re.I)
            )
            assert dana.get_attribute("data-status") == "active"
            page.locator(".jp-secure-stepup input[name=otp]").fill(code_at(secret, time.time()))
            page.locator(".jp-secure-stepup button.jp-mod-accept").click()
            expect(dana).to_have_attribute("data-status", "locked")
            expect(page.locator("#jp-secure-status .jp-secure-status-mfa")).not_to_have_class(
                re.compile("jp-mod-stale")
            )
            admin.close()
        except BaseException:
            _failure_shot(page)
            raise
        finally:
            browser.close()
