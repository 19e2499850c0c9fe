#!/usr/bin/env bash
# Runs every benchmark in bench/ with its peers (installs the [bench] extra:
# Presidio and scrubadub) and rewrites bench/results/*.md.
# Usage: ./scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv bench
quick=()
if [ "${1:-}" = "--quick" ]; then
    quick=(--quick)
fi
echo "==> audit trail"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/audit_bench.py --events 20000
else
    python bench/audit_bench.py
fi
echo "==> PII engine"
python bench/pii_bench.py "${quick[@]}"
echo "==> authorization decisions"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/authz_bench.py --decisions 50000
else
    python bench/authz_bench.py --write
fi
echo "==> request latency against plain jupyter_server"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/request_bench.py --requests 200
else
    python bench/request_bench.py --write
fi
echo "==> cell round trip against plain Jupyter (kernel guard)"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/cell_overhead.py --cells 200 --big 10
else
    python bench/cell_overhead.py --write
fi
echo "==> private queries against pandas (broker, end to end, budget efficiency, coverage)"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/dp_bench.py --quick
else
    python bench/dp_bench.py | tee bench/results/dp.md
fi
echo "==> alarms: weeks of synthetic users with injected attacks, ours vs static thresholds"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/alarm_bench.py --quick
else
    python bench/alarm_bench.py | tee bench/results/alarms.md
fi
echo "==> command-line start-up against jupyter_server's own command line"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/cli_bench.py --runs 5
else
    python bench/cli_bench.py --write
fi
echo "==> JupyterLab with the extension against plain JupyterLab, in Chromium"
if [ ${#quick[@]} -gt 0 ]; then
    python bench/lab_bench.py --quick
else
    python bench/lab_bench.py --write
fi
