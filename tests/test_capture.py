"""CaptureBuffer driven from Python through write(): what a PortAudio input stream does."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtalk.core import CaptureBuffer
from realtalk.exceptions import AudioFormatError, ConfigurationError


@given(
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 700)), max_size=40),
    channels=st.integers(1, 3),
)
def test_frames_come_out_in_order_and_overflow_is_counted(
    ops: list[tuple[bool, int]], channels: int
) -> None:
    buf = CaptureBuffer(channels=channels, capacity_s=0.01, sample_rate=100_000)
    assert buf.capacity_frames == 1000
    written = 0
    kept: list[np.ndarray] = []
    got: list[np.ndarray] = []
    for is_write, n in ops:
        if is_write:
            frames = np.arange(written, written + n, dtype=np.float32)
            frames = np.repeat(frames[:, None], channels, axis=1)
            room = buf.capacity_frames - buf.available
            assert buf.write(frames if channels > 1 else frames[:, 0]) == min(n, room)
            kept.append(frames[: min(n, room)])
            written += n
        else:
            out = buf.read(n)
            assert out.dtype == np.float32
            assert out.shape == ((len(out),) if channels == 1 else (len(out), channels))
            got.append(out.reshape(-1, channels))
    got.append(buf.read().reshape(-1, channels))
    stats = buf.statistics()
    expected = np.concatenate(kept) if kept else np.zeros((0, channels), np.float32)
    assert np.array_equal(np.concatenate(got), expected)
    assert stats["overflow_frames"] == written - len(expected)
    assert stats["frames_read"] == len(expected)
    assert buf.available == 0


def test_pointers_and_settings() -> None:
    buf = CaptureBuffer()
    assert (buf.channels, buf.sample_rate, buf.capacity_frames) == (1, 48000, 480_000)
    assert CaptureBuffer.callback_address() > 0
    assert buf.user_data > 0
    assert "CaptureBuffer" in repr(buf)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channels": 0},
        {"channels": 33},
        {"capacity_s": 0.0},
        {"capacity_s": float("inf")},
        {"sample_rate": 0},
    ],
)
def test_bad_settings_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        CaptureBuffer(**kwargs)  # type: ignore[arg-type]


def test_bad_arrays_raise() -> None:
    buf = CaptureBuffer(channels=2)
    with pytest.raises(AudioFormatError):
        buf.write(np.zeros((4, 3), np.float32))
    with pytest.raises(AudioFormatError):
        buf.write(np.zeros(4, np.float32))
    with pytest.raises(AudioFormatError):
        buf.write(np.zeros((4, 2), np.int16))
    with pytest.raises(ConfigurationError):
        buf.read(-1)


def test_each_write_that_keeps_frames_signals_the_notify_descriptor() -> None:
    import os

    buf = CaptureBuffer(channels=1, capacity_s=0.01, sample_rate=48000)  # 480 frames
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    try:
        buf.set_notify_fd(write_end)
        buf.write(np.zeros(256, dtype=np.float32))
        buf.write(np.zeros(256, dtype=np.float32))  # 224 fit
        buf.write(np.zeros(256, dtype=np.float32))  # none fit: no wake-up for nothing
        assert os.read(read_end, 64) == b"\x01\x01"
        buf.set_notify_fd(-1)
        buf.read()
        buf.write(np.zeros(16, dtype=np.float32))
        with pytest.raises(BlockingIOError):
            os.read(read_end, 64)
    finally:
        os.close(read_end)
        os.close(write_end)
    # A descriptor that does not exist: the write fails, is counted, nothing else happens.
    buf.set_notify_fd(1_000_000)
    buf.read()
    assert buf.write(np.zeros(16, dtype=np.float32)) == 16
    assert buf.statistics()["notify_failures"] == 1
    buf.set_notify_fd(-1)
    with pytest.raises(ConfigurationError, match="notify fd"):
        buf.set_notify_fd(-2)
