"""What a ``jupyter secure`` command costs a person at the terminal, against Jupyter's own.

    python bench/cli_bench.py            # 15 runs per command, ~1 minute on 2 cores
    python bench/cli_bench.py --runs 5   # quicker
    python bench/cli_bench.py --write    # also write bench/results/cli.md

Each command is a fresh Python process on a state directory made once with
``jupyter secure init`` (SQLite, no datasets), timed from spawn to exit; runs
alternate between the contenders. The peer is ``jupyter server list``
(jupyter_server's own command line: imports the server and reads the runtime
directory), the floor a Jupyter command pays. Also timed in this process: what
checking and compiling all audit event schemas costs (``SchemaSet.check``), which
every command paid at start before the check moved to first use (the server
still does it at start).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from request_bench import env_for

RESULTS = Path(__file__).with_name("results")


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Milliseconds from spawn to exit of one successful command."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    took = 1000 * (time.perf_counter() - start)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return took


def schema_check_ms() -> float:
    """Checking and compiling every audit schema, in a fresh interpreter (nothing cached)."""
    code = (
        "import time; from jupyter_secure.audit.schemas import load_schemas\n"
        "s = load_schemas(); t = time.perf_counter(); s.check()\n"
        "print(1000 * (time.perf_counter() - t), len(s.names()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    return float(out[0])


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    ap.add_argument("--write", action="store_true", help="write bench/results/cli.md")
    args = ap.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs: must be at least 1")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = env_for(tmp)
        state = str(tmp / "state")
        cli = [sys.executable, "-m", "jupyter_secure.cli"]
        timed([*cli, "init", "--state-dir", state], env)
        contenders = {
            "`jupyter secure dataset list`": [*cli, "dataset", "list", "--state-dir", state],
            "`jupyter secure audit query --json`": [
                *cli, "audit", "query", "--json", "--state-dir", state,
            ],
            "peer: `jupyter server list`": [sys.executable, "-m", "jupyter_server", "list"],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for argv in contenders.values():  # one untimed run each: warm the file cache
            timed(argv, env)
        for i in range(args.runs):
            order = list(contenders.items())
            for name, argv in order if i % 2 == 0 else order[::-1]:
                times[name].append(timed(argv, env))
    checks = [schema_check_ms() for _ in range(3)]
    peer = statistics.median(times["peer: `jupyter server list`"])
    lines = [
        f"2 cores, {time.strftime('%Y-%m-%d')}, `python bench/cli_bench.py`; "
        f"{args.runs} runs per command, alternating; spawn to exit",
        "",
        "| command | p50 / p95 ms | p50 vs peer |",
        "|---|---:|---:|",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:,.0f} / {p(values, 0.95):,.0f} | {median / peer:.2f}x |")
    lines += [
        "",
        f"Checking and compiling all audit event schemas (what every command paid at start "
        f"before it moved to first use; the server still pays it once at start): "
        f"{statistics.median(checks):,.0f} ms (median of 3 fresh interpreters).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "cli.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
