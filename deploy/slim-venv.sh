#!/usr/bin/env bash
# Slim the image's virtualenv in the Dockerfile's builder stage, after everything is installed:
#
#   deploy/slim-venv.sh /opt/nodeagent
#
# - Shared objects: `strip --strip-unneeded` (wheels ship their C extensions with symbols and debug
#   info: 14.4 MB of .so become 2.9 MB; the dynamic symbols Python imports them by stay).
# - What only development reads: the dependencies' test directories (psutil, jeepney), typing stubs
#   (.pyi, py.typed), Cython and C sources and headers (.pyx, .pxd, .pxi, .c, .h), multidict's
#   _testcapi extension. nodeagent's own tree is left as installed.
# - One copy of bytecode: every __pycache__ is dropped and rebuilt at one optimisation level (plain: the
#   agent runs without -O, so its asserts stay), as unchecked-hash .pyc files, which Python uses whatever
#   the mtimes of the .py files after the layer copies (a timestamp .pyc with a moved mtime would be
#   recompiled in memory at every start on the read-only root filesystem).
# - The .py sources stay, the dependencies' too (3.7 MB): a traceback in the agent's log shows the failing
#   source lines, and nothing that reads a module's source (inspect, linecache) can break.
# - pip, setuptools and wheel are never in this venv (created --without-pip, installed into from the
#   build-tools venv), and no pip cache exists (PIP_NO_CACHE_DIR): the last step checks both.
set -euo pipefail

VENV="${1:?usage: slim-venv.sh VENV}"
PYTHON="$VENV/bin/python"
SITE="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"

find "$SITE" -name '*.so' -type f -exec strip --strip-unneeded {} +

find "$SITE" -mindepth 2 -depth -type d \( -name tests -o -name test \) -not -path "$SITE/nodeagent/*" \
    -exec rm -rf {} +
find "$SITE" -type f -not -path "$SITE/nodeagent/*" \( -name '*.pyi' -o -name py.typed -o -name '*.pyx' \
    -o -name '*.pxd' -o -name '*.pxi' -o -name '*.c' -o -name '*.h' -o -name '_testcapi*.so' \) -delete

find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +
"$PYTHON" -m compileall -q -f -j 0 --invalidation-mode unchecked-hash "$SITE"

# Checks: nothing left that should not be, and exactly one .pyc per .py.
leftovers="$(find "$VENV" \( -name '*.pyi' -o -name '*.opt-1.pyc' -o -name '*.opt-2.pyc' -o -name pip \
    -o -name setuptools -o -name wheel -o -name '_distutils_hack' \) -print)"
if [ -n "$leftovers" ]; then
    printf 'slim-venv: left over:\n%s\n' "$leftovers" >&2
    exit 1
fi
sources="$(find "$SITE" -name '*.py' | wc -l)"
bytecode="$(find "$SITE" -name '*.pyc' | wc -l)"
if [ "$sources" != "$bytecode" ]; then
    echo "slim-venv: $sources .py files but $bytecode .pyc files" >&2
    exit 1
fi
# Every extension module still imports after strip.
"$PYTHON" - "$SITE" <<'PY'
import importlib, importlib.machinery, pathlib, sys

site = pathlib.Path(sys.argv[1])
for path in sorted(site.rglob("*.so")):
    relative = str(path.relative_to(site))
    suffix = next(s for s in importlib.machinery.EXTENSION_SUFFIXES if relative.endswith(s))
    importlib.import_module(relative.removesuffix(suffix).replace("/", "."))
PY
du -sh "$VENV"
