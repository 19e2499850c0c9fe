"""Guard config validation: every field wrong is refused with its name (no kernel started)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_secure.kernel.config import ConfigInvalid, load_config, parse_config
from jupyter_secure.kernel.environment import build_environment

GOOD: dict[str, Any] = {
    "version": 1,
    "kernel_id": "5b1f6a3e-0000-4000-8000-000000000000",
    "user": "alice",
    "role": "data_scientist",
    "masking": None,
    "masking_key": "ab" * 32,
    "witness": {"url": "http://127.0.0.1:8888/secure/api/kernels/k/witness", "token": "t0k"},
    "sandbox": {
        "required": True,
        "read": ["/srv/shared"],
        "write": ["/srv/home/alice"],
        "read_files": ["/run/jupyter/kernel-1.json"],
        "private_dir": "/run/jupyter/private/k",
    },
    "env_keep": ["PATH", "HOME", "LC_*"],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return data


_DELETE = object()


def test_good_config_parses() -> None:
    cfg = parse_config(GOOD)
    assert cfg.role == "data_scientist"
    assert cfg.masking_key == bytes.fromhex("ab" * 32)
    assert cfg.sandbox.read == ("/srv/shared",)
    assert cfg.witness is not None
    assert "t0k" not in repr(cfg)
    assert "abab" not in repr(cfg)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("version", 2, "version"),
        ("version", "1", "version"),
        ("version", _DELETE, "version"),
        ("kernel_id", "", "kernel_id"),
        ("kernel_id", 5, "kernel_id"),
        ("user", None, "user"),
        ("role", "Data Scientist", "role"),
        ("role", _DELETE, "role"),
        ("masking", [], "masking"),
        ("masking_key", "zz" * 32, "masking_key"),
        ("masking_key", "ab" * 8, "masking_key"),
        ("witness", "http://x", "witness"),
        ("witness.url", "ftp://x/y", "witness.url"),
        ("witness.token", "", "witness.token"),
        ("witness.token", "a\r\nX-Evil: 1", "witness.token"),
        ("witness.extra", 1, "witness.extra"),
        ("sandbox", None, "sandbox"),
        ("sandbox.required", "yes", "sandbox.required"),
        ("sandbox.read", "/srv", "sandbox.read"),
        ("sandbox.write", ["relative/dir"], "sandbox.write[0]"),
        ("sandbox.read_files", ["/ok", "/a/../b"], "sandbox.read_files[1]"),
        ("sandbox.private_dir", "/", "sandbox.private_dir"),
        ("sandbox.private_dir", _DELETE, "sandbox.private_dir"),
        ("sandbox.network", True, "sandbox.network"),
        ("env_keep", "PATH", "env_keep"),
        ("env_keep", ["PATH", "BAD-NAME"], "env_keep[1]"),
        ("extra", 1, "extra"),
        ("broker", "http://x", "broker"),
        ("broker", {"url": "file:///etc/passwd", "token": "t"}, "broker.url"),
        ("broker", {"url": "http://x"}, "broker.token"),
        ("broker", {"url": "http://x", "token": "a b"}, "broker.token"),
        ("broker", {"url": "http://x", "token": "t", "user": "bob"}, "broker.user"),
    ],
)
def test_each_bad_field_is_named(path: str, value: Any, field: str) -> None:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(_with(path, value))
    assert info.value.field == field
    assert str(info.value).startswith(f"guard config: {field}: ")


def test_the_broker_is_optional_and_its_url_kept() -> None:
    assert parse_config(GOOD).broker is None
    broker = {"url": "http://127.0.0.1:8888/secure/api/private/", "token": "jsb1.x.y"}
    cfg = parse_config(_with("broker", broker))
    assert cfg.broker is not None
    assert cfg.broker.url == "http://127.0.0.1:8888/secure/api/private"
    assert "jsb1" not in repr(cfg)


def test_relative_read_path_message() -> None:
    data = _with("sandbox.read", ["/a", "/b", "c"])
    with pytest.raises(ConfigInvalid, match=r"^guard config: sandbox\.read\[2\]: not an absolute"):
        parse_config(data)


def test_load_deletes_the_file_even_when_invalid(tmp_path: Path) -> None:
    path = tmp_path / "guard.json"
    path.write_text(json.dumps(_with("role", "BAD")))
    with pytest.raises(ConfigInvalid, match="role"):
        load_config(path, delete=True)
    assert not path.exists()
    path.write_text("{not json")
    with pytest.raises(ConfigInvalid, match="not valid JSON"):
        load_config(path, delete=True)
    with pytest.raises(ConfigInvalid, match="does not exist"):
        load_config(path)


def test_environment_is_an_allow_list() -> None:
    source = {
        "PATH": "/bin",
        "LC_ALL": "C",
        "JUPYTER_SECURE_KEY": "s3cret",
        "JUPYTER_SECURE_KERNEL_CONFIG": "/x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "PYTHONPATH": "/evil",
        "JPY_PARENT_PID": "12",
        "JUPYTER_CONFIG_PATH": "/evil",
    }
    keep = ["PATH", "LC_*", "JUPYTER_SECURE_*", "PYTHONPATH", "JUPYTER_CONFIG_PATH"]
    env = build_environment(source, keep, "/p")
    assert env["PATH"] == "/bin"
    assert env["LC_ALL"] == "C"
    assert env["JPY_PARENT_PID"] == "12"
    for name in ("JUPYTER_SECURE_KEY", "JUPYTER_SECURE_KERNEL_CONFIG", "AWS_SECRET_ACCESS_KEY"):
        assert name not in env
    assert "PYTHONPATH" not in env
    assert "JUPYTER_CONFIG_PATH" not in env
    assert env["TMPDIR"] == "/p/tmp"
    assert env["IPYTHONDIR"] == "/p/ipython"


def _launch(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-m", "jupyter_secure.kernel", "-f", "/nonexistent.json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(60)
def test_launcher_refuses_missing_and_invalid_config(tmp_path: Path) -> None:
    base = {"PATH": os.environ.get("PATH", "/usr/bin")}
    result = _launch(base)
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        "jupyter-secure kernel: JUPYTER_SECURE_KERNEL_CONFIG is not set"
    ]
    result = _launch({**base, "JUPYTER_SECURE_KERNEL_CONFIG": str(tmp_path / "missing.json")})
    assert result.returncode == 78
    assert len(result.stderr.strip().splitlines()) == 1
    assert "does not exist" in result.stderr
    bad = tmp_path / "guard.json"
    bad.write_text(json.dumps(_with("sandbox.read", ["/a", "/b", "c"])))
    result = _launch({**base, "JUPYTER_SECURE_KERNEL_CONFIG": str(bad)})
    assert result.returncode == 78
    assert result.stderr.strip() == (
        "jupyter-secure kernel: guard config: sandbox.read[2]: not an absolute path"
    )
    assert not bad.exists()
    policy = copy.deepcopy(GOOD)
    policy["masking"] = {"roles": {"data_scientist": {"EMAIL": "shout"}}}
    policy["sandbox"] = {**GOOD["sandbox"], "private_dir": str(tmp_path / "private")}
    policy["sandbox"]["read"] = policy["sandbox"]["write"] = policy["sandbox"]["read_files"] = []
    bad.write_text(json.dumps(policy))
    result = _launch({**base, "JUPYTER_SECURE_KERNEL_CONFIG": str(bad)})
    assert result.returncode == 78, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "masking" in result.stderr
    assert "shout" in result.stderr


def test_the_server_checks_its_broker_url_like_the_kernel_does() -> None:
    from traitlets import TraitError

    from jupyter_secure.app import SecureApp

    assert SecureApp(broker_url="http://127.0.0.1:8890/secure/api/private/").broker_url == (
        "http://127.0.0.1:8890/secure/api/private"
    )
    with pytest.raises(TraitError, match=r"SecureApp\.broker_url: expected an http"):
        SecureApp(broker_url="file:///etc/passwd")
