#!/usr/bin/env bash
# The API reference: HTML from the docstrings of the public modules, with pdoc.
#   scripts/docs.sh [OUT]   (default docs/api; `make docs` runs it)
# realtalk.core re-exports the native realtalk._core, whose signatures and full
# docstrings live in python/realtalk/_core.pyi (the compiled module carries short ones).
# pdoc reads a module's stub from a PEP 561 stub package on sys.path, so a copy of the
# .pyi is put there as realtalk-stubs/core.pyi for the build, and nowhere else. pdoc
# executes the stub, so the copy starts with the __future__ import that lets its
# annotations name classes defined further down (a stub may; a module may not).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=${1:-docs/api}
MODULES=(realtalk realtalk.core realtalk.protocol realtalk.audio realtalk.server realtalk.relay realtalk.exceptions)

stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
mkdir "$stubs/realtalk-stubs"
{ echo "from __future__ import annotations"; cat python/realtalk/_core.pyi; } \
    > "$stubs/realtalk-stubs/core.pyi"

# OUT is replaced (so pages of removed modules go too), but only if pdoc made it.
if [ -e "$OUT" ]; then
    [ -f "$OUT/search.js" ] || { echo "error: $OUT exists and is not a pdoc build; not replacing it" >&2; exit 1; }
    rm -rf "$OUT"
fi
PYTHONPATH="$stubs${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m pdoc \
    --docformat google --template-directory docs/templates \
    --output-directory "$OUT" "${MODULES[@]}"
echo "==> API reference in $OUT/index.html"
