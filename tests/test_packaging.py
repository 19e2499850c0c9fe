"""What `pip install` puts in place: the server config that enables the extension."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from helpers import cli_env

import jupyter_secure


def test_installed_server_config_enables_and_hardens() -> None:
    path = Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d/jupyter_secure.json"
    config = json.loads(path.read_text())["ServerApp"]
    assert config == {
        "jpserver_extensions": {"jupyter_secure": True},
        "reraise_server_extension_failures": True,
        "allow_unauthenticated_access": False,
    }


def test_extension_point() -> None:
    [point] = jupyter_secure._jupyter_server_extension_points()
    assert point["module"] == "jupyter_secure.app"
    assert point["app"].name == "jupyter_secure"


def test_jupyter_lists_the_extension_enabled(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    env.pop("JUPYTER_CONFIG_PATH", None)
    r = subprocess.run(
        [sys.executable, "-m", "jupyter_server", "extension", "list"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    assert "jupyter_secure enabled" in text
    assert re.search(r"jupyter_secure\s+0\.1\.0\s+OK", text), text


def test_console_script_is_installed() -> None:
    assert (Path(sys.prefix) / "bin" / "jupyter-secure").exists()


# The JupyterLab extension (labextension/) ships in the wheel, prebuilt.

_REPO = Path(__file__).resolve().parent.parent


def test_labextension_version_matches_the_python_package() -> None:
    package = json.loads((_REPO / "labextension" / "package.json").read_text())
    assert package["name"] == "jupyter-secure"
    assert package["version"] == jupyter_secure.__version__
    # The handshake compares this constant with /secure/api/me's version.
    source = (_REPO / "labextension" / "src" / "version.ts").read_text()
    assert f"export const VERSION = '{jupyter_secure.__version__}';" in source


def test_labextension_is_installed_prebuilt() -> None:
    root = Path(sys.prefix) / "share/jupyter/labextensions/jupyter-secure"
    built = json.loads((root / "package.json").read_text())
    assert built["name"] == "jupyter-secure"
    assert built["version"] == jupyter_secure.__version__
    assert built["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert (root / built["jupyterlab"]["_build"]["load"]).is_file()
    assert json.loads((root / "install.json").read_text())["packageName"] == "jupyter-secure"


def test_jupyter_lists_the_labextension_enabled(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    env.pop("JUPYTER_CONFIG_PATH", None)
    r = subprocess.run(
        [sys.executable, "-m", "jupyterlab.labextensions", "list"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    assert re.search(r"jupyter-secure v0\.1\.0 enabled\s+OK \(python, jupyter-secure\)", text), text
