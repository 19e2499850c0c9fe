"""Helpers the tests import (``pythonpath`` puts this directory on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.audit.logger import AuditLogger, Identity, Resource
from jupyter_secure.audit.sink import AuditSink

SECURE_ENV = ("JUPYTER_SECURE_KEY", "JUPYTER_SECURE_KEY_FILE", "JUPYTER_SECURE_STATE_DIR")


class Trail:
    """An audit sink and logger on a temporary directory, without the database."""

    def __init__(self, directory: Path, signer: CheckpointSigner, **traits: object) -> None:
        self.directory = directory
        self.signer = signer
        self.trail_id = "trail-test"
        self.sink = AuditSink(directory, self.trail_id, signer, **traits)
        self.logger = AuditLogger(self.sink, source="cli")
        self.sink.open()

    @property
    def keys(self) -> dict[str, object]:
        return {self.signer.key_id: self.signer.public_key}

    def add(self, n: int, user: str = "alice") -> None:
        futures = [
            self.logger.submit(
                "UserDisabled",
                identity=Identity("OSUser", "root"),
                request={"name": f"{user}{i}"},
                resources=[Resource("user", f"{user}{i}")],
            )
            for i in range(n)
        ]
        for f in futures:
            f.result(10)

    def close(self) -> None:
        self.sink.close()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment a CLI subprocess runs in: isolated like the tests themselves."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECURE_ENV and not k.startswith(("PYTEST", "COV_"))
    }
    env.update(
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.update(extra)
    return env


def run_cli(
    tmp_path: Path,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``jupyter-secure ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "jupyter_secure.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(tmp_path),
        timeout=timeout,
        check=False,
    )
