"""The notebook-side client: what it sends, how it reads answers, what it refuses.

Pure unit tests: the pieces of :mod:`jupyter_secure.private` that build query
bodies, read the broker's JSON and map its errors are plain functions, held
here against hand-written inputs. The HTTP round trip against the real broker
is tested through the real server elsewhere; here a request only ever meets
"no session", a URL that is not http(s), or a port nobody listens on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_secure import private
from jupyter_secure.kernel import session
from jupyter_secure.kernel.session import KernelSession

INFO: dict[str, Any] = {
    "name": "patients",
    "description": "Hospital admissions <2024>",
    "measure": "rho",
    "columns": {
        "age": {"type": "numeric", "lower": 0.0, "upper": 120.0},
        "charges": {"type": "numeric", "lower": 0.0, "upper": 5000.5},
        "sex": {"type": "category", "categories": ["F", "M", "<script>alert(1)</script>"]},
        "region": {"type": "category", "categories": ["north", "south"]},
    },
    "budget": {"total": "0.5", "spent": "0.01", "remaining": "0.49"},
}


@pytest.fixture
def ds() -> private.Dataset:
    return private.Dataset(private._info_from_json(INFO))


@pytest.fixture
def eps_ds() -> private.Dataset:
    return private.Dataset(
        private._info_from_json({**INFO, "name": "visits", "measure": "epsilon"})
    )


@pytest.fixture
def no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "current", lambda: None)


def _session(monkeypatch: pytest.MonkeyPatch, broker_url: str | None) -> None:
    installed = KernelSession("k1", "alice", broker_url, "s3cret")
    monkeypatch.setattr(session, "current", lambda: installed)


# -- the allowance: exactly one, in the dataset's measure, exact -------------------------------


def test_exactly_one_allowance_is_required(ds: private.Dataset) -> None:
    with pytest.raises(TypeError, match=r"exactly one of rho= .*accuracy="):
        ds.count()
    with pytest.raises(TypeError, match=r"not rho= and accuracy="):
        ds.count(rho=0.01, accuracy=5)
    with pytest.raises(TypeError, match=r"not rho= and epsilon="):
        ds.mean("age", rho=0.01, epsilon=0.1)


def test_the_measure_must_be_the_datasets(ds: private.Dataset, eps_ds: private.Dataset) -> None:
    with pytest.raises(ValueError, match=r"^epsilon: 'patients' is accounted in ρ \(rho\)"):
        ds.count(epsilon=0.5)
    with pytest.raises(ValueError, match=r"^rho: 'visits' is accounted in ε \(epsilon\)"):
        eps_ds.sum("charges", rho=0.01)
    assert eps_ds.count(epsilon=0.5).query["epsilon"] == "0.5"


@pytest.mark.parametrize(
    ("given_", "sent"),
    [
        (0.1, "0.1"),
        (0.02, "0.02"),
        (1e-7, "0.0000001"),
        (Decimal("0.050"), "0.05"),
        ("0.25", "0.25"),
        (" 1e-2 ", "0.01"),
        (1, "1"),
    ],
)
def test_amounts_are_sent_as_exact_decimal_strings(given_: object, sent: str) -> None:
    assert private._allowance_text(given_, "rho") == sent


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (True, ValueError, r"^rho: expected a number, not True"),
        (float("nan"), ValueError, r"^rho: must be finite"),
        (float("inf"), ValueError, r"^rho: must be finite"),
        (-0.1, ValueError, r"^rho: must be greater than 0"),
        (0, ValueError, r"^rho: must be greater than 0"),
        ("abc", ValueError, r"^rho: 'abc' is not a number"),
        (1e9, ValueError, r"^rho: .* is out of range"),
        ([0.1], TypeError, r"^rho: expected a number, not list"),
    ],
)
def test_bad_amounts_are_refused_naming_the_argument(
    ds: private.Dataset, bad: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ds.count(rho=bad)


@given(st.floats(min_value=1e-9, max_value=1e5, allow_nan=False, allow_infinity=False))
def test_a_float_is_sent_as_its_shortest_text(value: float) -> None:
    assert Decimal(private._allowance_text(value, "rho")) == Decimal(repr(value))


def test_accuracy_is_a_positive_float(ds: private.Dataset) -> None:
    assert ds.count(accuracy=10).query["accuracy"] == 10.0
    assert isinstance(ds.count(accuracy=10).query["accuracy"], float)
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match=r"^accuracy: "):
            ds.count(accuracy=bad)
    with pytest.raises(TypeError, match=r"^accuracy: expected a number, not str"):
        ds.count(accuracy="5")


# -- filters ------------------------------------------------------------------------------


def test_filters_as_tuples_and_dicts_become_the_json_form() -> None:
    assert private._filters(
        [
            ("sex", "==", "F"),
            {"column": "age", "op": ">=", "value": 18},
            ["region", "in", ("north", "south")],
            ("charges", "<", Decimal("1000.5")),
        ]
    ) == [
        {"column": "sex", "op": "==", "value": "F"},
        {"column": "age", "op": ">=", "value": 18},
        {"column": "region", "op": "in", "value": ["north", "south"]},
        {"column": "charges", "op": "<", "value": 1000.5},
    ]
    # one filter on its own; a set is sent in a stable order
    assert private._filters(("sex", "!=", "M")) == [{"column": "sex", "op": "!=", "value": "M"}]
    assert private._filters({"column": "region", "op": "in", "value": {"south", "north"}}) == [
        {"column": "region", "op": "in", "value": ["north", "south"]}
    ]
    assert private._filters(None) == []
    assert private._filters([]) == []


@pytest.mark.parametrize(
    ("where", "error", "message"),
    [
        ([("sex", "=", "F")], ValueError, r"^where\[0\]: op must be one of"),
        ([("sex", "==")], TypeError, r"^where\[0\]: expected \(column, op, value\)"),
        ([{"column": "sex", "op": "=="}], ValueError, r"^where\[0\]: expected keys"),
        ([("", "==", "F")], ValueError, r"^where\[0\]: the column must be a name"),
        ([("age", ">", True)], ValueError, r"^where\[0\]: expected a category or a number"),
        ([("age", ">", float("inf"))], ValueError, r"^where\[0\]: must be finite"),
        ([("sex", "in", "F")], ValueError, r"^where\[0\]: 'in' takes a list"),
        ([("sex", "==", object())], TypeError, r"^where\[0\]: expected a category or a number"),
        ("sex == 'F'", TypeError, r"^where: expected a list"),
    ],
)
def test_bad_filters_are_refused_naming_the_filter(
    where: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        private._filters(where)


# -- query bodies ---------------------------------------------------------------------------


def test_query_bodies_for_count_sum_mean_and_groupby(ds: private.Dataset) -> None:
    assert ds.count(rho=0.01).query == {"kind": "count", "column": None, "rho": "0.01"}
    assert ds.sum("charges", rho="0.02", where=[("sex", "==", "F")]).query == {
        "kind": "sum",
        "column": "charges",
        "filters": [{"column": "sex", "op": "==", "value": "F"}],
        "rho": "0.02",
    }
    assert ds.mean("age", accuracy=0.5).query == {
        "kind": "mean",
        "column": "age",
        "accuracy": 0.5,
    }
    assert ds.groupby("sex").mean("charges", rho=0.05).query == {
        "kind": "mean",
        "column": "charges",
        "by": ["sex"],
        "rho": "0.05",
    }
    grouped = ds.groupby("sex", "region").count(rho=0.01, where=[("age", ">=", 18)])
    assert grouped.query == {
        "kind": "count",
        "column": None,
        "by": ["sex", "region"],
        "filters": [{"column": "age", "op": ">=", "value": 18}],
        "rho": "0.01",
    }
    assert ds.groupby(["sex", "region"]).by == ["sex", "region"]


def test_query_bodies_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^kind: expected one of count, sum, mean, quantile"):
        private._query_body("median", "age", measure="rho", rho=0.1)
    with pytest.raises(TypeError, match=r"^column: a count takes no column"):
        private._query_body("count", "age", measure="rho", rho=0.1)
    with pytest.raises(TypeError, match=r"^column: mean needs a numeric column name"):
        private._query_body("mean", None, measure="rho", rho=0.1)
    with pytest.raises(ValueError, match=r"^by: 'sex' is listed twice"):
        private._query_body("count", None, measure="rho", rho=0.1, by=["sex", "sex"])


def test_quantile_bodies(ds: private.Dataset) -> None:
    body = private._query_body("quantile", "age", measure="rho", rho=0.1, q=[0.25, 0.75])
    assert body == {"kind": "quantile", "column": "age", "q": [0.25, 0.75], "rho": "0.1"}
    assert ds.median("age", rho=0.1).query["q"] == 0.5
    for bad in (0, 1, True, "0.5", [0.5, 2]):
        with pytest.raises(ValueError, match=r"^q: expected levels"):
            private._query_body("quantile", "age", measure="rho", rho=0.1, q=bad)


def test_groupby_needs_a_column(ds: private.Dataset) -> None:
    with pytest.raises(TypeError, match="at least one"):
        ds.groupby()


def test_the_query_a_pending_query_holds_cannot_be_changed_from_outside(
    ds: private.Dataset,
) -> None:
    q = ds.count(rho=0.01)
    q.query["rho"] = "1"
    assert q.query["rho"] == "0.01"


# -- reading the broker's answers -----------------------------------------------------------

UNGROUPED: dict[str, Any] = {
    "query": {"kind": "mean", "column": "age", "by": [], "filters": [], "rho": "0.02"},
    "kind": "mean",
    "column": "age",
    "by": [],
    "value": 41.2345,
    "ci": [40.72, 41.74],
    "groups": None,
    "cost": "0.02",
    "measure": "rho",
    "remaining": "0.46",
    "cached": False,
    "release_id": 7,
}

GROUPED: dict[str, Any] = {
    "query": {"kind": "count", "column": None, "by": ["sex"], "filters": [], "rho": "0.05"},
    "kind": "count",
    "column": None,
    "by": ["sex"],
    "value": None,
    "ci": None,
    "groups": [
        {"key": {"sex": "F"}, "value": 812.3, "ci": [800.1, 824.5]},
        {"key": {"sex": "<script>alert(1)</script>"}, "value": 3.2, "ci": [-9.0, 15.4]},
    ],
    "cost": "0.05",
    "measure": "rho",
    "remaining": "0.41",
    "cached": True,
    "release_id": 8,
}


def test_an_ungrouped_release() -> None:
    r = private._release_from_json(UNGROUPED, "patients")
    assert (r.kind, r.column, r.by, r.value, r.ci) == ("mean", "age", (), 41.2345, (40.72, 41.74))
    assert r.cost == Decimal("0.02")
    assert isinstance(r.cost, Decimal)
    assert r.remaining == Decimal("0.46")
    assert (r.measure, r.cached, r.release_id, r.groups) == ("rho", False, 7, None)
    assert float(r) == 41.2345
    assert repr(r) == (
        "mean(age) = 41.23 ± 0.51 (95% CI 40.72 \u2013 41.74) · cost ρ=0.02 · ρ=0.46 left on "
        "'patients'"
    )
    frame = r.to_pandas()
    assert list(frame.columns) == ["value", "ci_low", "ci_high"]
    assert frame.to_dict("records") == [{"value": 41.2345, "ci_low": 40.72, "ci_high": 41.74}]
    assert "<td>41.23</td>" in r._repr_html_()


def test_a_grouped_release() -> None:
    r = private._release_from_json(GROUPED, "patients")
    assert r.value is None
    assert r.by == ("sex",)
    assert r.groups is not None
    assert r.groups[0] == {"key": {"sex": "F"}, "value": 812.3, "ci": (800.1, 824.5)}
    with pytest.raises(TypeError, match="grouped"):
        float(r)
    assert repr(r).splitlines() == [
        "count by sex · cost ρ=0.05 (cached: not charged again) · ρ=0.41 left on 'patients'",
        "  sex=F: 812 ± 12 (95% CI 800 \u2013 824)",
        "  sex=<script>alert(1)</script>: 3 ± 12 (95% CI -9 \u2013 15)",
    ]
    frame = r.to_pandas()
    assert list(frame.columns) == ["sex", "value", "ci_low", "ci_high"]
    assert frame["sex"].tolist() == ["F", "<script>alert(1)</script>"]
    assert frame["value"].tolist() == [812.3, 3.2]
    assert frame["ci_high"].tolist() == [824.5, 15.4]


def test_release_html_escapes_every_string() -> None:
    hostile = {
        **GROUPED,
        "query": {
            **GROUPED["query"],
            "filters": [{"column": "region", "op": "==", "value": "<img src=x onerror=y>"}],
        },
    }
    page = private._release_from_json(hostile, "<b>ds</b>")._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert "<b>" not in page
    assert page.count("<tr>") == 3  # the header and the two groups


def test_a_clipped_interval_shows_its_wider_side() -> None:
    r = private._release_from_json({**UNGROUPED, "value": 0.4, "ci": [0.0, 1.5]}, "patients")
    assert "0.4 ± 1.1 (95% CI 0.0 \u2013 1.5)" in repr(r)


def test_malformed_releases_are_refused() -> None:
    for broken in (
        {**UNGROUPED, "cost": 0.5 + 0j},
        {**UNGROUPED, "cost": "lots"},
        {**UNGROUPED, "ci": [1.0]},
        {**UNGROUPED, "measure": "delta"},
        {**UNGROUPED, "kind": "median"},
        {**GROUPED, "groups": [{"key": "F", "value": 1.0, "ci": [0.0, 2.0]}]},
    ):
        with pytest.raises(private.BrokerUnavailable, match="malformed"):
            private._release_from_json(broken, "patients")


def test_dataset_info_budget_and_preview() -> None:
    info = private._info_from_json(INFO)
    assert (info.name, info.measure) == ("patients", "rho")
    assert info.schema["sex"]["categories"][0] == "F"
    assert info.budget == private.Budget(
        Decimal("0.5"), Decimal("0.01"), Decimal("0.49"), "rho", "patients"
    )
    assert repr(info.budget) == "Budget on 'patients': ρ=0.49 left of ρ=0.5 (ρ=0.01 spent)"
    page = info._repr_html_()
    assert "&lt;script&gt;" in page
    assert "<script>" not in page
    assert "&lt;2024&gt;" in page

    preview = private._preview_from_json(
        {
            "cost": "0.02",
            "measure": "rho",
            "accuracy": {"len": 12.3, "age": 2.1},
            "ci_half_width": 0.51,
            "remaining": "0.49",
            "allowance": "0.02",
        },
        {"kind": "mean", "column": "age", "rho": "0.02"},
        "patients",
    )
    assert preview.cost == Decimal("0.02")
    assert preview.remaining == Decimal("0.49")
    assert preview.accuracy == {"len": 12.3, "age": 2.1}
    assert repr(preview) == (
        "preview mean(age) on 'patients': would cost ρ=0.02 of ρ=0.49 left · 95% CI ± 0.51 · "
        "nothing spent"
    )


def test_the_dataset_list_reads_like_a_table() -> None:
    listed = private.DatasetList(
        [private._info_from_json(INFO), private._info_from_json({**INFO, "name": "visits"})]
    )
    assert len(listed) == 2
    assert listed.names == ["patients", "visits"]
    assert listed["visits"].name == "visits"
    assert listed[0].name == "patients"
    assert [i.name for i in listed] == ["patients", "visits"]
    assert repr(listed).splitlines() == [
        "dataset   measure  total  spent  remaining",
        "patients  ρ        0.5    0.01   0.49",
        "visits    ρ        0.5    0.01   0.49",
    ]
    assert "&lt;2024&gt;" in listed._repr_html_()
    assert repr(private.DatasetList([])) == "no private datasets are granted to you"


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "cls"),
    [
        (409, "BudgetExceeded", private.BudgetExceeded),
        (400, "QueryError", private.QueryRefused),
        (404, "NotFound", private.DatasetNotFound),
        (403, "Forbidden", private.AccessDenied),
        (409, "Busy", private.QueryBusy),
    ],
)
def test_broker_errors_map_to_exceptions(
    status: int, kind: str, cls: type[private.PrivateQueryError]
) -> None:
    message = "needs ρ=0.05, you have ρ=0.03 left on 'patients'"
    body = f'{{"error": "{kind}", "message": "{message}"}}'.encode()
    err = private._error_from_response(status, body)
    assert type(err) is cls
    assert isinstance(err, private.PrivateQueryError)
    assert str(err) == message
    assert (err.status, err.kind) == (status, kind)


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (500, b"<html>oops</html>", private.BrokerUnavailable),
        (503, None, private.BrokerUnavailable),
        (401, b"", private.AccessDenied),
        (302, b"", private.PrivateQueryError),
        (418, b'{"error": "Teapot"}', private.PrivateQueryError),
        (400, b"[1, 2]", private.PrivateQueryError),
    ],
)
def test_other_errors_map_by_status(status: int, body: bytes | None, cls: type[Exception]) -> None:
    err = private._error_from_response(status, body)
    assert type(err) is cls
    assert str(err) == f"the private-query broker answered HTTP {status}"


# -- the synthetic mock ------------------------------------------------------------------------


def test_mock_has_the_schemas_columns_within_bounds(ds: private.Dataset) -> None:
    frame = ds.mock(rows=500, seed=3)
    assert list(frame.columns) == ["age", "charges", "sex", "region"]
    assert len(frame) == 500
    assert frame.attrs["synthetic"] is True
    assert pd.api.types.is_integer_dtype(frame["age"])  # both bounds are whole numbers
    assert pd.api.types.is_float_dtype(frame["charges"])
    assert frame["age"].between(0, 120).all()
    assert frame["charges"].between(0.0, 5000.5).all()
    assert set(frame["sex"]) == set(INFO["columns"]["sex"]["categories"])
    assert set(frame["region"]) <= {"north", "south"}


def test_mock_is_deterministic_with_a_seed(ds: private.Dataset) -> None:
    pd.testing.assert_frame_equal(ds.mock(50, seed=7), ds.mock(50, seed=7))
    assert not ds.mock(50, seed=7).equals(ds.mock(50, seed=8))
    assert ds.mock(0).shape == (0, 4)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match=r"^rows: "):
            ds.mock(bad)  # type: ignore[arg-type]


def test_mock_never_needs_the_broker(ds: private.Dataset, no_session: None) -> None:
    assert len(ds.mock(3, seed=0)) == 3


# -- outside a guarded kernel -------------------------------------------------------------------


def test_every_call_outside_a_guarded_kernel_is_refused(
    ds: private.Dataset, no_session: None, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = "only reachable from a jupyter-secure guarded kernel"
    q = ds.mean("age", rho=0.02)
    calls = [
        private.datasets,
        lambda: private.dataset("patients"),
        ds.budget,
        q.preview,
        q.run,
        lambda: q.value,
        lambda: float(q),
        q.to_pandas,
        q._repr_html_,
        lambda: private.privacy_budget(""),
        lambda: private.privacy_budget("patients"),
    ]
    for call in calls:
        with pytest.raises(private.BrokerUnavailable, match=expected):
            call()
    q._ipython_display_()  # shows the refusal rather than raising it into IPython
    assert capsys.readouterr().err == f"BrokerUnavailable: {private._OUTSIDE}\n"
    assert not q.done


def test_a_session_without_a_broker_url_is_refused(
    ds: private.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    _session(monkeypatch, None)
    with pytest.raises(private.BrokerUnavailable, match="guarded kernel"):
        ds.count(rho=0.01).run()


def test_repr_describes_a_pending_query_without_running_it(
    ds: private.Dataset, no_session: None
) -> None:
    # A debugger or variable inspector calls repr(): that must never spend.
    q = ds.mean("age", rho=0.02, where=[("sex", "==", "F")])
    assert repr(q) == (
        "<pending mean(age where sex == 'F') on 'patients', ρ=0.02: not run yet; display it, "
        "read .value or call .run() to spend; .preview() is free>"
    )
    assert str(q) == repr(q)
    assert "accuracy ± 3.0" in repr(ds.groupby("sex").count(accuracy=3))
    assert not q.done


def test_only_http_broker_urls_are_used(
    ds: private.Dataset, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "datasets").write_text('{"datasets": []}')
    _session(monkeypatch, tmp_path.as_uri())
    with pytest.raises(private.BrokerUnavailable, match="not http"):
        private.datasets()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_broker_and_never_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A "proxy" that accepts connections and never answers: were the token sent through
    # it, the request would time out instead of being refused at the broker's closed port.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        proxy = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        for name in ("http_proxy", "HTTP_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.setattr(private, "REQUEST_TIMEOUT", 2.0)
        _session(monkeypatch, f"http://127.0.0.1:{_closed_port()}/a%40b/secure/api/private/")
        with pytest.raises(private.BrokerUnavailable, match=r"cannot reach the private-query"):
            private.dataset("patients")


def test_a_broker_that_does_not_answer_in_time(
    ds: private.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        monkeypatch.setattr(private, "REQUEST_TIMEOUT", 0.2)
        _session(monkeypatch, f"http://127.0.0.1:{silent.getsockname()[1]}/api/private")
        with pytest.raises(private.BrokerUnavailable, match=r"did not answer within 0.2 s$"):
            ds.budget()
        # A query that timed out may have been charged: the message says how to get it.
        with pytest.raises(private.BrokerUnavailable, match=r"may have run and been charged"):
            ds.count(rho=0.01).run()


def test_urls_quote_each_segment() -> None:
    base = "http://127.0.0.1:8888/a%40b/secure/api/private/"
    assert private._url(base, "datasets", "my data/x", "query") == (
        "http://127.0.0.1:8888/a%40b/secure/api/private/datasets/my%20data%2Fx/query"
    )


def test_there_is_no_cell_id_outside_a_kernel() -> None:
    assert private._cell_id() is None


def test_in_a_real_ipython_shell(tmp_path: Path) -> None:
    """The magic registers; a refused display shows the broker's sentence once, asking once."""
    code = f"""
from IPython.core.interactiveshell import InteractiveShell
from jupyter_secure import private
shell = InteractiveShell.instance()
private.load_ipython_extension(shell)
shell.user_ns["ds"] = private.Dataset(private._info_from_json({INFO!r}))
try:
    shell.run_line_magic("privacy_budget", "patients")
except private.BrokerUnavailable as err:
    print("magic:", err, flush=True)
print("display:", shell.run_cell("ds.mean('age', rho=0.02)").success)
"""
    env = {**os.environ, "IPYTHONDIR": str(tmp_path)}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    magic, shown = done.stdout.split("\n", 1)
    assert magic.startswith("magic: private datasets are only reachable")
    # IPython would try three formatters (each asking the broker) were the error raised.
    assert shown.count("only reachable from a jupyter-secure guarded kernel") == 1
    assert "display: True" in shown  # a limit of IPython: display errors do not fail the cell
