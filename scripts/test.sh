#!/usr/bin/env bash
# Every check the project has: lint, Rust unit tests, a short fuzz run, the Python suite,
# and the benches in check mode (their correctness checks, with a short timing pass).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

scripts/lint.sh
echo "==> cargo test (pure core, no Python)"
cargo test --quiet --no-default-features
# Every Rust fuzz target for FUZZ_BRIEF_SECONDS (default 5) each, seeds first; about 75 s
# on a clean 2-core machine, 40 s of it the sanitized build (no cargo-fuzz needed).
# REALTALK_FUZZ=0 skips it; `make fuzz` is the long run.
if [ "${REALTALK_FUZZ:-1}" != 0 ]; then
    echo "==> fuzz, briefly (scripts/fuzz_brief.sh)"
    scripts/fuzz_brief.sh
fi
# --- audio servers for tests/test_audio_devices.py: scripts/audio_up.sh -------------------
# PulseAudio (null sink) and JACK (dummy backend, loopback ports), with their Debian packages
# installed when root with apt. When that cannot be done, audio_up.sh prints one line saying
# what it skipped and why, and those tests skip with that reason. REALTALK_AUDIO=0 skips it.
# The servers are stopped when this script exits, pass or fail.
export AUDIO_DIR=${AUDIO_DIR:-/tmp/realtalk-audio}
trap 'bash scripts/audio_down.sh' EXIT
bash scripts/audio_up.sh
if [ -f "$AUDIO_DIR/env.sh" ]; then
    # shellcheck source=/dev/null
    . "$AUDIO_DIR/env.sh"
fi
# --- end of the audio block ------------------------------------------------------------------
# Headless Chromium for tests/test_console.py (Debian's chromium, installed when root; the
# test skips with the reason otherwise). REALTALK_BROWSER=0 skips it.
bash scripts/browser_up.sh
echo "==> pytest"
"$VENV/bin/python" -m pytest -q
echo "==> benches (check mode)"
"$VENV/bin/python" benches/bench_codec.py --check
"$VENV/bin/python" benches/bench_resample.py --check
"$VENV/bin/python" benches/bench_audio.py --check
# realtalk bench, short: three answers per pipeline and GIL condition over JACK's loopback
# (about 50 s): the whole chain runs and its report is written; no goal is asserted.
if [[ " ${REALTALK_AUDIO_SERVERS:-} " == *" jack "* ]]; then
    echo "==> realtalk bench (3 answers a run)"
    "$VENV/bin/realtalk" bench --turns 3 --out "$AUDIO_DIR/bench-check"
else
    echo "==> realtalk bench skipped: JACK is not running (see scripts/audio_up.sh)"
fi
