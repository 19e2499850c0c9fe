"""Private-query benchmark: the broker against plain pandas on the same Parquet file.

Generates a seeded dataset of ``--rows`` rows (default 1,000,000: ~400k people,
up to 3 rows each; age, charges, sex, region with 10 public values), adds it
through the broker exactly as ``jupyter secure dataset add`` does (SQLite
state, prepared Parquet), and measures in the same run:

* latency of ``Broker.query`` (parse, plan with OpenDP, locking charge,
  release, settle, audit record) for count, sum, mean and a 10-key group-by,
  each a distinct query (so none is served from the repeat cache), p50/p95;
* the peer: pandas reading the same prepared Parquet file and computing the
  same statistic (no privacy, no ledger), p50/p95, and the ratio;
* budget efficiency: how many counts with a 95 % interval of ±X fit in a total
  ε at δ=1e-6, under our zCDP accounting (ρ converted to (ε, δ)) versus
  pure-ε basic composition with Laplace noise;
* empirical coverage of the 95 % interval over ``--coverage`` releases of a
  count and a mean whose true values are known.

The sections above call the broker in-process: the HTTP hop from the kernel
is not in them. The last section is **end to end**: a real jupyter-secure
server in a subprocess (embedded defaults, set up like
``bench/cell_overhead.py``'s, see ``bench/_dp_server.py``) with the dataset
added by ``jupyter secure dataset add`` into its store and granted to a data
scientist, whose guarded kernel runs cells over the websocket. Inside that
kernel, each call is timed from ``ds.count(...)``/``.run()`` in the notebook
client (``jupyter_secure.private``) to having the release, for the same four
queries; the peer is pandas in the same kernel reading a copy of the same
prepared Parquet file from the user's workspace and computing the same
statistic. The kernel prints its timings as one line of JSON, which the
benchmark reads back from the cell's (masked) output.

Usage::

    .venv/bin/python bench/dp_bench.py              # 1,000,000 rows, every section
    .venv/bin/python bench/dp_bench.py --quick      # 100,000 rows, fewer repeats
    .venv/bin/python bench/dp_bench.py --e2e-only   # only the end-to-end section
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.audit.logger import AuditLogger, Identity
from jupyter_secure.audit.sink import AuditSink
from jupyter_secure.privacy.broker import Asker, Broker
from jupyter_secure.privacy.queries import parse_query, plan_query
from jupyter_secure.privacy.spec import parse_spec
from jupyter_secure.storage.database import Database, sqlite_url

REGIONS = [f"r{i}" for i in range(10)]
SPEC = {
    "name": "bench",
    "measure": "rho",
    "per_user_budget": "1000",
    "dataset_cap": "100000",
    "privacy_unit": {"id_column": "pid", "max_rows_per_person": 3},
    "columns": {
        "age": {"type": "numeric", "lower": 0, "upper": 120},
        "charges": {"type": "numeric", "lower": 0, "upper": 50000},
        "sex": {"type": "category", "categories": ["F", "M"]},
        "region": {"type": "category", "categories": REGIONS},
    },
}
ADMIN = Identity("OSUser", "bench")


def make_data(path: Path, rows: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    pl.DataFrame(
        {
            "pid": rng.integers(0, max(rows * 2 // 5, 1), rows),
            "age": rng.uniform(0, 100, rows).round(1),
            "charges": rng.gamma(2.0, 4000.0, rows).clip(0, 60000),
            "sex": rng.choice(["F", "M"], rows),
            "region": rng.choice(REGIONS, rows),
        }
    ).write_parquet(path)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def latency(
    broker: Broker, parquet: Path, repeats: int
) -> list[tuple[str, list[float], list[float]]]:
    asker = Asker("analyst", ("bench",))
    cases = {
        "count": ({"kind": "count"}, lambda df, lo: int((df.age >= lo).sum())),
        "sum": (
            {"kind": "sum", "column": "charges"},
            lambda df, lo: df.charges[df.age >= lo].clip(0, 50000).sum(),
        ),
        "mean": ({"kind": "mean", "column": "age"}, lambda df, lo: df.age[df.age >= lo].mean()),
        "group-by (10 keys)": (
            {"kind": "mean", "column": "charges", "by": ["region"]},
            lambda df, lo: df[df.age >= lo].groupby("region").charges.mean(),
        ),
    }
    rows = []
    for name, (query, peer) in cases.items():

        def ours(i: int, query=query) -> None:  # type: ignore[no-untyped-def]
            q = {
                **query,
                "rho": "0.001",
                "filters": [{"column": "age", "op": ">=", "value": float(i % 50) + 0.5}],
            }
            broker.query(asker, "bench", q)

        def theirs(i: int, peer=peer) -> None:  # type: ignore[no-untyped-def]
            df = pd.read_parquet(parquet)
            peer(df, float(i % 50) + 0.5)

        ours(999)  # warm up: imports, first plan
        theirs(0)
        rows.append((name, timed(ours, repeats), timed(theirs, repeats)))
    return rows


def efficiency(total_eps: float, delta: float, half_width: float) -> tuple[int, int]:
    """How many ±half_width (95 %) counts fit in (total_eps, delta): zCDP vs basic composition."""
    spec = parse_spec({**SPEC, "privacy_unit": {"rows_per_person": 1}})
    plan = plan_query(spec, parse_query({"kind": "count", "accuracy": half_width}, spec))
    rho_each = float(plan.query.allowance.value)  # type: ignore[union-attr]
    # ρ-zCDP implies (ρ + 2 sqrt(ρ ln(1/δ)), δ)-DP: the largest total ρ within total_eps.
    log = math.log(1 / delta)
    rho_total = (math.sqrt(log + total_eps) - math.sqrt(log)) ** 2
    zcdp = int(rho_total / rho_each)
    eps_spec = parse_spec({**SPEC, "measure": "epsilon", "privacy_unit": {"rows_per_person": 1}})
    eps_plan = plan_query(
        eps_spec, parse_query({"kind": "count", "accuracy": half_width}, eps_spec)
    )
    eps_each = float(eps_plan.query.allowance.value)  # type: ignore[union-attr]
    return zcdp, int(total_eps / eps_each)


def coverage(parquet: Path, releases: int) -> dict[str, float]:
    """Share of releases whose 95 % interval holds the true value (target 0.95 ± 0.02)."""
    spec = parse_spec(SPEC)
    frame = pl.scan_parquet(parquet)
    truth_n = frame.select(pl.len()).collect().item()
    truth_mean = frame.select(pl.col("age").mean()).collect().item()
    hits = {"count": 0, "mean": 0}
    for _ in range(releases):
        for kind, truth in (("count", truth_n), ("mean", truth_mean)):
            q = {"kind": kind, "rho": "0.0001", **({"column": "age"} if kind == "mean" else {})}
            r = plan_query(spec, parse_query(q, spec)).release(frame)
            assert r.ci is not None
            hits[kind] += r.ci[0] <= truth <= r.ci[1]
    return {k: v / releases for k, v in hits.items()}


E2E_CELL = r"""
import json, time
import pandas as pd
from jupyter_secure import private

ds = private.dataset(DATASET)


def x_of(i):  # a distinct filter per call, so the broker's repeat cache never answers
    return 0.5 + i % 50 + (i // 50) * 0.01


CASES = {
    "count": (
        lambda x: ds.count(rho="0.001", where=[("age", ">=", x)]),
        lambda df, x: int((df.age >= x).sum()),
    ),
    "sum": (
        lambda x: ds.sum("charges", rho="0.001", where=[("age", ">=", x)]),
        lambda df, x: df.charges[df.age >= x].clip(0, 50000).sum(),
    ),
    "mean": (
        lambda x: ds.mean("age", rho="0.001", where=[("age", ">=", x)]),
        lambda df, x: df.age[df.age >= x].mean(),
    ),
    "group-by (10 keys)": (
        lambda x: ds.groupby("region").mean("charges", rho="0.001", where=[("age", ">=", x)]),
        lambda df, x: df[df.age >= x].groupby("region").charges.mean(),
    ),
}


def bench_case(name, n):
    ask, peer = CASES[name]
    ask(99.9).run()  # warm-up: the connection, the first plan; 99.9 is never used below
    peer(pd.read_parquet(PATH), 99.9)
    ours, theirs, cached = [], [], 0
    for i in range(n):
        x = x_of(i)
        t = time.perf_counter()
        release = ask(x).run()
        ours.append(round((time.perf_counter() - t) * 1000, 3))
        cached += bool(release.cached)
        t = time.perf_counter()
        peer(pd.read_parquet(PATH), x)
        theirs.append(round((time.perf_counter() - t) * 1000, 3))
    # The sums let the benchmark check that output masking left the numbers alone.
    print(json.dumps({"case": name, "ours": ours, "theirs": theirs, "cached": cached,
                      "check": [round(sum(ours), 3), round(sum(theirs), 3)]}))
"""


def end_to_end(data: Path, repeats: int) -> tuple[int, list[tuple[str, list[float], list[float]]]]:
    """Each query timed inside a guarded kernel of a real server: notebook client vs pandas."""
    from _dp_server import dp_server

    rows = []
    with dp_server(data, SPEC, "1000") as server:
        setup = f"DATASET = {SPEC['name']!r}\nPATH = {str(server.peer_file)!r}\n" + E2E_CELL
        server.run(setup, timeout=120)
        prepared = int(server.run("print(len(pd.read_parquet(PATH)))", 120).strip())
        for name in ("count", "sum", "mean", "group-by (10 keys)"):
            out = server.run(f"bench_case({name!r}, {repeats})", timeout=120 + 10 * repeats)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            try:
                got = json.loads(lines[-1])
                ours = [float(v) for v in got["ours"]]
                theirs = [float(v) for v in got["theirs"]]
            except (IndexError, ValueError, KeyError, TypeError) as exc:
                raise RuntimeError(f"{name}: unreadable timings from the kernel: {out!r}") from exc
            check = [round(sum(ours), 3), round(sum(theirs), 3)]
            if (
                len(ours) != repeats
                or len(theirs) != repeats
                or any(abs(a - float(b)) > 0.01 for a, b in zip(check, got["check"], strict=True))
            ):
                raise RuntimeError(f"{name}: the timings were altered on the way: {out!r}")
            if got["cached"]:
                raise RuntimeError(f"{name}: {got['cached']} calls came from the repeat cache")
            rows.append((name, ours, theirs))
    return prepared, rows


def in_process(d: Path, args: argparse.Namespace) -> None:
    """The broker called in-process, budget efficiency and coverage (the first sections)."""
    db = Database(sqlite_url(d / "state.db"))
    db.migrate()
    signer = CheckpointSigner(CheckpointSigner.generate_raw())
    sink = AuditSink(d / "audit", "bench", signer)
    sink.open()
    broker = Broker(db, d / "private", AuditLogger(sink, source="cli"))
    broker.add_dataset(SPEC, d / "raw.parquet", ADMIN)
    broker.grant("bench", "group", "bench", None, ADMIN)
    from jupyter_secure.storage.models import GroupMember, User

    with db.write() as s:
        u = User(name="analyst", disabled=False)
        u.groups.append(GroupMember(group_name="bench"))
        s.add(u)
    prepared = next((d / "private").glob("*.parquet"))
    print(
        f"# Private queries: broker vs pandas ({args.rows:,} rows, {args.repeats} queries each)\n"
    )
    print("| query | jupyter-secure p50 / p95 ms | pandas p50 / p95 ms | ratio (p50) |")
    print("|---|---:|---:|---:|")
    for name, ours, theirs in latency(broker, prepared, args.repeats):
        print(
            f"| {name} | {statistics.median(ours):.1f} / {pct(ours, 0.95):.1f} | "
            f"{statistics.median(theirs):.1f} / {pct(theirs, 0.95):.1f} | "
            f"{statistics.median(ours) / statistics.median(theirs):.2f}x |"
        )
    print("\nBudget efficiency: counts of ±X (95 %) that fit in ε=1, δ=1e-6\n")
    print("| ±X | zCDP (ours) | pure-ε basic composition | ratio |")
    print("|---:|---:|---:|---:|")
    for half in (10.0, 30.0, 100.0, 300.0):
        zcdp, basic = efficiency(1.0, 1e-6, half)
        print(f"| {half:g} | {zcdp} | {basic} | {zcdp / max(basic, 1):.2f}x |")
    cov = coverage(prepared, args.coverage)
    print(
        f"\nCoverage of the 95 % interval over {args.coverage} releases: "
        + ", ".join(f"{k} {v:.1%}" for k, v in cov.items())
    )
    sink.close()
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--coverage", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--e2e-only",
        action="store_true",
        help="only the end-to-end section (a real server and guarded kernel)",
    )
    args = ap.parse_args()
    if args.quick:
        args.rows, args.repeats, args.coverage = 100_000, 10, 200
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_data(d / "raw.parquet", args.rows)
        if not args.e2e_only:
            in_process(d, args)
            print()
        started = time.perf_counter()
        prepared, rows = end_to_end(d / "raw.parquet", args.repeats)
        took = time.perf_counter() - started
    print(
        f"# End to end: notebook client call to result vs pandas in the same guarded kernel "
        f"({args.rows:,} rows generated, {prepared:,} after the privacy unit's bound; "
        f"{args.repeats} queries each)\n"
    )
    print(
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
        f"`python bench/dp_bench.py{' --quick' if args.quick else ''}"
        f"{' --e2e-only' if args.e2e_only else ''}`; "
        f"a real server and guarded kernel, {took:.0f} s with setup\n"
    )
    print(
        "| query | notebook client p50 / p95 ms | pandas (same kernel) p50 / p95 ms | ratio (p50) |"
    )
    print("|---|---:|---:|---:|")
    for name, ours, theirs in rows:
        print(
            f"| {name} | {statistics.median(ours):.1f} / {pct(ours, 0.95):.1f} | "
            f"{statistics.median(theirs):.1f} / {pct(theirs, 0.95):.1f} | "
            f"{statistics.median(ours) / statistics.median(theirs):.2f}x |"
        )


if __name__ == "__main__":
    main()
