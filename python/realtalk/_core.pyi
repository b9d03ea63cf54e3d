"""Stub of the native module ``realtalk._core``, with the docstrings of its public API.

Samples: int16 (PCM16, full scale 32768) or float32 (full scale 1.0). "Bytes-like" means
``bytes``, ``bytearray``, ``memoryview``, ``array.array`` or anything with the buffer
protocol; as audio it is read as PCM16 little-endian (the Realtime API's wire format).
Arrays must be C-contiguous and in native byte order; the error says how to fix one
that is not.
"""

from typing import ClassVar, Final, Literal, Protocol, TypeAlias, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

__version__: Final[str]
__all__ = [
    "AudioDelta",
    "CaptureBuffer",
    "PlaybackBuffer",
    "Playhead",
    "Resampler",
    "__version__",
    "alaw_decode",
    "alaw_encode",
    "b64decode",
    "b64encode",
    "encode_append",
    "f32_to_pcm16",
    "parse_server_event",
    "pcm16_to_f32",
    "ulaw_decode",
    "ulaw_encode",
]

_Int16Array: TypeAlias = npt.NDArray[np.int16]
_Float32Array: TypeAlias = npt.NDArray[np.float32]
_Records: TypeAlias = npt.NDArray[np.void]

def f32_to_pcm16(samples: _Float32Array | Buffer) -> _Int16Array:
    """Convert float32 samples to int16, keeping the array's shape.

    Each sample is multiplied by 32768, rounded to nearest with ties to even (like
    ``np.rint``) and clipped to [-32768, 32767]: 1.0 becomes 32767 and -1.0 becomes
    -32768. NaN becomes 0, +inf 32767 and -inf -32768.

    Raises:
        AudioFormatError: not float32, not C-contiguous, or byte-swapped.
        TypeError: not an array or bytes-like object.
    """

def pcm16_to_f32(samples: _Int16Array | Buffer) -> _Float32Array:
    """Convert int16 samples (an array, or PCM16 little-endian bytes) to float32.

    Each sample is divided by 32768, so the result lies in [-1.0, 1.0) and
    ``f32_to_pcm16(pcm16_to_f32(x))`` gives back ``x`` exactly. Arrays keep their shape.

    Raises:
        AudioFormatError: wrong dtype or layout, or an odd number of bytes.
        TypeError: not an array or bytes-like object.
    """

def ulaw_encode(samples: _Int16Array | Buffer) -> bytes:
    """Encode int16 samples to G.711 mu-law, one byte per sample.

    Bit-exact with ``audioop.lin2ulaw(data, 2)`` for every int16 input. The sample rate
    is unchanged (G.711 telephony is 8 kHz; resample first if needed).

    Raises:
        AudioFormatError: wrong dtype or layout, or an odd number of bytes.
        TypeError: not an array or bytes-like object.
    """

def alaw_encode(samples: _Int16Array | Buffer) -> bytes:
    """Encode int16 samples to G.711 A-law, one byte per sample.

    Bit-exact with ``audioop.lin2alaw(data, 2)`` for every int16 input.

    Raises:
        AudioFormatError: wrong dtype or layout, or an odd number of bytes.
        TypeError: not an array or bytes-like object.
    """

def ulaw_decode(data: Buffer) -> _Int16Array:
    """Decode G.711 mu-law bytes to a 1-D int16 array, one sample per byte.

    Bit-exact with ``audioop.ulaw2lin(data, 2)`` for all 256 codes.

    Raises:
        AudioFormatError: an array that is not uint8 or int8.
        TypeError: not a bytes-like object.
    """

def alaw_decode(data: Buffer) -> _Int16Array:
    """Decode G.711 A-law bytes to a 1-D int16 array, one sample per byte.

    Bit-exact with ``audioop.alaw2lin(data, 2)`` for all 256 codes.

    Raises:
        AudioFormatError: an array that is not uint8 or int8.
        TypeError: not a bytes-like object.
    """

def b64encode(data: Buffer) -> str:
    """Standard base64 (RFC 4648, padded) of the raw bytes of ``data``.

    ``data`` may be any bytes-like object or C-contiguous numpy array; an int16 array
    gives the base64 of its PCM16 bytes (little-endian on little-endian machines).
    """

def b64decode(text: str | Buffer, *, sample_width: int = 2) -> bytes:
    """Decode strict standard base64 to bytes.

    Strict: only the 64 standard characters, ``=`` padding exactly as needed to make the
    length a multiple of 4, no whitespace, and zero unused bits in the last character.
    ``base64.b64decode(validate=True)`` accepts two things this rejects: non-zero unused
    bits, and surplus ``=`` after a complete group (``"Zm9v="``).

    Args:
        text: base64 as ``str`` or ASCII bytes-like.
        sample_width: bytes per sample; the decoded length must be a multiple of it.
            The default, 2, is PCM16; pass 1 for G.711 or arbitrary bytes.

    Raises:
        Base64DecodeError: invalid character, bad padding, or a decoded length that is
            not a whole number of samples. ``position`` is the offending offset
            (characters for ``str``, bytes otherwise).
        ValueError: ``sample_width`` is less than 1.
        TypeError: not ``str`` or bytes-like.
    """

def encode_append(
    samples: _Int16Array | _Float32Array | Buffer, *, event_id: str | None = None
) -> str:
    """The JSON text of one ``input_audio_buffer.append`` event carrying ``samples``.

    int16 arrays and bytes-like objects (PCM16 little-endian) are sent as they are;
    float32 arrays are converted as by :func:`f32_to_pcm16` on the way. No resampling is
    done: the API expects 24 kHz mono for PCM16. The text is
    ``{"type":"input_audio_buffer.append","event_id":"…","audio":"…"}`` (``event_id``
    only when given, JSON-escaped), and ``json.loads`` of it gives back the same values.

    Raises:
        AudioFormatError: wrong dtype or layout, or an odd number of bytes.
        TypeError: not an array or bytes-like object.
        UnicodeEncodeError: ``event_id`` holds a lone surrogate.
    """

def parse_server_event(
    text: str | Buffer, *, audio_format: Literal["pcm16", "g711_ulaw", "g711_alaw"] = "pcm16"
) -> AudioDelta | dict[str, object]:
    """Parse one server event, fast for audio.

    ``response.output_audio.delta`` (GA) and ``response.audio.delta`` (beta) events come
    back as :class:`AudioDelta`, with the base64 payload decoded straight into an int16
    array and no Python string made for it. Any other event comes back as the ``dict``
    ``json.loads`` gives. Field order, whitespace, escapes and unknown fields do not
    matter; duplicate keys keep the last value, like ``json.loads``.

    Args:
        text: the event's JSON, as ``str`` or UTF-8 bytes-like.
        audio_format: the session's output audio format, which says what an audio
            delta's payload holds. ``"pcm16"``: PCM16 little-endian at 24 kHz, two bytes
            per sample. ``"g711_ulaw"`` / ``"g711_alaw"``: G.711 mu-law / A-law at 8 kHz,
            one byte per sample, decoded to int16 as by :func:`ulaw_decode` /
            :func:`alaw_decode` (bit-exact with ``audioop.ulaw2lin`` / ``alaw2lin``).
            The samples keep the format's rate: nothing is resampled. Other events are
            parsed the same whatever the format.

    Stricter than ``json.loads`` in three ways: ``NaN`` and ``Infinity`` (not JSON) are
    refused, the text must be one JSON object, and an audio delta's indexes must fit in
    64 bits. A ``str`` holding a lone surrogate (which no WebSocket message can carry) is
    handed to ``json.loads`` as it is.

    Raises:
        EventParseError: invalid JSON or UTF-8, valid JSON that is not an object, or an
            audio delta with a missing field, a field of the wrong type, or a payload that
            is not strict base64 (of whole PCM16 samples, an even number of bytes, for
            ``"pcm16"``). ``position`` is where (characters for ``str``, bytes otherwise).
        ConfigurationError: ``audio_format`` is none of the three formats.
        TypeError: ``text`` not ``str`` or bytes-like, or ``audio_format`` not ``str``.
    """

@final
class AudioDelta:
    """One audio delta event from the server: where its audio goes, and the samples."""

    @property
    def type(self) -> Literal["response.output_audio.delta", "response.audio.delta"]:
        """The event type; ``response.audio.delta`` is the beta dialect."""
    @property
    def event_id(self) -> str:
        """The server's id of this event."""
    @property
    def response_id(self) -> str:
        """The response the audio belongs to."""
    @property
    def item_id(self) -> str:
        """The assistant item the audio belongs to (what ``conversation.item.truncate`` names)."""
    @property
    def output_index(self) -> int:
        """Index of the item in the response's output."""
    @property
    def content_index(self) -> int:
        """Index of the audio content part in the item (0 in practice)."""
    @property
    def samples(self) -> _Int16Array:
        """The decoded samples, mono, at the output format's rate: 24 kHz for PCM16, 8 kHz
        for G.711 (see ``parse_server_event``'s ``audio_format``)."""

@final
class Resampler:
    """Streaming sample-rate conversion: polyphase windowed sinc, linear phase.

    ``Resampler(48000, 24000)`` turns 48 kHz input into 24 kHz output, chunk by chunk:
    every :meth:`process` call returns the output its input makes available, and
    :meth:`flush` the rest, so that the whole output has exactly
    ``ceil(input_samples * out_rate / in_rate)`` samples per channel. The output does
    not depend on how the input was chunked (bit for bit). It starts with the filter's
    delay (:attr:`delay` output samples of ramp-in), so output sample ``n`` belongs to
    input time ``(n - delay) * in_rate / out_rate``.

    Args:
        in_rate: input sample rate in Hz (1 to 192000).
        out_rate: output sample rate in Hz (1 to 192000).
        channels: channels of the input; multi-channel input is interleaved, either a
            1-D array of frames one after another or a 2-D ``(frames, channels)`` array.
        quality: ``"hq"``: flat to 0.9 of the lower Nyquist frequency, aliases and images
            rejected by at least 125 dB from 1.05 of it, delay at most 5 ms at the common
            rates; ``"speech"``: at most 1.5 ms of delay with at least 100 dB rejection.
        downmix: average the input channels into mono before resampling.

    Raises:
        ConfigurationError: a rate outside 1..192000 Hz, channels below 1, an unknown
            quality.
    """

    def __new__(
        cls,
        in_rate: int,
        out_rate: int,
        *,
        channels: int = 1,
        quality: Literal["hq", "speech"] = "hq",
        downmix: bool = False,
    ) -> Resampler: ...
    def process(self, samples: _Float32Array | _Int16Array | Buffer) -> _Float32Array | _Int16Array:
        """Resample the next chunk; returns the output available now.

        float32 in gives float32 out (full scale 1.0, not clipped); int16 in (or PCM16
        bytes) gives int16 out, rounded and clipped as by :func:`f32_to_pcm16`. The
        output has the input's layout: 1-D, or ``(frames, channels)`` (1-D mono with
        ``downmix``).

        Raises:
            AudioFormatError: wrong dtype or layout, a channel count other than the
                Resampler's, or a length that is not a whole number of frames.
        """
    def flush(self) -> _Float32Array | _Int16Array:
        """End the stream: the output still owed so that the total is exactly
        ``ceil(input_samples * out_rate / in_rate)`` per channel, in the dtype and layout
        of the last input; then the Resampler is ready for a new stream, as after
        :meth:`reset`.

        :meth:`process` already returns everything up to that length as soon as its
        input arrives (nothing is held back), so this is usually empty. Because the
        output starts with :attr:`delay` samples of ramp-in, the last :attr:`delay`
        output samples' worth of input is not in the output: to hear the very end of a
        finite signal, feed that much silence after it.
        """
    def reset(self) -> None:
        """Forget the stream so far: the next input starts a new one."""
    @property
    def delay(self) -> float:
        """The filter's group delay in output samples (constant: the filter is linear
        phase). Subtract it from an output position to find the input time it came from."""
    @property
    def in_rate(self) -> int:
        """Input sample rate in Hz."""
    @property
    def out_rate(self) -> int:
        """Output sample rate in Hz."""
    @property
    def channels(self) -> int:
        """Channels of the input."""
    @property
    def quality(self) -> Literal["hq", "speech"]:
        """The preset."""
    @property
    def downmix(self) -> bool:
        """Whether the input channels are averaged into mono."""

class _AudioDeltaLike(Protocol):
    @property
    def item_id(self) -> str: ...
    @property
    def content_index(self) -> int: ...
    @property
    def samples(self) -> _Int16Array: ...

@final
class Playhead:
    """Where playback of one item (``item_id``, ``content_index``) stands, in samples at the
    source rate (24 kHz for PCM16): what ``conversation.item.truncate`` needs."""

    # Compared by value (``==``) and, like any class that defines ``__eq__`` alone, not
    # hashable: the runtime's ``__hash__`` is ``None``.
    __hash__: ClassVar[None] = None  # type: ignore[assignment]
    @property
    def item_id(self) -> str:
        """The assistant item."""
    @property
    def content_index(self) -> int:
        """The audio content part of the item."""
    @property
    def played_samples(self) -> int:
        """Samples the listener has heard: consumed by the device, less the output latency
        and the resampler's delay. After an interrupt: every sample up to the end of the
        fade-out (which the device still plays)."""
    @property
    def audio_end_ms(self) -> int:
        """``played_samples * 1000 // sample_rate``: the ``audio_end_ms`` to truncate at."""
    @property
    def received_samples(self) -> int:
        """Samples of the item pushed so far."""
    @property
    def flushed_samples(self) -> int:
        """Samples of the item discarded by an interrupt."""
    @property
    def sample_rate(self) -> int:
        """The source rate in Hz the sample counts are at."""

@final
class PlaybackBuffer:
    """Jitter buffer and playhead between decoded audio deltas and a PortAudio output stream.

    One producer (the trio side: :meth:`push`, :meth:`end_of_stream`, :meth:`interrupt`, the
    playhead queries) and one consumer: the native output callback at
    :meth:`callback_address`, or :meth:`fill` from Python when no stream runs. The consumer
    never takes the GIL, allocates or blocks. It waits until ``start_threshold_ms`` of audio
    is buffered (or :meth:`end_of_stream`), resamples from ``source_rate`` to ``device_rate``,
    and copies the mono source to every channel. When the buffer runs dry it fades out over
    3 ms, plays silence, counts an underrun, and fades back in when audio returns: no sample
    is dropped or repeated (a faded sample counts as played). For every item, samples pushed
    = played + buffered + flushed.

    To play through PortAudio, open a paFloat32, interleaved output stream with ``channels``
    channels at ``device_rate``, passing ``callback_address()`` as the callback and
    :attr:`user_data` as its user data; then call :meth:`set_output_latency_frames` with
    ``Pa_GetStreamInfo(stream).outputLatency * device_rate``. Keep this object alive until
    the stream is closed: :attr:`user_data` points into it.

    Lifecycle notices (started, drained, interrupted, underrun) are bits that the consumer
    sets and :meth:`notices` reads and clears; poll it (and :attr:`notice_count`) every few
    ms from trio: the audio thread never wakes Python.

    Args:
        device_rate: the output stream's sample rate in Hz.
        channels: the output stream's channels (1 to 32).
        source_rate: the rate of pushed samples in Hz: 24000 for PCM16, 8000 for G.711.
        start_threshold_ms: audio buffered before playback starts, in ms (0 to 60000).
        capacity_s: ring capacity in seconds at the source rate (allocated once).
        max_frames_per_callback: the largest callback served; larger ones get silence and
            count an error.
        callback_log: capacity of the per-callback log in records (0, the default: off;
            at most 1048576); see :meth:`drain_callback_log`.

    Raises:
        ConfigurationError: a setting out of range.
    """

    NOTICE_STARTED: ClassVar[int]
    NOTICE_DRAINED: ClassVar[int]
    NOTICE_INTERRUPTED: ClassVar[int]
    NOTICE_UNDERRUN: ClassVar[int]

    def __new__(
        cls,
        device_rate: int,
        *,
        channels: int = 1,
        source_rate: int = 24000,
        start_threshold_ms: int = 70,
        capacity_s: float = 60.0,
        max_frames_per_callback: int = 8192,
        callback_log: int = 0,
    ) -> PlaybackBuffer: ...
    def push(
        self, item_id: str, content_index: int, samples: _Int16Array | _Float32Array | Buffer
    ) -> None:
        """Buffer mono samples of one item at the source rate: int16 (or PCM16 bytes) or
        float32. All or nothing.

        Raises:
            AudioFormatError: wrong dtype or layout, or not 1-D.
            ConfigurationError: ``content_index`` negative or too large.
            BufferError: the ring is full, or 256 items still have audio buffered.
        """
    def push_delta(self, delta: AudioDelta | _AudioDeltaLike) -> None:
        """:meth:`push` of an :class:`AudioDelta`'s samples under its ``item_id`` and
        ``content_index``."""
    def end_of_stream(self) -> None:
        """Mark the end of the audio pushed so far (``response.output_audio.done``): playback
        starts even below the threshold, and running dry there is a drain (notice), not an
        underrun."""
    def interrupt(self) -> Playhead | None:
        """Stop playback: ask the consumer to fade out within its next callback (at most
        3 ms) and discard everything pushed so far. Idempotent while pending. Returns at
        once: the exact :class:`Playhead` of the cut item if the consumer already finished,
        else ``None`` (wait with :meth:`poll_interrupt`)."""
    @property
    def interrupt_requested(self) -> bool:
        """An interrupt is pending: the consumer has not run since it was asked."""
    def poll_interrupt(self) -> Playhead | None:
        """The exact playhead of the last finished interrupt (the item that was cut, or the
        last one played), or ``None`` while one is pending or if none happened."""
    def fill(self, frames: int) -> _Float32Array:
        """Run the consumer for ``frames`` device frames and return them: shape ``(frames,)``
        for mono, ``(frames, channels)`` otherwise. For tests and offline rendering; while a
        stream runs, a concurrent call gets silence and counts an error.

        Raises:
            ConfigurationError: ``frames`` negative or above ``max_frames_per_callback``.
        """
    def played_samples(self, item_id: str, content_index: int = 0) -> int:
        """Samples of the item heard so far at the source rate (0 for an unknown item);
        never decreases."""
    def playhead(self, item_id: str | None = None, content_index: int = 0) -> Playhead | None:
        """The playhead of an item, or of the item playing (or played last) when ``item_id``
        is ``None``; ``None`` if unknown. Only the last 256 items are tracked."""
    def set_output_latency_frames(self, frames: int) -> None:
        """Device frames between a callback's return and the speaker, subtracted from the
        playhead (``outputLatency * device_rate`` from ``Pa_GetStreamInfo``).

        Raises:
            ConfigurationError: negative.
        """
    @property
    def output_latency_frames(self) -> int:
        """The output latency set, in device frames."""
    def notices(self) -> int:
        """Pending notice bits (``NOTICE_*``), cleared by reading."""
    @property
    def notice_count(self) -> int:
        """Notices raised since construction (cheap to poll for change)."""
    @property
    def buffered_samples(self) -> int:
        """Source samples pushed and not yet played or flushed."""
    @property
    def resampler_delay(self) -> float:
        """The resampler's delay in source samples."""
    def statistics(self) -> dict[str, int]:
        """A snapshot of counters: callbacks, frames_out, pushed/played/flushed/buffered
        samples, underruns, drains, interrupts, errors, panics, max_callback_ns and
        PortAudio's output underflow/overflow/priming flags; callback timeliness as
        ``max_lateness_ns`` and counts ``late_le_<N>us`` / ``late_gt_50000us`` of callbacks
        that started that late (entry time minus previous entry plus previous period);
        ``callback_log_overflow``: callback-log records dropped because the log was full."""
    def drain_callback_log(self) -> _Records:
        """The per-callback log's records since the last drain, oldest first: a numpy
        structured array (native byte order, aligned, itemsize 48) with fields, in order:

        - ``first_frame`` (``u8``): device frames output by all earlier callbacks, logged
          or not (records dropped on overflow still count): this buffer's frame index in
          the stream. Consecutive records satisfy ``first_frame[i + 1] == first_frame[i] +
          frames[i]`` unless records were dropped.
        - ``frames`` (``u4``): frames PortAudio asked for.
        - ``first_audible`` (``u4``): offset in this buffer of the first frame of item
          audio, or ``frames`` if none.
        - ``audible_frames`` (``u4``): frames from ``first_audible`` to the last frame of
          item audio, both included (0 if none): item audio is in ``[first_audible,
          first_audible + audible_frames)``, the rest of the buffer is silence.
        - ``entry_ns`` (``u8``): CLOCK_MONOTONIC at callback entry in ns (on Linux the
          clock of ``time.monotonic_ns()`` and ``time.perf_counter_ns()``).
        - ``current_time`` (``f8``): PortAudio's ``timeInfo->currentTime`` in s (stream
          clock, ``Pa_GetStreamTime``); NaN without time info (and for :meth:`fill`).
        - ``dac_time`` (``f8``): ``timeInfo->outputBufferDacTime`` in s: when the buffer's
          first frame reaches the DAC; NaN as above.

        Item audio means device frames made from pushed samples (fades included), placed
        where the resampler puts them: source sample k covers device frames ``[k * r + d,
        (k + 1) * r + d)`` counted from the resampler's start (``r = device_rate /
        source_rate``, ``d`` its delay in device frames, rounded up; exact when the rates
        are equal). So audio starts mid-buffer (a start or a resume after an underrun lands
        ``d`` frames into a buffer) and stops mid-buffer (underrun, drain, an interrupt's
        fade). A gap inside one buffer (an underrun shorter than the delay) is counted in
        the span.

        Every consumer call is logged, :meth:`fill` and refused calls included. Empty
        when the log is off."""
    @property
    def callback_log(self) -> int:
        """Capacity of the per-callback log in records (0: off)."""
    @staticmethod
    def callback_address() -> int:
        """Address of the native ``PaStreamCallback`` for this buffer's output stream."""
    @property
    def user_data(self) -> int:
        """Pointer to pass as the stream callback's user data (valid while self lives)."""
    @property
    def device_rate(self) -> int:
        """Device sample rate in Hz."""
    @property
    def source_rate(self) -> int:
        """Source sample rate in Hz."""
    @property
    def channels(self) -> int:
        """Device channels."""
    @property
    def start_threshold_ms(self) -> int:
        """Buffered audio needed to start, in ms."""
    @property
    def max_frames_per_callback(self) -> int:
        """The largest callback served."""

@final
class CaptureBuffer:
    """Ring between a PortAudio input stream and the trio side.

    The native input callback at :meth:`callback_address` (with :attr:`user_data`) copies
    paFloat32 interleaved frames in, never taking the GIL; :meth:`read` takes them out.
    When the ring is full the newest frames are dropped and counted (``overflow_frames``
    in :meth:`statistics`), never silently. Keep this object alive until the stream is
    closed.

    Args:
        channels: channels of the input stream (1 to 32).
        capacity_s: ring capacity in seconds (allocated once).
        sample_rate: the input stream's rate in Hz (for the capacity, and informative).
        callback_log: capacity of the per-callback log in records (0, the default: off;
            at most 1048576); see :meth:`drain_callback_log`.

    Raises:
        ConfigurationError: a setting out of range.
    """

    def __new__(
        cls,
        *,
        channels: int = 1,
        capacity_s: float = 10.0,
        sample_rate: int = 48000,
        callback_log: int = 0,
    ) -> CaptureBuffer: ...
    def read(self, max_frames: int | None = None) -> _Float32Array:
        """Take up to ``max_frames`` frames (all available if ``None``): float32 of shape
        ``(frames,)`` for mono, ``(frames, channels)`` otherwise.

        Raises:
            ConfigurationError: ``max_frames`` negative.
        """
    def write(self, frames: _Float32Array | Buffer) -> int:
        """Run the input callback's logic from Python: append float32 frames (``(frames,)``
        mono or ``(frames, channels)``); returns the frames kept, the rest counted as
        overflow.

        Raises:
            AudioFormatError: not float32, or the wrong shape.
        """
    @property
    def available(self) -> int:
        """Frames ready to read."""
    @property
    def channels(self) -> int:
        """Channels per frame."""
    @property
    def sample_rate(self) -> int:
        """Sample rate in Hz."""
    @property
    def capacity_frames(self) -> int:
        """Ring capacity in frames."""
    def statistics(self) -> dict[str, int]:
        """A snapshot of counters: callbacks, frames_in, frames_read, overflow_frames,
        overflows, available_frames, errors, panics, PortAudio's input overflow/underflow
        flags, ``callback_log_overflow``: callback-log records dropped because the log
        was full, and ``notify_failures``: wake-up bytes the notify descriptor refused
        (a full pipe is not one)."""
    def set_notify_fd(self, fd: int) -> None:
        """After every callback that brought frames, write one byte to ``fd`` (a
        non-blocking pipe's write end), so that the reader can wait for audio (e.g.
        ``trio.lowlevel.wait_readable`` on the read end) instead of polling; ``-1`` stops.
        Clear it before closing ``fd``, with the stream stopped.

        Raises:
            ConfigurationError: ``fd`` below -1.
        """
    def drain_callback_log(self) -> _Records:
        """The per-callback log's records since the last drain, oldest first: a numpy
        structured array (native byte order, aligned, itemsize 40) with fields, in order:

        - ``first_frame`` (``u8``): device frames delivered by all earlier callbacks,
          logged or not (frames the ring dropped and records dropped on overflow still
          count): this buffer's frame index in the stream.
        - ``frames`` (``u4``): frames PortAudio delivered.
        - ``entry_ns`` (``u8``): CLOCK_MONOTONIC at callback entry in ns (on Linux the
          clock of ``time.monotonic_ns()`` and ``time.perf_counter_ns()``).
        - ``current_time`` (``f8``): PortAudio's ``timeInfo->currentTime`` in s (stream
          clock); NaN without time info (and for :meth:`write`).
        - ``adc_time`` (``f8``): ``timeInfo->inputBufferAdcTime`` in s: when the buffer's
          first frame was captured; NaN as above.

        Every callback is logged, :meth:`write` and refused calls included. Empty when
        the log is off."""
    @property
    def callback_log(self) -> int:
        """Capacity of the per-callback log in records (0: off)."""
    @staticmethod
    def callback_address() -> int:
        """Address of the native ``PaStreamCallback`` for this buffer's input stream."""
    @property
    def user_data(self) -> int:
        """Pointer to pass as the stream callback's user data (valid while self lives)."""
