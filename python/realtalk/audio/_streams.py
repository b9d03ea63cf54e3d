"""PortAudio callback streams whose callback is native code (or, for tests, a cffi callback).

Owns: opening a half-duplex callback stream from a callback address and a user-data
pointer, its lifetime (start / stop / abort / close), and keeping alive everything the
audio thread uses for as long as the stream exists.

Must never: open a full-duplex stream. On ALSA's ``pulse`` device a duplex callback stream
silently drops and repeats blocks (AUDIO-TESTBED.md, gotcha 3), so output and input are
always two separate streams. Must never let the callback, its user data or their owner be
freed while PortAudio can still call it: an unclosed stream is kept (and closed at exit),
never garbage-collected while running.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal

from realtalk.audio import _portaudio as pa
from realtalk.audio._devices import Device, Kind, _resolve
from realtalk.exceptions import ConfigurationError

SampleFormat = Literal["float32", "int16", "int32"]
Latency = float | Literal["low", "high"]

_FORMATS: Final = {"float32": pa.paFloat32, "int16": pa.paInt16, "int32": pa.paInt32}
_CALLBACK_TYPE: Final = pa.ffi.typeof("PaStreamCallback *")
_paBadStreamPtr: Final = -9988

# Strong references to every open stream: PortAudio's thread may call the callback until
# Pa_CloseStream, so a forgotten stream must not be collected (its cffi callback would be
# freed under the audio thread). At exit they are closed before the final Pa_Terminate.
_open_streams: set[Stream] = set()
_open_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """``Pa_GetStreamInfo``: latencies in seconds (0.0 for the missing direction) and the
    actual sample rate in Hz, which may differ slightly from the one asked for."""

    input_latency: float
    output_latency: float
    sample_rate: float


class Stream:
    """An open PortAudio callback stream, input or output. Made by
    :func:`open_output_stream` / :func:`open_input_stream`; stopped when opened.

    ``with stream:`` closes it at the end of the block (aborting it if it runs). Every
    method raises :class:`PortAudioError`; on a closed stream, with ``paBadStreamPtr``.
    """

    def __init__(
        self,
        handle: pa.CData,
        *,
        kind: Kind,
        device: Device,
        sample_rate: float,
        channels: int,
        frames_per_buffer: int,
        sample_format: SampleFormat,
        keep_alive: tuple[object, ...],
    ) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._keep_alive = keep_alive  # the callback, the user data and their owner
        self.kind: Final = kind
        self.device: Final = device
        self.sample_rate: Final = sample_rate
        self.channels: Final = channels
        self.frames_per_buffer: Final = frames_per_buffer
        self.sample_format: Final = sample_format

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("active" if self.active else "stopped")
        return (
            f"<Stream {self.kind} {self.device.name!r} ({self.device.host_api}) "
            f"{self.channels}ch {self.sample_rate:g} Hz {state}>"
        )

    def _live(self, function: str) -> pa.CData:
        if self._handle is None:
            pa._check(_paBadStreamPtr, function)
        return self._handle

    def start(self) -> None:
        """Start calling the callback (``Pa_StartStream``)."""
        pa._check(pa.lib().Pa_StartStream(self._live("Pa_StartStream")), "Pa_StartStream")

    def stop(self) -> None:
        """Stop after the buffers already handed to the host API have played
        (``Pa_StopStream``). On ALSA ``pulse`` this does not wait for the audio that is still
        in PulseAudio (about one output latency): let the callback play that much silence
        first, or sleep ``info.output_latency`` before stopping."""
        pa._check(pa.lib().Pa_StopStream(self._live("Pa_StopStream")), "Pa_StopStream")

    def abort(self) -> None:
        """Stop at once, dropping pending buffers (``Pa_AbortStream``)."""
        pa._check(pa.lib().Pa_AbortStream(self._live("Pa_AbortStream")), "Pa_AbortStream")

    def close(self) -> None:
        """Close the stream (aborting it if it runs) and release PortAudio. Idempotent."""
        with self._lock:
            if self._handle is None:
                return
            handle, self._handle = self._handle, None
            try:
                pa._check(pa.lib().Pa_CloseStream(handle), "Pa_CloseStream")
            finally:
                # Only now can the audio thread no longer call the callback.
                self._keep_alive = ()
                with _open_lock:
                    _open_streams.discard(self)
                pa.terminate()

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def active(self) -> bool:
        """Whether the callback is being called: false before :meth:`start`, after
        :meth:`stop` / :meth:`abort`, and once the callback returned ``paComplete`` and the
        last buffer played (``Pa_IsStreamActive``)."""
        handle = self._live("Pa_IsStreamActive")
        return pa._check(pa.lib().Pa_IsStreamActive(handle), "Pa_IsStreamActive") == 1

    @property
    def stopped(self) -> bool:
        """``Pa_IsStreamStopped``: true when stopped or aborted (not after ``paComplete``
        until :meth:`stop` is called)."""
        handle = self._live("Pa_IsStreamStopped")
        return pa._check(pa.lib().Pa_IsStreamStopped(handle), "Pa_IsStreamStopped") == 1

    @property
    def info(self) -> StreamInfo:
        """Latencies (s) and the actual sample rate (Hz), from ``Pa_GetStreamInfo``."""
        info = pa.lib().Pa_GetStreamInfo(self._live("Pa_GetStreamInfo"))
        if info == pa.ffi.NULL:
            pa._check(_paBadStreamPtr, "Pa_GetStreamInfo")
        return StreamInfo(
            input_latency=float(info.inputLatency),
            output_latency=float(info.outputLatency),
            sample_rate=float(info.sampleRate),
        )

    @property
    def time(self) -> float:
        """The stream's clock in seconds (``Pa_GetStreamTime``), the clock of the
        ``PaStreamCallbackTimeInfo`` the callback receives; 0.0 on error."""
        return float(pa.lib().Pa_GetStreamTime(self._live("Pa_GetStreamTime")))

    @property
    def cpu_load(self) -> float:
        """Fraction of the buffer period the callback takes (``Pa_GetStreamCpuLoad``)."""
        return float(pa.lib().Pa_GetStreamCpuLoad(self._live("Pa_GetStreamCpuLoad")))

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _close_all_at_exit() -> None:
    with _open_lock:
        streams = list(_open_streams)
    for stream in streams:
        with contextlib.suppress(pa.PortAudioError):  # exiting anyway; Pa_Terminate follows
            stream.close()


pa._before_terminate.append(_close_all_at_exit)


def _callback_pointer(callback: int | pa.CData) -> pa.CData:
    if isinstance(callback, int) and not isinstance(callback, bool):
        if not 0 < callback < 2**64:
            raise ConfigurationError(f"callback_address {callback:#x} is not a native address")
        return pa.ffi.cast("PaStreamCallback *", callback)
    if isinstance(callback, pa.ffi.CData) and pa.ffi.typeof(callback) == _CALLBACK_TYPE:
        return callback
    raise TypeError(
        "callback_address must be an int (a native PaStreamCallback address) or a cffi "
        f"'PaStreamCallback *' callback, not {type(callback).__name__}"
    )


def _user_data_pointer(user_data: int | pa.CData) -> pa.CData:
    if isinstance(user_data, int) and not isinstance(user_data, bool):
        if not 0 <= user_data < 2**64:
            raise ConfigurationError(f"user_data {user_data:#x} is not a native address")
        return pa.ffi.cast("void *", user_data)
    if isinstance(user_data, pa.ffi.CData):
        return pa.ffi.cast("void *", user_data)
    raise TypeError(f"user_data must be an int address, not {type(user_data).__name__}")


def _open(
    kind: Kind,
    device: Device | str | None,
    *,
    sample_rate: float,
    channels: int,
    frames_per_buffer: int,
    suggested_latency: Latency | None,
    sample_format: SampleFormat,
    callback_address: int | pa.CData,
    user_data: int | pa.CData,
    keep_alive: object,
) -> Stream:
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise ConfigurationError(f"sample_rate must be a positive number of Hz, not {sample_rate}")
    if channels < 1:
        raise ConfigurationError(f"channels must be at least 1, not {channels}")
    if frames_per_buffer < 0:
        raise ConfigurationError(
            f"frames_per_buffer must be 0 (the host's choice) or more, not {frames_per_buffer}"
        )
    if sample_format not in _FORMATS:
        raise ConfigurationError(f"sample_format must be one of {sorted(_FORMATS)}")
    if isinstance(suggested_latency, float | int) and not (
        math.isfinite(suggested_latency) and suggested_latency >= 0
    ):
        raise ConfigurationError(f"suggested_latency must be >= 0 s, not {suggested_latency}")
    callback = _callback_pointer(callback_address)
    data = _user_data_pointer(user_data)

    pa.initialize()  # the stream's own reference, released by close()
    try:
        lib = pa.lib()
        chosen = _resolve(lib, device, kind)
        if channels > chosen.channels(kind):
            raise ConfigurationError(
                f"{chosen.name!r} ({chosen.host_api}) has {chosen.channels(kind)} {kind} "
                f"channels; {channels} asked for"
            )
        if suggested_latency is None or suggested_latency == "high":
            latency = (
                chosen.default_high_input_latency
                if kind == "input"
                else chosen.default_high_output_latency
            )
        elif suggested_latency == "low":
            latency = (
                chosen.default_low_input_latency
                if kind == "input"
                else chosen.default_low_output_latency
            )
        else:
            latency = float(suggested_latency)
        params = pa.ffi.new(
            "PaStreamParameters *",
            {
                "device": chosen.index,
                "channelCount": channels,
                "sampleFormat": _FORMATS[sample_format],
                "suggestedLatency": latency,
                "hostApiSpecificStreamInfo": pa.ffi.NULL,
            },
        )
        handle = pa.ffi.new("PaStream **")
        pa._check(
            lib.Pa_OpenStream(
                handle,
                params if kind == "input" else pa.ffi.NULL,
                params if kind == "output" else pa.ffi.NULL,
                float(sample_rate),
                frames_per_buffer,
                0,  # paNoFlag: PortAudio clips and dithers as usual
                callback,
                data,
            ),
            "Pa_OpenStream",
        )
    except BaseException:
        pa.terminate()
        raise
    stream = Stream(
        handle[0],
        kind=kind,
        device=chosen,
        sample_rate=float(sample_rate),
        channels=channels,
        frames_per_buffer=frames_per_buffer,
        sample_format=sample_format,
        keep_alive=(callback, data, keep_alive),
    )
    with _open_lock:
        _open_streams.add(stream)
    return stream


def open_output_stream(
    device: Device | str | None,
    *,
    sample_rate: float,
    channels: int,
    callback_address: int | pa.CData,
    user_data: int | pa.CData = 0,
    frames_per_buffer: int = 0,
    suggested_latency: Latency | None = None,
    sample_format: SampleFormat = "float32",
    keep_alive: object = None,
) -> Stream:
    """Open a stopped output callback stream on ``device``; call :meth:`Stream.start`.

    ``device`` is a :class:`Device` (found again by its name and host API, never by its
    index), a name for :func:`find_device`, or ``None`` for the default output device.
    ``sample_rate`` is in Hz; ask for the device's native rate (48000 on PulseAudio's
    null sink and JACK) to avoid resampling. ``frames_per_buffer`` is the callback's frame
    count, 0 letting the host choose (it may then vary between calls).
    ``suggested_latency`` is in seconds, or ``"low"`` / ``"high"`` for the device's
    defaults (``None``: ``"high"``, which survives a busy Python process).

    ``callback_address`` is the address of a native ``PaStreamCallback`` (as an ``int``)
    and ``user_data`` the ``void *`` it receives; ``keep_alive`` is any object (their
    owner) the stream references until it is closed. A cffi ``PaStreamCallback *``
    callback (see ``_portaudio.python_callback``) works too, and is kept alive the same
    way. Samples are interleaved ``sample_format`` frames of ``channels``.

    There is no duplex stream: play and record with two streams (module docstring).
    Raises :class:`PortAudioError` (``paInvalidSampleRate`` for a rate JACK does not run
    at, ``paInvalidChannelCount``, ``paDeviceUnavailable``...),
    :class:`~realtalk.exceptions.ConfigurationError` for a device that is not there or bad
    settings, and :class:`TypeError` for a callback of the wrong kind.
    """
    return _open(
        "output",
        device,
        sample_rate=sample_rate,
        channels=channels,
        frames_per_buffer=frames_per_buffer,
        suggested_latency=suggested_latency,
        sample_format=sample_format,
        callback_address=callback_address,
        user_data=user_data,
        keep_alive=keep_alive,
    )


def open_input_stream(
    device: Device | str | None,
    *,
    sample_rate: float,
    channels: int,
    callback_address: int | pa.CData,
    user_data: int | pa.CData = 0,
    frames_per_buffer: int = 0,
    suggested_latency: Latency | None = None,
    sample_format: SampleFormat = "float32",
    keep_alive: object = None,
) -> Stream:
    """Open a stopped input callback stream on ``device``; the callback receives
    ``frame_count`` interleaved frames at its ``input`` pointer and ``NULL`` output.

    Arguments, units and errors as for :func:`open_output_stream`; ``None`` selects the
    default input device. On PulseAudio's ``pulse`` device, input comes from the default
    source (the null sink's monitor in the test setup).
    """
    return _open(
        "input",
        device,
        sample_rate=sample_rate,
        channels=channels,
        frames_per_buffer=frames_per_buffer,
        suggested_latency=suggested_latency,
        sample_format=sample_format,
        callback_address=callback_address,
        user_data=user_data,
        keep_alive=keep_alive,
    )
