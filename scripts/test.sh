#!/usr/bin/env bash
# Every check the project has: lint, Rust unit tests, the Python suite, and the benches
# in check mode (their correctness checks, with a short timing pass).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

scripts/lint.sh
echo "==> cargo test (pure core, no Python)"
cargo test --quiet --no-default-features
echo "==> pytest"
"$VENV/bin/python" -m pytest -q
echo "==> benches (check mode)"
"$VENV/bin/python" benches/bench_codec.py --check
"$VENV/bin/python" benches/bench_resample.py --check
