from __future__ import annotations


async def test_enroll_then_reach_the_api(server) -> None:  # type: ignore[no-untyped-def]
    b = await server.sign_in("alice")
    r = await b.get("api/status")
    assert r.code == 200, r.body
    names = [e["eventName"] for e in server.events()]
    assert "MfaEnrolled" in names
