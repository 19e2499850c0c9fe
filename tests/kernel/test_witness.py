"""The execution witness: a real kernel reports to a real HTTP receiver."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from kernel_harness import Kernel, Receiver, start_kernel

from jupyter_secure.kernel.sandbox import landlock_abi

pytestmark = pytest.mark.skipif(landlock_abi() < 1, reason="Landlock is not available")

TOKEN = "kernel-token-for-tests"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Kernel]:
    k = start_kernel(
        tmp_path_factory.mktemp("witness"), witness={"url": receiver.url, "token": TOKEN}
    )
    yield k
    k.stop()


def _for(events: list[dict[str, Any]], msg_id: str) -> dict[str, dict[str, Any]]:
    return {e["phase"]: e for e in events if e["msgId"] == msg_id}


@pytest.mark.timeout(60)
def test_three_cells_are_witnessed(kernel: Kernel, receiver: Receiver) -> None:
    cells = ["x = 1", "1 / 0", "x + 1"]
    ids = [kernel.execute(code)[0] for code in cells]
    events = receiver.wait_for(lambda ev: all(len(_for(ev, i)) == 2 for i in ids))
    for code, msg_id, ok in zip(cells, ids, (True, False, True), strict=True):
        pair = _for(events, msg_id)
        pre, post = pair["pre"], pair["post"]
        digest = hashlib.sha256(code.encode()).hexdigest()
        assert pre["codeSha256"] == post["codeSha256"] == digest
        assert pre["silent"] is False
        assert post["success"] is ok
        assert post["durationMs"] >= 0
        assert post["ts"] >= pre["ts"]
    assert all(h.get("Authorization") == f"KernelToken {TOKEN}" for h in receiver.headers)
    assert all(h.get("Content-Type") == "application/json" for h in receiver.headers)


@pytest.mark.timeout(60)
def test_cell_id_and_silent_executions(kernel: Kernel, receiver: Receiver) -> None:
    client = kernel.client
    msg = client.session.msg(
        "execute_request",
        {"code": "y = 2", "silent": False, "store_history": True, "user_expressions": {}},
        metadata={"cellId": "cell-abc"},
    )
    client.shell_channel.send(msg)
    with_cell = msg["header"]["msg_id"]
    silent = client.execute("z = 3", silent=True)
    empty = client.execute("   ")
    events = receiver.wait_for(
        lambda ev: len(_for(ev, with_cell)) == 2 and len(_for(ev, silent)) == 2
    )
    assert _for(events, with_cell)["pre"]["cellId"] == "cell-abc"
    pair = _for(events, silent)
    assert pair["pre"]["silent"] is True
    assert pair["post"]["success"] is True
    assert pair["pre"]["codeSha256"] == hashlib.sha256(b"z = 3").hexdigest()
    kernel.execute("pass")  # let the empty request's reply come and go
    assert _for(receiver.events, empty) == {}
