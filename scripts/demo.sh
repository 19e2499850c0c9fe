#!/usr/bin/env bash
# Runs jupyter-secure on its embedded defaults, from nothing: makes .venv if it
# is missing, installs the package, then starts JupyterLab on a demo workspace
# (./jupyter-secure-demo: SQLite state, demo users, a synthetic data set),
# listening on 127.0.0.1 only.
# Usage: ./scripts/demo.sh [jupyter secure lab options, e.g. --port 9999 --no-browser]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""
exec jupyter secure lab "$@"
