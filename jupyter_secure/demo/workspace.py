"""The demo workspace behind ``jupyter secure lab``: everything a first run needs, locally.

Layout (the notebook root and the state directory are siblings, so the
server never serves its own state)::

    <workspace>/
      notebooks/             the JupyterLab root
        shared/labs/         the teaching notebooks, as handed out (read-only to students)
        home/<user>/labs/    each demo user's own copy, to run and edit
      state/                 0700: database, audit trail, key file, protected data
        protected/datasets/patients.parquet
      demo-credentials.txt   0600: the generated demo passwords, written once

Creating it again is harmless: existing users, data and credentials are kept,
and so is every notebook already there (an instructor's or a student's edits
are never overwritten; delete a copy to get the shipped one back).
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..audit.logger import Identity, Resource
from ..identity.users import UserDirectory
from ..state import SecureState
from .dataset import DIAGNOSES, SEXES, write_patients

__all__ = [
    "DEMO_GRANTS",
    "DEMO_USERS",
    "PRIVATE_SPEC",
    "DemoWorkspace",
    "prepare",
    "teaching_notebooks",
]

#: name -> (roles, groups)
DEMO_USERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "admin": (("admin",), ("staff",)),
    "dana": (("data_scientist",), ("research",)),
    "sam": (("student",), ("class-2026",)),
    # The course's instructor: in the class's group, so she manages its budgets and
    # reads its members' audit records (and nobody else's).
    "ines": (("instructor",), ("class-2026",)),
}
DATASET = Path("protected") / "datasets" / "patients.parquet"
#: The demo's protected dataset for private queries: what DP needs, stated, not inferred.
PRIVATE_SPEC: dict[str, object] = {
    "name": "patients",
    "description": "Synthetic patients (Faker): age, sex, diagnosis and charges.",
    "measure": "rho",
    "per_user_budget": "1",
    "dataset_cap": "20",
    "privacy_unit": {"id_column": "patient_id", "max_rows_per_person": 1},
    "columns": {
        "age": {"type": "numeric", "lower": 18, "upper": 95},
        "charges": {"type": "numeric", "lower": 0, "upper": 5000},
        "sex": {"type": "category", "categories": list(SEXES)},
        "diagnosis_code": {"type": "category", "categories": [d[0] for d in DIAGNOSES]},
    },
}
#: group -> per-member budget on the demo dataset
DEMO_GRANTS = {"research": "1", "class-2026": "0.5"}


@dataclass(frozen=True)
class DemoWorkspace:
    root: Path
    notebooks: Path
    state_dir: Path
    credentials: Path
    dataset: Path
    new_passwords: dict[str, str]


def prepare(
    root: Path, *, rows: int = 1000, seed: int = 2026, identity: Identity | None = None
) -> DemoWorkspace:
    """Create (or reuse) the workspace under ``root``; returns where everything is."""
    root = root.expanduser().absolute()
    notebooks = root / "notebooks"
    state_dir = root / "state"
    notebooks.mkdir(parents=True, exist_ok=True)
    credentials = root / "demo-credentials.txt"
    who = identity or Identity.os_user()
    with SecureState.open(state_dir, source="cli", identity=who) as state:
        directory = UserDirectory()
        created: dict[str, str] = {}
        with state.db.write() as session:
            for name, (roles, groups) in DEMO_USERS.items():
                if directory.find(session, name) is not None:
                    continue
                password = secrets.token_urlsafe(12)
                directory.add(session, name, roles=roles, groups=groups, password=password)
                state.audit.record(
                    "UserAdded",
                    identity=who,
                    request={
                        "name": name,
                        "roles": list(roles),
                        "groups": list(groups),
                        "passwordSet": True,
                    },
                    resources=[Resource("user", name)],
                )
                created[name] = password
        dataset = state.state_dir / DATASET
        if not dataset.exists():
            write_patients(dataset, rows=rows, seed=seed)
            state.audit.record(
                "DemoWorkspaceCreated",
                identity=who,
                request={"workspace": str(root), "rows": rows, "seed": seed},
                response={"dataset": str(dataset), "users": sorted(DEMO_USERS)},
                resources=[Resource("dataset", "patients")],
            )
        _protect(state, dataset, root, who)
    if created:
        _append_credentials(credentials, created)
    readme = notebooks / "shared" / "README.md"
    readme.parent.mkdir(exist_ok=True)
    if not readme.exists():
        readme.write_text(WELCOME, encoding="utf-8")
    _hand_out_labs(notebooks)
    return DemoWorkspace(root, notebooks, state_dir, credentials, dataset, created)


def _protect(state: SecureState, dataset: Path, root: Path, who: Identity) -> None:
    """Register the demo data as a protected dataset (once), granted to the demo groups."""
    import polars as pl

    from ..privacy.broker import Broker

    broker = Broker(state.db, state.state_dir / "private", state.audit)
    if any(d["name"] == "patients" for d in broker.list()):
        return
    frame = pl.read_parquet(dataset).with_columns(
        (2026 - pl.col("birth_date").dt.year()).cast(pl.Float64).alias("age")
    )
    staging = state.state_dir / "protected" / ".patients-dp.parquet"
    frame.select("patient_id", "age", "sex", "diagnosis_code", "charges").write_parquet(staging)
    try:
        broker.add_dataset(PRIVATE_SPEC, staging, who)
    finally:
        staging.unlink(missing_ok=True)
    for group, budget in DEMO_GRANTS.items():
        broker.grant("patients", "group", group, budget, who)


def teaching_notebooks() -> list[Path]:
    """The shipped teaching notebooks (``NN-name.ipynb``), in order.

    An installed wheel carries them in ``jupyter_secure/demo/notebooks``; a source
    checkout (an editable install) keeps them in the top-level ``notebooks/``.
    """
    here = Path(__file__).resolve().parent
    for place in (here / "notebooks", here.parent.parent / "notebooks"):
        found = sorted(place.glob("[0-9][0-9]-*.ipynb"))
        if found:
            return found
    return []


def _hand_out_labs(notebooks: Path) -> None:
    """Copy the teaching notebooks to ``shared/labs`` and each demo user's ``home/<user>/labs``.

    A file already there is kept as it is: it may be an instructor's edited
    hand-out or a student's work.
    """
    targets = [notebooks / "shared" / "labs"]
    for user in DEMO_USERS:
        home = notebooks / "home" / user
        # The server makes homes 0700 at first sign-in; made here first, the same way.
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        targets.append(home / "labs")
    for target in targets:
        target.mkdir(exist_ok=True)
        for source in teaching_notebooks():
            copy = target / source.name
            if not copy.exists():
                shutil.copyfile(source, copy)


def _append_credentials(path: Path, passwords: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        lines = "".join(f"{user}\t{pw}\n" for user, pw in passwords.items())
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


WELCOME = """# jupyter-secure demo workspace

This JupyterLab runs with the jupyter-secure extension. The synthetic data set
(`patients`, generated with Faker: no real person is in it) lives in the
server's private state directory, not here, so a notebook cannot read it
directly.

You signed in with a password and a code from your authenticator app; every
sign-in, admin action and server start is in the audit trail. Try, in a
terminal next to this one:

    jupyter secure audit query --state-dir ../state
    jupyter secure audit verify --state-dir ../state

Everyone reads `shared/`; your own work goes in `home/<your name>/`, which only
you can open. The same patients answer differentially private queries from a
notebook, charged to your own budget:

    from jupyter_secure import private
    ds = private.dataset("patients")
    ds.mean("age", rho=0.05)

The teaching labs (welcome, differential privacy, PII masking, access
control, audit and monitoring) are in `shared/labs/`, as handed out; your own
copy to run and edit is in `home/<your name>/labs/`.

Who may do what is in `../state/policy.toml`
(`jupyter secure policy check`, `jupyter secure policy explain`).
"""
