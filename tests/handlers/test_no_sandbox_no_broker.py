"""Without Landlock the server's own broker stays off: a notebook could read the data."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _no_landlock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jupyter_secure.channel.guard.landlock_abi", lambda: 0)


async def test_no_in_process_broker_and_no_tokens_without_a_sandbox(server: Any) -> None:
    assert server.ext.guard.abi == 0
    assert server.ext.broker is None
    assert server.ext.guard.broker_base is None  # kernels get no broker entry at all
    assert server.ext.guard.guards_private_data is False
    b = await server.sign_in("alice")
    assert (await b.get("secure/api/private/datasets")).code == 401
