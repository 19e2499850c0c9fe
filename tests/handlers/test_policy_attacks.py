"""Regressions from an attacker's-side review of the role checks: each was a way round them.

Every test here failed (the attack worked) before its fix.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest


@pytest.fixture
def workspace(jp_root_dir: Path) -> Path:
    for d in ("home/alice", "home/bob", "shared/raw"):
        (jp_root_dir / d).mkdir(parents=True, exist_ok=True)
    (jp_root_dir / "shared/raw/patients.csv").write_text("name,ssn\nAda,078-05-1120\n")
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (jp_root_dir / "shared/intro.ipynb").write_text(json.dumps(notebook))
    (jp_root_dir / "home/bob/secret-plan.txt").write_text("bob's\n")
    return jp_root_dir


async def test_copying_a_readable_directory_does_not_carry_a_protected_one(
    server, workspace
) -> None:  # type: ignore[no-untyped-def]
    server.add_user("stu", roles=("student",))
    stu = await server.sign_in("stu")
    (workspace / "home/stu").mkdir(exist_ok=True)
    r = await stu.post("api/contents/home/stu", json_body={"copy_from": "shared"})
    assert r.code == 403
    r = await stu.post("api/contents/home/stu", json_body={"copy_from": "home"})
    assert r.code == 403
    r = await stu.post("api/contents/home/stu", json_body={"copy_from": ""})
    assert r.code == 403
    assert not (workspace / "home/stu/shared").exists()
    assert sorted(p.name for p in (workspace / "home/stu").iterdir()) == []
    # Copying a readable file, or one's own directory, still works.
    r = await stu.post("api/contents/home/stu", json_body={"copy_from": "shared/intro.ipynb"})
    assert r.code == 201, r.body


async def test_moving_or_deleting_a_directory_checks_what_is_inside(server, workspace) -> None:  # type: ignore[no-untyped-def]
    server.add_user("carol", roles=("instructor",))
    carol = await server.sign_in("carol")
    (workspace / "home/carol").mkdir(exist_ok=True)
    r = await carol.fetch("PATCH", "api/contents/shared", json_body={"path": "home/carol/loot"})
    assert r.code == 403
    assert (workspace / "shared/raw/patients.csv").exists()
    assert (await carol.fetch("DELETE", "api/contents/shared")).code == 403
    assert (workspace / "shared/raw/patients.csv").exists()
    alice = await server.sign_in("alice")
    (workspace / "home/alice/proj").mkdir()
    r = await alice.fetch(
        "PATCH", "api/contents/home/alice/proj", json_body={"path": "home/alice/p2"}
    )
    assert r.code == 200, r.body


async def test_each_person_gets_their_own_session_for_a_shared_notebook(server, workspace) -> None:  # type: ignore[no-untyped-def]
    bob = await server.sign_in("bob")
    body = {"path": "shared/intro.ipynb", "type": "notebook", "kernel": {"name": "jupyter-secure"}}
    r = await bob.post("api/sessions", json_body=body)
    assert r.code == 201, r.body
    bobs = json.loads(r.body)
    alice = await server.sign_in("alice")
    r = await alice.post(
        "api/sessions", json_body={"path": "shared/intro.ipynb", "type": "notebook"}
    )
    assert r.code == 201, r.body
    alices = json.loads(r.body)
    assert alices["id"] != bobs["id"]
    assert alices["kernel"]["id"] != bobs["kernel"]["id"]
    # The admin opening it gets a kernel of their own, not one alice prepared.
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    r = await admin.post("api/sessions", json_body=body)
    assert json.loads(r.body)["kernel"]["id"] not in {alices["kernel"]["id"], bobs["kernel"]["id"]}
    # Asking again returns one's own session.
    r = await alice.post(
        "api/sessions", json_body={"path": "shared/intro.ipynb", "type": "notebook"}
    )
    assert json.loads(r.body)["id"] == alices["id"]


async def test_the_legacy_notebook_field_is_checked_like_path(server, workspace) -> None:  # type: ignore[no-untyped-def]
    bob = await server.sign_in("bob")
    r = await bob.post(
        "api/sessions",
        json_body={"path": "home/bob/private.ipynb", "type": "notebook"},
    )
    assert r.code == 201, r.body
    alice = await server.sign_in("alice")
    sneaky = {
        "path": "home/alice/x.ipynb",
        "type": "notebook",
        "notebook": {"path": "home/bob/private.ipynb"},
    }
    assert (await alice.post("api/sessions", json_body=sneaky)).code == 403
    r = await alice.post(
        "api/sessions", json_body={"path": "home/alice/a.ipynb", "type": "notebook"}
    )
    sid = json.loads(r.body)["id"]
    patch = {"notebook": {"path": "shared/raw/p.ipynb"}}
    assert (await alice.fetch("PATCH", f"api/sessions/{sid}", json_body=patch)).code == 403


async def test_resolve_path_is_not_an_existence_oracle(server, workspace) -> None:  # type: ignore[no-untyped-def]
    server.add_user("vic", roles=("viewer",))
    vic = await server.sign_in("vic")
    assert (await vic.get("api/resolvePath?path=home/bob/secret-plan.txt")).code == 403
    assert (await vic.get("api/resolvePath?path=home/bob/nothing.txt")).code == 403
    assert (await vic.get("api/resolvePath?path=shared/raw/patients.csv")).code == 403
    assert (await vic.get("api/resolvePath?path=shared/intro.ipynb")).code == 200


async def test_a_kernel_cannot_start_in_someone_elses_home(server, workspace) -> None:  # type: ignore[no-untyped-def]
    alice = await server.sign_in("alice")
    body = {"name": "jupyter-secure", "path": "home/bob"}
    assert (await alice.post("api/kernels", json_body=body)).code == 403


async def test_jupyters_own_me_route_answers_with_the_public_profile(server) -> None:  # type: ignore[no-untyped-def]
    alice = await server.sign_in("alice")
    r = await alice.get("api/me")
    assert r.code == 200, r.body
    identity = json.loads(r.body)["identity"]
    assert identity["username"] == "alice"
    assert not {"mfa_at", "session_id", "scopes", "token_id"} & set(identity)
    # Asking "may I?" is not a refused request: no AccessDenied for the probes.
    before = len(server.events("AccessDenied"))
    r = await alice.get('api/me?permissions={"terminals":["read"],"contents":["read"]}')
    assert r.code == 200
    permissions = json.loads(r.body)["permissions"]
    assert permissions["terminals"] == []
    assert permissions["contents"] == ["read"]
    await asyncio.sleep(0.5)
    assert len(server.events("AccessDenied")) == before


async def test_workspaces_are_per_person(server, workspace) -> None:  # type: ignore[no-untyped-def]
    alice = await server.sign_in("alice")
    layout = {
        "data": {"file-browser-filebrowser:cwd": {"path": "home/alice/thesis-on-patient-x"}},
        "metadata": {"id": "default"},
    }
    r = await alice.fetch("PUT", "lab/api/workspaces/default", json_body=layout)
    assert r.code == 204, r.body
    assert b"thesis-on-patient-x" in (await alice.get("lab/api/workspaces/default")).body
    server.add_user("vic", roles=("viewer",))
    vic = await server.sign_in("vic")
    assert b"thesis-on-patient-x" not in (await vic.get("lab/api/workspaces")).body
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    assert b"thesis-on-patient-x" not in (await admin.get("lab/api/workspaces/default")).body
