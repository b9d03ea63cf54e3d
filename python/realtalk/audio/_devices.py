"""Audio devices and host APIs as PortAudio reports them, and choosing one by name.

Owns: turning ``PaDeviceInfo`` / ``PaHostApiInfo`` into frozen dataclasses, and the
matching rules of :func:`find_device`.

Must never: choose a device by index across initialisations. PortAudio numbers devices
anew on each ``Pa_Initialize``, and the numbers change with the servers that are running
(JACK's devices exist only while jackd runs; ALSA's ``pulse`` only with a reachable
PulseAudio), so a :class:`Device` is found again by name and host API when a stream opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from realtalk.audio import _portaudio as pa
from realtalk.exceptions import ConfigurationError

Kind = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class HostApi:
    """One of PortAudio's host APIs (``"ALSA"``, ``"JACK Audio Connection Kit"``, ...).

    ``default_input_device`` / ``default_output_device`` are device names, or ``None``.
    """

    index: int
    name: str
    device_count: int
    default_input_device: str | None
    default_output_device: str | None


@dataclass(frozen=True, slots=True)
class Device:
    """An audio device. Latencies are in seconds, the sample rate in Hz.

    ``index`` is PortAudio's number for the device in the listing it came from: for
    display only, since it changes between listings. ``host_api`` is the host API's name.
    """

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    default_low_input_latency: float
    default_low_output_latency: float
    default_high_input_latency: float
    default_high_output_latency: float

    def channels(self, kind: Kind) -> int:
        """``max_input_channels`` or ``max_output_channels``."""
        return self.max_input_channels if kind == "input" else self.max_output_channels


@dataclass(frozen=True, slots=True)
class _Snapshot:
    host_apis: list[HostApi]
    devices: list[Device]
    default_input: Device | None
    default_output: Device | None


def _snapshot(lib: pa.CData) -> _Snapshot:
    """Everything PortAudio knows; call only while holding an initialisation reference."""
    devices = []
    for index in range(pa._check(lib.Pa_GetDeviceCount(), "Pa_GetDeviceCount")):
        info = lib.Pa_GetDeviceInfo(index)
        api = lib.Pa_GetHostApiInfo(info.hostApi)
        devices.append(
            Device(
                index=index,
                name=pa._string(info.name),
                host_api=pa._string(api.name),
                max_input_channels=int(info.maxInputChannels),
                max_output_channels=int(info.maxOutputChannels),
                default_sample_rate=float(info.defaultSampleRate),
                default_low_input_latency=float(info.defaultLowInputLatency),
                default_low_output_latency=float(info.defaultLowOutputLatency),
                default_high_input_latency=float(info.defaultHighInputLatency),
                default_high_output_latency=float(info.defaultHighOutputLatency),
            )
        )

    def device(index: int) -> Device | None:
        return devices[index] if 0 <= index < len(devices) else None

    def name(index: int) -> str | None:
        found = device(index)
        return found.name if found else None

    host_apis = []
    for index in range(pa._check(lib.Pa_GetHostApiCount(), "Pa_GetHostApiCount")):
        api = lib.Pa_GetHostApiInfo(index)
        host_apis.append(
            HostApi(
                index=index,
                name=pa._string(api.name),
                device_count=int(api.deviceCount),
                default_input_device=name(int(api.defaultInputDevice)),
                default_output_device=name(int(api.defaultOutputDevice)),
            )
        )
    return _Snapshot(
        host_apis=host_apis,
        devices=devices,
        default_input=device(int(lib.Pa_GetDefaultInputDevice())),
        default_output=device(int(lib.Pa_GetDefaultOutputDevice())),
    )


def _current() -> _Snapshot:
    with pa.initialized() as lib:
        return _snapshot(lib)


def list_devices() -> list[Device]:
    """Every device PortAudio finds now, inputs and outputs.

    Initialises PortAudio for the call unless a stream holds it (0.03 s with ALSA only,
    0.1 s with JACK running). Raises :class:`PortAudioError`.
    """
    return _current().devices


def list_host_apis() -> list[HostApi]:
    """PortAudio's host APIs (JACK's appears only while a JACK server runs)."""
    return _current().host_apis


def default_device(kind: Kind = "output") -> Device | None:
    """The default input or output device of the default host API, or ``None``."""
    snapshot = _current()
    return snapshot.default_input if kind == "input" else snapshot.default_output


def _host_api_matches(wanted: str, actual: str) -> bool:
    # "jack" selects "JACK Audio Connection Kit"; "ALSA" selects "ALSA".
    return actual.casefold().startswith(wanted.casefold())


def _find(
    devices: list[Device], name: str, host_api: str | None, kind: Kind, *, exact: bool = False
) -> Device:
    usable = [
        d
        for d in devices
        if d.channels(kind) > 0 and (host_api is None or _host_api_matches(host_api, d.host_api))
    ]
    matches = [d for d in usable if d.name == name]
    if not matches and not exact:
        matches = [d for d in usable if name.casefold() in d.name.casefold()]
    where = f" of host API {host_api!r}" if host_api is not None else ""
    if len(matches) == 1:
        return matches[0]
    if matches:
        found = ", ".join(f"{d.name!r} ({d.host_api})" for d in matches)
        raise ConfigurationError(
            f"{kind} device name {name!r}{where} is ambiguous: {found}; "
            "give the full name and a host API"
        )
    available = ", ".join(f"{d.name!r} ({d.host_api})" for d in usable) or "none"
    raise ConfigurationError(
        f"no {kind} device named {name!r}{where}; available {kind} devices: {available}"
    )


def find_device(name: str, host_api: str | None = None, kind: Kind = "output") -> Device:
    """The one device with ``kind`` channels whose name is ``name``.

    ``name`` is matched exactly, else as a case-insensitive substring; ``host_api`` (if
    given) as a case-insensitive prefix of the host API's name, so ``"jack"`` selects
    ``"JACK Audio Connection Kit"``. Raises :class:`~realtalk.exceptions.ConfigurationError`
    (a :class:`ValueError`) when no device or several match, naming the candidates, and
    :class:`PortAudioError`.
    """
    return _find(_current().devices, name, host_api, kind)


def _resolve(lib: pa.CData, device: Device | str | None, kind: Kind) -> Device:
    """The device to open, by name, in the current initialisation (held by the caller)."""
    snapshot = _snapshot(lib)
    if device is None:
        chosen = snapshot.default_input if kind == "input" else snapshot.default_output
        if chosen is None:
            raise ConfigurationError(f"PortAudio has no default {kind} device")
        return chosen
    if isinstance(device, Device):
        # Exactly that device, or an error: never a similar one that took its place.
        return _find(snapshot.devices, device.name, device.host_api, kind, exact=True)
    return _find(snapshot.devices, device, None, kind)
