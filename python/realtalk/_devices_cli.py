"""``realtalk devices``: the audio devices PortAudio finds, as a table.

Devices are shown by name and host API, the two things that select one
(``realtalk.audio.find_device``); PortAudio's indices change between runs and are left out.
"""

from __future__ import annotations

import sys

from realtalk.audio import PortAudioError, portaudio_version
from realtalk.audio._devices import Device, _current

_HINT_NO_DEVICES = (
    "PortAudio lists ALSA devices (PulseAudio through ALSA's 'pulse' device, from "
    "libasound2-plugins, when a server is reachable: PULSE_SERVER), and JACK devices while a "
    "JACK server runs."
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _default(device: Device, default_input: Device | None, default_output: Device | None) -> str:
    marks = []
    if default_input is not None and device.index == default_input.index:
        marks.append("in")
    if default_output is not None and device.index == default_output.index:
        marks.append("out")
    return "+".join(marks)


def run_devices() -> int:
    try:
        _, version_text = portaudio_version()
        snapshot = _current()
    except PortAudioError as exc:
        print(f"realtalk devices: {exc}", file=sys.stderr)
        if exc.code is None:
            print(
                "realtalk devices: PortAudio is needed for audio devices: install libportaudio2 "
                "(Debian/Ubuntu: apt install libportaudio2), or set REALTALK_PORTAUDIO_LIB "
                "to the path of libportaudio.",
                file=sys.stderr,
            )
        return 1
    print(version_text)
    if not snapshot.devices:
        print(f"no audio devices found. {_HINT_NO_DEVICES}")
        return 0
    header = (
        "name",
        "host API",
        "in",
        "out",
        "rate (Hz)",
        "low in/out (ms)",
        "high in/out (ms)",
        "default",
    )
    rows = [
        (
            d.name,
            d.host_api,
            str(d.max_input_channels),
            str(d.max_output_channels),
            f"{d.default_sample_rate:g}",
            f"{_ms(d.default_low_input_latency)} / {_ms(d.default_low_output_latency)}",
            f"{_ms(d.default_high_input_latency)} / {_ms(d.default_high_output_latency)}",
            _default(d, snapshot.default_input, snapshot.default_output),
        )
        for d in snapshot.devices
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    numeric = {2, 3, 4}  # right-aligned columns
    for row in (header, *rows):
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    return 0
