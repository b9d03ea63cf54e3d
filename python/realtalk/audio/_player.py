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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import numpy.typing as npt
import trio

from realtalk._core import AudioDelta, CaptureBuffer, PlaybackBuffer, Playhead
from realtalk.audio._devices import Device
from realtalk.audio._streams import Latency, Stream, open_input_stream, open_output_stream
from realtalk.client import Session

__all__ = ["Microphone", "Speaker", "open_audio"]

Float32Array = npt.NDArray[np.float32]

#: How often the trio side looks at the buffers (seconds): the microphone pump's period
#: and the interrupt poll's step.
POLL_S = 0.01
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
    ) -> None:
        self.buffer = PlaybackBuffer(
            sample_rate,
            channels=channels,
            source_rate=source_rate,
            start_threshold_ms=start_threshold_ms,
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


class Microphone:
    """Records from an input device into a native ring; :meth:`frames` reads it from trio.

    Args: as :class:`Speaker`, for the input side. Overflows (the trio side not reading
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
    ) -> None:
        self.sample_rate = sample_rate
        """The device rate in Hz (of the frames :meth:`frames` yields)."""
        self.buffer = CaptureBuffer(
            channels=channels, capacity_s=capacity_s, sample_rate=sample_rate
        )
        """The native ring the input callback writes (overflows in its statistics)."""
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

    async def frames(self) -> AsyncIterator[Float32Array]:
        """The recording, as float32 arrays of whatever arrived since the last one."""
        while True:
            await trio.sleep(POLL_S)
            chunk = self.buffer.read()
            if len(chunk):
                yield chunk

    def close(self) -> None:
        """Stop and close the stream (idempotent)."""
        if not self.stream.closed:
            self.stream.close()

    def __enter__(self) -> Microphone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@asynccontextmanager
async def open_audio(
    session: Session,
    *,
    output: Device | str | None = None,
    input: Device | str | None = None,
    sample_rate: int = 48000,
    speaker: bool = True,
    microphone: bool = True,
) -> AsyncIterator[tuple[Speaker | None, Microphone | None]]:
    """Attach a speaker and a microphone to ``session`` for the ``async with`` block.

    Deltas play on ``output``; ``input`` is streamed to the server with
    :meth:`realtalk.Session.append_audio` (resampled to the session's input format); server-VAD
    speech starts and :meth:`realtalk.Session.interrupt` cut playback and truncate at the speaker's
    exact playhead. ``speaker=False`` / ``microphone=False`` leave a side out.
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
