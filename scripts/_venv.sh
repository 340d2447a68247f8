# Shared by scripts/demo and scripts/test: make .venv and install the project into it.
# Usage: source scripts/_venv.sh [extras]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SESSIONCTL_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
    local extras="${1:-}"
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            echo "python3 -m venv failed; installing python3-venv" >&2
            as_root apt-get install -y -qq python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    local stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)${extras:+-$extras}"
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
