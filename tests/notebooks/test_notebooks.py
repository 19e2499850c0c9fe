"""The teaching notebooks, run top to bottom on a real guarded server, as the people they are for.

One ``jupyter secure lab`` process on a fresh demo workspace (module-scoped), the demo users
signed in over HTTP with their password and a TOTP enrolment, one guarded kernel per notebook
started through the sessions API on the user's own copy (``home/<user>/labs``), and every code
cell sent over the kernel's websocket, as JupyterLab does. Labs 1 to 4 run as the student ``sam``;
lab 5 as the instructor ``ines`` (her group's records; verification and alarms refused) and as
``admin`` (everything), after ``sam`` ran out of budget in lab 2 and someone mistyped a password
five times: both raise alarms lab 5 lists.

What is checked: no cell fails; no raw personal data of the frames the notebooks generate, nor
of the demo data set, reaches any output, and masked tokens and redactions do; the privacy
budget was charged (read back with the CLI) and the refusal cell shows the refusal; the
access-control lab's refusals are refusals; the audit lab shows records, and alarms for admin.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from helpers import cli_env, code_at, run_cli, secret_from_enroll_page

from jupyter_secure.demo.dataset import generate_patients
from jupyter_secure.demo.workspace import DEMO_USERS, teaching_notebooks

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ROWS = 400  # the demo data set's rows: enough for the DP lab, quick to prepare
CELL_TIMEOUT = 120.0


def read_notebook(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def _notebook(stem: str) -> Path:
    [path] = NOTEBOOKS.glob(f"{stem}-*.ipynb")
    return path


# -- fast checks: the files themselves ----------------------------------------------------------


def test_the_teaching_notebooks_are_the_five_labs() -> None:
    assert [p.name for p in teaching_notebooks()] == [
        "01-welcome.ipynb",
        "02-differential-privacy.ipynb",
        "03-pii-masking.ipynb",
        "04-access-control-mfa.ipynb",
        "05-audit-monitoring.ipynb",
    ]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_a_notebook_is_valid_and_clean(path: Path) -> None:
    """nbformat 4, cell ids set, no outputs or execution counts, the guarded kernel."""
    nb = read_notebook(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "jupyter-secure"
    ids = [cell.get("id") for cell in nb.cells]
    assert all(ids), "every cell has an id"
    assert len(set(ids)) == len(ids)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] for cell in code), "no stored outputs"
    assert all(cell.execution_count is None for cell in code), "no execution counts"
    assert "Secure AI Systems" in nb.cells[0].source, "each lab says which module it follows"
    assert "## Exercises" in "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "exercise" in code[-1].metadata.get("tags", []), "ends with a runnable exercise cell"


# -- the real server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    base: str
    workspace: Path
    tmp: Path
    passwords: dict[str, str]
    webs: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        state = str(self.workspace / "state")
        return run_cli(self.tmp, *args, "--state-dir", state)

    def sign_in(self, user: str) -> Any:
        """Password, then enrol an authenticator from the page (the first sign-in)."""
        import requests

        if user in self.webs:
            return self.webs[user]
        web = requests.Session()
        web.get(f"{self.base}/login", timeout=10)
        r = web.post(
            f"{self.base}/login",
            data={"username": user, "password": self.passwords[user],
                  "_xsrf": web.cookies["_xsrf"]},
            allow_redirects=False, timeout=30,
        )  # fmt: skip
        assert r.status_code == 302, r.text[:500]
        page = web.get(f"{self.base}/login/enroll", timeout=10).text
        secret = secret_from_enroll_page(page)
        r = web.post(
            f"{self.base}/login/enroll",
            data={"otp": code_at(secret, time.time()), "_xsrf": web.cookies["_xsrf"]},
            timeout=30,
        )
        assert r.status_code == 200, r.text[:500]
        self.webs[user] = web
        return web


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    import requests

    from jupyter_secure.channel.guard import landlock_abi

    if landlock_abi() == 0:
        pytest.skip("needs Landlock: without a sandbox the server runs no private-query broker")
    tmp = tmp_path_factory.mktemp("labs")
    ws = tmp / "demo"
    port = _free_port()
    out = (tmp / "server.out").open("w")
    err = (tmp / "server.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_secure.cli", "lab", "--workspace", str(ws),
         "--port", str(port), "--no-browser", "--rows", str(ROWS)],
        stdout=out, stderr=err, text=True, env=cli_env(tmp),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        up = False
        while not up:
            assert time.monotonic() < deadline, "the server did not come up in 90 s"
            assert proc.poll() is None, (tmp / "server.err").read_text()[-3000:]
            try:
                up = requests.get(f"{base}/login", timeout=5).status_code == 200
            except requests.ConnectionError:
                time.sleep(0.3)
        lines = (ws / "demo-credentials.txt").read_text().splitlines()
        passwords = dict(line.split("\t") for line in lines)
        yield Lab(base, ws, tmp, passwords)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        out.close()
        err.close()


class KernelClient:
    """A guarded kernel for one notebook, as JupyterLab opens it: a session, then the websocket."""

    def __init__(self, lab: Lab, user: str, notebook: str) -> None:
        import websocket

        web = lab.sign_in(user)
        self.web, self.base = web, lab.base
        path = f"home/{user}/labs/{notebook}"
        r = web.post(
            f"{lab.base}/api/sessions",
            json={"path": path, "type": "notebook", "name": notebook,
                  "kernel": {"name": "jupyter-secure"}},
            headers={"X-XSRFToken": web.cookies["_xsrf"]}, timeout=60,
        )  # fmt: skip
        assert r.status_code == 201, r.text[:500]
        self.session_id = r.json()["id"]
        kernel_id = r.json()["kernel"]["id"]
        cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
        url = lab.base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
        self.ws = websocket.create_connection(url, header=[f"Cookie: {cookie}"], timeout=60)
        self.client_session = uuid.uuid4().hex

    def run(self, code: str, cell_id: str) -> list[dict[str, Any]]:
        """Every message about one execute_request, until its reply and the idle status."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "",
                       "session": self.client_session, "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {"cellId": cell_id}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
            "buffers": [],
        }))  # fmt: skip
        got: list[dict[str, Any]] = []
        replied = idle = False
        deadline = time.monotonic() + CELL_TIMEOUT
        while not (replied and idle):
            left = deadline - time.monotonic()
            assert left > 0, f"cell {cell_id}: no reply in {CELL_TIMEOUT:g} s: {got[-3:]}"
            self.ws.settimeout(left)
            m = json.loads(self.ws.recv())
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            got.append(m)
            replied = replied or m["msg_type"] == "execute_reply"
            idle = idle or (m["msg_type"] == "status" and m["content"]["execution_state"] == "idle")
        return got

    def close(self) -> None:
        self.ws.close()
        self.web.delete(
            f"{self.base}/api/sessions/{self.session_id}",
            headers={"X-XSRFToken": self.web.cookies["_xsrf"]}, timeout=60,
        )  # fmt: skip


@dataclass
class CellRun:
    cell_id: str
    tags: list[str]
    messages: list[dict[str, Any]]

    @property
    def status(self) -> str:
        [reply] = [m for m in self.messages if m["msg_type"] == "execute_reply"]
        return str(reply["content"]["status"])

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.messages if m["msg_type"] == "error"]

    @property
    def text(self) -> str:
        """Everything the user saw (not the echo of the code), as one string."""
        shown = [m["content"] for m in self.messages if m["msg_type"] != "execute_input"]
        return json.dumps(shown, ensure_ascii=False)

    @property
    def stream(self) -> str:
        return "".join(m["content"]["text"] for m in self.messages if m["msg_type"] == "stream")


def run_notebook(lab: Lab, user: str, stem: str) -> dict[str, CellRun]:
    path = _notebook(stem)
    nb = read_notebook(path)
    kernel = KernelClient(lab, user, path.name)
    try:
        return {
            cell.id: CellRun(
                cell.id, list(cell.metadata.get("tags", [])), kernel.run(cell.source, cell.id)
            )
            for cell in nb.cells
            if cell.cell_type == "code"
        }
    finally:
        kernel.close()


def mistype_a_password(lab: Lab, user: str, times: int) -> None:
    """Wrong passwords for ``user``, waiting out the sign-in throttle as a person would."""
    import requests

    web = requests.Session()
    web.get(f"{lab.base}/login", timeout=10)
    failed = 0
    deadline = time.monotonic() + 60
    while failed < times:
        assert time.monotonic() < deadline, "the throttle kept refusing for 60 s"
        r = web.post(
            f"{lab.base}/login",
            data={"username": user, "password": "not-the-password",
                  "_xsrf": web.cookies["_xsrf"]},
            allow_redirects=False, timeout=30,
        )  # fmt: skip
        if r.status_code == 429:
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 20.0))
            continue
        assert r.status_code in (200, 401), r.status_code
        failed += 1


def wait_for_alarms(lab: Lab, rules: set[str], timeout: float = 45) -> set[str]:
    """The rules among ``rules`` that have raised an alarm, once all have or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        listed = json.loads(lab.cli("alarms", "list", "--all", "--json").stdout or "[]")
        raised = {a["rule"] for a in listed} & rules
        if raised == rules or time.monotonic() > deadline:
            return raised
        time.sleep(1)


@pytest.fixture(scope="module")
def runs(lab: Lab) -> dict[str, dict[str, CellRun]]:
    """Every lab, run once, in course order."""
    done: dict[str, dict[str, CellRun]] = {}
    for stem in ("01", "02", "03", "04"):
        done[stem] = run_notebook(lab, "sam", stem)
    mistype_a_password(lab, "dana", 5)
    done["alarms-raised"] = {
        rule: CellRun(rule, [], [])
        for rule in wait_for_alarms(lab, {"budget-exhausted", "signin-failures-user"})
    }
    done["05-instructor"] = run_notebook(lab, "ines", "05")
    done["05-admin"] = run_notebook(lab, "admin", "05")
    return done


# -- what the runs show ---------------------------------------------------------------------------

LABS = ("01", "02", "03", "04", "05-instructor", "05-admin")


@pytest.mark.slow
@pytest.mark.parametrize("lab_name", LABS)
def test_every_cell_runs_without_an_error(
    runs: dict[str, dict[str, CellRun]], lab_name: str
) -> None:
    failed = {
        cell_id: [f"{e['ename']}: {e['evalue']}" for e in run.errors]
        for cell_id, run in runs[lab_name].items()
        if run.status != "ok" or run.errors
    }
    assert failed == {}


def _generated_pii() -> dict[str, set[str]]:
    """The raw values the notebooks generate, regenerated here from their own cells."""
    values: dict[str, set[str]] = {"name": set(), "email": set(), "ssn": set(), "phone": set()}
    cells = {c.id: c.source for stem in ("01", "03") for c in read_notebook(_notebook(stem)).cells}
    import pandas

    welcome: dict[str, Any] = {"pd": pandas}  # imported by an earlier cell of lab 1
    exec(cells["welcome-mask"], welcome)  # noqa: S102 - our own cell
    for column in ("name", "email"):
        values[column] |= set(welcome["person"][column])
    masking: dict[str, Any] = {}
    exec(cells["pii-generate"], masking)  # noqa: S102 - our own cell
    exec(cells["pii-release"], masking)  # noqa: S102 - our own cell
    for column in values:
        values[column] |= set(masking["people"][column])
    values["name"] |= set(masking["public"]["name"])
    patients = generate_patients(ROWS, seed=2026)
    for column in values:
        values[column] |= set(patients[column].to_list())
    return values


@pytest.mark.slow
def test_no_raw_personal_data_reaches_any_output(runs: dict[str, dict[str, CellRun]]) -> None:
    pii = _generated_pii()
    assert all(len(v) > 100 for v in pii.values())
    leaked = {
        (lab_name, cell_id, kind, value)
        for lab_name in LABS
        for cell_id, run in runs[lab_name].items()
        for kind, found in pii.items()
        for value in found
        if value in run.text
    }
    assert leaked == set()


@pytest.mark.slow
def test_masked_values_are_what_the_student_sees(runs: dict[str, dict[str, CellRun]]) -> None:
    masking = runs["03"]
    assert re.search(r"EMAIL_[0-9a-f]{16}", masking["pii-compare"].text), "tokens shown"
    assert "[EMAIL]" in masking["pii-compare"].text, "redaction shown"
    assert "021**" in masking["pii-compare-zips"].text, "generalisation shown"
    [shown] = [m for m in masking["pii-display"].messages if m["msg_type"] == "execute_result"]
    assert shown["metadata"]["jupyter_secure"]["masked"] is True
    assert shown["metadata"]["jupyter_secure"]["role"] == "student"
    assert "555-01" in masking["pii-print"].stream, "print(df) masked: fake phone numbers"


@pytest.mark.slow
def test_the_linkage_attack_works_and_then_fails(runs: dict[str, dict[str, CellRun]]) -> None:
    masking = runs["03"]
    found = re.search(r"re-identified: (\d+) people", masking["pii-attack"].stream)
    assert found
    assert int(found.group(1)) > 100
    assert "re-identified after generalisation: 0 people" in masking["pii-attack-fails"].stream
    smallest = re.search(r"candidate records for any public name: (\d+)", masking[
        "pii-attack-fails"].stream)  # fmt: skip
    assert smallest
    assert int(smallest.group(1)) >= 5


@pytest.mark.slow
def test_the_privacy_lab_spends_the_budget_and_meets_the_refusal(
    lab: Lab, runs: dict[str, dict[str, CellRun]]
) -> None:
    refusal = runs["02"]["dp-refusal"]
    assert "refusal" in refusal.tags
    assert refusal.stream.startswith("Refused (BudgetExceeded): needs ρ=0.01")
    assert "ρ=0 left on 'patients'" in refusal.stream
    r = lab.cli("budget", "show", "--user", "sam", "--json")
    assert r.returncode == 0, r.stderr
    assert '"spent": "0.5"' in r.stdout, r.stdout
    assert '"remaining": "0"' in r.stdout, r.stdout


@pytest.mark.slow
def test_the_access_control_lab_is_refused_where_it_should_be(
    runs: dict[str, dict[str, CellRun]],
) -> None:
    acl = runs["04"]
    assert acl["acl-state"].stream.count("REFUSED") == 4
    assert "allowed" not in acl["acl-state"].stream
    assert acl["acl-others"].stream.count("REFUSED") == 4
    assert "environment? False" in acl["acl-others"].stream
    assert acl["acl-allowed"].stream.count("allowed") == 3
    dataset = acl["acl-dataset"].stream
    assert "REFUSED  open a data set not granted to me: DatasetNotFound" in dataset
    scope = acl["acl-scope"].stream
    assert "allowed  read the audit records about me" in scope
    assert "REFUSED  read dana's audit records: TrailRefused" in scope
    assert "REFUSED  read the alarms: TrailRefused: sam does not hold secure:alarms:read" in scope


@pytest.mark.slow
def test_the_audit_lab_shows_records_to_the_instructor_and_everything_to_admin(
    runs: dict[str, dict[str, CellRun]],
) -> None:
    ines, admin = runs["05-instructor"], runs["05-admin"]
    count = re.search(r"(\d+) records in the last 24 hours", ines["audit-records"].stream)
    assert count
    assert int(count.group(1)) > 0
    assert "cells run by sam" in ines["audit-cells"].stream
    assert not ines["audit-cells"].stream.startswith("0 ")
    assert "does not hold secure:audit:admin" in ines["audit-verify"].stream
    assert "does not hold secure:alarms:read" in ines["audit-alarms"].stream
    assert "BudgetExceeded" in ines["audit-dp"].text, "sam's refusals, seen by sam's instructor"
    assert "intact: True" in admin["audit-verify"].stream
    assert "budget-exhausted" in admin["audit-alarms"].text


@pytest.mark.slow
def test_the_harmless_alarms_were_raised(runs: dict[str, dict[str, CellRun]]) -> None:
    assert set(runs["alarms-raised"]) == {"budget-exhausted", "signin-failures-user"}


def test_the_demo_has_an_instructor_for_the_class() -> None:
    assert DEMO_USERS["ines"] == (("instructor",), ("class-2026",))
