#!/usr/bin/env bash
# Start the audio servers that tests/test_audio_devices.py plays into and records from,
# idempotently, without any sound card (measured recipe: /work/shared/AUDIO-TESTBED.md):
#   - PulseAudio with a null sink (float32le, 48000 Hz, 2 channels) on a private socket;
#     PortAudio reaches it through ALSA's `pulse` device. Output goes to `testsink`, input
#     comes from `testsink.monitor`.
#   - JACK (jackd, dummy backend, 48000 Hz, 256-frame periods) with 2 loopback ports:
#     PortAudio's JACK device `loopback` records what is played into it.
# Writes $AUDIO_DIR/env.sh (source it before PortAudio initialises) and one PID file per
# process for scripts/audio_down.sh. Installs the Debian packages when root with apt.
#
# Never fails the build: when it cannot start a server it prints ONE line saying what is
# skipped and why, records the reason in $AUDIO_DIR/skipped (tests/audio_env.py skips with
# it) and exits 0. REALTALK_AUDIO=0 skips everything.
set -uo pipefail

D=${AUDIO_DIR:-/tmp/realtalk-audio}
PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins jackd2)
SOCK=$D/run/native
JACK_NAME=realtalk # a named JACK server: never touches a developer's own `default` one

export PULSE_SERVER=unix:$SOCK PULSE_COOKIE=$D/cookie
export JACK_DEFAULT_SERVER=$JACK_NAME JACK_NO_START_SERVER=1

if ! { mkdir -p "$D" && rm -f "$D/env.sh" "$D/skipped" && touch "$D/skipped"; } 2>/dev/null; then
    echo "audio: skipped PulseAudio and JACK: cannot write to $D (set AUDIO_DIR)"
    exit 0
fi
rm -f "$D/skipped"
skipped=() # "server: reason", one per server that is not running

skip_all() { # the one line, the reason for the tests, and exit 0 without env.sh
    echo "audio: skipped PulseAudio and JACK: $*"
    echo "all: $*" >"$D/skipped"
    exit 0
}

# A recorded PID still names the process we started (not a zombie, not a reused PID).
alive() { # alive NAME COMM
    local pid
    pid=$(cat "$D/$1.pid" 2>/dev/null) || return 1
    [ -r "/proc/$pid/status" ] || return 1
    grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" && return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

wait_until() { # wait_until SECONDS COMMAND...: poll every 50 ms
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

[ "${REALTALK_AUDIO:-1}" = 0 ] && skip_all "REALTALK_AUDIO=0"
[ "$(uname -s)" = Linux ] || skip_all "the test servers are set up on Linux only"

# 1. Packages. Each is checked on its own, so a partial install only loses its server.
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing Debian packages for the audio tests: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt=(apt-get -q -o DPkg::Lock::Timeout=120)
        # bootstrap.sh keeps the same marker: one `apt-get update` per machine boot.
        if [ ! -f /tmp/.realtalk-apt-updated ]; then
            "${apt[@]}" update -qq >"$D/apt.log" 2>&1 && touch /tmp/.realtalk-apt-updated
        fi
        "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >>"$D/apt.log" 2>&1 ||
            echo "audio: apt-get install failed (log: $D/apt.log)"
    fi
fi
have_pulse=1 have_jack=1
for c in pulseaudio pactl parec; do command -v "$c" >/dev/null || have_pulse=0; done
for c in jackd jack_lsp; do command -v "$c" >/dev/null || have_jack=0; done
if ! dpkg-query -W -f='${Status}' libportaudio2 2>/dev/null | grep -q 'ok installed' &&
    ! { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q 'libportaudio\.so\.2'; then
    if [ "$(id -u)" = 0 ]; then
        skip_all "libportaudio2 is not installed and apt-get could not install it"
    fi
    skip_all "libportaudio2 is not installed (needs root with apt-get, or: apt install ${PACKAGES[*]})"
fi

# 2. PulseAudio: a null sink rendering float32 at 48 kHz, the monitor as default source.
start_pulse() {
    mkdir -p -m 700 "$D/run"
    mkdir -p "$D/state" "$D/config"
    rm -f "$SOCK"
    XDG_CONFIG_HOME=$D/config PULSE_STATE_PATH=$D/state PULSE_RUNTIME_PATH=$D/run \
        XDG_RUNTIME_DIR=$D/run \
        pulseaudio -n --daemonize=no --exit-idle-time=-1 --use-pid-file=no --disallow-exit \
        --realtime=no --high-priority=no --log-target="file:$D/pulse.log" \
        -L "module-native-protocol-unix socket=$SOCK auth-anonymous=1 auth-cookie-enabled=0" \
        -L "module-null-sink sink_name=testsink format=float32le rate=48000 channels=2" \
        </dev/null >>"$D/pulse.out" 2>&1 &
    echo $! >"$D/pulse.pid"
    wait_until 10 pactl info || return 1
    pactl set-default-sink testsink && pactl set-default-source testsink.monitor || return 1
}
# Without a reader on the monitor, the idle null sink renders 2 s blocks ahead and every new
# stream stalls for up to 1.7 s (gotcha 1): a 10 ms reader keeps it rendering in real time.
start_keepalive() {
    parec --latency-msec=10 -d testsink.monitor --raw --format=float32le --rate=48000 \
        --channels=2 </dev/null >/dev/null 2>>"$D/keepalive.log" &
    echo $! >"$D/keepalive.pid"
}
sink_settled() { # the sink renders less than 50 ms ahead (about 2 s after the start)
    local usec
    usec=$(pactl list sinks | sed -n 's/^[[:space:]]*Latency: \([0-9]*\) usec.*/\1/p' | head -n1)
    [ -n "$usec" ] && [ "$usec" -lt 50000 ]
}

if [ "$have_pulse" = 0 ]; then
    skipped+=("pulse: pulseaudio or pulseaudio-utils is not installed")
elif alive pulse pulseaudio && pactl info >/dev/null 2>&1; then
    alive keepalive parec || start_keepalive
else
    bash "$(dirname "$0")/audio_down.sh" --quiet keepalive pulse
    if start_pulse; then
        start_keepalive
        wait_until 10 sink_settled || echo "audio: note: the null sink did not settle below 50 ms"
    else
        skipped+=("pulse: pulseaudio did not start (log: $D/pulse.log)")
        bash "$(dirname "$0")/audio_down.sh" --quiet keepalive pulse
    fi
fi
if [ "$have_pulse" = 1 ] && ! ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1; then
    skipped+=("pulse: libasound2-plugins is not installed (no ALSA pulse device)")
fi

# 3. JACK: dummy backend, 2 loopback ports (loopback:playback_N -> loopback:capture_N).
jack_ready() { jack_lsp | grep -q '^loopback:capture_1$'; }
if [ "$have_jack" = 0 ]; then
    skipped+=("jack: jackd2 is not installed")
elif alive jackd jackd && jack_ready >/dev/null 2>&1; then
    :
else
    bash "$(dirname "$0")/audio_down.sh" --quiet jackd
    JACK_NO_AUDIO_RESERVATION=1 jackd -n "$JACK_NAME" --no-realtime -L 2 \
        -d dummy -r 48000 -p 256 </dev/null >>"$D/jackd.log" 2>&1 &
    echo $! >"$D/jackd.pid"
    wait_until 10 jack_ready || skipped+=("jack: jackd did not start (log: $D/jackd.log)")
fi

# 4. What is running, for the tests and for the shell that runs them.
servers=()
running() { ! printf '%s\n' "${skipped[@]}" | grep -q "^$1:"; }
running pulse && servers+=(pulse)
running jack && servers+=(jack)
if [ "${#skipped[@]}" -gt 0 ]; then
    printf '%s\n' "${skipped[@]}" >"$D/skipped"
    if [ "${#servers[@]}" = 0 ]; then
        echo "audio: skipped PulseAudio and JACK: $(printf '%s; ' "${skipped[@]}" | sed 's/; $//')"
        exit 0
    fi
    echo "audio: skipped $(printf '%s; ' "${skipped[@]}" | sed 's/; $//')"
fi
cat >"$D/env.sh" <<EOF
# Written by scripts/audio_up.sh: the audio servers' addresses (source before PortAudio starts).
export PULSE_SERVER='$PULSE_SERVER'
export PULSE_COOKIE='$PULSE_COOKIE'
export JACK_DEFAULT_SERVER='$JACK_NAME'
export JACK_NO_START_SERVER=1
export REALTALK_AUDIO_SERVERS='${servers[*]}'
EOF
echo "==> audio servers running: ${servers[*]} (env: $D/env.sh)"
