#!/usr/bin/env bash
# Make a working development environment from a fresh clone, idempotently:
#   - check the Rust toolchain (it cannot be installed from here: say so clearly),
#   - create .venv and install the locked Python dependencies (only when the lock changed),
#   - build the native extension (release profile) into .venv.
# Installs Debian packages it needs (python3-venv, a C linker) when run as root with apt.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MIN_RUST=1.89

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing Debian packages: $*"
        if [ ! -f /tmp/.realtalk-apt-updated ]; then
            apt-get update -qq && touch /tmp/.realtalk-apt-updated
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        return 1
    fi
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# Rust: rustup is the only way to get a recent enough toolchain; Debian's is too old.
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || die "no Rust toolchain (cargo) found. Install Rust >= $MIN_RUST with rustup (https://rustup.rs), then run this again."
rust_version=$(rustc --version | awk '{print $2}')
version_ge "$rust_version" "$MIN_RUST" || die "Rust $rust_version is too old; realtalk needs >= $MIN_RUST (rustup update)."
command -v cc >/dev/null || apt_install gcc libc6-dev || die "no C linker (cc) found; install gcc."

# Python
command -v "$PYTHON" >/dev/null || apt_install python3 python3-venv || die "python3 not found; install Python >= 3.11."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$("$PYTHON" --version) is too old; realtalk needs Python >= 3.11 (set PYTHON=...)."
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv || die "'$PYTHON -m venv' failed; install python3-venv."
        "$PYTHON" -m venv "$VENV"
    fi
fi

lock=requirements/dev.lock
stamp="$VENV/.dev.lock.sha256"
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing locked Python dependencies ($lock)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock"
    echo "$want" > "$stamp"
fi

say "building the native extension (cargo release profile)"
log="$VENV/maturin.log"
if ! "$VENV/bin/maturin" develop --release >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "building the extension failed (full log: $log)."
fi
"$VENV/bin/python" - <<'PY' || die "the extension did not build or import; see the cargo output above."
import realtalk._core as core
print(f"==> realtalk {core.__version__} native core ready")
PY
