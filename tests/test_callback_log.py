"""The per-callback log of the native buffers: records that place every PortAudio callback
on CLOCK_MONOTONIC (``time.monotonic_ns()``) and on PortAudio's device clock.

Without devices the native callbacks are called through cffi with a made-up
``PaStreamCallbackTimeInfo``; on the JACK loopback a Speaker and a Microphone log a real run.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np
import pytest
import trio

from audio_env import require_jack
from realtalk._core import CaptureBuffer, PlaybackBuffer
from realtalk.audio import _portaudio as pa
from realtalk.audio._player import Microphone, Speaker
from realtalk.exceptions import ConfigurationError

RATE = 48000

PLAYBACK_FIELDS = [
    ("first_frame", "u8"),
    ("frames", "u4"),
    ("first_audible", "u4"),
    ("audible_frames", "u4"),
    ("entry_ns", "u8"),
    ("current_time", "f8"),
    ("dac_time", "f8"),
]
CAPTURE_FIELDS = [
    ("first_frame", "u8"),
    ("frames", "u4"),
    ("entry_ns", "u8"),
    ("current_time", "f8"),
    ("adc_time", "f8"),
]


def fields(records: np.ndarray) -> list[tuple[str, str]]:
    names = records.dtype.names or ()
    return [(n, records.dtype.fields[n][0].str[1:]) for n in names]


def time_info(adc: float, now: float, dac: float) -> Any:
    return pa.ffi.new(
        "PaStreamCallbackTimeInfo *",
        {"inputBufferAdcTime": adc, "currentTime": now, "outputBufferDacTime": dac},
    )


def call_output(buffer: PlaybackBuffer, frames: int, info: Any) -> np.ndarray:
    """Run the native output callback on ``buffer`` as PortAudio would."""
    callback = pa.ffi.cast("PaStreamCallback *", PlaybackBuffer.callback_address())
    out = pa.ffi.new("float[]", frames * buffer.channels)
    user = pa.ffi.cast("void *", buffer.user_data)
    assert callback(pa.ffi.NULL, out, frames, info, 0, user) == pa.paContinue
    return np.frombuffer(pa.ffi.buffer(out), dtype=np.float32).copy()


def call_input(buffer: CaptureBuffer, samples: np.ndarray, info: Any) -> None:
    callback = pa.ffi.cast("PaStreamCallback *", CaptureBuffer.callback_address())
    data = pa.ffi.from_buffer("float[]", samples)
    user = pa.ffi.cast("void *", buffer.user_data)
    frames = len(samples) // buffer.channels
    assert callback(data, pa.ffi.NULL, frames, info, 0, user) == pa.paContinue


def test_off_by_default_and_empty_drains() -> None:
    playback = PlaybackBuffer(RATE)
    capture = CaptureBuffer()
    assert (playback.callback_log, capture.callback_log) == (0, 0)
    playback.fill(480)
    capture.write(np.zeros(480, np.float32))
    for buffer, expected in ((playback, PLAYBACK_FIELDS), (capture, CAPTURE_FIELDS)):
        records = buffer.drain_callback_log()
        assert records.shape == (0,)
        assert fields(records) == expected
        assert buffer.statistics()["callback_log_overflow"] == 0
    assert PlaybackBuffer(RATE, callback_log=16).drain_callback_log().shape == (0,)
    assert CaptureBuffer(callback_log=16).drain_callback_log().dtype.itemsize == 40


@pytest.mark.parametrize("capacity", [-1, 2**20 + 1])
def test_capacity_out_of_range_is_a_configuration_error(capacity: int) -> None:
    message = re.escape(f"callback_log must be 0..=1048576 records, not {capacity}")
    with pytest.raises(ConfigurationError, match=message):
        PlaybackBuffer(RATE, callback_log=capacity)
    with pytest.raises(ConfigurationError, match=message):
        CaptureBuffer(callback_log=capacity)


def test_output_callback_records_portaudio_times_and_audible_frames() -> None:
    buffer = PlaybackBuffer(24000, source_rate=24000, start_threshold_ms=0, callback_log=3)
    before = time.monotonic_ns()
    call_output(buffer, 480, time_info(0.0, 10.0, 10.02))  # silence
    buffer.push("a", 0, np.full(700, 0.5, np.float32))
    out = call_output(buffer, 480, time_info(0.0, 10.01, 10.03))
    assert out.all()
    out = call_output(buffer, 480, pa.ffi.NULL)  # underrun after 220 frames
    assert out[:220].all()
    assert not out[220:].any()
    call_output(buffer, 100, pa.ffi.NULL)  # the log is full: dropped, counted
    after = time.monotonic_ns()
    r = buffer.drain_callback_log()
    assert r["first_frame"].tolist() == [0, 480, 960]
    assert r["frames"].tolist() == [480, 480, 480]
    assert r["first_audible"].tolist() == [480, 0, 0]
    assert r["audible_frames"].tolist() == [0, 480, 220]
    assert before <= r["entry_ns"][0] <= r["entry_ns"][1] <= r["entry_ns"][2] <= after
    assert r["current_time"][:2].tolist() == [10.0, 10.01]
    assert r["dac_time"][:2].tolist() == [10.02, 10.03]
    assert math.isnan(r["current_time"][2])
    assert math.isnan(r["dac_time"][2])
    assert buffer.statistics()["callback_log_overflow"] == 1
    call_output(buffer, 10, pa.ffi.NULL)
    assert buffer.drain_callback_log()["first_frame"].tolist() == [1540]


def test_input_callback_records_portaudio_times() -> None:
    buffer = CaptureBuffer(channels=2, capacity_s=0.01, callback_log=8)  # 480 frames
    call_input(buffer, np.zeros(2 * 400, np.float32), time_info(4.99, 5.0, 5.1))
    call_input(buffer, np.zeros(2 * 400, np.float32), pa.ffi.NULL)  # overflows the ring
    buffer.write(np.zeros((10, 2), np.float32))  # from Python: logged, no device times
    r = buffer.drain_callback_log()
    assert r["first_frame"].tolist() == [0, 400, 800]
    assert r["frames"].tolist() == [400, 400, 10]
    assert (r["current_time"][0], r["adc_time"][0]) == (5.0, 4.99)
    assert np.isnan(r["adc_time"][1:]).all()
    assert buffer.statistics()["overflow_frames"] == 330


@pytest.fixture
def device() -> Any:
    """The JACK loopback device (a sync fixture: a skip raised inside a trio test loses its
    reason)."""
    return require_jack()


def check_common(records: np.ndarray, start_ns: int, end_ns: int, device_time: str) -> None:
    """Contiguous frames, entry times inside the run at the device's pace, PortAudio times
    consistent with the buffer's direction."""
    assert len(records) > 10
    first = records["first_frame"].astype(np.int64)
    frames = records["frames"].astype(np.int64)
    assert first[0] == 0
    assert np.array_equal(first[1:], first[:-1] + frames[:-1])
    entry = records["entry_ns"].astype(np.int64)
    assert start_ns <= entry[0]
    assert entry[-1] <= end_ns
    assert (np.diff(entry) >= 0).all()
    # Average pace: the device's rate (skip the first callbacks: PortAudio may prime).
    steady = slice(5, None)
    elapsed_s = (entry[steady][-1] - entry[steady][0]) / 1e9
    expected_s = frames[steady][:-1].sum() / RATE
    assert 0.8 < elapsed_s / expected_s < 1.25, (elapsed_s, expected_s)
    now = records["current_time"]
    dev = records[device_time]
    ahead = dev - now if device_time == "dac_time" else now - dev
    assert np.isfinite(ahead).all()
    assert ((ahead >= 0) & (ahead <= 0.1)).all(), ahead


async def test_native_callbacks_log_a_run_on_the_loopback(device: Any) -> None:
    item = np.full(4800, 8000, np.int16)  # 0.2 s at 24 kHz = 9600 device frames
    start_ns = time.monotonic_ns()
    with (
        Microphone(device, sample_rate=RATE, callback_log=4096) as mic,
        Speaker(device, sample_rate=RATE, start_threshold_ms=20, callback_log=4096) as speaker,
    ):
        await trio.sleep(0.15)
        push_ns = time.monotonic_ns()
        speaker.buffer.push("item_1", 0, item)
        speaker.buffer.end_of_stream()
        pushed_ns = time.monotonic_ns()
        await trio.sleep(0.4)
        mic.buffer.read()
    end_ns = time.monotonic_ns()
    played = speaker.buffer.drain_callback_log()
    recorded = mic.buffer.drain_callback_log()
    assert speaker.buffer.statistics()["callback_log_overflow"] == 0
    assert mic.buffer.statistics()["callback_log_overflow"] == 0
    check_common(played, start_ns, end_ns, "dac_time")
    check_common(recorded, start_ns, end_ns, "adc_time")

    audible = played["audible_frames"].astype(np.int64)
    heard = np.flatnonzero(audible)
    assert len(heard) > 2
    # Nothing audible from callbacks that started before the push (1 ms of slack for a
    # callback that entered just before it and read the buffer just after).
    entry = played["entry_ns"].astype(np.int64)
    assert not audible[entry < push_ns - 1_000_000].any()
    assert entry[heard[0]] <= pushed_ns + 100_000_000
    # One contiguous run of 2 frames per source sample; full buffers in between.
    starts = played["first_frame"].astype(np.int64) + played["first_audible"]
    assert np.array_equal(starts[heard[1:]], starts[heard[:-1]] + audible[heard[:-1]])
    assert audible.sum() == 2 * len(item)
    inner = heard[1:-1]
    assert np.array_equal(audible[inner], played["frames"][inner])
    assert not played["first_audible"][inner].any()
