# Sourced by ./run-agent and ./run-tests: a project virtual environment in .venv with nodeagent installed
# (editable) at the versions of constraints.txt. A venv because Debian 12/13's system Python refuses
# `pip install` (PEP 668, externally managed) and may lack pip and venv altogether.
#
#   project_venv ROOT EXTRA   ROOT: the checkout; EXTRA: "" (runtime only) or "test". Sets VENV_PYTHON and
#                             puts the venv's bin first on PATH (console scripts: nodeagent, and
#                             kubectl/hadolint from the test extra)
# PYTHON picks the interpreter the venv is made from (default python3, >= 3.11); NODEAGENT_VENV its place
# (default ROOT/.venv).

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    # Debian only, and only with root or sudo: the caller says what is missing otherwise.
    command -v apt-get >/dev/null || return 1
    [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null || return 1
    echo "installing Debian packages: $*" >&2
    as_root apt-get update -qq &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

project_venv() {
    local root="$1" extra="$2" python="${PYTHON:-python3}"
    local venv="${NODEAGENT_VENV:-$root/.venv}"
    if ! command -v "$python" >/dev/null; then
        apt_install python3 || { echo "$python not found: install Python >= 3.11" >&2; return 1; }
    fi
    local version
    if ! version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
        echo "$python does not run: set PYTHON to a Python >= 3.11" >&2
        return 1
    fi
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "$python is Python $version: nodeagent needs Python >= 3.11 (set PYTHON=...)" >&2
        return 1
    fi
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        # Debian splits venv's pip bootstrap (ensurepip) into python3-venv.
        if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
            apt_install python3-venv || {
                echo "$python cannot create a venv: install python3-venv (apt-get install python3-venv)" >&2
                return 1
            }
        fi
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    VENV_PYTHON="$venv/bin/python"
    export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
    # Install again only when what decides the installation changed (the package itself is editable);
    # the test extra includes the runtime, so its stamp satisfies a runtime-only request too.
    local want stamp="$venv/.nodeagent-installed${extra:+-$extra}"
    want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | cksum)"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] ||
        { [ -z "$extra" ] && [ "$(cat "$venv/.nodeagent-installed-test" 2>/dev/null)" = "$want" ]; }; then
        return 0
    fi
    echo "installing nodeagent${extra:+ with the $extra extra} into $venv" >&2
    "$VENV_PYTHON" -m pip install -q -c "$root/constraints.txt" -e "$root${extra:+[$extra]}"
    printf '%s\n' "$want" >"$stamp"
}
