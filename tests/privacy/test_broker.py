"""The broker and its ledger on both databases: grants, exact budgets, races, repeats."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import polars as pl
import pytest
from helpers import Trail
from hypothesis import given, settings
from hypothesis import strategies as st
from privacy_specs import GOOD, with_change

from jupyter_secure.audit.logger import Identity
from jupyter_secure.audit.segments import list_segments
from jupyter_secure.privacy import Amount, SpecError
from jupyter_secure.privacy.broker import Asker, Broker, BrokerError
from jupyter_secure.privacy.ledger import Budget, BudgetExceeded, Busy, NoGrant, refusal
from jupyter_secure.privacy.queries import QueryError
from jupyter_secure.storage.database import Database
from jupyter_secure.storage.models import GroupMember, PrivateRelease, User

pytestmark = pytest.mark.timeout(180)

ADMIN = Identity("OSUser", "root")
ALICE = Asker("alice", ("analysts",))
BOB = Asker("bob", ("analysts",))


def write_csv(path: Path, people: int = 400, rows_each: int = 2) -> Path:
    n = people * rows_each
    pl.DataFrame(
        {
            "patient_id": [i // rows_each for i in range(n)],
            "age": [float(20 + i % 50) for i in range(n)],
            "charges": [100.0 * (i % 7) for i in range(n)],
            "sex": ["F" if i % 3 else "M" for i in range(n)],
        }
    ).write_csv(path)
    return path


@pytest.fixture
def broker(db: Database, trail: Trail, tmp_path: Path) -> Broker:
    b = Broker(db, tmp_path / "private", trail.logger)
    b.add_dataset(GOOD, write_csv(tmp_path / "patients.csv"), ADMIN)
    b.grant("patients", "group", "analysts", None, ADMIN)  # 0.5 each, cap 5
    return b


def test_a_dataset_is_stored_prepared_and_private(broker: Broker, tmp_path: Path) -> None:
    files = list((tmp_path / "private").iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".parquet"
    assert (tmp_path / "private").stat().st_mode & 0o077 == 0
    assert "patient_id" not in pl.read_parquet(files[0]).columns
    shown = broker.show("patients")
    assert shown["cap"] == "5"
    assert shown["grants"][0]["budget"] == "0.5"


def test_bad_specs_and_files_are_refused_and_nothing_is_left(
    broker: Broker, tmp_path: Path
) -> None:
    before = sorted((tmp_path / "private").iterdir())
    with pytest.raises(SpecError, match=r"columns\.age\.upper"):
        broker.add_dataset(with_change("columns.age.upper", -1), tmp_path / "patients.csv", ADMIN)
    with pytest.raises(SpecError, match=r"columns\.height: no such column"):
        spec = with_change("columns.height", {"type": "numeric", "lower": 0, "upper": 3})
        broker.add_dataset(spec, tmp_path / "patients.csv", ADMIN)
    with pytest.raises(BrokerError, match=r"file: expected a \.csv or \.parquet"):
        broker.add_dataset(with_change("name", "other"), tmp_path / "x.json", ADMIN)
    with pytest.raises(BrokerError, match="name: a dataset 'patients' exists"):
        broker.add_dataset(GOOD, tmp_path / "patients.csv", ADMIN)
    assert sorted((tmp_path / "private").iterdir()) == before


def test_rows_without_an_id_are_refused(broker: Broker, tmp_path: Path) -> None:
    """Null or blank ids would all count as one person: the truncation would then not
    bound what one real person changes."""
    path = tmp_path / "noid.csv"
    pl.DataFrame({"patient_id": ["a", None, " ", "b"], "age": [1.0, 2.0, 3.0, 4.0],
                  "charges": [1.0] * 4, "sex": ["F"] * 4}).write_csv(path)  # fmt: skip
    with pytest.raises(BrokerError, match=r"privacy_unit\.id_column: 2 rows have no patient_id"):
        broker.add_dataset(with_change("name", "noid"), path, ADMIN)


def test_queries_release_with_interval_cost_and_remaining(broker: Broker) -> None:
    out = broker.query(ALICE, "patients", {"kind": "count", "rho": "0.1"}, kernel_id="k1")
    assert out["cost"] <= "0.1"
    assert not out["cached"]
    lo, hi = out["ci"]
    assert lo <= out["value"] <= hi
    assert abs(out["value"] - 800) < 100  # 400 people x 2 rows (max 3 kept)
    assert Amount.parse(out["remaining"], "rho") >= Amount.parse("0.4", "rho")
    # the ledger row keeps the mechanism with the result (distribution and scale)
    assert out["mechanism"]["len"]["distribution"] == "Integer Gaussian"
    assert out["mechanism"]["len"]["scale"] > 0
    grouped = broker.query(ALICE, "patients", {"kind": "mean", "column": "age", "by": ["sex"],
                                               "rho": "0.2"})  # fmt: skip
    assert [g["key"] for g in grouped["groups"]] == [{"sex": "F"}, {"sex": "M"}]
    median = broker.query(ALICE, "patients", {"kind": "quantile", "column": "age", "q": 0.5,
                                              "rho": "0.1"})  # fmt: skip
    assert median["ci"][0] <= median["value"] <= median["ci"][1]
    assert 30 <= median["value"] <= 60  # ages 20..69, uniform


def test_an_identical_query_is_served_again_for_free(broker: Broker, db: Database) -> None:
    q = {"kind": "sum", "column": "charges", "rho": "0.05"}
    first = broker.query(ALICE, "patients", q)
    again = broker.query(ALICE, "patients", q)
    assert again["cached"]
    assert again["cost"] == "0"
    assert again["value"] == first["value"]
    assert again["remaining"] == first["remaining"]
    other = broker.query(BOB, "patients", q)  # another user's budget: charged
    assert not other["cached"]


def test_no_grant_and_unknown_dataset_look_the_same(broker: Broker) -> None:
    stranger = Asker("mallory", ("students",))
    with pytest.raises(NoGrant):
        broker.query(stranger, "patients", {"kind": "count", "rho": "0.1"})
    with pytest.raises(NoGrant):
        broker.query(ALICE, "nosuch", {"kind": "count", "rho": "0.1"})
    assert broker.datasets(stranger) == []


def test_a_user_grant_overrides_the_group_and_budget_runs_out(broker: Broker) -> None:
    broker.set_budget("patients", "alice", "0.3", ADMIN)
    broker.query(ALICE, "patients", {"kind": "count", "rho": "0.2"})
    with pytest.raises(
        BudgetExceeded, match=r"needs ρ=0\.2, you have ρ=0\.1\d* left on 'patients'"
    ):
        broker.query(ALICE, "patients", {"kind": "count", "rho": "0.2", "filters": []
                                         , "by": ["sex"]})  # fmt: skip
    # exactly what is left still works: no float drift (1.0 - 0.8 != 0.2 in floats)
    left = broker.describe(ALICE, "patients")["budget"]["remaining"]
    broker.query(ALICE, "patients", {"kind": "count", "rho": left, "by": ["sex"]})
    assert broker.describe(ALICE, "patients")["budget"]["remaining"] == "0"


def test_reset_gives_a_fresh_budget_but_keeps_the_dataset_spend(broker: Broker) -> None:
    broker.query(ALICE, "patients", {"kind": "count", "rho": "0.5"})
    spent = broker.show("patients")["spent"]
    broker.reset("patients", "alice", ADMIN)
    assert broker.describe(ALICE, "patients")["budget"]["spent"] == "0"
    assert broker.show("patients")["spent"] == spent


def test_the_dataset_cap_bounds_everyone_together(broker: Broker, tmp_path: Path) -> None:
    spec = with_change("dataset_cap", "0.6")
    spec["name"] = "small"
    broker.add_dataset(spec, tmp_path / "patients.csv", ADMIN)
    broker.grant("small", "group", "analysts", None, ADMIN)
    broker.query(ALICE, "small", {"kind": "count", "rho": "0.4"})
    with pytest.raises(
        BudgetExceeded, match=r"^needs ρ=0\.4, more than the dataset-wide cap of 'small' has left$"
    ):
        broker.query(BOB, "small", {"kind": "count", "rho": "0.4"})


def test_refusals_and_releases_are_audited(broker: Broker, trail: Trail) -> None:
    broker.query(ALICE, "patients", {"kind": "count", "rho": "0.1"}, kernel_id="k", cell_id="c")
    with pytest.raises(QueryError):
        broker.query(ALICE, "patients", {"kind": "count", "rho": "0.1", "user": "bob"})
    with pytest.raises(BudgetExceeded):
        broker.query(ALICE, "patients", {"kind": "count", "rho": "1"})
    with pytest.raises(NoGrant):
        broker.query(ALICE, "secret-ds", {"kind": "count", "rho": "0.1", "pad": "x" * 5000})
    records = [json.loads(line) for _, f in list_segments(trail.directory)
               for line in f.read_text().splitlines()]  # fmt: skip
    records = [r for r in records if "eventName" in r]
    names = [r["eventName"] for r in records]
    assert names.count("DatasetChanged") == 1
    assert names.count("BudgetChanged") == 1
    queries = [r for r in records if r["eventName"] == "PrivateQuery"]
    # refusals before any charge are recorded too: probing shows up in the trail
    assert [q["errorCode"] for q in queries] == [None, "QueryError", "BudgetExceeded", "NoGrant"]
    assert queries[1]["requestParameters"]["query"]["user"] == "bob"
    assert queries[3]["requestParameters"]["query"] == {"truncated": True, "bytes": 5042}
    assert queries[0]["requestParameters"]["cellId"] == "c"
    assert queries[0]["userIdentity"]["name"] == "alice"


def test_a_removed_dataset_takes_its_file_and_grants(broker: Broker, tmp_path: Path) -> None:
    broker.remove_dataset("patients", ADMIN)
    assert list((tmp_path / "private").glob("*.parquet")) == []
    with pytest.raises(NoGrant):
        broker.describe(ALICE, "patients")


def test_disabled_or_unknown_accounts_ask_nothing(broker: Broker, db: Database) -> None:
    with db.write() as s:
        u = User(name="carol", disabled=False)
        u.groups.append(GroupMember(group_name="analysts"))
        s.add(u)
    assert broker.asker("carol").groups == ("analysts",)
    with db.write() as s:
        s.query(User).filter_by(name="carol").one().disabled = True
    with pytest.raises(NoGrant):
        broker.asker("carol")
    with pytest.raises(NoGrant):
        broker.asker("nobody")


def test_a_concurrent_burst_cannot_overspend(broker: Broker, db: Database) -> None:
    """100 requests at once with budget for exactly 10: exactly 10 are charged."""
    broker.set_budget("patients", "alice", "0.1", ADMIN)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker(i: int) -> None:
        start.wait(30)
        for j in range(5):
            q = {"kind": "count", "rho": "0.01", "filters": [
                {"column": "age", "op": ">=", "value": float(i * 5 + j)}]}  # fmt: skip
            try:
                broker.query(ALICE, "patients", q)
                result = "ok"
            except BudgetExceeded:
                result = "refused"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(outcomes) == 100
    assert outcomes.count("ok") == 10
    assert broker.describe(ALICE, "patients")["budget"]["remaining"] == "0"
    with db.read() as s:
        charged = s.query(PrivateRelease).filter_by(user_name="alice").count()
    assert charged == 10


def test_identical_queries_racing_are_charged_once(broker: Broker) -> None:
    q = {"kind": "count", "rho": "0.05"}
    results: list[object] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait(30)
        try:
            results.append(broker.query(ALICE, "patients", q)["cost"])
        except Busy:
            results.append("busy")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    charged = [r for r in results if r not in ("0", "busy")]
    assert len(charged) == 1, results
    spent = Amount.parse(broker.describe(ALICE, "patients")["budget"]["spent"], "rho")
    assert spent == Amount.parse(str(charged[0]), "rho")


rho = st.integers(min_value=0, max_value=2 * 10**9)


@settings(max_examples=10_000, deadline=None)
@given(total=rho, cap=rho, costs=st.lists(st.integers(0, 10**9), max_size=12))
def test_no_sequence_of_charges_passes_the_budget_or_the_cap(
    total: int, cap: int, costs: list[int]
) -> None:
    """The ledger's whole decision, over 10,000 random sequences: never over either limit."""
    spent = cap_spent = 0
    for c in costs:
        cost = Amount("rho", c)
        budget = Budget("d", "rho", Amount("rho", total), Amount("rho", spent))
        if refusal("d", cost, budget, Amount("rho", cap), Amount("rho", cap_spent)) is None:
            spent += c
            cap_spent += c
        assert spent <= total
        assert cap_spent <= cap
        # and a charge that fits is never refused
        fits = spent + 1 <= total and cap_spent + 1 <= cap
        budget = Budget("d", "rho", Amount("rho", total), Amount("rho", spent))
        if fits:
            assert refusal("d", Amount("rho", 1), budget, Amount("rho", cap),
                           Amount("rho", cap_spent)) is None  # fmt: skip
