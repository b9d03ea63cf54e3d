#!/usr/bin/env bash
# Stop what scripts/audio_up.sh started, by the PIDs it recorded in $AUDIO_DIR, and remove
# env.sh. Idempotent. Only a PID whose process still has the expected name is signalled
# (a PID may have been reused), and a zombie counts as stopped: `kill -0` succeeds on a
# zombie until its parent reaps it, which is not ours to do.
#   audio_down.sh [--quiet] [keepalive|pulse|jackd ...]   (default: all three)
set -uo pipefail

D=${AUDIO_DIR:-/tmp/realtalk-audio}
quiet=0
if [ "${1:-}" = --quiet ]; then
    quiet=1
    shift
fi
all=0
if [ "$#" = 0 ]; then
    all=1
    set -- keepalive jackd pulse
fi

declare -A COMM=([keepalive]=parec [pulse]=pulseaudio [jackd]=jackd)

running() { # running PID COMM: alive, not a zombie, still the process we started
    [ -r "/proc/$1/status" ] || return 1
    grep -q '^State:[[:space:]]*Z' "/proc/$1/status" && return 1
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

stopped=()
for name in "$@"; do
    comm=${COMM[$name]:?"unknown process '$name' (keepalive, pulse or jackd)"}
    pidfile=$D/$name.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if running "$pid" "$comm"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do # up to 5 s, then SIGKILL
            running "$pid" "$comm" || break
            sleep 0.05
        done
        running "$pid" "$comm" && kill -KILL "$pid" 2>/dev/null
        stopped+=("$name")
    fi
    rm -f "$pidfile"
done
# env.sh says the servers are up: it goes as soon as any of them stops.
rm -f "$D/env.sh"
[ "$all" = 1 ] && rm -f "$D/run/native" "$D/skipped"
if [ "$quiet" = 0 ]; then
    if [ "${#stopped[@]}" -gt 0 ]; then
        echo "==> audio servers stopped: ${stopped[*]}"
    else
        echo "==> audio servers: none running"
    fi
fi
exit 0
