"""A server configured with SecureApp.broker_url: kernels ask the broker service, not it.

The broker here shares the server's store (``broker serve`` without
``--trust-key``), the deployment where one account runs both processes but the
broker can be restarted, scaled or moved on its own.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from handlers.test_kernel_guard import open_notebook, text_of
from helpers import cli_env
from privacy_specs import GOOD

from jupyter_secure.audit.logger import Identity
from jupyter_secure.privacy.broker import Broker

pytestmark = pytest.mark.timeout(240)
ADMIN = Identity("OSUser", "root")


@pytest.fixture
def broker_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def jp_server_config(state_dir: Path, broker_port: int):  # type: ignore[no-untyped-def]
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_secure": True, "jupyterlab": True}},
        "SecureApp": {
            "state_dir": str(state_dir),
            "broker_url": f"http://127.0.0.1:{broker_port}/secure/api/private/",
        },
    }


async def test_kernels_are_sent_to_the_broker_service(
    server: Any, state_dir: Path, broker_port: int, tmp_path: Path
) -> None:
    assert server.ext.broker is None  # this server answers no private query itself
    csv = tmp_path / "p.csv"
    pl.DataFrame({"patient_id": list(range(200)), "age": [30.0] * 200,
                  "charges": [5.0] * 200, "sex": ["M"] * 200}).write_csv(csv)  # fmt: skip
    setup = Broker(server.state.db, state_dir / "private", server.state.audit)
    setup.add_dataset(GOOD, csv, ADMIN)
    setup.grant("patients", "user", "alice", "0.5", ADMIN)

    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_secure.cli", "broker", "serve", "--state-dir",
         str(state_dir), "--port", str(broker_port)],
        env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "broker listening" in proc.stdout.readline()
        _, _, client = await open_notebook(server, "alice")
        code = """
import json
from jupyter_secure import private
from jupyter_secure.kernel.session import current
r = private.dataset("patients").count(rho="0.2").run()
print(json.dumps({"url": current().broker_url, "cost": str(r.cost), "left": str(r.remaining),
                  "value": r.value}))
"""
        got = await client.run(code)
        errors = [m for m in got if m["msg_type"] == "error"]
        assert not errors, text_of(got)[:3000]
        out = json.loads(next(m["content"]["text"] for m in got if m["msg_type"] == "stream"))
        assert out["url"] == f"http://127.0.0.1:{broker_port}/secure/api/private"
        assert (out["cost"], out["left"]) == ("0.2", "0.3")
        assert abs(out["value"] - 200) < 40
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    # The service recorded the release in the shared trail, as the broker.
    queries = server.events("PrivateQuery")
    assert [q["eventSource"] for q in queries] == ["jupyter-secure.broker"]
