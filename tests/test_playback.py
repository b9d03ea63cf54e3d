"""PlaybackBuffer driven from Python through fill(): what a PortAudio output stream sees."""

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtalk.core import PlaybackBuffer, Playhead, Resampler
from realtalk.exceptions import AudioFormatError, ConfigurationError


def ramp(n: int, start: int = 0) -> npt.NDArray[np.float32]:
    """Nonzero, distinct-ish samples: every played sample is visible in the output."""
    return (0.25 + ((np.arange(start, start + n) % 1000) * 1e-4)).astype(np.float32)


def drain(buf: PlaybackBuffer, frames: int = 480, limit: int = 10_000) -> npt.NDArray[np.float32]:
    out = []
    for _ in range(limit):
        if buf.buffered_samples == 0 and not buf.interrupt_requested:
            break
        out.append(buf.fill(frames))
    # The resampler's tail and the latency window, as silence.
    out.append(buf.fill(frames))
    out.append(buf.fill(frames))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


steps = st.lists(
    st.tuples(
        st.sampled_from(["push", "fill", "fill", "interrupt", "eos"]),
        st.integers(0, 3),  # item
        st.integers(1, 1500),  # samples or frames
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60)
@given(steps=steps, device_rate=st.sampled_from([24000, 48000, 44100, 16000]))
def test_invariants_under_random_pushes_callbacks_and_interrupts(
    steps: list[tuple[str, int, int]], device_rate: int
) -> None:
    buf = PlaybackBuffer(device_rate, start_threshold_ms=20, capacity_s=1.0)
    buf.set_output_latency_frames(device_rate // 100)
    seen: dict[str, int] = {}
    interrupts = 0
    for op, item, n in steps:
        name = f"item{item}"
        if op == "push":
            buf.push(name, 0, ramp(n))
        elif op == "fill":
            buf.fill(min(n, 8192))
        elif op == "eos":
            buf.end_of_stream()
        else:
            if not buf.interrupt_requested:
                interrupts += 1
            buf.interrupt()
            assert buf.interrupt_requested
            assert buf.interrupt() is None, "idempotent while pending"
        stats = buf.statistics()
        assert stats["pushed_samples"] == (
            stats["played_samples"] + stats["buffered_samples"] + stats["flushed_samples"]
        )
        for key in [*seen, name]:
            head = buf.playhead(key)
            if head is None:
                continue
            assert head.played_samples >= seen.get(key, 0), "playhead went backwards"
            assert head.played_samples <= head.received_samples - head.flushed_samples
            seen[key] = head.played_samples
    buf.end_of_stream()
    drain(buf)
    stats = buf.statistics()
    assert stats["interrupts"] == interrupts
    assert stats["buffered_samples"] == 0
    assert stats["pushed_samples"] == stats["played_samples"] + stats["flushed_samples"]
    for key in seen:
        head = buf.playhead(key)
        assert head is not None
        # Everything not flushed was played, and the playhead caught up with it.
        assert head.played_samples == head.received_samples - head.flushed_samples


@settings(max_examples=60)
@given(
    pushes=st.lists(st.integers(1, 800), min_size=1, max_size=30),
    callbacks=st.lists(st.integers(1, 1200), min_size=1, max_size=30),
    interrupt_at=st.one_of(st.none(), st.integers(0, 29)),
)
def test_no_sample_is_dropped_or_repeated(
    pushes: list[int], callbacks: list[int], interrupt_at: int | None
) -> None:
    # Equal rates: each played sample is one output sample, times a gain in (0, 1].
    buf = PlaybackBuffer(24000, start_threshold_ms=10)
    if interrupt_at is not None and interrupt_at >= len(pushes):
        interrupt_at = None
    x = ramp(sum(pushes))
    out = []
    pos = 0
    item = "a"
    for k, n in enumerate(pushes):
        buf.push(item, 0, x[pos : pos + n])
        pos += n
        out.append(buf.fill(callbacks[k % len(callbacks)]))
        if k == interrupt_at:
            buf.interrupt()
            item = "b"
    buf.end_of_stream()
    out.append(drain(buf))
    y = np.concatenate(out)
    played = y[y != 0]
    stats = buf.statistics()
    assert len(played) == stats["played_samples"]
    if interrupt_at is None:
        assert stats["flushed_samples"] == 0
        assert len(played) == len(x)
        gain = played / x
        assert np.all(gain > 0)
        assert np.all(gain <= 1.0 + 1e-6)
        # The gain moves by at most one 3 ms fade step per sample (72 at 24 kHz).
        envelope = np.zeros(len(y))
        envelope[y != 0] = gain
        assert np.max(np.abs(np.diff(envelope[: np.flatnonzero(y)[-1] + 1]))) <= 1 / 72 + 1e-5
    else:
        head = buf.poll_interrupt()
        assert head is not None
        assert head.item_id == "a"
        assert head.played_samples + head.flushed_samples == head.received_samples
        a = buf.playhead("a")
        assert a is not None
        assert a.played_samples == head.played_samples
        assert a.received_samples == head.received_samples
        b = buf.playhead("b")
        assert head.played_samples + (b.played_samples if b else 0) == len(played)
        assert stats["flushed_samples"] == head.flushed_samples


def test_output_matches_the_resampler_after_the_fade_in() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(24000) * 0.1).astype(np.float32)
    buf = PlaybackBuffer(48000, channels=2)
    for chunk in np.array_split(x, 37):
        buf.push("a", 0, chunk)
    buf.end_of_stream()
    out = np.concatenate([buf.fill(n) for n in [256, 1000, 7, 4096] * 20])
    assert out.shape[1] == 2
    assert np.array_equal(out[:, 0], out[:, 1])
    ref = Resampler(24000, 48000).process(x)
    skip = 2 * (72 + 2 * int(buf.resampler_delay) + 16)
    assert np.array_equal(out[skip : len(ref), 0], ref[skip:])
    assert buf.statistics()["underruns"] == 0
    notices = buf.notices()
    assert notices & PlaybackBuffer.NOTICE_STARTED
    assert notices & PlaybackBuffer.NOTICE_DRAINED
    assert buf.notices() == 0


def test_start_threshold_and_underrun_notice() -> None:
    buf = PlaybackBuffer(24000, start_threshold_ms=70)
    buf.push("a", 0, ramp(1000))  # 41.7 ms: below the threshold
    assert not buf.fill(500).any()
    buf.push("a", 0, ramp(1000, 1000))
    assert buf.fill(500).all()
    buf.fill(2000)
    assert buf.notices() == PlaybackBuffer.NOTICE_STARTED | PlaybackBuffer.NOTICE_UNDERRUN
    assert buf.statistics()["underruns"] == 1


def test_interrupt_returns_the_exact_playhead() -> None:
    buf = PlaybackBuffer(48000)
    buf.push("item_1", 0, np.full(24000, 3000, np.int16))
    assert buf.poll_interrupt() is None
    for _ in range(10):
        buf.fill(480)  # 100 ms
    assert buf.interrupt() is None
    buf.fill(480)
    head = buf.poll_interrupt()
    assert isinstance(head, Playhead)
    assert head.item_id == "item_1"
    assert head.content_index == 0
    assert 2400 < head.played_samples < 2700
    assert head.audio_end_ms == head.played_samples * 1000 // 24000
    assert head.played_samples + head.flushed_samples == head.received_samples == 24000
    assert buf.poll_interrupt() == head
    assert buf.buffered_samples == 0
    assert "item_1" in repr(head)


def test_push_delta_and_played_samples() -> None:
    class Delta:
        item_id = "x"
        content_index = 1
        samples = np.full(4800, 1000, np.int16)

    buf = PlaybackBuffer(24000, start_threshold_ms=0)
    buf.push_delta(Delta())
    buf.end_of_stream()
    drain(buf)
    assert buf.played_samples("x", 1) == 4800
    assert buf.played_samples("x") == 0
    assert buf.playhead() == buf.playhead("x", 1)


def test_pointers_for_portaudio() -> None:
    buf = PlaybackBuffer(48000)
    assert PlaybackBuffer.callback_address() > 0
    assert buf.user_data > 0
    assert buf.callback_address() == PlaybackBuffer.callback_address()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"device_rate": 0},
        {"device_rate": 48000, "channels": 0},
        {"device_rate": 48000, "source_rate": -1},
        {"device_rate": 48000, "start_threshold_ms": -5},
        {"device_rate": 48000, "capacity_s": 0.0},
        {"device_rate": 48000, "capacity_s": float("nan")},
        {"device_rate": 48000, "max_frames_per_callback": 0},
    ],
)
def test_bad_settings_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        PlaybackBuffer(**kwargs)  # type: ignore[arg-type]


def test_bad_arguments_raise() -> None:
    buf = PlaybackBuffer(48000, capacity_s=0.01, max_frames_per_callback=512)
    with pytest.raises(AudioFormatError):
        buf.push("a", 0, np.zeros(10, np.float64))
    with pytest.raises(AudioFormatError):
        buf.push("a", 0, np.zeros((10, 2), np.int16))
    with pytest.raises(ConfigurationError):
        buf.push("a", -1, np.zeros(10, np.int16))
    with pytest.raises(BufferError):
        buf.push("a", 0, np.zeros(241, np.int16))
    with pytest.raises(ConfigurationError):
        buf.fill(513)
    with pytest.raises(ConfigurationError):
        buf.set_output_latency_frames(-1)
