#!/usr/bin/env bash
# libFuzzer on the pure Rust core: every target in fuzz/fuzz_targets for FUZZ_SECONDS
# (default 60) each, or only the targets named as arguments. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`, from crates.io; installed here if missing).
#
# cargo fuzz wants a nightly compiler for -Zsanitizer and the coverage passes; this
# project's machines have the stable toolchain only (no other can be fetched), so
# RUSTC_BOOTSTRAP=1 unlocks those flags on it.
# Corpora grow in fuzz/corpus/<target> (not committed), starting from fuzz/seeds/<target>;
# a crash is written to fuzz/artifacts/<target>/ and fails the run, with the command to
# reproduce it printed by cargo fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
export RUSTC_BOOTSTRAP=1
# Its own target dir: the fuzz build (sanitizer, coverage passes) shares nothing with the
# main one, and must not invalidate it.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/target/fuzz}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> cargo install cargo-fuzz"
    cargo install --quiet --locked cargo-fuzz
fi

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
echo "==> cargo fuzz build (${targets[*]})"
cargo fuzz build -O
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    dict=()
    [ -f "$target.dict" ] && dict=("-dict=$target.dict")
    echo "==> fuzz $target for ${FUZZ_SECONDS}s"
    # libFuzzer's progress lines (#123 NEW ...) and recommended dictionary are dropped; its
    # stats, and on a crash the panic, the input written and how to reproduce it, are
    # kept. pipefail makes the pipe's status cargo fuzz's.
    noise='^#[0-9]+|^INFO: (Loaded|Running|Seed|-max_len|A corpus)|^stat::(slowest|peak|new_units)|^###### |^"'
    if ! cargo fuzz run -O "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "${dict[@]}" 2>&1 |
        { grep -v -E "$noise" || true; }; then
        echo "fuzz target $target failed (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
done
