"""A real guarded kernel for the tests: kernelspec, guard config, client, witness receiver.

Imported by the tests as ``kernel_harness`` (``conftest.py`` puts this directory on
``sys.path``; the suite's ``pythonpath`` names ``tests/`` only).

Each test module starts its kernels once (module scope): a kernel start is
about a second. The kernel runs exactly as the server starts it
(``python -I -m jupyter_secure.kernel -f {connection_file}``) through
jupyter_client's ``KernelManager`` and a kernelspec in a temporary directory.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import secrets
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

KERNEL_ARGV = [sys.executable, "-I", "-m", "jupyter_secure.kernel", "-f", "{connection_file}"]
PLANTED = {
    "JUPYTER_SECURE_KEY": "s3cret-master-key",
    "AWS_SECRET_ACCESS_KEY": "aws-s3cret",
    "DATABASE_URL": "postgresql://u:db-s3cret@h/db",
    "PGPASSWORD": "pg-s3cret",
}
ENV_KEEP = ["PATH", "HOME", "LANG", "LC_*", "JUPYTER_SECURE_KEY"]


@dataclass
class Layout:
    """The directories a test kernel lives among."""

    root: Path
    workspace: Path  # rw
    shared: Path  # read-only
    state: Path  # the server's state dir: no access
    other_user: Path  # another user's workspace: no access
    runtime: Path  # the kernels' runtime dir: only the own connection file
    home: Path  # HOME, readable, with an evil IPython profile
    private: Path  # the kernel's private dir

    @classmethod
    def make(cls, root: Path) -> Layout:
        paths = {
            name: root / name
            for name in ("workspace", "shared", "state", "other_user", "runtime", "home")
        }
        for path in paths.values():
            path.mkdir(parents=True, exist_ok=True)
        private = paths["runtime"] / "private" / uuid.uuid4().hex
        private.mkdir(parents=True, mode=0o700)
        (paths["state"] / "state.db").write_text("server secrets")
        (paths["other_user"] / "notes.txt").write_text("bob's notes")
        (paths["shared"] / "data.csv").write_text("a,b\n1,2\n")
        (paths["runtime"] / "kernel-other.json").write_text('{"key": "other-kernel-key"}')
        startup = paths["home"] / ".ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        marker = paths["workspace"] / "evil-ran"
        (startup / "00-evil.py").write_text(
            f"EVIL = True\nopen({str(marker)!r}, 'w').write('startup')\n"
        )
        (startup.parent / "ipython_kernel_config.py").write_text(
            "c.InteractiveShellApp.exec_lines = ['EVIL_CONFIG = True']\n"
        )
        (paths["workspace"] / "ipython_kernel_config.py").write_text(
            "c.InteractiveShellApp.exec_lines = ['EVIL_CWD = True']\n"
        )
        return cls(root=root, private=private, **paths)


def guard_config(layout: Layout, connection_file: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 1,
        "kernel_id": str(uuid.uuid4()),
        "user": "alice",
        "role": "data_scientist",
        "masking": None,
        "masking_key": secrets.token_hex(32),
        "witness": None,
        "sandbox": {
            "required": True,
            "read": [str(layout.shared), str(layout.home)],
            "write": [str(layout.workspace)],
            "read_files": [connection_file],
            "private_dir": str(layout.private),
        },
        "env_keep": ENV_KEEP,
    }
    config.update(overrides)
    return config


def write_config(layout: Layout, config: dict[str, Any]) -> Path:
    path = layout.private / "guard.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    return path


def base_env(layout: Layout, config_path: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(layout.home),
        "LANG": "C.UTF-8",
        "JUPYTER_SECURE_KERNEL_CONFIG": str(config_path),
        **PLANTED,
    }
    return env


@dataclass
class Kernel:
    """A running guarded kernel and a blocking client on it."""

    manager: KernelManager
    client: BlockingKernelClient
    layout: Layout
    config: dict[str, Any]
    config_path: Path

    def execute(self, code: str, timeout: float = 30) -> tuple[str, list[dict[str, Any]], dict]:
        """Run ``code``; return (msg_id, iopub messages of this request, reply content)."""
        messages: list[dict[str, Any]] = []
        msg_id = self.client.execute(code)
        deadline_reply = self.client.get_shell_msg(timeout=timeout)
        while deadline_reply["parent_header"].get("msg_id") != msg_id:
            deadline_reply = self.client.get_shell_msg(timeout=timeout)
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        return msg_id, messages, deadline_reply["content"]

    def stdout(self, code: str, timeout: float = 30) -> str:
        _, messages, reply = self.execute(code, timeout)
        assert reply["status"] == "ok", reply
        return "".join(
            m["content"]["text"]
            for m in messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )

    def probe(self, code: str) -> Any:
        """Run code that ends in ``print(json.dumps(...))`` and return the value."""
        return json.loads(self.stdout(code).strip().splitlines()[-1])

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def start_kernel(
    root: Path, *, extra_env: dict[str, str] | None = None, **overrides: Any
) -> Kernel:
    layout = Layout.make(root)
    spec_dir = root / "kernels" / "jupyter-secure-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": KERNEL_ARGV, "display_name": "guarded (test)", "language": "python"})
    )
    manager = KernelManager(
        kernel_name="jupyter-secure-test",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(root / "kernels")]),
    )
    manager.connection_file = str(layout.runtime / f"kernel-{uuid.uuid4().hex}.json")
    config = guard_config(layout, manager.connection_file, **overrides)
    config_path = write_config(layout, config)
    env = base_env(layout, config_path)
    env.update(extra_env or {})
    manager.start_kernel(env=env, cwd=str(layout.workspace))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
    except RuntimeError:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        raise
    return Kernel(manager, client, layout, config, config_path)


@dataclass
class Receiver:
    """A witness endpoint on 127.0.0.1: records each POST's headers and JSON body."""

    url: str
    posts: queue.Queue[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=queue.Queue)
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def wait_for(self, predicate: Any, timeout: float = 15) -> list[dict[str, Any]]:
        """Collect posted events until ``predicate(events)`` holds (or fail on timeout)."""
        import time

        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"witness events never matched: {self.events}")
            try:
                headers, body = self.posts.get(timeout=left)
            except queue.Empty:
                continue
            self.headers.append(headers)
            self.events.extend(body["events"])
        return self.events


@contextmanager
def witness_receiver() -> Iterator[Receiver]:
    posts: queue.Queue[tuple[dict[str, str], dict[str, Any]]] = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            posts.put((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield Receiver(f"http://127.0.0.1:{port}/base/secure/api/kernels/k/witness", posts)
    server.shutdown()
    server.server_close()
    thread.join(5)
