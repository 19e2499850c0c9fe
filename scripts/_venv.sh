# Shared by scripts/demo.sh and scripts/test.sh: create .venv with a Python
# >= 3.11 if it is missing and install the package (editable) with the given
# extras. Re-running is cheap: pip skips what is already satisfied.
ensure_venv() {
    local extras="$1"
    local py="${PYTHON:-}"
    if [ -z "$py" ]; then
        for candidate in python3.13 python3.12 python3.11 python3; do
            if command -v "$candidate" >/dev/null 2>&1 &&
                "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
                py="$candidate"
                break
            fi
        done
    fi
    if [ -z "$py" ]; then
        echo "error: Python >= 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv with $py"
        "$py" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
    local stamp=".venv/.installed-${extras:-base}"
    local target="."
    if [ -n "$extras" ]; then
        target=".[$extras]"
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "==> installing jupyter-secure${extras:+[$extras]} into .venv"
        python -m pip install --quiet --upgrade pip
        python -m pip install --quiet -e "$target"
        touch "$stamp"
    fi
}
