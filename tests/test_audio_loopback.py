"""The native callbacks on real (virtual) devices: PlaybackBuffer → JACK loopback →
CaptureBuffer, and the interrupt playhead against what actually came back.

JACK's dummy backend copies playback_N to capture_N with a fixed delay, bit for bit, in
real time. Playing a known signal and recording it shows (a) that the native output and
input callbacks move every sample, and (b) whether the samples an interrupt reports as
played are the samples the listener would have heard, to the sample.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
import trio

from audio_env import require_jack
from realtalk.audio._player import Microphone, Speaker

RATE = 48000


@pytest.fixture
def device() -> Any:
    """The JACK loopback device (a sync fixture: a skip raised inside a trio test loses its
    reason)."""
    return require_jack()


def ramp_item(samples: int, seed: int = 1) -> np.ndarray:
    """Distinct, never-zero int16 samples (so the first and last ones are findable)."""
    rng = np.random.default_rng(seed)
    values = rng.integers(2000, 12000, samples, dtype=np.int16)
    signs = rng.choice(np.array([-1, 1], dtype=np.int16), samples)
    return (values * signs).astype(np.int16)


#: The fade-in at the start of playback (3 ms at 48 kHz): samples there are scaled.
FADE = 144


def locate(recorded: np.ndarray, item: np.ndarray) -> int:
    """Index in ``recorded`` where ``item[0]`` came back: found by an exact run of
    samples past the fade-in."""
    marker = item[FADE : FADE + 64].astype(np.int32)
    for start in np.flatnonzero(recorded == marker[0]):
        if np.array_equal(recorded[start : start + len(marker)], marker):
            return int(start) - FADE
    raise AssertionError("the item's samples never came back through the loopback")


async def record_while(mic: Microphone, seconds: float) -> np.ndarray:
    chunks = []
    end = trio.current_time() + seconds
    while trio.current_time() < end:
        await trio.sleep(0.01)
        chunks.append(mic.buffer.read())
    chunks.append(mic.buffer.read())
    return np.concatenate(chunks)


ATTEMPTS = 5


def xruns(mic: Microphone, speaker: Speaker) -> int:
    """Over/underflows PortAudio flagged on either stream: the JACK cycle ran late (a
    loaded 2-core machine, servers without real-time priority), so the recording has a
    gap that says nothing about the code under test."""
    m, s = mic.buffer.statistics(), speaker.buffer.statistics()
    return (
        m["input_overflows"]
        + m["input_underflows"]
        + s["output_underflows"]
        + s["output_overflows"]
    )


async def without_xruns(run: Callable[[bool], Awaitable[int]]) -> None:
    """Run a measurement until one has no xruns: ``run(force)`` returns the xrun count and
    checks its data when it is 0 or ``force`` is set. The last attempt checks the data
    whatever PortAudio flagged (a flag at a stream's start or stop need not touch it)."""
    for attempt in range(ATTEMPTS):
        if await run(attempt == ATTEMPTS - 1) == 0:
            return


async def record_into(out: list[np.ndarray], mic: Microphone, seconds: float) -> None:
    out.append(await record_while(mic, seconds))


async def test_playback_through_the_loopback_is_bit_exact(device: Any) -> None:
    with trio.fail_after(60):
        await without_xruns(lambda force: bit_exact_once(device, force))


async def bit_exact_once(device: Any, force: bool) -> int:
    item = ramp_item(RATE // 2)  # 0.5 s at the device rate: no resampling
    with (
        Microphone(device, sample_rate=RATE) as mic,
        Speaker(device, sample_rate=RATE, source_rate=RATE, start_threshold_ms=20) as speaker,
    ):
        await trio.sleep(0.1)
        speaker.buffer.push("item_1", 0, item)
        speaker.buffer.end_of_stream()
        recorded = await record_while(mic, 1.0)
    stats = speaker.buffer.statistics()
    if (count := xruns(mic, speaker)) and not force:
        return count
    played = np.round(recorded * 32768).astype(np.int32)
    start = locate(played, item)
    back = played[start + FADE : start + len(item)]
    assert np.array_equal(back, item[FADE:].astype(np.int32)), "the loopback changed samples"
    assert not played[start + len(item) :].any()  # nothing after the end
    assert stats["underruns"] == 0
    return 0


async def test_interrupt_playhead_matches_the_last_sample_heard(device: Any) -> None:
    item = ramp_item(RATE * 2)  # 2 s
    errors: list[int] = []

    async def interrupt_once(stop_after: float, force: bool) -> int:
        with (
            Microphone(device, sample_rate=RATE) as mic,
            Speaker(device, sample_rate=RATE, source_rate=RATE, start_threshold_ms=20) as speaker,
        ):
            await trio.sleep(0.1)
            speaker.buffer.push("item_1", 0, item)
            recording: list[np.ndarray] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(record_into, recording, mic, stop_after + 0.4)
                await trio.sleep(stop_after)
                heard = await speaker.stop_playback("item_1", 0)
        if (count := xruns(mic, speaker)) and not force:
            return count
        played = np.round(recording[0] * 32768).astype(np.int32)
        first = locate(played, item)
        last = int(np.flatnonzero(played)[-1])  # the fade-out ends on a non-zero sample
        came_back = last - first + 1  # samples of the item that reached the "ear"
        errors.append(int(heard) - came_back)
        # Everything before the fade-out came back unchanged.
        end = last - 200
        assert np.array_equal(played[first + FADE : end], item[FADE : end - first].astype(np.int32))
        return 0

    with trio.fail_after(90):
        for stop_after in (0.31, 0.57, 0.93):
            await without_xruns(lambda force: interrupt_once(stop_after, force))  # noqa: B023
    # The reported count is exact: the last sample that came back is the last one counted.
    assert errors == [0, 0, 0], f"played-sample error per interrupt: {errors}"


async def test_speaker_resamples_24k_deltas_to_the_device_rate(device: Any) -> None:
    t = np.arange(24000) / 24000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    with trio.fail_after(20):
        with (
            Microphone(device, sample_rate=RATE) as mic,
            Speaker(device, sample_rate=RATE, source_rate=24000) as speaker,
        ):
            await trio.sleep(0.1)
            speaker.buffer.push("item_1", 0, tone)
            speaker.buffer.end_of_stream()
            recorded = await record_while(mic, 1.5)
    spectrum = np.abs(np.fft.rfft(recorded))
    peak_hz = np.argmax(spectrum) * RATE / len(recorded)
    assert abs(peak_hz - 440) < 2
    energy = float(np.sqrt(np.mean(recorded[np.abs(recorded) > 0.01] ** 2)))
    assert energy == pytest.approx(8000 / 32768 / np.sqrt(2), rel=0.05)


async def test_a_session_plays_on_the_device_and_truncates_at_its_playhead(device: Any) -> None:
    import realtalk
    from realtalk.audio import open_audio
    from realtalk.core import AudioDelta
    from realtalk.protocol import ItemTruncated
    from realtalk.server import Say, ServerOptions, Turn, open_server

    class NoiseBrain:
        """Answers with 3 s of never-silent audio, so the cut is visible in the recording."""

        def respond(self, turn: Turn) -> list[Say]:
            return [Say("noise", audio=ramp_item(3 * 24000, seed=7))]

    async def once(force: bool) -> int:
        async with (
            open_server(options=ServerOptions(paced=True, delta_ms=50), brain=NoiseBrain) as server,
            realtalk.connect(server.url, api_key="k") as session,
            open_audio(session, output=device, microphone=False) as (speaker, _),
        ):
            assert speaker is not None
            with Microphone(device, sample_rate=RATE) as ear:
                await trio.sleep(0.3)  # a JACK client takes a moment to get its first callback
                ear.buffer.read()
                await session.send_text("Tell me a long story about the sea, please.")
                await trio.sleep(0.8)
                interrupted = await session.interrupt()
                await trio.sleep(0.2)
                heard = np.round(ear.buffer.read() * 32768).astype(np.int32)
            async for event in session.events():
                assert not isinstance(event, AudioDelta)  # the speaker took them
                if isinstance(event, ItemTruncated):
                    break
            assert event.audio_end_ms == interrupted.audio_end_ms
            if (count := xruns(ear, speaker)) and not force:
                return count
        voiced = np.flatnonzero(heard)
        came_back_ms = (voiced[-1] - voiced[0] + 1) * 1000 / RATE
        # Stopped at about 0.8 s: what the server keeps is what came out of the device.
        assert 400 < interrupted.audio_end_ms < 800
        # Measured: the device played 3.3 ms more than audio_end_ms says (whole ms, rounded
        # down, and the 3 ms fade-out after the cut, through the 24 -> 48 kHz resampler).
        assert 0 <= came_back_ms - interrupted.audio_end_ms <= 4, (came_back_ms, interrupted)
        return 0

    with trio.fail_after(60):
        await without_xruns(once)


async def test_the_microphone_feeds_server_vad_through_open_audio(device: Any) -> None:
    import realtalk
    from realtalk.audio import open_audio
    from realtalk.protocol import SpeechStarted, SpeechStopped
    from realtalk.server import open_server
    from realtalk.server._speech import synthesize

    speech = synthesize("Hello, can you hear me?", sample_rate=RATE)
    with trio.fail_after(30):
        async with (
            open_server() as server,
            realtalk.connect(server.url, api_key="k") as session,
            open_audio(session, input=device, speaker=False) as (_, microphone),
        ):
            assert microphone is not None
            await trio.sleep(0.3)  # the JACK client's first callbacks
            # Someone speaks into the "room": played into the loopback the mic records.
            with Speaker(device, sample_rate=RATE, source_rate=RATE) as mouth:
                mouth.buffer.push("talk", 0, speech)
                mouth.buffer.end_of_stream()
                first: SpeechStarted | None = None
                async for event in session.events():
                    if isinstance(event, SpeechStarted):
                        first = event
                    elif isinstance(event, SpeechStopped):
                        last = event
                        break
            assert first is not None
    speech_ms = len(speech) * 1000 // RATE
    assert 0 < last.audio_end_ms - first.audio_start_ms <= speech_ms + 300 + 500 + 100
    assert session.statistics().connection.audio_appended_ms > speech_ms


async def test_the_microphone_hands_over_each_callback_as_it_arrives(device: Any) -> None:
    # frames() waits on the callback's wake-up byte rather than a polling tick: each
    # 256-frame callback comes out on its own (a 10 ms tick would batch about two).
    from contextlib import aclosing

    with trio.fail_after(20), Microphone(device, sample_rate=RATE, frames_per_buffer=256) as mic:
        sizes = []
        async with aclosing(mic.frames()) as frames:
            async for chunk in frames:
                sizes.append(len(chunk))
                if len(sizes) == 100:
                    break
    assert sizes.count(256) >= 90, sizes


async def test_closing_the_microphone_ends_its_frames(device: Any) -> None:
    mic = Microphone(device, sample_rate=RATE, frames_per_buffer=256)
    chunks = 0

    async def read() -> None:
        nonlocal chunks
        async for _ in mic.frames():
            chunks += 1

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.sleep(0.3)
            mic.close()  # from another task, while frames() waits for the next callback
    assert chunks > 10
