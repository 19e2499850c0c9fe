"""Private queries end to end: a real server, real guarded kernels, the broker's HTTP API.

Attacks from the notebook's side: a forged user in the body, a missing or
stolen-from-nowhere token, a browser cookie instead of a kernel token, reading
the protected Parquet or the ledger from inside the kernel, and a restart or a
new notebook to get a fresh budget.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from handlers.test_kernel_guard import open_notebook, text_of
from helpers import wait_for
from privacy_specs import GOOD
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from jupyter_secure.audit.logger import Identity
from jupyter_secure.channel.guard import landlock_abi

pytestmark = [
    pytest.mark.timeout(240),
    # The server's own broker runs only where kernels are sandboxed (see
    # test_no_sandbox_no_broker.py for the other case).
    pytest.mark.skipif(landlock_abi() == 0, reason="needs Landlock"),
]
ADMIN = Identity("OSUser", "root")

ASK = """
import json, urllib.request, urllib.error
from jupyter_secure.kernel.session import current
def ask(path, body=None):
    s = current()
    req = urllib.request.Request(s.broker_url + path, method="POST" if body else "GET",
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": "KernelToken " + s.token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
"""


@pytest.fixture
def patients(server: Any, tmp_path: Path) -> Any:
    n = 600
    pl.DataFrame(
        {
            "patient_id": list(range(n)),
            "age": [float(20 + i % 60) for i in range(n)],
            "charges": [float(i % 9) * 100 for i in range(n)],
            "sex": ["F" if i % 2 else "M" for i in range(n)],
        }
    ).write_csv(tmp_path / "patients.csv")
    broker = server.ext.broker
    broker.add_dataset(GOOD, tmp_path / "patients.csv", ADMIN)
    broker.grant("patients", "user", "alice", "0.5", ADMIN)
    return broker


def last_json(messages: list[dict[str, Any]]) -> Any:
    out = [m["content"]["text"] for m in messages if m["msg_type"] == "stream"]
    assert out, text_of(messages)[:2000]
    return json.loads(out[-1].strip().splitlines()[-1])


async def run_json(client: Any, code: str) -> Any:
    got = await client.run(code)
    errors = [m for m in got if m["msg_type"] == "error"]
    assert not errors, errors[0]["content"]
    return last_json(got)


def remaining(broker: Any, user: str = "alice") -> str:
    return str(broker.describe(broker.asker(user), "patients")["budget"]["remaining"])


async def test_a_notebook_queries_and_its_budget_survives_restarts(
    server: Any, patients: Any
) -> None:
    b, kernel_id, client = await open_notebook(server, "alice")
    await client.run(ASK)
    status, listing = await run_json(client, "print(json.dumps(ask('/datasets')))")
    assert status == 200
    assert [d["name"] for d in listing["datasets"]] == ["patients"]
    assert listing["datasets"][0]["columns"]["sex"]["categories"] == ["F", "M"]
    first = "{'query': {'kind': 'count', 'rho': '0.2'}, 'cell_id': 'c1'}"
    status, out = await run_json(
        client, f"print(json.dumps(ask('/datasets/patients/query', {first})))"
    )
    assert status == 200, out
    assert abs(out["value"] - 600) < 60
    assert out["cost"] == "0.2"
    assert out["remaining"] == "0.3"
    assert remaining(patients) == "0.3"
    release = [e for e in server.events("PrivateQuery") if e["errorCode"] is None][-1]
    assert release["userIdentity"]["name"] == "alice"
    assert release["requestParameters"]["kernelId"] == kernel_id
    assert release["requestParameters"]["cellId"] == "c1"

    # A restart, and a second notebook: a fresh kernel, the same budget.
    r = await b.post(f"api/kernels/{kernel_id}/restart")
    assert r.code == 200, r.body
    _, _, other = await open_notebook(server, "alice", notebook="second.ipynb")
    await other.run(ASK)
    status, info = await run_json(other, "print(json.dumps(ask('/datasets/patients')))")
    assert info["budget"]["remaining"] == "0.3"
    status, out = await run_json(other, "print(json.dumps(ask('/datasets/patients/query', "
                                 "{'query': {'kind': 'count', 'rho': '0.4'}})))")  # fmt: skip
    assert status == 409
    assert out["error"] == "BudgetExceeded"
    assert out["message"] == "needs ρ=0.4, you have ρ=0.3 left on 'patients'"
    assert remaining(patients) == "0.3"


async def test_a_forged_user_is_refused_and_nothing_is_charged(server: Any, patients: Any) -> None:
    patients.grant("patients", "user", "bob", "0.5", ADMIN)
    _, _, client = await open_notebook(server, "alice")
    await client.run(ASK)
    forged = ("print(json.dumps(ask('/datasets/patients/query', "
              "{'query': {'kind': 'count', 'rho': '0.1'}, 'user': 'bob'})))")  # fmt: skip
    status, out = await run_json(client, forged)
    assert status == 400
    assert out["message"] == "user: unknown field"
    inner = ("print(json.dumps(ask('/datasets/patients/query', "
             "{'query': {'kind': 'count', 'rho': '0.1', 'user': 'bob'}})))")  # fmt: skip
    status, out = await run_json(client, inner)
    assert status == 400
    assert remaining(patients) == "0.5"
    assert remaining(patients, "bob") == "0.5"


async def test_no_kernel_token_no_answer(server: Any, patients: Any) -> None:
    b = await server.sign_in("alice")  # a browser session is not a kernel's credential
    r = await b.get("secure/api/private/datasets")
    assert r.code == 401
    http = AsyncHTTPClient()
    url = server.base_url + "secure/api/private/datasets/patients/query"
    body = json.dumps({"query": {"kind": "count", "rho": "0.1"}})
    for headers in ({}, {"Authorization": "KernelToken forged"}, {"Authorization": "Bearer x"}):
        r = await http.fetch(HTTPRequest(url, method="POST", body=body, headers=headers,
                                         request_timeout=30), raise_error=False)  # fmt: skip
        assert r.code == 401, headers
    assert remaining(patients) == "0.5"
    # Recorded after the response: wait for it rather than race the audit sink.
    await wait_for(
        lambda: any("no valid kernel token" in json.dumps(e) for e in server.events("AccessDenied"))
    )


async def test_a_dataset_not_granted_looks_like_none(server: Any, patients: Any) -> None:
    _, _, client = await open_notebook(server, "bob")
    await client.run(ASK)
    status, out = await run_json(client, "print(json.dumps(ask('/datasets/patients')))")
    assert status == 404
    status, other = await run_json(client, "print(json.dumps(ask('/datasets/nosuch')))")
    assert status == 404
    assert out["error"] == other["error"] == "NotFound"
    status, listing = await run_json(client, "print(json.dumps(ask('/datasets')))")
    assert listing == {"datasets": []}


async def test_the_kernel_cannot_read_the_data_or_the_ledger(server: Any, patients: Any) -> None:
    state = Path(server.state.state_dir)
    parquet = next((state / "private").glob("*.parquet"))
    _, _, client = await open_notebook(server, "alice")
    code = f"""
import json, sqlite3
out = {{}}
for what, path in (("parquet", {str(parquet)!r}), ("db", {str(state / "state.db")!r})):
    try:
        open(path, "rb").read(16)
        out[what] = "read"
    except OSError as e:
        out[what] = type(e).__name__
try:
    sqlite3.connect("file:" + {str(state / "state.db")!r} + "?mode=ro", uri=True).execute(
        "select * from private_spend").fetchall()
    out["sql"] = "read"
except Exception as e:
    out["sql"] = type(e).__name__
print(json.dumps(out))
"""  # noqa: S608 - a fixed query the kernel tries, not SQL built from input
    out = await run_json(client, code)
    assert out == {"parquet": "PermissionError", "db": "PermissionError",
                   "sql": "OperationalError"}  # fmt: skip


async def test_the_notebook_client_end_to_end(server: Any, patients: Any) -> None:
    """``from jupyter_secure import private`` in a real guarded kernel: preview, run, magic."""
    _, _, client = await open_notebook(server, "alice")
    code = """
import json
from jupyter_secure import private
ds = private.dataset("patients")
p = ds.mean("age", rho="0.1").preview()
r = ds.groupby("sex").count(rho="0.1").run()
frame = r.to_pandas()
print(json.dumps({"preview_cost": str(p.cost), "left": str(ds.budget().remaining),
                  "keys": sorted(frame["sex"]), "cost": str(r.cost),
                  "mock": list(ds.mock(rows=5).columns)}))
"""
    out = await run_json(client, code)
    assert out == {"preview_cost": "0.1", "left": "0.4", "keys": ["F", "M"], "cost": "0.1",
                   "mock": ["age", "charges", "sex"]}  # fmt: skip
    got = await client.run("%privacy_budget")
    assert "patients" in text_of(got)
    assert "0.4" in text_of(got)
    got = await client.run("ds.count(rho='1').run()")
    errors = [m for m in got if m["msg_type"] == "error"]
    assert errors
    assert errors[0]["content"]["ename"] == "BudgetExceeded"
    assert errors[0]["content"]["evalue"] == "needs ρ=1, you have ρ=0.4 left on 'patients'"


async def test_a_token_dies_with_its_kernel(server: Any, patients: Any) -> None:
    """The notebook's own token, taken out of the kernel, works only while the kernel runs."""
    b, kernel_id, client = await open_notebook(server, "alice")
    got = await client.run("from jupyter_secure.kernel.session import current; "
                           "print(current().token)")  # fmt: skip
    token = next(m["content"]["text"] for m in got if m["msg_type"] == "stream").strip()
    url = server.base_url + "secure/api/private/datasets"
    http = AsyncHTTPClient()
    headers = {"Authorization": f"KernelToken {token}"}
    r = await http.fetch(HTTPRequest(url, headers=headers, request_timeout=30), raise_error=False)
    assert r.code == 200
    # Hostile bodies get a 400 that names the problem, never a 500 or a traceback.
    query_url = url + "/patients/query"
    for body in ("[" * 60_000, '{"query": {"kind": "count", "rho": 1e999999}}',
                 '{"query": {"kind": "count", "accuracy": ' + "9" * 500 + "}}",
                 '{"query": {"kind": "sum", "column": ["age"], "rho": "0.1"}}'):  # fmt: skip
        r = await http.fetch(HTTPRequest(query_url, method="POST", body=body, headers=headers,
                                         request_timeout=30), raise_error=False)  # fmt: skip
        assert r.code == 400, (body[:40], r.code, r.body[:200])
        assert b"Traceback" not in r.body
    assert remaining(patients) == "0.5"
    r = await b.post(f"api/kernels/{kernel_id}/restart")  # same kernel id, a new token
    assert r.code == 200
    r = await http.fetch(HTTPRequest(url, headers=headers, request_timeout=30), raise_error=False)
    assert r.code == 401
    r = await b.fetch("DELETE", f"api/kernels/{kernel_id}")
    assert r.code == 204
    r = await http.fetch(HTTPRequest(url, headers=headers, request_timeout=30), raise_error=False)
    assert r.code == 401


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_broker_with_a_store_of_its_own(server: Any, tmp_path: Path) -> None:
    """`jupyter secure broker serve --trust-key`: its own process, data, ledger and trail;
    it believes tokens signed by the server's key and nothing else."""
    import subprocess
    import sys
    import time

    from helpers import cli_env, run_cli

    from jupyter_secure.audit.checkpoints import public_key_pem
    from jupyter_secure.privacy.broker import Broker
    from jupyter_secure.state import SecureState

    home = tmp_path / "broker-state"
    assert run_cli(tmp_path, "init", "--state-dir", str(home)).returncode == 0
    pem = tmp_path / "server.pem"
    pem.write_bytes(public_key_pem(server.state.broker_token_signer().public_key))
    csv = tmp_path / "p.csv"
    pl.DataFrame({"patient_id": list(range(300)), "age": [40.0] * 300,
                  "charges": [1.0] * 300, "sex": ["F"] * 300}).write_csv(csv)  # fmt: skip
    own = SecureState.open(str(home), source="cli", identity=ADMIN, create=False)
    try:
        setup = Broker(own.db, own.state_dir / "private", own.audit)
        setup.add_dataset(GOOD, csv, ADMIN)
        setup.grant("patients", "user", "alice", "0.5", ADMIN)
        foreign = own.broker_token_signer()  # the broker store's own key: not trusted
    finally:
        own.close()

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_secure.cli", "broker", "serve", "--state-dir",
         str(home), "--port", str(port), "--trust-key", str(pem)],
        env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "broker listening" in line, (line, proc.poll())
        assert time.monotonic() < deadline
        _, _, client = await open_notebook(server, "alice")
        got = await client.run("from jupyter_secure.kernel.session import current; "
                               "print(current().token)")  # fmt: skip
        token = next(m["content"]["text"] for m in got if m["msg_type"] == "stream").strip()
        http = AsyncHTTPClient()
        url = f"http://127.0.0.1:{port}/secure/api/private/datasets/patients/query"
        body = json.dumps({"query": {"kind": "count", "rho": "0.2"}})

        async def ask(tok: str) -> Any:
            headers = {"Authorization": f"KernelToken {tok}"}
            req = HTTPRequest(url, method="POST", body=body, headers=headers, request_timeout=30)
            return await http.fetch(req, raise_error=False)

        r = await ask(token)
        if r.code != 200:
            proc.terminate()
            raise AssertionError(proc.communicate(timeout=30)[1][-3000:])  # its stderr
        out = json.loads(r.body)
        assert out["remaining"] == "0.3"
        assert abs(out["value"] - 300) < 40
        forged = foreign.issue("k", "alice", (), 3600)
        assert (await ask(forged)).code == 401
        assert (await ask(token + "x")).code == 401
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # and closes the pipes
    # The release is in the broker's own ledger and trail, not the server's.
    records = [json.loads(x) for f in sorted((home / "audit").glob("segment-*.jsonl"))
               for x in f.read_text().splitlines()]  # fmt: skip
    queries = [r for r in records if r.get("eventName") == "PrivateQuery"]
    assert [q["eventSource"] for q in queries] == ["jupyter-secure.broker"]
    assert queries[0]["userIdentity"]["name"] == "alice"
    assert not server.events("PrivateQuery")


async def test_links_a_kernel_makes_do_not_open_the_server_side(
    server: Any, patients: Any, jp_root_dir: Path
) -> None:
    """The kernel cannot read the data, but it can make a link in its workspace; the
    (unsandboxed) contents API must not follow it to the data, or to bob's home."""
    state = Path(server.state.state_dir)
    parquet = next((state / "private").glob("*.parquet"))
    (jp_root_dir / "home" / "bob").mkdir(parents=True, exist_ok=True)
    (jp_root_dir / "home" / "bob" / "diary.txt").write_text("bob's secret\n")
    b, _, client = await open_notebook(server, "alice")
    code = f"""
import os
os.symlink({str(parquet)!r}, "data.parquet")
os.symlink({str(parquet.parent)!r}, "private")
os.symlink("../bob", "bob")
print("linked")
"""
    got = await client.run(code)
    assert "linked" in text_of(got), text_of(got)[:2000]
    for path in ("home/alice/data.parquet", "home/alice/private",
                 f"home/alice/private/{parquet.name}", "home/alice/bob/diary.txt"):  # fmt: skip
        r = await b.get(f"api/contents/{path}?content=1")
        assert r.code == 404, (path, r.code, r.body[:200])
        assert b"PAR1" not in r.body
        assert b"secret" not in r.body
    r = await b.fetch("PUT", "api/contents/home/alice/bob/planted.txt",
                      json_body={"type": "file", "format": "text", "content": "x"})  # fmt: skip
    assert r.code == 404
    assert not (jp_root_dir / "home" / "bob" / "planted.txt").exists()
    r = await b.get("api/contents/home/alice")  # the listing still works, without the links
    assert r.code == 200
    names = {e["name"] for e in json.loads(r.body)["content"]}
    assert not names & {"data.parquet", "private", "bob"}
