"""``jupyter_secure.trail`` from real guarded kernels, and its server routes from outside.

A student's notebook reads only the student's own records and is told which
scope it lacks for the rest; a forged, foreign-signed or restarted kernel's
token is refused; an admin's notebook verifies the trail and reads everyone's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from handlers.test_admin_api import add, body, settled
from handlers.test_kernel_guard import open_notebook
from helpers import PASSWORD

from jupyter_secure.privacy.tokens import TokenSigner

pytestmark = pytest.mark.timeout(240)

READ = """
import json
from jupyter_secure import trail
def attempt(fn, *args, **kw):
    try:
        out = fn(*args, **kw)
    except trail.TrailError as e:
        return {"refused": type(e).__name__, "scope": getattr(e, "scope", None),
                "field": getattr(e, "field", None), "status": e.status}
    return out
"""


async def last_json(client: Any, code: str) -> Any:
    got = await client.run(code)
    errors = [m for m in got if m["msg_type"] == "error"]
    assert not errors, errors[0]["content"]
    out = "".join(m["content"]["text"] for m in got if m["msg_type"] == "stream")
    return json.loads(out.strip().splitlines()[-1])


async def test_a_students_notebook_reads_only_the_students_records(server: Any) -> None:
    add(server, "sam", "student", "c1")
    add(server, "bo", "student", "c2")
    await server.sign_in("bo")  # records about bo exist
    _, kernel_id, client = await open_notebook(server, "sam")
    await client.run(READ)
    seen = await last_json(
        client,
        "df = trail.records(since=None, limit=1000)\n"
        "print(json.dumps({'n': len(df), 'users': sorted(set(df.user)),"
        " 'named': sorted({r['name'] for rs in df.resources for r in rs if r['type'] == 'user'}),"
        " 'tz': str(df.time.dt.tz), 'newest_first': bool(df.seq.is_monotonic_decreasing)}))",
    )
    assert seen["n"] > 0
    assert set(seen["users"]) <= {"sam"}, seen
    assert "bo" not in seen["named"]
    assert seen["tz"] == "UTC"
    assert seen["newest_first"] is True
    refusals = await last_json(
        client,
        "print(json.dumps([attempt(trail.verify), attempt(trail.alarms),"
        " attempt(trail.records, user='bo'), attempt(trail.records, since='garbage'),"
        " attempt(trail.records, limit=0)]))",
    )
    verify, alarms, other, garbage, zero = refusals
    assert verify == {
        "refused": "TrailRefused",
        "scope": "secure:audit:admin",
        "field": None,
        "status": 403,
    }
    assert alarms["scope"] == "secure:alarms:read"
    assert (other["refused"], other["scope"]) == ("TrailRefused", "secure:audit:admin")
    assert (garbage["refused"], garbage["field"], garbage["status"]) == (
        "TrailInvalid",
        "since",
        400,
    )
    assert (zero["refused"], zero["field"]) == ("TrailInvalid", "limit")
    queried = [
        e for e in server.events("AuditQueried") if e["requestParameters"]["format"] == "kernel"
    ]
    assert queried
    assert queried[0]["userIdentity"]["name"] == "sam"
    assert {"type": "kernel", "name": kernel_id} in queried[0]["resources"]
    denied = await settled(server, "AccessDenied", 3)
    assert len([e for e in denied if e["userIdentity"]["name"] == "sam"]) >= 3


async def test_forged_foreign_and_stale_tokens_are_refused(server: Any) -> None:
    add(server, "sam", "student", "c1")
    b, kernel_id, client = await open_notebook(server, "sam")
    token = await last_json(
        client,
        "from jupyter_secure.kernel.session import current\n"
        "import json; print(json.dumps([current().token, current().trail_url]))",
    )
    real, url = token
    assert url.endswith("/secure/api/trail")
    outsider = server.browser()
    path = "secure/api/trail/records"
    assert (await outsider.get(path, headers={"Authorization": f"KernelToken {real}"})).code == 200
    # No token at all (a browser with a session cookie is no kernel): 401.
    assert (await b.get(path)).code == 401
    # A token in the right format signed by another key, and a mangled one: 403.
    foreign = TokenSigner(bytes(range(32))).issue(kernel_id, "sam", ("c1",), 3600)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for bad in (foreign, forged, "jsb1.e30.e30"):
        r = await outsider.get(path, headers={"Authorization": f"KernelToken {bad}"})
        assert r.code == 403, bad
    # A restart issues a new token; the old one dies with the old process.
    r = await b.post(f"api/kernels/{kernel_id}/restart")
    assert r.code == 200, r.body
    r = await outsider.get(path, headers={"Authorization": f"KernelToken {real}"})
    assert r.code == 403
    assert "forged, expired" in body(r)["error"]
    denied = await settled(server, "AccessDenied", 5)  # no token, three bad ones, the stale one
    rules = [e["responseElements"]["rule"] for e in denied]
    assert rules.count("trail: kernel token refused") >= 4
    assert "trail: no kernel token" in rules


async def test_an_admins_notebook_verifies_and_reads_everyone(server: Any) -> None:
    add(server, "root", "admin")
    add(server, "bo", "student", "c2")
    await server.sign_in("bo")
    _, _, client = await open_notebook(server, "root")
    await client.run(READ)
    out = await last_json(
        client,
        "v = trail.verify()\n"
        "bo = trail.records(user='bo', event='Login', since='1h')\n"
        "a = trail.alarms()\n"
        "print(json.dumps({'ok': v['ok'], 'records': v['records'], 'bo': sorted(set(bo.user)),"
        " 'alarms': len(a)}))",
    )
    assert out["ok"] is True
    assert out["records"] > 0
    assert out["bo"] == ["bo"]
    assert server.events("AuditVerified")[-1]["userIdentity"]["name"] == "root"
    assert PASSWORD not in json.dumps(server.events())
