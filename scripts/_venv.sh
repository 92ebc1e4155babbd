# Sourced by scripts/test and scripts/run: make .venv and install the project.
#
# ensure_venv EXTRAS   e.g. ensure_venv "[test]" or ensure_venv ""
# Installing is skipped when pyproject.toml is unchanged since the last
# install with the same extras (a copy of it is kept in .venv as the stamp).

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    local extras="$1"
    local stamp=".venv/.installed-pyproject${extras:+-${extras//[^a-z]/}}"
    if [ ! -x .venv/bin/python ]; then
        local python
        if ! python="$(find_python)"; then
            echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
            return 1
        fi
        echo "creating .venv with $python" >&2
        "$python" -m venv .venv
    fi
    if ! cmp -s pyproject.toml "$stamp"; then
        echo "installing the project into .venv" >&2
        .venv/bin/python -m pip install -q -e ".${extras}"
        cp pyproject.toml "$stamp"
    fi
}
