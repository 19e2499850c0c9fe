#!/usr/bin/env bash
# Runs the whole test suite from nothing: makes .venv if it is missing,
# installs the package with its test extras, then lint, types and tests.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv test
source scripts/_chromium.sh
ensure_chromium

echo "==> ruff"
ruff check .
ruff format --check .
echo "==> mypy"
mypy
echo "==> generated docs"
python scripts/gen_config_docs.py --check
echo "==> jest (labextension)"
# jlpm is the venv's (from jupyterlab); `pip install -e .` normally leaves
# labextension/node_modules behind, since it builds the extension.
if [ ! -d labextension/node_modules ]; then
    (cd labextension && jlpm install)
fi
(cd labextension && jlpm test)
echo "==> pytest"
exec python -m pytest "$@"
