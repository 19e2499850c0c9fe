"""``jupyter secure init`` and ``jupyter secure lab``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets import Bool, Int, Unicode

from ..storage.paths import ENV_STATE_DIR
from .base import StateCommand, state_aliases, state_flags

__all__ = ["InitCommand", "LabCommand"]


class InitCommand(StateCommand):
    name = "jupyter-secure-init"
    description = """Create the state store (or bring an existing one to the newest schema):
    state directory, database, master key, audit signing key and audit trail.
    The server does the same at its first start; run this to do it ahead of time,
    e.g. with a key provided through $JUPYTER_SECURE_KEY."""
    examples = """
    jupyter secure init
    JUPYTER_SECURE_KEY=$(jupyter secure keys generate) jupyter secure init --state-dir /srv/secure
    jupyter secure init --db-url postgresql+psycopg://jsecure@db/jsecure
    """
    creates_store = True

    def run(self) -> None:
        self.positional()
        state = self.state
        verb = "initialised" if state.created else "already initialised (schema up to date)"
        print(f"state store {state.state_dir} {verb}")
        print(f"  database:    {state.db.describe()}")
        key_id = state.secrets.ring.fingerprint
        print(f"  master key:  {state.key_source.describe()} (key id {key_id})")
        print(f"  audit trail: {state.trail_id}, signing key {state.signer.key_id}")
        print(f"  policy:      {state.policy_path} (check it: jupyter secure policy check)")
        beside = state.store.key_file_inside()
        if beside is not None:
            print(
                f"warning: the key file {beside} is inside the state directory; outside a demo "
                "keep the key in $JUPYTER_SECURE_KEY, the OS keyring or MasterKey.key_file "
                "elsewhere",
                file=sys.stderr,
            )


class LabCommand(StateCommand):
    name = "jupyter-secure-lab"
    description = """Start JupyterLab with jupyter-secure on its embedded defaults: a demo
    workspace with its own state directory (SQLite), demo users (an admin, a data
    scientist and a student, passwords written to demo-credentials.txt) and a
    synthetic patients data set generated with Faker. Listens on localhost only."""
    examples = """
    jupyter secure lab
    jupyter secure lab --workspace ~/secure-demo --port 9999 --no-browser
    """
    aliases = {
        **state_aliases,
        "workspace": "LabCommand.workspace",
        "port": "LabCommand.port",
        "rows": "LabCommand.rows",
    }
    flags = {
        **state_flags,
        "no-browser": ({"LabCommand": {"open_browser": False}}, "Do not open a browser."),
    }
    workspace = Unicode("jupyter-secure-demo", help="Directory of the demo workspace.").tag(
        config=True
    )
    port = Int(8888, help="Port to listen on (127.0.0.1 only).").tag(config=True)
    rows = Int(1000, help="Rows in the synthetic data set (first run only).").tag(config=True)
    open_browser = Bool(True, help="Open a browser when the server is up.").tag(config=True)

    def run(self) -> None:
        from ..demo.workspace import DEMO_USERS, prepare

        self.positional()
        if not 1 <= self.rows <= 10_000_000:
            from ..errors import InvalidInput

            raise InvalidInput("--rows", "must be between 1 and 10,000,000")
        ws = prepare(Path(self.workspace), rows=self.rows)
        print(f"demo workspace: {ws.root}")
        print(f"  notebooks:   {ws.notebooks}")
        print(f"  state:       {ws.state_dir} (private; the server's own data)")
        print(f"  data set:    patients ({ws.dataset.name}, synthetic)")
        if ws.new_passwords:
            print(f"  demo users (passwords also in {ws.credentials}, mode 0600):")
            for user, password in ws.new_passwords.items():
                print(f"    {user:8} {password}")
        else:
            print(f"  demo users:  {', '.join(DEMO_USERS)} (passwords in {ws.credentials})")
        print(f"  labs:        {ws.notebooks / 'shared' / 'labs'} (and home/<user>/labs)")
        print(f"next: open http://127.0.0.1:{self.port}/ and sign in as one of the demo users;")
        print("  at the first sign-in you set up an authenticator app (TOTP) for the account.")
        print(f"  In another terminal: jupyter secure audit query --state-dir {ws.state_dir}")
        sys.stdout.flush()
        argv = [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--ServerApp.root_dir={ws.notebooks}",
            f"--SecureApp.state_dir={ws.state_dir}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
        ]
        if not self.open_browser:
            argv.append("--no-browser")
        if os.geteuid() == 0:
            argv.append("--allow-root")
        env = {**os.environ, ENV_STATE_DIR: str(ws.state_dir)}
        os.execvpe(argv[0], argv, env)  # noqa: S606 - replaces this process with JupyterLab
