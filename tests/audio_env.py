"""The audio servers of scripts/audio_up.sh, for tests: their environment, and skips that
say exactly what is missing.

Importing this module applies ``$AUDIO_DIR/env.sh`` (default ``/tmp/realtalk-audio``) to
``os.environ``. That must happen before PortAudio initialises: ALSA's pulse plugin reads
``PULSE_SERVER`` and libjack reads ``JACK_DEFAULT_SERVER`` when PortAudio scans devices.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from realtalk.audio import Device, PortAudioError, find_device, portaudio_version
from realtalk.exceptions import ConfigurationError

AUDIO_DIR = Path(os.environ.get("AUDIO_DIR", "/tmp/realtalk-audio"))
ENV_FILE = AUDIO_DIR / "env.sh"
SKIPPED_FILE = AUDIO_DIR / "skipped"
JACK_HOST_API = "JACK Audio Connection Kit"


def _apply_env_file() -> set[str]:
    """Export env.sh's variables here; return the servers it says are running."""
    if not ENV_FILE.is_file():
        return set()
    for line in ENV_FILE.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            os.environ[name] = value
    return set(os.environ.get("REALTALK_AUDIO_SERVERS", "").split())


SERVERS = _apply_env_file()


def _why_not_running(server: str) -> str:
    """audio_up.sh's own reason, else what is missing."""
    if SKIPPED_FILE.is_file():
        for line in SKIPPED_FILE.read_text().splitlines():
            name, _, reason = line.partition(": ")
            if name in (server, "all"):
                return f"{server} not running: {reason}"
    if not ENV_FILE.is_file():
        return f"{server} not running: no {ENV_FILE} (start the servers: scripts/audio_up.sh)"
    return f"{server} not running: {ENV_FILE} lists only {sorted(SERVERS)}"


def require_portaudio() -> None:
    """Skip unless the PortAudio library loads."""
    try:
        portaudio_version()
    except PortAudioError as exc:
        pytest.skip(str(exc))


def _require_device(server: str, name: str, host_api: str, what: str) -> Device:
    if server not in SERVERS:
        pytest.skip(_why_not_running(server))
    require_portaudio()
    try:
        device = find_device(name, host_api, kind="output")
        find_device(name, host_api, kind="input")
    except ConfigurationError as exc:
        pytest.skip(f"{server} runs, but PortAudio has no {what}: {exc}")
    return device


def require_pulse() -> Device:
    """The ALSA ``pulse`` device on the test PulseAudio server, or a skip saying why not."""
    return _require_device(
        "pulse", "pulse", "ALSA", "ALSA device 'pulse' (is libasound2-plugins installed?)"
    )


def require_jack() -> Device:
    """The JACK ``loopback`` device of the test jackd, or a skip saying why not."""
    return _require_device("jack", "loopback", JACK_HOST_API, "JACK device 'loopback'")
