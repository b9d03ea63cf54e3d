#!/usr/bin/env bash
# The short fuzz run of scripts/test.sh: every target in fuzz/fuzz_targets for
# FUZZ_BRIEF_SECONDS (default 5; libFuzzer stops in the second after) each, or only the
# targets named as arguments. `make fuzz` (scripts/fuzz.sh, FUZZ_SECONDS) is the long run.
#
# No cargo-fuzz: libfuzzer-sys builds libFuzzer itself, and a plain cargo build with the
# flags `cargo fuzz build` passes (coverage passes, AddressSanitizer, one codegen unit,
# debug assertions and overflow checks) gives the same fuzzer binaries (`make fuzz` builds
# with -O, without the assertions). The stable toolchain takes the unstable flags with
# RUSTC_BOOTSTRAP=1. --target keeps them off build scripts and proc macros.
#
# Each target starts from a temporary copy of fuzz/seeds/<target> (fuzz/seeds is never
# written), with fuzz/<target>.dict when there is one. A crash, a leak or a hang fails the
# run, naming the target and the input, which is kept in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_BRIEF_SECONDS=${FUZZ_BRIEF_SECONDS:-5}
export RUSTC_BOOTSTRAP=1
# Its own target dir: these flags invalidate everything they touch.
export CARGO_TARGET_DIR=${FUZZ_BRIEF_TARGET_DIR:-$PWD/target/fuzz-brief}
triple=$(rustc -vV | sed -n 's/^host: //p')
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing
    -Zsanitizer=address
    -Cdebug-assertions
    -Ccodegen-units=1
)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi
bins=()
for target in "${targets[@]}"; do
    bins+=(--bin "$target")
done
start=$SECONDS
RUSTFLAGS="${flags[*]} ${RUSTFLAGS:-}" cargo build --quiet --release --locked \
    --manifest-path fuzz/Cargo.toml --target "$triple" "${bins[@]}"
echo "fuzz build (${targets[*]}): $((SECONDS - start))s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    if [ -d "fuzz/seeds/$target" ]; then
        cp -R "fuzz/seeds/$target/." "$corpus/"
    fi
    dict=()
    [ -f "fuzz/$target.dict" ] && dict=("-dict=fuzz/$target.dict")
    log="$work/$target.log"
    start=$SECONDS
    # -timeout: an input that runs 30 s is a hang, and the test command must end.
    if "$CARGO_TARGET_DIR/$triple/release/$target" "$corpus" "${dict[@]}" \
        -max_total_time="$FUZZ_BRIEF_SECONDS" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "fuzz $target: ${runs:-?} runs in $((SECONDS - start))s, ${cov:-cov: ?}"
    else
        # libFuzzer's progress lines are dropped; the panic, the stack and its stats kept.
        grep -v -E '^#[0-9]+|^INFO: (Loaded|Running|-max_len|A corpus)|^stat::|^"' "$log" >&2 || true
        input=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
        echo "fuzz target $target failed on ${input:-an input (none written; log above)}" >&2
        if [ -n "$input" ]; then
            echo "reproduce: $CARGO_TARGET_DIR/$triple/release/$target $input" >&2
        fi
        exit 1
    fi
done
