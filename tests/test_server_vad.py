"""The embedded server's energy VAD: timing on synthetic signals, chunking, settings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from realtalk.core import pcm16_to_f32
from realtalk.exceptions import AudioFormatError, ConfigurationError
from realtalk.server._vad import (
    START_FRAMES,
    EnergyVad,
    SpeechStarted,
    SpeechStopped,
    semantic_silence_ms,
    threshold_dbfs,
)

Event = SpeechStarted | SpeechStopped


def silence(ms: int, sample_rate: int) -> NDArray[np.int16]:
    return np.zeros(ms * sample_rate // 1000, dtype=np.int16)


def tone(ms: int, sample_rate: int, dbfs: float = -20.0, freq: float = 200.0) -> NDArray[np.int16]:
    """A sine whose RMS level is ``dbfs`` (full scale 32768)."""
    amplitude = 32768.0 * 10.0 ** (dbfs / 20.0) * math.sqrt(2.0)
    t = np.arange(ms * sample_rate // 1000) / sample_rate
    out: NDArray[np.int16] = np.rint(amplitude * np.sin(2.0 * np.pi * freq * t)).astype(np.int16)
    return out


def noise(ms: int, sample_rate: int, dbfs: float, seed: int = 0) -> NDArray[np.int16]:
    rms = 32768.0 * 10.0 ** (dbfs / 20.0)
    values = np.random.default_rng(seed).standard_normal(ms * sample_rate // 1000) * rms
    out: NDArray[np.int16] = np.clip(np.rint(values), -32768, 32767).astype(np.int16)
    return out


def run(vad: EnergyVad, signal: NDArray[np.int16], chunks: list[int] | None = None) -> list[Event]:
    """All events for ``signal`` fed whole, or cut at the sorted offsets ``chunks``."""
    cuts = [0, *(chunks or []), signal.size]
    events: list[Event] = []
    for lo, hi in itertools.pairwise(cuts):
        events += vad.process(signal[lo:hi])
    return events


def burst_signal(sample_rate: int, lead_ms: int = 1000) -> NDArray[np.int16]:
    return np.concatenate(
        (silence(lead_ms, sample_rate), tone(300, sample_rate), silence(1500, sample_rate))
    )


# --- timing --------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize(("padding_ms", "silence_ms"), [(300, 500), (0, 200), (120, 1000)])
def test_one_burst_gives_one_start_and_one_stop(
    sample_rate: int, padding_ms: int, silence_ms: int
) -> None:
    vad = EnergyVad(
        sample_rate=sample_rate, prefix_padding_ms=padding_ms, silence_duration_ms=silence_ms
    )
    events = run(vad, burst_signal(sample_rate))
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    start, stop = events
    assert isinstance(start, SpeechStarted)
    assert isinstance(stop, SpeechStopped)
    assert abs(start.audio_start_ms - (1000 - padding_ms)) <= 10
    assert abs(stop.audio_end_ms - (1300 + silence_ms)) <= 10
    assert not vad.speaking
    assert vad.speech_start_sample is not None
    assert abs(vad.speech_start_sample - sample_rate) <= sample_rate // 100


def test_frame_aligned_timing_is_exact() -> None:
    vad = EnergyVad(sample_rate=24000)
    assert run(vad, burst_signal(24000)) == [
        SpeechStarted(audio_start_ms=700),
        SpeechStopped(audio_end_ms=1800),
    ]
    assert vad.speech_start_sample == 24000
    assert vad.samples_seen == burst_signal(24000).size


def test_events_arrive_when_their_audio_has_been_seen() -> None:
    vad = EnergyVad(sample_rate=8000)
    assert vad.process(silence(1000, 8000)) == []
    # The start needs START_FRAMES voiced frames; one is not enough.
    assert vad.process(tone(10, 8000)) == []
    assert not vad.speaking
    assert vad.process(tone(10 * (START_FRAMES - 1), 8000)) == [SpeechStarted(700)]
    assert vad.speaking
    assert vad.process(tone(280, 8000)) == []
    assert vad.process(silence(490, 8000)) == []
    assert vad.speaking
    assert vad.process(silence(10, 8000)) == [SpeechStopped(1800)]
    assert not vad.speaking


def test_padding_clamps_at_zero() -> None:
    vad = EnergyVad(sample_rate=16000, prefix_padding_ms=300)
    signal = np.concatenate((silence(100, 16000), tone(300, 16000), silence(600, 16000)))
    assert run(vad, signal) == [SpeechStarted(0), SpeechStopped(900)]


def test_speech_from_the_first_sample() -> None:
    vad = EnergyVad(sample_rate=16000, prefix_padding_ms=0)
    signal = np.concatenate((tone(200, 16000), silence(600, 16000)))
    assert run(vad, signal) == [SpeechStarted(0), SpeechStopped(700)]


@pytest.mark.parametrize(("gap_ms", "pairs"), [(700, 2), (1000, 2), (300, 1), (490, 1)])
def test_two_utterances_split_only_by_a_long_enough_gap(gap_ms: int, pairs: int) -> None:
    sr = 16000
    signal = np.concatenate(
        (silence(500, sr), tone(300, sr), silence(gap_ms, sr), tone(300, sr), silence(800, sr))
    )
    events = run(EnergyVad(sample_rate=sr, silence_duration_ms=500), signal)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped] * pairs
    assert events[0] == SpeechStarted(200)
    second_end = 500 + 300 + gap_ms + 300
    assert events[-1] == SpeechStopped(second_end + 500)
    if pairs == 2:
        assert events[1] == SpeechStopped(800 + 500)
        assert events[2] == SpeechStarted(800 + gap_ms - 300)


def test_zero_silence_duration_stops_at_the_end_of_speech() -> None:
    vad = EnergyVad(sample_rate=8000, silence_duration_ms=0, prefix_padding_ms=0)
    signal = np.concatenate((silence(100, 8000), tone(200, 8000), silence(100, 8000)))
    assert run(vad, signal) == [SpeechStarted(100), SpeechStopped(300)]


def test_silence_that_never_ends_leaves_speech_open() -> None:
    vad = EnergyVad(sample_rate=8000)
    assert run(vad, np.concatenate((silence(100, 8000), tone(400, 8000)))) == [SpeechStarted(0)]
    assert vad.speaking
    assert vad.speech_start_sample == 800


# --- level and threshold --------------------------------------------------------------


def test_threshold_mapping() -> None:
    assert threshold_dbfs(0.0) == -60.0
    assert threshold_dbfs(0.5) == -35.0
    assert threshold_dbfs(1.0) == -10.0
    assert EnergyVad(sample_rate=8000, threshold=0.2).threshold_dbfs == pytest.approx(-50.0)


def test_quiet_tone_triggers_only_a_sensitive_detector() -> None:
    signal = np.concatenate(
        (silence(200, 16000), tone(500, 16000, dbfs=-45.0), silence(800, 16000))
    )
    assert len(run(EnergyVad(sample_rate=16000, threshold=0.1), signal)) == 2
    assert run(EnergyVad(sample_rate=16000, threshold=0.9), signal) == []


@pytest.mark.parametrize("dbfs", [-30.0, -20.0, -15.0])
def test_speech_levels_trigger_at_the_default_threshold(dbfs: float) -> None:
    signal = np.concatenate((tone(300, 24000, dbfs=dbfs), silence(600, 24000)))
    assert len(run(EnergyVad(sample_rate=24000), signal)) == 2


@pytest.mark.parametrize("dbfs", [-50.0, -60.0, -80.0])
def test_noise_below_minus_50_dbfs_does_not_trigger(dbfs: float) -> None:
    assert run(EnergyVad(sample_rate=24000), noise(2000, 24000, dbfs)) == []


@given(
    dbfs=st.floats(-70.0, -5.0),
    low=st.floats(0.0, 1.0),
    high=st.floats(0.0, 1.0),
)
def test_a_higher_threshold_is_never_more_sensitive(dbfs: float, low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    signal = np.concatenate((tone(100, 8000, dbfs=dbfs), silence(600, 8000)))
    if run(EnergyVad(sample_rate=8000, threshold=high), signal):
        assert run(EnergyVad(sample_rate=8000, threshold=low), signal)


# --- chunking -------------------------------------------------------------------------


def two_utterances(sample_rate: int) -> NDArray[np.int16]:
    return np.concatenate(
        (
            noise(150, sample_rate, -60.0),
            tone(240, sample_rate, -25.0),
            silence(200, sample_rate),
            tone(100, sample_rate, -18.0),
            noise(700, sample_rate, -55.0, seed=1),
            tone(95, sample_rate, -30.0),
            silence(603, sample_rate),
        )
    )


@pytest.mark.parametrize("chunk", [1, 7, 80, 81, 160, 1000])
def test_chunk_size_does_not_matter(chunk: int) -> None:
    signal = two_utterances(8000)
    whole = EnergyVad(sample_rate=8000)
    expected = run(whole, signal)
    assert len(expected) == 4
    vad = EnergyVad(sample_rate=8000)
    assert run(vad, signal, list(range(chunk, signal.size, chunk))) == expected
    assert vad.samples_seen == whole.samples_seen == signal.size
    assert vad.speech_start_sample == whole.speech_start_sample


segments = st.lists(
    st.tuples(
        st.sampled_from(["silence", "tone", "noise"]),
        st.floats(-60.0, -10.0),
        st.integers(0, 400),
    ),
    max_size=6,
)


def build(parts: list[tuple[str, float, int]], sample_rate: int) -> NDArray[np.int16]:
    pieces = [silence(0, sample_rate)]
    for index, (kind, dbfs, ms) in enumerate(parts):
        if kind == "silence":
            pieces.append(silence(ms, sample_rate))
        elif kind == "tone":
            pieces.append(tone(ms, sample_rate, dbfs))
        else:
            pieces.append(noise(ms, sample_rate, dbfs, seed=index))
    return np.concatenate(pieces)


@given(parts=segments, data=st.data())
def test_any_chunking_gives_the_same_events(
    parts: list[tuple[str, float, int]], data: st.DataObject
) -> None:
    sr = 8000
    signal = build(parts, sr)
    cuts = sorted(data.draw(st.lists(st.integers(0, signal.size), max_size=30)))
    whole = EnergyVad(sample_rate=sr, silence_duration_ms=150, prefix_padding_ms=100)
    expected = run(whole, signal)

    vad = EnergyVad(sample_rate=sr, silence_duration_ms=150, prefix_padding_ms=100)
    events: list[Event] = []
    bounds = [0, *cuts, signal.size]
    for lo, hi in itertools.pairwise(bounds):
        new = vad.process(signal[lo:hi])
        seen_ms = vad.samples_seen * 1000 // sr
        for event in new:
            when = event.audio_start_ms if isinstance(event, SpeechStarted) else event.audio_end_ms
            assert 0 <= when <= seen_ms
        events += new
    assert events == expected
    # Starts and stops alternate, beginning with a start.
    assert all(isinstance(e, SpeechStarted) == (i % 2 == 0) for i, e in enumerate(events))
    assert vad.speaking == (len(events) % 2 == 1) == whole.speaking
    assert vad.samples_seen == signal.size


def test_float32_input_gives_the_same_events() -> None:
    signal = two_utterances(16000)
    expected = run(EnergyVad(sample_rate=16000), signal)
    as_float = pcm16_to_f32(signal)
    vad = EnergyVad(sample_rate=16000)
    events: list[Event] = []
    for lo in range(0, as_float.size, 333):
        events += vad.process(as_float[lo : lo + 333])
    assert events == expected


def test_byte_swapped_and_strided_int16_are_read_by_value() -> None:
    signal = two_utterances(8000)
    expected = run(EnergyVad(sample_rate=8000), signal)
    assert run(EnergyVad(sample_rate=8000), signal.astype(">i2")) == expected
    doubled = np.repeat(signal, 2)
    assert run(EnergyVad(sample_rate=8000), doubled[::2]) == expected


# --- reset and the clock --------------------------------------------------------------


def test_reset_forgets_speech_but_keeps_the_clock() -> None:
    vad = EnergyVad(sample_rate=8000, prefix_padding_ms=0)
    assert vad.process(np.concatenate((silence(100, 8000), tone(100, 8000)))) == [
        SpeechStarted(100)
    ]
    vad.process(tone(5, 8000))  # a partial frame, dropped by reset
    vad.reset()
    assert not vad.speaking
    assert vad.speech_start_sample is None
    assert vad.samples_seen == 1640
    # The clock goes on: the next speech is timed from the session's first sample.
    events = vad.process(np.concatenate((silence(360, 8000), tone(200, 8000), silence(500, 8000))))
    assert events == [SpeechStarted(565), SpeechStopped(1265)]
    assert vad.speech_start_sample == 1640 + 2880


# --- settings and input checks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 99}, "sample_rate"),
        ({"sample_rate": 192_001}, "sample_rate"),
        ({"sample_rate": 16000.0}, "sample_rate"),
        ({"sample_rate": True}, "sample_rate"),
        ({"sample_rate": 16000, "threshold": -0.01}, "threshold"),
        ({"sample_rate": 16000, "threshold": 1.01}, "threshold"),
        ({"sample_rate": 16000, "threshold": math.nan}, "threshold"),
        ({"sample_rate": 16000, "threshold": "0.5"}, "threshold"),
        ({"sample_rate": 16000, "prefix_padding_ms": -1}, "prefix_padding_ms"),
        ({"sample_rate": 16000, "prefix_padding_ms": 1.5}, "prefix_padding_ms"),
        ({"sample_rate": 16000, "silence_duration_ms": -1}, "silence_duration_ms"),
        ({"sample_rate": 16000, "silence_duration_ms": None}, "silence_duration_ms"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        EnergyVad(**kwargs)  # type: ignore[arg-type]


def test_settings_are_kept() -> None:
    vad = EnergyVad(sample_rate=8000, threshold=1, prefix_padding_ms=0, silence_duration_ms=0)
    assert (vad.sample_rate, vad.threshold, vad.prefix_padding_ms) == (8000, 1.0, 0)
    assert vad.silence_duration_ms == 0
    assert vad.frame_samples == 80
    assert vad.samples_seen == 0
    assert not vad.speaking
    assert vad.speech_start_sample is None


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(10, dtype=np.int32),
        np.zeros(10, dtype=np.float64),
        np.zeros(10, dtype=np.uint16),
        np.zeros((10, 1), dtype=np.int16),
        np.zeros((2, 10), dtype=np.float32),
        np.array(0, dtype=np.int16),
    ],
)
def test_bad_audio_is_refused(samples: NDArray[np.generic]) -> None:
    vad = EnergyVad(sample_rate=8000)
    with pytest.raises(AudioFormatError):
        vad.process(samples)  # type: ignore[arg-type]
    assert vad.samples_seen == 0


def test_non_arrays_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        EnergyVad(sample_rate=8000).process([0, 1, 2])  # type: ignore[arg-type]


def test_empty_chunks_change_nothing() -> None:
    vad = EnergyVad(sample_rate=8000)
    assert vad.process(np.zeros(0, dtype=np.int16)) == []
    assert vad.process(np.zeros(0, dtype=np.float32)) == []
    assert vad.samples_seen == 0


# --- semantic_vad emulation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("eagerness", "ms"), [("low", 1500), ("medium", 800), ("auto", 800), ("high", 400)]
)
def test_semantic_eagerness_maps_to_a_silence_length(eagerness: str, ms: int) -> None:
    assert semantic_silence_ms(eagerness) == ms


@pytest.mark.parametrize("eagerness", ["", "LOW", "eager", None])
def test_unknown_eagerness_is_refused(eagerness: str) -> None:
    with pytest.raises(ConfigurationError, match="eagerness"):
        semantic_silence_ms(eagerness)
