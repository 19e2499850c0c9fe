"""The admin panel's REST routes on a real server, mostly from the attacker's side.

A student walks every admin route; a browser POST without its XSRF header; an
API token that tries a step-up action; a session whose second factor went
stale; an instructor reaching past their own group; unknown names and bad
parameters. Then the happy path of every route, with the audit records the
command line would have written.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import PASSWORD
from privacy_specs import GOOD

from jupyter_secure._version import __version__
from jupyter_secure.audit.logger import Identity
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.privacy.broker import Broker

pytestmark = pytest.mark.timeout(180)
ROOT = Identity("OSUser", "root")
ADMIN_ROUTES = [
    ("GET", "secure/api/admin/users"),
    ("POST", "secure/api/admin/users/bo/lock"),
    ("GET", "secure/api/admin/budgets"),
    ("POST", "secure/api/admin/budgets"),
    ("GET", "secure/api/audit"),
    ("GET", "secure/api/audit/verify"),
    ("GET", "secure/api/admin/access-review"),
]


def add(server: Any, name: str, role: str, *groups: str) -> None:
    with server.state.db.write() as s:
        UserDirectory().add(s, name, roles=(role,), groups=groups, password=PASSWORD)


@pytest.fixture
def people(server: Any) -> Any:
    """root (admin), ida (instructor of c1), sam (student in c1), bo (student in c2),
    audrey (auditor)."""
    add(server, "root", "admin")
    add(server, "ida", "instructor", "c1")
    add(server, "sam", "student", "c1")
    add(server, "bo", "student", "c2")
    add(server, "audrey", "auditor")
    return server


@pytest.fixture
def broker(people: Any, tmp_path: Path) -> Broker:
    """The server's own broker, as SecureApp builds it where Landlock is available (this
    machine may have none), with a dataset to manage."""
    state = people.state
    found = people.ext.broker
    if found is None:
        found = Broker(state.db, state.state_dir / "private", state.audit)
        people.ext.broker = found
    n = 400
    pl.DataFrame(
        {
            "patient_id": list(range(n)),
            "age": [float(20 + i % 60) for i in range(n)],
            "charges": [float(i % 9) * 100 for i in range(n)],
            "sex": ["F" if i % 2 else "M" for i in range(n)],
        }
    ).write_csv(tmp_path / "patients.csv")
    found.add_dataset(GOOD, tmp_path / "patients.csv", ROOT)
    return found


def body(r: Any) -> Any:
    return json.loads(r.body)


async def settled(server: Any, event: str, count: int, timeout: float = 20.0) -> list[Any]:
    """The records of ``event`` once there are ``count`` (denials are written after the
    response, when the request is logged)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = server.events(event)
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_a_student_is_refused_every_admin_route_and_each_is_recorded(people: Any) -> None:
    sam = await people.sign_in("sam")
    for method, path in ADMIN_ROUTES:
        r = await sam.fetch(method, path, json_body={} if method == "POST" else None)
        assert r.code == 403, (method, path, r.body)
        assert "not allowed" in body(r)["error"]  # the contract's error shape
    denied = await settled(people, "AccessDenied", len(ADMIN_ROUTES))
    mine = [e for e in denied if e["userIdentity"]["name"] == "sam"]
    assert len(mine) == len(ADMIN_ROUTES)
    scopes = {e["requestParameters"]["scope"] for e in mine}
    assert scopes == {
        "secure:users:admin",
        "secure:budgets:admin",
        "secure:audit:read",
        "secure:audit:admin",
    }
    # Their own budgets are theirs to read (503 where this server runs no broker).
    assert (await sam.get("secure/api/budgets")).code in (200, 503)


async def test_a_method_a_route_does_not_list_is_refused_even_for_an_admin(people: Any) -> None:
    root = await people.sign_in("root")
    assert (await root.get("secure/api/admin/users/bo/lock")).code == 403
    assert (await root.fetch("DELETE", "secure/api/admin/users")).code == 403
    assert (await root.post("secure/api/audit", json_body={})).code == 403
    denied = await settled(people, "AccessDenied", 3)
    assert all("default deny: no scope for" in e["responseElements"]["rule"] for e in denied)


async def test_a_post_without_its_xsrf_header_changes_nothing(people: Any) -> None:
    root = await people.sign_in("root")
    r = await root.post(
        "secure/api/admin/users/bo/disable", json_body={}, headers={"X-XSRFToken": ""}
    )
    assert r.code == 403
    assert not people.events("UserDisabled")
    users = {u["name"]: u for u in body(await root.get("secure/api/admin/users"))["users"]}
    assert users["bo"]["disabled"] is False


async def test_an_api_token_reads_but_cannot_step_up(people: Any) -> None:
    root = await people.sign_in("root")
    r = await root.post(
        "secure/api/tokens", json_body={"name": "panel", "scopes": ["secure:users:admin"]}
    )
    assert r.code == 201, r.body
    token = {"Authorization": f"token {body(r)['token']}"}
    api = people.browser()
    assert (await api.get("secure/api/admin/users", headers=token)).code == 200
    r = await api.post("secure/api/admin/users/bo/lock", json_body={}, headers=token)
    assert r.code == 403
    assert "signed-in session" in body(r)["error"]
    assert not people.events("UserLocked")
    # The token holds nothing else, whatever its owner holds.
    assert (await api.get("secure/api/audit", headers=token)).code == 403


async def test_a_stale_second_factor_gets_reauth_then_the_retry_works(people: Any) -> None:
    root = await people.sign_in("root")
    people.clock.advance(301)
    r = await root.post("secure/api/admin/users/bo/lock", json_body={"reason": "probing"})
    assert r.code == 403
    refused = body(r)
    assert refused["error"] == "step-up required"
    assert refused["reauth"].endswith("/secure/api/reauth")
    assert refused["maxAgeSeconds"] == 300
    assert not people.events("UserLocked")
    people.clock.advance(30)
    assert (
        await root.post("secure/api/reauth", json_body={"otp": people.code("root")})
    ).code == 200
    r = await root.post("secure/api/admin/users/bo/lock", json_body={"reason": "probing"})
    assert r.code == 200, r.body
    assert body(r)["locked"] is True
    locked = people.events("UserLocked")[-1]
    assert locked["userIdentity"]["name"] == "root"
    assert locked["requestParameters"] == {"name": "bo", "reason": "probing"}


async def test_unknown_users_and_actions_are_named_and_nothing_changes(people: Any) -> None:
    root = await people.sign_in("root")
    before = len(people.events())
    r = await root.post("secure/api/admin/users/nobody/disable", json_body={})
    assert (r.code, body(r)["field"]) == (404, "name")
    r = await root.post("secure/api/admin/users/bo/delete", json_body={})
    assert (r.code, body(r)["field"]) == (400, "action")
    r = await root.post("secure/api/admin/users/bo/lock", json_body={"reason": 5})
    assert (r.code, body(r)["field"]) == (400, "reason")
    r = await root.post("secure/api/admin/users/bo/lock", json_body={"why": "x"})
    assert (r.code, body(r)["field"]) == (400, "why")
    r = await root.post("secure/api/admin/users/root/disable", json_body={})
    assert (r.code, body(r)["field"]) == (400, "name")
    # A query parameter on a POST is refused by name, not ignored.
    r = await root.post("secure/api/admin/users/bo/disable?force=1", json_body={})
    assert (r.code, body(r)["field"]) == (400, "force")
    changes = {"UserLocked", "UserDisabled", "UserEnabled", "MfaReset", "UserUnlocked"}
    assert not [e for e in people.events()[before:] if e["eventName"] in changes]


async def test_account_actions_write_the_cli_records_and_disabling_stops_the_kernel(
    people: Any,
) -> None:
    from handlers.test_kernel_guard import open_notebook

    _, kernel_id, _client = await open_notebook(people, "sam")
    km = people.app.kernel_manager
    assert kernel_id in km.list_kernel_ids()
    root = await people.sign_in("root")
    listed = body(await root.get("secure/api/admin/users"))["users"]
    sam = next(u for u in listed if u["name"] == "sam")
    assert sam == {
        **sam,
        "roles": ["student"],
        "groups": ["c1"],
        "disabled": False,
        "locked": False,
        "lockedUntil": None,
        "mfaEnrolled": True,
        "service": False,
    }
    assert sam["lastSignIn"] is not None
    assert people.events("UsersListed")[-1]["requestParameters"] == {"format": "json"}

    r = await root.post("secure/api/admin/users/sam/disable", json_body={"reason": "left"})
    assert r.code == 200, r.body
    assert body(r)["disabled"] is True
    disabled = people.events("UserDisabled")[-1]
    assert disabled["userIdentity"]["name"] == "root"
    assert disabled["requestParameters"] == {"name": "sam", "reason": "left"}
    assert disabled["responseElements"]["sessionsEnded"] == 1
    # The session enforcer shuts the kernel down at its next tick, as after the CLI.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while kernel_id in km.list_kernel_ids():
        assert loop.time() < deadline, "the disabled user's kernel kept running"
        await asyncio.sleep(0.2)

    r = await root.post("secure/api/admin/users/sam/enable", json_body={})
    assert (r.code, body(r)["disabled"]) == (200, False)
    r = await root.post("secure/api/admin/users/bo/mfa-reset", json_body={"reason": "phone"})
    assert (r.code, body(r)["mfaEnrolled"]) == (200, False)
    assert people.events("MfaReset")[-1]["requestParameters"] == {"name": "bo", "reason": "phone"}
    r = await root.post("secure/api/admin/users/bo/lock", json_body={})
    assert body(r)["locked"] is True
    assert body(r)["lockedUntil"] is not None
    r = await root.post("secure/api/admin/users/bo/unlock", json_body={})
    assert (r.code, body(r)["locked"]) == (200, False)


async def test_an_instructor_manages_only_their_group(people: Any, broker: Broker) -> None:
    root = await people.sign_in("root")
    r = await root.post(
        "secure/api/admin/budgets",
        json_body={"action": "grant", "dataset": "patients", "group": "c1", "budget": "0.5"},
    )
    assert r.code == 200, r.body
    assert body(r)["grants"] == [{"kind": "group", "principal": "c1", "budget": "0.5"}]
    r = await root.post(
        "secure/api/admin/budgets",
        json_body={"action": "grant", "dataset": "patients", "group": "c2"},
    )
    assert r.code == 200, r.body  # the spec's per-user budget

    ida = await people.sign_in("ida")
    listing = body(await ida.get("secure/api/admin/budgets"))["datasets"]
    entry = listing[0]
    assert entry["name"] == "patients"
    assert entry["grants"] == [{"kind": "group", "principal": "c1", "budget": "0.5"}]
    assert entry["users"] == [{"user": "sam", "budget": "0.5", "spent": "0", "remaining": "0.5"}]

    shown = broker.show("patients")
    for attempt, field in (
        ({"action": "set", "dataset": "patients", "user": "bo", "budget": "9"}, "user"),
        ({"action": "reset", "dataset": "patients", "user": "bo"}, "user"),
        ({"action": "grant", "dataset": "patients", "group": "c2", "budget": "9"}, "group"),
        ({"action": "set", "dataset": "patients", "user": "ida", "budget": "9"}, "user"),
    ):
        r = await ida.post("secure/api/admin/budgets", json_body=attempt)
        assert (r.code, body(r)["field"]) == (403, field), (attempt, r.body)
    assert broker.show("patients") == shown
    denied = await settled(people, "AccessDenied", 4)
    assert len([e for e in denied if e["userIdentity"]["name"] == "ida"]) == 4

    r = await ida.post(
        "secure/api/admin/budgets",
        json_body={"action": "set", "dataset": "patients", "user": "sam", "budget": "0.2"},
    )
    assert r.code == 200, r.body
    assert body(r)["users"] == [{"user": "sam", "budget": "0.2", "spent": "0", "remaining": "0.2"}]
    change = people.events("BudgetChanged")[-1]
    assert change["userIdentity"]["name"] == "ida"
    assert change["requestParameters"]["principal"] == "sam"
    assert (
        await ida.post(
            "secure/api/admin/budgets",
            json_body={"action": "reset", "dataset": "patients", "user": "sam"},
        )
    ).code == 200
    assert people.events("BudgetChanged")[-1]["requestParameters"]["action"] == "reset"


async def test_budget_changes_refuse_bad_input_by_field(people: Any, broker: Broker) -> None:
    root = await people.sign_in("root")
    shown = broker.show("patients")
    for attempt, status, field in (
        ({"action": "nuke", "dataset": "patients"}, 400, "action"),
        ({"action": "grant", "dataset": "nope", "group": "c1"}, 404, "dataset"),
        ({"action": "set", "dataset": "patients", "user": "ghost", "budget": "1"}, 404, "user"),
        ({"action": "set", "dataset": "patients", "user": "sam", "budget": "abc"}, 400, "budget"),
        ({"action": "set", "dataset": "patients", "user": "sam", "budget": 0.1}, 400, "budget"),
        ({"action": "set", "dataset": "patients", "user": "sam"}, 400, "budget"),
        ({"action": "grant", "dataset": "patients", "group": "c1", "user": "sam"}, 400, "group"),
        ({"action": "reset", "dataset": "patients", "user": "sam", "budget": "1"}, 400, "budget"),
        ({"action": "grant", "dataset": "patients", "group": "Bad Name!"}, 400, "group"),
    ):
        r = await root.post("secure/api/admin/budgets", json_body=attempt)
        assert (r.code, body(r).get("field")) == (status, field), (attempt, r.body)
    r = await root.post(
        "secure/api/admin/budgets?user=bo",
        json_body={"action": "reset", "dataset": "patients", "user": "sam"},
    )
    assert (r.code, body(r).get("field")) == (400, "user"), r.body
    assert broker.show("patients") == shown
    assert not people.events("BudgetChanged")[1:]  # only the fixture's dataset add


async def test_my_budgets_show_spend_history_and_recent_charges(
    people: Any, broker: Broker
) -> None:
    broker.grant("patients", "group", "c1", "0.5", ROOT)
    asker = broker.asker("sam")
    broker.query(asker, "patients", {"kind": "count", "rho": "0.05"})
    broker.query(
        asker,
        "patients",
        {
            "kind": "mean",
            "column": "age",
            "rho": "0.1",
            "filters": [{"column": "sex", "op": "==", "value": "F"}],
        },
    )
    sam = await people.sign_in("sam")
    r = await sam.get("secure/api/budgets")
    assert r.code == 200, r.body
    (mine,) = body(r)["datasets"]
    assert (mine["name"], mine["measure"]) == ("patients", "rho")
    assert (mine["budget"], mine["spent"], mine["remaining"]) == ("0.5", "0.15", "0.35")
    assert [p["spent"] for p in mine["history"]] == ["0.05", "0.15"]
    newest, oldest = mine["recent"]
    assert newest["query"] == "mean(age) where sex = F"
    assert newest["cost"] == "0.1"
    assert newest["status"] == "released"
    assert newest["ci"]["level"] == 0.95
    assert newest["ci"]["low"] < newest["ci"]["high"]
    assert oldest["query"] == "count"
    # Someone else's name in the URL changes nothing: there is no parameter for it.
    r = await sam.get("secure/api/budgets?user=bo")
    assert (r.code, body(r)["field"]) == (400, "user")
    bo = await people.sign_in("bo")
    assert body(await bo.get("secure/api/budgets"))["datasets"] == []


async def test_audit_reads_follow_the_group_rule(people: Any) -> None:
    await people.sign_in("bo")  # records about bo, whom ida may not read about
    await people.sign_in("sam")
    ida = await people.sign_in("ida")
    r = await ida.get("secure/api/audit?limit=500")
    assert r.code == 200, r.body
    records = body(r)["records"]
    assert records
    assert [x["seq"] for x in records] == sorted((x["seq"] for x in records), reverse=True)
    about = {x["user"] for x in records} | {
        res["name"] for x in records for res in x["resources"] if res["type"] == "user"
    }
    assert "sam" in about
    assert not about - {"ida", "sam"}, about
    r = await ida.get("secure/api/audit?user=bo")
    assert (r.code, body(r)["field"]) == (403, "user")
    denied = await settled(people, "AccessDenied", 1)
    assert denied[-1]["userIdentity"]["name"] == "ida"
    queried = people.events("AuditQueried")[-1]
    assert queried["requestParameters"]["format"] == "api"

    audrey = await people.sign_in("audrey")
    r = await audrey.get("secure/api/audit?user=bo&event=Login")
    assert r.code == 200
    assert {x["user"] for x in body(r)["records"]} == {"bo"}
    page = body(await audrey.get("secure/api/audit?limit=2"))
    assert len(page["records"]) == 2
    assert page["next"] == page["records"][-1]["seq"]
    older = body(await audrey.get(f"secure/api/audit?limit=2&before={page['next']}"))
    assert older["records"][0]["seq"] < page["next"]
    for query, field in (
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("since=garbage", "since"),
        ("until=yesterday", "until"),
        ("event=Nope", "event"),
        ("before=-3", "before"),
        ("colour=red", "colour"),
    ):
        r = await audrey.get(f"secure/api/audit?{query}")
        assert (r.code, body(r)["field"]) == (400, field), query
    since = body(await audrey.get("secure/api/audit?since=1h&limit=500"))["records"]
    assert since  # durations count back from now


async def test_verify_review_and_me(people: Any) -> None:
    ida = await people.sign_in("ida")
    assert (await ida.get("secure/api/audit/verify")).code == 403
    root = await people.sign_in("root")
    r = await root.get("secure/api/audit/verify")
    assert r.code == 200, r.body
    report = body(r)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["records"] > 0
    assert report["checkpoints"] > 0
    assert report["lastCheckpoint"]
    assert report["checkedAt"]
    assert people.events("AuditVerified")[-1]["userIdentity"]["name"] == "root"

    r = await root.get("secure/api/admin/access-review?staleDays=30")
    assert r.code == 200, r.body
    review = body(r)
    assert review["summary"]["accounts"] == 7
    assert review["summary"]["admins"] == 1
    row = next(x for x in review["rows"] if x["user"] == "root")
    assert "admin" in row["findings"]
    assert row["lastSignIn"]
    assert people.events("AccessReviewed")[-1]["requestParameters"] == {
        "staleDays": 30,
        "format": "json",
    }
    r = await root.get("secure/api/admin/access-review?staleDays=0")
    assert (r.code, body(r)["field"]) == (400, "staleDays")

    me = body(await root.get("secure/api/me"))
    assert me["version"] == __version__
    assert me["session"]["idleTimeoutSeconds"] == 1800
    assert me["session"]["expiresAt"] == pytest.approx(people.clock.now + 8 * 3600, abs=120)


async def test_an_instructor_cannot_raise_their_own_budget_through_their_group(
    people: Any, broker: Broker
) -> None:
    """ida is in c1, the group she manages: a bigger grant to c1 would reach her too."""
    broker.grant("patients", "group", "c1", "0.5", ROOT)
    ida = await people.sign_in("ida")
    shown = broker.show("patients")
    for budget in ("9", None):  # a raise, and a first grant at the spec's default
        attempt = {"action": "grant", "dataset": "patients", "group": "c1", "budget": budget}
        if budget is None:
            broker.revoke("patients", "group", "c1", ROOT)
            shown = broker.show("patients")
            del attempt["budget"]
        r = await ida.post("secure/api/admin/budgets", json_body=attempt)
        assert (r.code, body(r)["field"]) == (403, "group"), r.body
        assert "your own budget" in body(r)["error"]
        assert broker.show("patients") == shown
    denied = await settled(people, "AccessDenied", 2)
    assert [e["requestParameters"]["object"] for e in denied[-2:]] == ["group:c1"] * 2

    broker.grant("patients", "group", "c1", "0.5", ROOT)
    # Lowering her group's grant raises nobody.
    r = await ida.post(
        "secure/api/admin/budgets",
        json_body={"action": "grant", "dataset": "patients", "group": "c1", "budget": "0.3"},
    )
    assert r.code == 200, r.body
    # With her own budget set by an administrator, her group's no longer reaches her.
    broker.set_budget("patients", "ida", "0.1", ROOT)
    r = await ida.post(
        "secure/api/admin/budgets",
        json_body={"action": "grant", "dataset": "patients", "group": "c1", "budget": "0.9"},
    )
    assert r.code == 200, r.body
    assert broker.describe(broker.asker("ida"), "patients")["budget"]["total"] == "0.1"
    assert people.events("BudgetChanged")[-1]["userIdentity"]["name"] == "ida"


async def test_a_shared_group_does_not_show_what_a_member_did_to_others(
    people: Any, broker: Broker
) -> None:
    """rita (an admin) and ian (an instructor of c1 and c2) are in ida's group c1: what
    they do to bo, outside it, is about bo, and ida may not read about bo."""
    add(people, "rita", "admin", "c1")
    add(people, "ian", "instructor", "c1", "c2")
    rita = await people.sign_in("rita")
    r = await rita.post("secure/api/admin/users/bo/lock", json_body={"reason": "exam"})
    assert r.code == 200, r.body
    r = await rita.post("secure/api/admin/users/sam/lock", json_body={"reason": "exam"})
    assert r.code == 200, r.body
    broker.grant("patients", "group", "c2", "0.5", ROOT)
    broker.set_budget("patients", "bo", "0.05", Identity("User", "ian", ("instructor",)))
    broker.reset("patients", "bo", Identity("User", "ian", ("instructor",)))

    ida = await people.sign_in("ida")
    r = await ida.get("secure/api/audit?limit=500")
    assert r.code == 200, r.body
    records = body(r)["records"]
    named = {res["name"] for x in records for res in x["resources"] if res["type"] == "user"}
    assert "bo" not in named, [x for x in records if "bo" in json.dumps(x)]
    assert not [x for x in records if x["event"] == "BudgetChanged"]
    # What rita did to sam, a member, is still there; so is what rita did herself.
    assert [x["request"] for x in records if x["event"] == "UserLocked"] == [
        {"name": "sam", "reason": "exam"}
    ]
    assert any(x["user"] == "rita" and x["event"] == "Login" for x in records)
    # Paging goes through the same rule.
    seen = []
    page = body(await ida.get("secure/api/audit?limit=3"))
    while True:
        seen += page["records"]
        if page["next"] is None:
            break
        page = body(await ida.get(f"secure/api/audit?limit=3&before={page['next']}"))
    assert "bo" not in json.dumps([x["resources"] for x in seen])
    # The auditor sees the budget change about bo, naming him.
    audrey = await people.sign_in("audrey")
    changes = body(await audrey.get("secure/api/audit?event=BudgetChanged&user=ian"))["records"]
    assert {"type": "user", "name": "bo"} in changes[0]["resources"]


async def test_a_burst_of_verify_calls_reads_the_trail_once(
    people: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each verification reads the whole trail: a burst (or a loop) must not queue one
    full read per call, yet every call is recorded."""
    from jupyter_secure.handlers import admin

    runs: list[int] = []
    real = admin.verify_now

    def counted(state: Any) -> Any:
        runs.append(1)
        return real(state)

    monkeypatch.setattr(admin, "verify_now", counted)
    root = await people.sign_in("root")
    replies = await asyncio.gather(*(root.get("secure/api/audit/verify") for _ in range(6)))
    assert [r.code for r in replies] == [200] * 6
    again = await root.get("secure/api/audit/verify")  # right after: the same report
    assert len(runs) <= 2, len(runs)  # one run, or one that began before a caller asked
    assert body(again)["checkedAt"] == body(replies[-1])["checkedAt"]
    assert len(await settled(people, "AuditVerified", 7)) == 7
    # Past the window (both its parts: a loaded machine makes a run slow, and four times
    # a slow run's length is a window too).
    monkeypatch.setattr(admin, "VERIFY_REUSE_SECONDS", 0.0)
    monkeypatch.setattr(admin, "VERIFY_REUSE_FACTOR", 0.0)
    before = len(runs)
    assert (await root.get("secure/api/audit/verify")).code == 200
    assert len(runs) == before + 1  # past the window: verified afresh
