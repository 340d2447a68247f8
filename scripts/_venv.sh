# Shared by scripts/demo and scripts/test: make .venv and install the project into it.
# Usage: source scripts/_venv.sh [extras]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SESSIONCTL_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
    local extras="${1:-}"
    # A venv whose pip is missing (an earlier attempt failed half-way) is made again.
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$VENV"
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            echo "python3 -m venv failed; installing python3-venv" >&2
            rm -rf "$VENV"
            as_root apt-get update -qq || true
            DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    local stamp
    stamp="$VENV/.installed-$(sha1sum < "$ROOT/pyproject.toml" | cut -c1-12)${extras:+-$extras}"
    if [ ! -f "$stamp" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip
        if [ -n "$extras" ]; then
            "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
        else
            "$VENV/bin/python" -m pip install -q -e "$ROOT"
        fi
        touch "$stamp"
    fi
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@";
    elif command -v sudo >/dev/null 2>&1; then sudo "$@";
    else echo "need root for: $*" >&2; return 1; fi
}
