#!/usr/bin/env bash
# Lint and type checks; fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PYO3_PYTHON="$PWD/$VENV/bin/python"

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy (with and without the Python bindings)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --all-targets --no-default-features -- -D warnings
echo "==> ruff"
"$VENV/bin/ruff" check --quiet python tests benches examples
"$VENV/bin/ruff" format --check --quiet python tests benches examples
echo "==> mypy (python/realtalk and examples, strict) and stubtest (_core.pyi against the built module)"
"$VENV/bin/mypy" --no-error-summary
"$VENV/bin/mypy" --no-error-summary examples
"$VENV/bin/python" -m mypy.stubtest realtalk._core
