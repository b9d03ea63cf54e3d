#!/usr/bin/env bash
# Install the headless browser that tests/test_console.py drives over the DevTools protocol:
# Debian's `chromium` (plus fonts-liberation, so text in screenshots renders), with apt-get
# when run as root and not installed yet. Idempotent and quiet: nothing happens when the
# browser is already there; apt's output goes to $BROWSER_LOG.
#
# Never fails the build: when it cannot install, it prints ONE line saying why and exits 0;
# the console test then skips with its own reason. REALTALK_BROWSER=0 skips it.
set -uo pipefail

LOG=${BROWSER_LOG:-/tmp/realtalk-browser-apt.log}
PACKAGES=(chromium fonts-liberation)

[ "${REALTALK_BROWSER:-1}" = 0 ] && { echo "browser: skipped (REALTALK_BROWSER=0)"; exit 0; }

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ "${#missing[@]}" = 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    # Only the fonts missing is cosmetic (screenshots use fallback fonts): stay quiet.
    command -v chromium >/dev/null && [ "${missing[*]}" = fonts-liberation ] && exit 0
    echo "browser: not installing ${missing[*]} (needs root with apt-get); the console test will skip"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=120)
{ : >"$LOG"; } 2>/dev/null || LOG=/dev/null
# Same marker as audio_up.sh and bootstrap.sh: one `apt-get update` per machine boot.
if [ ! -f /tmp/.realtalk-apt-updated ]; then
    "${apt[@]}" update -qq >>"$LOG" 2>&1 && touch /tmp/.realtalk-apt-updated
fi
if "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; then
    echo "==> installed ${missing[*]} for the browser console test (log: $LOG)"
else
    echo "browser: apt-get install ${missing[*]} failed (log: $LOG); the console test will skip"
fi
exit 0
