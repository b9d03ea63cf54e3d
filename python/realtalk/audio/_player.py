"""Speakers and microphones for a session: the Rust buffers on PortAudio streams.

What this module owns: :class:`Speaker` (a :class:`realtalk.core.PlaybackBuffer` played by
an output stream whose callback is the native ``realtalk_output_callback``) and
:class:`Microphone` (a :class:`realtalk.core.CaptureBuffer` filled by the native input
callback), and :func:`open_audio`, which attaches both to a :class:`realtalk.Session`:
microphone frames in as ``append_audio``, audio deltas out to the speaker, barge-ins cut at
the speaker's exact playhead.

What it must never do: run Python in an audio callback (both callbacks are native code
and never take the GIL), or close a stream while its buffer can be freed: each stream
keeps its buffer alive until it is closed.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import numpy as np
import numpy.typing as npt
import trio

from realtalk._core import AudioDelta, CaptureBuffer, PlaybackBuffer, Playhead
from realtalk.audio._devices import Device
from realtalk.audio._streams import Latency, Stream, open_input_stream, open_output_stream
from realtalk.client import Session
from realtalk.exceptions import ConfigurationError

__all__ = ["Microphone", "Speaker", "open_audio"]

Float32Array = npt.NDArray[np.float32]

#: How often the trio side looks at the buffers (seconds): the microphone pump's period
#: and the interrupt poll's step.
POLL_S = 0.01
#: The GIL switch interval :func:`open_audio` asks for while it runs (seconds; Python's
#: default is 0.005). Every socket or pipe call of the trio thread gives up the GIL, and
#: getting it back from a busy Python thread takes up to one interval: at 5 ms, the
#: hundreds of such calls a second of duplex audio makes queue up into delays of a
#: hundred milliseconds and more (measured by ``realtalk bench``), at 1 ms they do not.
SWITCH_INTERVAL_S = 0.001
#: How long :meth:`Speaker.stop_playback` waits for the output callback to acknowledge an
#: interrupt before it falls back to the playhead estimate (seconds).
STOP_TIMEOUT_S = 0.5


class Speaker:
    """Plays a session's audio deltas on an output device.

    Args:
        device: a :class:`Device`, a device name, or ``None`` for the default output.
        sample_rate: the device rate in Hz (48000 avoids resampling on PulseAudio and JACK).
        channels: device channels; mono audio is copied to each.
        source_rate: Hz of the deltas: 24000 (PCM16) or 8000 (G.711).
        start_threshold_ms: audio buffered before playback starts (jitter margin).
        frames_per_buffer: the callback's frame count (0: the host chooses).
        latency: suggested output latency in seconds, or ``"low"`` / ``"high"``.
        callback_log: records of the buffer's per-callback log (0: off); read them with
            ``buffer.drain_callback_log()``.

    Implements :class:`realtalk.AudioSink`; also usable alone (``push`` + ``fill`` of the
    buffer). Call :meth:`close` (or use ``with``) to stop the stream.
    """

    def __init__(
        self,
        device: Device | str | None = None,
        *,
        sample_rate: int = 48000,
        channels: int = 1,
        source_rate: int = 24000,
        start_threshold_ms: int = 70,
        frames_per_buffer: int = 0,
        latency: Latency | None = None,
        callback_log: int = 0,
    ) -> None:
        self.buffer = PlaybackBuffer(
            sample_rate,
            channels=channels,
            source_rate=source_rate,
            start_threshold_ms=start_threshold_ms,
            callback_log=callback_log,
        )
        """The native playback buffer the output callback reads (playhead, statistics)."""
        self.stream: Stream = open_output_stream(
            device,
            sample_rate=sample_rate,
            channels=channels,
            frames_per_buffer=frames_per_buffer,
            suggested_latency=latency,
            callback_address=PlaybackBuffer.callback_address(),
            user_data=self.buffer.user_data,
            keep_alive=self.buffer,
        )
        info = self.stream.info
        # Frames written but not yet heard when a callback returns: the playhead subtracts it.
        self.buffer.set_output_latency_frames(round(info.output_latency * sample_rate))
        self.stream.start()

    # AudioSink ---------------------------------------------------------------------------

    def push(self, delta: AudioDelta) -> None:
        """Queue one delta's samples (never blocks; ``BufferError`` when 60 s are queued)."""
        self.buffer.push_delta(delta)

    def played_samples(self, item_id: str, content_index: int) -> int:
        """Samples of that item the listener has heard (at ``source_rate``)."""
        return self.buffer.played_samples(item_id, content_index)

    def clear(self) -> None:
        """Stop playback now (short fade) and drop what was not played."""
        self.buffer.interrupt()

    async def stop_playback(self, item_id: str | None, content_index: int = 0) -> int:
        """Stop playback with a short fade and return the samples of ``item_id`` the
        listener heard: exactly what the output callback consumed (it all plays out), or
        the playhead estimate if the stream does not answer within ``STOP_TIMEOUT_S``."""
        if self.buffer.interrupt() is None:
            with trio.move_on_after(STOP_TIMEOUT_S):
                while self.buffer.poll_interrupt() is None and self.buffer.interrupt_requested:
                    await trio.sleep(POLL_S / 5)
        playhead: Playhead | None = self.buffer.playhead(item_id, content_index)
        if item_id is None or playhead is None:
            return 0
        return playhead.played_samples

    def end_of_audio(self, item_id: str, content_index: int) -> None:
        """The item's audio is complete: play it out even below the start threshold, and
        count running dry afterwards as a drain, not an underrun."""
        self.buffer.end_of_stream()

    # lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop and close the stream (idempotent)."""
        if not self.stream.closed:
            self.stream.close()

    def __enter__(self) -> Speaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wake_pipe() -> tuple[int, int] | None:
    """A non-blocking pipe (read end, write end), or ``None`` where there are none that
    trio can wait on."""
    if sys.platform == "win32":
        return None
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    return read_end, write_end


class Microphone:
    """Records from an input device into a native ring; :meth:`frames` reads it from trio.

    Args: as :class:`Speaker`, for the input side (``callback_log``: read it with
    ``buffer.drain_callback_log()``). Overflows (the trio side not reading
    for longer than ``capacity_s``) are counted in ``buffer.statistics()``, never silent.
    """

    def __init__(
        self,
        device: Device | str | None = None,
        *,
        sample_rate: int = 48000,
        channels: int = 1,
        capacity_s: float = 10.0,
        frames_per_buffer: int = 0,
        latency: Latency | None = None,
        callback_log: int = 0,
    ) -> None:
        self.sample_rate = sample_rate
        """The device rate in Hz (of the frames :meth:`frames` yields)."""
        self.buffer = CaptureBuffer(
            channels=channels,
            capacity_s=capacity_s,
            sample_rate=sample_rate,
            callback_log=callback_log,
        )
        """The native ring the input callback writes (overflows in its statistics)."""
        # The callback writes a byte here after each buffer it brings, and :meth:`frames`
        # waits for it: audio is read as soon as it arrives, not on a polling tick.
        self._wake: tuple[int, int] | None = _wake_pipe()
        if self._wake is not None:
            self.buffer.set_notify_fd(self._wake[1])
        try:
            self.stream: Stream = open_input_stream(
                device,
                sample_rate=sample_rate,
                channels=channels,
                frames_per_buffer=frames_per_buffer,
                suggested_latency=latency,
                callback_address=CaptureBuffer.callback_address(),
                user_data=self.buffer.user_data,
                keep_alive=self.buffer,
            )
            self.stream.start()
        except BaseException:
            self._close_wake()
            raise

    async def frames(self) -> AsyncIterator[Float32Array]:
        """The recording, as float32 arrays of whatever arrived since the last one: each
        input callback's frames as soon as it has run (every ``POLL_S`` where the
        platform has no pipes). Ends when :meth:`close` is called."""
        while True:
            chunk = self.buffer.read()
            if len(chunk):
                yield chunk
                continue
            wake = self._wake
            if wake is None:
                if self.stream.closed:
                    return
                await trio.sleep(POLL_S)
                continue
            try:
                await trio.lowlevel.wait_readable(wake[0])
            except trio.ClosedResourceError:
                return  # close() from another task: the recording is over
            try:
                while os.read(wake[0], 4096):
                    pass
            except BlockingIOError:
                pass

    def _close_wake(self) -> None:
        wake, self._wake = self._wake, None
        if wake is None:
            return
        self.buffer.set_notify_fd(-1)  # before the descriptors go: no stray writes
        for fd in wake:
            with contextlib.suppress(RuntimeError):  # outside trio: nobody waits on it
                trio.lowlevel.notify_closing(fd)
            os.close(fd)

    def close(self) -> None:
        """Stop and close the stream (idempotent)."""
        if not self.stream.closed:
            self.stream.close()
        self._close_wake()

    def __enter__(self) -> Microphone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_switch_users = 0
_switch_saved = 0.0


@contextlib.contextmanager
def gil_switch_interval(seconds: float | None) -> Iterator[None]:
    """Lower Python's GIL switch interval to ``seconds`` (never raise it) for the block,
    and put it back when the last such block ends; ``None`` leaves it alone."""
    global _switch_users, _switch_saved
    if seconds is None:
        yield
        return
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"switch_interval_s: must be > 0 seconds, got {seconds!r}")
    if _switch_users == 0:
        _switch_saved = sys.getswitchinterval()
    _switch_users += 1
    sys.setswitchinterval(min(sys.getswitchinterval(), seconds))
    try:
        yield
    finally:
        _switch_users -= 1
        if _switch_users == 0:
            sys.setswitchinterval(_switch_saved)


@asynccontextmanager
async def open_audio(
    session: Session,
    *,
    output: Device | str | None = None,
    input: Device | str | None = None,
    sample_rate: int = 48000,
    speaker: bool = True,
    microphone: bool = True,
    switch_interval_s: float | None = SWITCH_INTERVAL_S,
) -> AsyncIterator[tuple[Speaker | None, Microphone | None]]:
    """Attach a speaker and a microphone to ``session`` for the ``async with`` block.

    Deltas play on ``output``; ``input`` is streamed to the server with
    :meth:`realtalk.Session.append_audio` (resampled to the session's input format); server-VAD
    speech starts and :meth:`realtalk.Session.interrupt` cut playback and truncate at the speaker's
    exact playhead. ``speaker=False`` / ``microphone=False`` leave a side out.

    While the block runs, Python's GIL switch interval is at most ``switch_interval_s``
    (1 ms; see :data:`SWITCH_INTERVAL_S`: with a busy Python thread in the process, the
    5 ms default delays audio by a hundred milliseconds and more); ``None`` leaves it.
    """
    spk = (
        Speaker(output, sample_rate=sample_rate, source_rate=session.output_sample_rate)
        if speaker
        else None
    )
    mic = Microphone(input, sample_rate=sample_rate) if microphone else None
    try:
        if spk is not None:
            session.attach_audio_sink(spk)
        with gil_switch_interval(switch_interval_s):
            async with trio.open_nursery() as nursery:
                if mic is not None:
                    nursery.start_soon(_pump, session, mic)
                yield spk, mic
                nursery.cancel_scope.cancel()
    finally:
        session.attach_audio_sink(None)
        for side in (mic, spk):
            if side is not None:
                side.close()


async def _pump(session: Session, mic: Microphone) -> None:
    async for chunk in mic.frames():
        await session.append_audio(chunk, sample_rate=mic.sample_rate)
