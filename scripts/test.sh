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
echo "==> JupyterLab extension: jest"
# jlpm is the venv's (from jupyterlab). `pip install -e .` built the extension
# and left labextension/node_modules behind; an edit since then (src, style,
# package.json) is rebuilt and reinstalled here, so the browser tests never
# run against a stale bundle.
installed=.venv/share/jupyter/labextensions/jupyter-secure/package.json
if [ ! -d labextension/node_modules ]; then
    (cd labextension && jlpm install)
fi
if [ ! -f "$installed" ] ||
    [ -n "$(find labextension/src labextension/style labextension/package.json -newer "$installed" -print -quit)" ]; then
    echo "    labextension/ changed since it was installed: rebuilding"
    (cd labextension && jlpm build:prod)
    python -m pip install --quiet --no-deps -e .
fi
(cd labextension && jlpm test)
echo "==> pytest"
exec python -m pytest "$@"
