"""``jupyter secure dataset …`` and ``jupyter secure budget …``: the privacy room's admin side.

Thin commands over :class:`~jupyter_secure.privacy.broker.Broker`: they read
arguments and files, print what the broker returns, and turn its refusals into
one line per problem on stderr (exit status 2). The broker records every
change (``DatasetChanged``, ``BudgetChanged``) in the audit trail inside the
change's transaction, as the OS user who ran the command.

Giving someone more to spend (a grant or budget above what they may spend
now) and forgetting what they spent need a fresh second factor from an
enrolled account holding ``secure:budgets:admin``: ``--admin NAME`` and its
current code (``--code-stdin``, or a hidden prompt at a terminal). The code is
checked like a step-up in the browser (once only, throttled, counted towards a
lockout) and recorded as ``StepUp``. Lowering a budget and revoking a grant
need none.
"""

from __future__ import annotations

import getpass
import json
import math
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import select
from traitlets import Bool, Unicode

from ..audit.logger import Identity
from ..errors import InvalidInput
from ..identity.signin import SignIn, SignInPolicy
from ..privacy.amounts import Amount, AmountError
from ..privacy.ledger import NoGrant
from ..privacy.spec import SpecError
from ..storage.models import User
from .base import GroupCommand, state_aliases, state_flags
from .users import _UserCommand, print_table

if TYPE_CHECKING:
    from ..privacy.broker import Broker

__all__ = ["BUDGET_SCOPE", "BudgetCommand", "DatasetCommand"]

#: The scope an account must hold to confirm a raised budget or a reset.
BUDGET_SCOPE = "secure:budgets:admin"


class SpecRefused(InvalidInput):
    """A dataset spec was refused: every problem, one a line, each naming its field."""

    def __init__(self, where: str, problems: list[str]) -> None:
        field, _, message = problems[0].partition(": ")
        super().__init__(field, message)
        self.problems = problems
        self.args = ("\n".join(f"{where}: {p}" for p in problems),)


def _field_error(text: str) -> InvalidInput:
    """A broker message ``field: message`` (first line only) as an :class:`InvalidInput`."""
    first = text.strip().splitlines()[0] if text.strip() else "refused"
    field, sep, message = first.partition(": ")
    return InvalidInput(field, message) if sep else InvalidInput("dataset", first)


def load_spec(path: Path) -> dict[str, Any]:
    """A spec file's content (TOML or JSON, chosen by suffix), not yet validated."""
    suffix = path.suffix.lower()
    if suffix not in {".toml", ".json"}:
        raise InvalidInput("--spec", f"expected a .toml or .json file, got {path.name!r}")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InvalidInput("--spec", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput("--spec", f"{path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("--spec", f"{path} is not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput("--spec", f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("--spec", f"{path}: expected a table of settings at the top level")
    return data


class _PrivateCommand(_UserCommand):
    #: What the refusals of a missing or disabled account name (a flag or an argument).
    user_field: ClassVar[str] = "user"
    #: Where the problems of a refused spec are said to be (the spec file, once known).
    spec_label = "spec"

    def broker(self) -> Broker:
        from ..privacy.broker import Broker

        return Broker(self.state.db, self.state.state_dir / "private", self.state.audit)

    def start(self) -> None:
        from ..privacy.broker import BrokerError

        try:
            super().start()
        except SpecError as exc:
            raise SpecRefused(self.spec_label, exc.problems) from None
        except (BrokerError, AmountError) as exc:
            raise _field_error(str(exc)) from None
        except NoGrant as exc:
            who = exc.args[0] if exc.args else ""
            raise InvalidInput(self.user_field, f"no enabled user named {who!r}") from None

    def dataset_or_refuse(self, broker: Broker, name: str, field: str) -> dict[str, Any]:
        """What the broker shows of ``name``, or a refusal naming ``field``."""
        from ..privacy.broker import BrokerError

        try:
            return broker.show(name)
        except BrokerError:
            raise InvalidInput(field, f"no dataset {name!r}") from None

    def warn_unknown_user(self, name: str) -> None:
        with self.state.db.read() as s:
            known = s.scalar(select(User.id).where(User.name == name)) is not None
        if not known:
            print(
                f"warning: no account named {name!r} yet: this applies once one is created",
                file=sys.stderr,
            )


class _StepUpCommand(_PrivateCommand):
    """A command that may need a fresh second factor of an enrolled budget administrator."""

    admin = Unicode(
        "",
        help=f"""The enrolled account (holding {BUDGET_SCOPE}) whose current authenticator
        code confirms a raised budget or a reset.""",
    ).tag(config=True)
    code_stdin = Bool(
        False, help="Read the --admin account's current code from the first line of stdin."
    ).tag(config=True)

    def signin(self) -> SignIn:
        return SignIn(
            self.state.db,
            self.state.secrets,
            self.state.audit,
            SignInPolicy(parent=self),
            user_scopes=self.user_scopes,
        )

    def read_code(self) -> str:
        if self.code_stdin:
            line = sys.stdin.readline().strip()
            if not line:
                raise InvalidInput("--code-stdin", "stdin was empty")
            return line
        if not sys.stdin.isatty():
            raise InvalidInput(
                "code", "stdin is not a terminal: pass --code-stdin and pipe the code in"
            )
        return getpass.getpass(f"Current code from {self.admin}'s authenticator app: ").strip()

    def step_up(self, what: str) -> None:
        """Refuse unless ``--admin``'s fresh code is accepted (recorded as ``StepUp``)."""
        if not self.admin:
            raise InvalidInput(
                "--admin",
                f"{what} needs a fresh second factor: give --admin NAME (an enrolled account "
                f"holding {BUDGET_SCOPE}) and its current code (--code-stdin, or at the prompt)",
            )
        outcome = self.signin().confirm(self.admin, self.read_code(), scope=BUDGET_SCOPE)
        if outcome.ok:
            return
        if outcome.error == "refused":
            raise InvalidInput("--admin", f"{outcome.message}; nothing was changed")
        if outcome.error == "throttled":
            wait = math.ceil(outcome.retry_after or 1)
            raise InvalidInput(
                "code",
                f"too many refused codes for {self.admin}: wait {wait} s and try again; "
                "nothing was changed",
            )
        raise InvalidInput(
            "code",
            f"not accepted for {self.admin} (wrong, already used, or the account is locked); "
            "nothing was changed",
        )

    def raises_grant(self, broker: Broker, name: str, kind: str, who: str, budget: str) -> bool:
        """Whether granting ``budget`` (the spec's per-user budget when empty) to ``who``
        raises what they may spend: a new grant does, a higher one does, a lower does not."""
        shown = self.dataset_or_refuse(broker, name, "name")
        measure = shown["spec"]["measure"]
        amount = budget or shown["spec"]["per_user_budget"]
        new = Amount.parse(amount, measure, field="--budget")
        if kind == "user":
            return broker.raises_budget(name, who, amount)
        current = next(
            (g["budget"] for g in shown["grants"] if (g["kind"], g["principal"]) == (kind, who)),
            None,
        )
        return current is None or new > Amount.parse(current, measure)


def _step_up_aliases(cls: str, **more: str) -> dict[str, str]:
    return {**state_aliases, "admin": f"{cls}.admin", **{k: f"{cls}.{v}" for k, v in more.items()}}


def _step_up_flags(cls: str) -> dict[str, Any]:
    return {
        **state_flags,
        "code-stdin": (
            {cls: {"code_stdin": True}},
            "Read the --admin account's current code from the first line of stdin.",
        ),
    }


def _principal(group: str, user: str) -> tuple[str, str]:
    """``("group", G)`` or ``("user", U)``: exactly one of --group and --user."""
    if bool(group) == bool(user):
        raise InvalidInput("--group/--user", "give exactly one of --group and --user")
    return ("group", group) if group else ("user", user)


def _columns_text(columns: dict[str, Any]) -> list[str]:
    out = []
    for name, col in columns.items():
        if col["type"] == "numeric":
            out.append(f"{name} (numeric, {col['lower']:g} to {col['upper']:g})")
        else:
            cats = col["categories"]
            shown = ", ".join(cats[:8]) + (f", … ({len(cats)} in all)" if len(cats) > 8 else "")
            out.append(f"{name} (category: {shown})")
    return out


def _unit_text(unit: dict[str, Any]) -> str:
    if "id_column" in unit:
        return f"{unit['id_column']}, at most {unit['max_rows_per_person']} row(s) per person"
    return "one row per person"


def _print_dataset(shown: dict[str, Any]) -> None:
    spec = shown["spec"]
    rows = [
        ("measure:", spec["measure"]),
        ("cap:", f"{shown['cap']} (spent {shown['spent']})"),
        ("per-user budget:", spec["per_user_budget"]),
        ("privacy unit:", _unit_text(spec["privacy_unit"])),
        ("version:", shown["version"][:16]),
        ("added:", f"{shown['created_at'][:16]} by {shown['added_by']}"),
    ]
    if spec.get("description"):
        rows.insert(0, ("description:", spec["description"]))
    for i, column in enumerate(_columns_text(spec["columns"])):
        rows.append(("columns:" if i == 0 else "", column))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")


class DatasetAdd(_PrivateCommand):
    name = "jupyter-secure-dataset-add"
    description = """Register a protected dataset: NAME, the data FILE (.csv or .parquet) and
    its spec (--spec, a .toml or .json file: measure, per-user budget, dataset cap, privacy
    unit, and every column's public bounds or categories). The spec is checked against the
    data, the data is prepared into the broker's directory (<state dir>/private) and nothing
    is left behind when anything is refused. Every problem of a spec is listed, one a line."""
    examples = """
    jupyter secure dataset add patients ./patients.csv --spec ./patients.toml
    """
    aliases = {**state_aliases, "spec": "DatasetAdd.spec"}
    spec = Unicode("", help="The dataset's spec: a .toml or .json file.").tag(config=True)

    def run(self) -> None:
        name, file = self.positional("name", "file")
        if not self.spec:
            raise InvalidInput("--spec", "missing: give the dataset's spec file (.toml or .json)")
        path = Path(self.spec)
        data = load_spec(path)
        self.spec_label = str(path)
        if "name" not in data:
            data["name"] = name
        elif data["name"] != name:
            raise InvalidInput(
                "name",
                f"the spec names the dataset {data['name']!r}, the command {name!r}: "
                "make them agree, or leave name out of the spec",
            )
        source = Path(file)
        if not source.is_file():
            raise InvalidInput("file", f"no such file: {source}")
        shown = self.broker().add_dataset(data, source, Identity.os_user())
        print(f"added dataset {shown['name']}")
        _print_dataset(shown)


class DatasetList(_PrivateCommand):
    name = "jupyter-secure-dataset-list"
    description = """List the protected datasets: measure, dataset-wide cap and what has been
    spent of it, and how many users and groups hold a grant."""
    examples = """
    jupyter secure dataset list
    jupyter secure dataset list --json | jq '.[].name'
    """
    flags = {
        **state_flags,
        "json": ({"DatasetList": {"as_json": True}}, "Print JSON instead of a table."),
    }
    as_json = Bool(False, help="Print JSON instead of a table.").tag(config=True)

    def run(self) -> None:
        self.positional()
        datasets = self.broker().list()
        if self.as_json:
            print(json.dumps(datasets, indent=2))
            return
        if not datasets:
            print("no datasets (add one with `jupyter secure dataset add`)")
            return
        rows: list[tuple[str, ...]] = [("NAME", "MEASURE", "CAP", "SPENT", "GRANTS")]
        for d in datasets:
            rows.append(
                (d["name"], d["spec"]["measure"], d["cap"], d["spent"], str(len(d["grants"])))
            )
        print_table(rows)


class DatasetShow(_PrivateCommand):
    name = "jupyter-secure-dataset-show"
    description = """Show a protected dataset: its spec, cap and spend, who holds a grant
    with what per-member budget, and what each user has spent."""
    examples = """
    jupyter secure dataset show patients
    jupyter secure dataset show patients --json
    """
    flags = {
        **state_flags,
        "json": ({"DatasetShow": {"as_json": True}}, "Print JSON instead of text."),
    }
    as_json = Bool(False, help="Print JSON instead of text.").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        shown = self.broker().show(name)
        if self.as_json:
            print(json.dumps(shown, indent=2))
            return
        print(f"dataset {shown['name']}")
        _print_dataset(shown)
        print()
        if shown["grants"]:
            rows: list[tuple[str, ...]] = [("GRANTED TO", "BUDGET EACH")]
            rows += [(f"{g['kind']} {g['principal']}", g["budget"]) for g in shown["grants"]]
            print_table(rows)
        else:
            print("no grants (add one with `jupyter secure dataset grant`)")
        if shown["spend"]:
            print()
            spend: list[tuple[str, ...]] = [("USER", "SPENT")]
            spend += sorted(shown["spend"].items())
            print_table(spend)


class DatasetRemove(_StepUpCommand):
    name = "jupyter-secure-dataset-remove"
    description = """Remove a protected dataset: its prepared data, its grants and its spend
    records. The audit trail keeps its history. Asks no question: give --yes. Needs --admin
    and a fresh code too: a dataset added again under the name starts with no spend."""
    examples = "jupyter secure dataset remove patients --yes --admin carol"
    aliases = _step_up_aliases("DatasetRemove")
    flags = {
        **_step_up_flags("DatasetRemove"),
        "yes": ({"DatasetRemove": {"yes": True}}, "Confirm the removal (required)."),
    }
    yes = Bool(False, help="Confirm the removal (required).").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        if not self.yes:
            raise InvalidInput(
                "--yes", f"removing {name!r} deletes its data, grants and spend: pass --yes"
            )
        broker = self.broker()
        shown = broker.show(name)
        self.step_up("removing a dataset (its spend is forgotten with it)")
        broker.remove_dataset(name, Identity.os_user())
        print(
            f"removed dataset {name} (spent {shown['spent']} of {shown['cap']}; "
            f"{len(shown['grants'])} grant(s) gone)"
        )


class DatasetGrant(_StepUpCommand):
    name = "jupyter-secure-dataset-grant"
    description = """Let a group's members (--group) or one user (--user) query a dataset,
    each with --budget to spend (default: the spec's per-user budget). A user's own grant
    wins over their groups'; among groups, the largest. A grant that gives more than the
    user or group may spend now (a new one, or a higher budget) needs --admin and a fresh
    code; lowering one does not."""
    examples = """
    jupyter secure dataset grant patients --group ward7 --admin carol
    echo 123456 | jupyter secure dataset grant patients --user alice --budget 0.2 \\
        --admin carol --code-stdin
    """
    aliases = _step_up_aliases("DatasetGrant", group="group", user="user", budget="budget")
    flags = _step_up_flags("DatasetGrant")
    group = Unicode("", help="The group whose members the grant is for.").tag(config=True)
    user = Unicode("", help="The user the grant is for.").tag(config=True)
    budget = Unicode(
        "", help="What each member may spend, an exact decimal (default: the spec's)."
    ).tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        kind, who = _principal(self.group, self.user)
        broker = self.broker()
        if kind == "user":
            self.warn_unknown_user(who)
        if self.raises_grant(broker, name, kind, who, self.budget):
            self.step_up("a grant that raises what may be spent")
        result = broker.grant(name, kind, who, self.budget or None, Identity.os_user())
        before = f" (was {result['before']})" if result["before"] is not None else ""
        each = " each" if kind == "group" else ""
        print(f"{kind} {who} may spend {result['after']}{each} on {name}{before}")


class DatasetRevoke(_StepUpCommand):
    name = "jupyter-secure-dataset-revoke"
    description = """Take a grant away from a group (--group) or a user (--user). What was
    spent stays recorded; a user may still query through another grant they hold. When
    that other grant is larger (a user's own grant wins over their groups'), revoking is a
    raise and needs --admin and a fresh code."""
    examples = "jupyter secure dataset revoke patients --group ward7"
    aliases = _step_up_aliases("DatasetRevoke", group="group", user="user")
    flags = _step_up_flags("DatasetRevoke")
    group = Unicode("", help="The group whose grant is taken away.").tag(config=True)
    user = Unicode("", help="The user whose own grant is taken away.").tag(config=True)

    def run(self) -> None:
        (name,) = self.positional("name")
        kind, who = _principal(self.group, self.user)
        broker = self.broker()
        if broker.revoke_raises(name, kind, who):
            self.step_up("revoking a grant smaller than the user's group grant (a raise)")
        broker.revoke(name, kind, who, Identity.os_user())
        print(f"revoked the grant of {kind} {who} on {name}")


class DatasetCommand(GroupCommand):
    name = "jupyter-secure-dataset"
    description = "Manage protected datasets for differentially private queries."
    examples = """
    jupyter secure dataset add patients ./patients.csv --spec ./patients.toml
    jupyter secure dataset grant patients --group ward7 --admin carol
    jupyter secure dataset list
    """
    subcommands = {
        "add": (DatasetAdd, "Register a protected dataset: its data file and its spec."),
        "list": (DatasetList, "List the protected datasets with their cap and spend."),
        "show": (DatasetShow, "Show a dataset's spec, grants and each user's spend."),
        "remove": (DatasetRemove, "Remove a dataset, its data and its grants (--yes)."),
        "grant": (DatasetGrant, "Let a group or a user query a dataset, with a budget."),
        "revoke": (DatasetRevoke, "Take a group's or a user's grant away."),
    }


class BudgetShow(_PrivateCommand):
    name = "jupyter-secure-budget-show"
    description = """Show privacy budgets. With --user: each dataset the user may query, with
    their total, spent and remaining budget. Without: what each user has spent on each
    dataset. --dataset limits either to one dataset."""
    examples = """
    jupyter secure budget show --user alice
    jupyter secure budget show --dataset patients --json
    """
    aliases = {**state_aliases, "user": "BudgetShow.user", "dataset": "BudgetShow.dataset"}
    flags = {
        **state_flags,
        "json": ({"BudgetShow": {"as_json": True}}, "Print JSON instead of a table."),
    }
    user_field = "--user"
    user = Unicode("", help="Show this user's budgets.").tag(config=True)
    dataset = Unicode("", help="Only this dataset.").tag(config=True)
    as_json = Bool(False, help="Print JSON instead of a table.").tag(config=True)

    def run(self) -> None:
        self.positional()
        broker = self.broker()
        if self.dataset:
            self.dataset_or_refuse(broker, self.dataset, "--dataset")
        if self.user:
            self.show_user(broker)
        else:
            self.show_spend(broker)

    def show_user(self, broker: Broker) -> None:
        mine = broker.datasets(broker.asker(self.user))
        if self.dataset:
            mine = [d for d in mine if d["name"] == self.dataset]
        if self.as_json:
            out = [{"dataset": d["name"], "measure": d["measure"], **d["budget"]} for d in mine]
            print(json.dumps(out, indent=2))
            return
        if not mine:
            where = f"dataset {self.dataset}" if self.dataset else "any dataset"
            print(f"{self.user} holds no grant on {where}")
            return
        rows: list[tuple[str, ...]] = [("DATASET", "MEASURE", "TOTAL", "SPENT", "REMAINING")]
        for d in mine:
            b = d["budget"]
            rows.append((d["name"], d["measure"], b["total"], b["spent"], b["remaining"]))
        print_table(rows)

    def show_spend(self, broker: Broker) -> None:
        shown = [broker.show(self.dataset)] if self.dataset else broker.list()
        spend = [
            {"dataset": d["name"], "measure": d["spec"]["measure"], "user": user, "spent": spent}
            for d in shown
            for user, spent in sorted(d["spend"].items())
        ]
        if self.as_json:
            print(json.dumps(spend, indent=2))
            return
        if not spend:
            print("nothing spent yet")
            return
        rows: list[tuple[str, ...]] = [("DATASET", "USER", "SPENT", "MEASURE")]
        rows += [(s["dataset"], s["user"], s["spent"], s["measure"]) for s in spend]
        print_table(rows)


class BudgetSet(_StepUpCommand):
    name = "jupyter-secure-budget-set"
    description = """Set USER's own budget on DATASET to AMOUNT (an exact decimal), which wins
    over their groups' grants. Raising what the user may spend needs --admin and a fresh
    code (--code-stdin, or a prompt at a terminal); lowering it does not."""
    examples = """
    jupyter secure budget set alice patients 0.1
    echo 123456 | jupyter secure budget set alice patients 2 --admin carol --code-stdin
    """
    aliases = _step_up_aliases("BudgetSet")
    flags = _step_up_flags("BudgetSet")

    def run(self) -> None:
        user, dataset, amount = self.positional("user", "dataset", "amount")
        broker = self.broker()
        raises = broker.raises_budget(dataset, user, amount)
        self.warn_unknown_user(user)
        if raises:
            self.step_up("raising a budget")
        result = broker.set_budget(dataset, user, amount, Identity.os_user())
        before = result["before"] if result["before"] is not None else "no budget of their own"
        print(f"budget of {user} on {dataset}: {result['after']} (was {before})")


class BudgetReset(_StepUpCommand):
    name = "jupyter-secure-budget-reset"
    description = """Forget what USER has spent on DATASET, giving them their whole budget
    again. Needs --admin and a fresh code. The dataset-wide spend is not reduced: what was
    released stays released."""
    examples = """
    echo 123456 | jupyter secure budget reset alice patients --admin carol --code-stdin
    """
    aliases = _step_up_aliases("BudgetReset")
    flags = _step_up_flags("BudgetReset")

    def run(self) -> None:
        user, dataset = self.positional("user", "dataset")
        broker = self.broker()
        self.dataset_or_refuse(broker, dataset, "dataset")
        self.step_up("resetting what a user spent")
        result = broker.reset(dataset, user, Identity.os_user())
        print(f"spend of {user} on {dataset} reset: {result['before']} -> {result['after']}")


class BudgetCommand(GroupCommand):
    name = "jupyter-secure-budget"
    description = "Show, set and reset users' privacy budgets on protected datasets."
    examples = """
    jupyter secure budget show --user alice
    jupyter secure budget set alice patients 0.1
    """
    subcommands = {
        "show": (BudgetShow, "Show budgets: a user's, or everyone's spend."),
        "set": (BudgetSet, "Set a user's own budget on a dataset (raising needs --admin)."),
        "reset": (BudgetReset, "Forget what a user spent on a dataset (needs --admin)."),
    }
