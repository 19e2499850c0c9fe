# Debian's Chromium for the browser tests (Playwright drives it; nothing downloads a
# browser). Installed with apt when missing: as root, or through passwordless sudo.
ensure_chromium() {
    local bin="${JUPYTER_SECURE_CHROMIUM:-/usr/bin/chromium}"
    if [ -x "$bin" ]; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "error: Chromium is not installed at $bin and this account cannot install it;" >&2
            echo "       run: sudo apt-get install chromium  (or set JUPYTER_SECURE_CHROMIUM)" >&2
            exit 1
        fi
    fi
    echo "==> installing Debian's chromium for the browser tests"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
