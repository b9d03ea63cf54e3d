"""The streaming resampler: the invariants of the issue, as property tests.

Quality (passband, rejection, SNR) is measured against soxr in benches/bench_resample.py;
here: chunking, lengths, timing of output, DC, silence, delay, layouts and errors.
"""

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtalk import ConfigurationError
from realtalk.core import Resampler, f32_to_pcm16, pcm16_to_f32
from realtalk.exceptions import AudioFormatError

COMMON = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000]
PAIRS = [
    (48000, 24000),
    (24000, 48000),
    (44100, 24000),
    (24000, 16000),
    (8000, 24000),
    (16000, 24000),
]
rates = st.sampled_from(COMMON) | st.integers(min_value=1000, max_value=192_000)


def expected_frames(n_in: int, in_rate: int, out_rate: int) -> int:
    return -(-n_in * out_rate // in_rate)  # ceil, in integers


def noise(n: int, channels: int = 1, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n * channels) * 0.3).astype(np.float32)
    return x if channels == 1 else x.reshape(n, channels)


def run_chunked(r: Resampler, x: npt.NDArray[Any], sizes: list[int]) -> npt.NDArray[Any]:
    out, at = [], 0
    for size in sizes:
        out.append(r.process(x[at : at + size]))
        at += size
    out.append(r.process(x[at:]))
    out.append(r.flush())
    return np.concatenate(out)


@given(
    pair=st.sampled_from(PAIRS),
    quality=st.sampled_from(["hq", "speech"]),
    sizes=st.lists(st.integers(min_value=0, max_value=700), max_size=12),
    channels=st.sampled_from([1, 2]),
)
def test_chunking_does_not_change_a_bit(
    pair: tuple[int, int], quality: str, sizes: list[int], channels: int
) -> None:
    x = noise(3000, channels)
    whole = run_chunked(Resampler(*pair, channels=channels, quality=quality), x, [])  # type: ignore[arg-type]
    parts = run_chunked(Resampler(*pair, channels=channels, quality=quality), x, sizes)  # type: ignore[arg-type]
    assert parts.dtype == whole.dtype == np.float32
    assert parts.shape == whole.shape
    assert parts.tobytes() == whole.tobytes()


def test_one_frame_at_a_time_is_the_same_too() -> None:
    x = noise(1500)
    whole = run_chunked(Resampler(44100, 24000), x, [])
    single = run_chunked(Resampler(44100, 24000), x, [1] * 1500)
    assert single.tobytes() == whole.tobytes()


@given(in_rate=rates, out_rate=rates, n=st.integers(min_value=0, max_value=5000), data=st.data())
def test_total_length_after_flush_is_exact(in_rate: int, out_rate: int, n: int, data: Any) -> None:
    sizes = data.draw(st.lists(st.integers(min_value=0, max_value=n), max_size=5))
    out = run_chunked(Resampler(in_rate, out_rate, quality="speech"), noise(n), sizes)
    assert len(out) == expected_frames(n, in_rate, out_rate)


def test_an_hour_in_random_chunks_does_not_drift() -> None:
    r = Resampler(44100, 48000, quality="speech")
    rng = np.random.default_rng(1)
    chunk = np.zeros(4410, dtype=np.float32)
    total_in = total_out = 0
    while total_in < 3600 * 44100:
        n = int(rng.integers(1, len(chunk)))
        total_out += len(r.process(chunk[:n]))
        total_in += n
    total_out += len(r.flush())
    assert total_out == expected_frames(total_in, 44100, 48000)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
@pytest.mark.parametrize("quality", ["hq", "speech"])
def test_every_call_with_1_ms_returns_output(in_rate: int, out_rate: int, quality: str) -> None:
    r = Resampler(in_rate, out_rate, quality=quality)  # type: ignore[arg-type]
    one_ms = in_rate // 1000
    x = noise(one_ms * 200)
    total = 0
    for i in range(200):
        y = r.process(x[i * one_ms : (i + 1) * one_ms])
        assert len(y) >= 1, f"call {i} of 1 ms returned nothing"
        total += len(y)
        # No hold-back: the output keeps up with the input to within 2 samples (the
        # filter's delay is inside the output, not held back from it).
        exact = expected_frames((i + 1) * one_ms, in_rate, out_rate)
        assert exact - 2 <= total <= exact, (i, total, exact)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_dc_in_dc_out_and_silence_in_silence_out(in_rate: int, out_rate: int) -> None:
    r = Resampler(in_rate, out_rate)
    y = np.concatenate([r.process(np.full(in_rate // 10, 0.5, np.float32)), r.flush()])
    steady = y[int(2 * r.delay) + 8 : -int(2 * r.delay) - 8]
    assert len(steady) > 100
    np.testing.assert_allclose(steady, 0.5, rtol=0, atol=1e-6)
    r = Resampler(in_rate, out_rate)
    silent = np.concatenate([r.process(np.zeros(in_rate // 10, np.float32)), r.flush()])
    assert not silent.any()


@given(
    x=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        min_size=1,
        max_size=400,
    )
)
def test_no_nan_for_finite_input(x: list[float]) -> None:
    r = Resampler(48000, 44100)
    y = np.concatenate([r.process(np.array(x, np.float32)), r.flush()])
    assert not np.isnan(y).any()


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
@pytest.mark.parametrize("quality", ["hq", "speech"])
def test_delay_locates_an_impulse(in_rate: int, out_rate: int, quality: str) -> None:
    r = Resampler(in_rate, out_rate, quality=quality)  # type: ignore[arg-type]
    k = in_rate // 100  # an impulse 10 ms in
    x = np.zeros(in_rate // 10, np.float32)
    x[k] = 1.0
    y = np.concatenate([r.process(x), r.flush()]).astype(np.float64)
    peak = int(np.argmax(np.abs(y)))
    # Sub-sample peak by the centre of mass of the main lobe.
    lobe = slice(peak - 2, peak + 3)
    centre = float(np.sum(np.arange(len(y))[lobe] * y[lobe]) / np.sum(y[lobe]))
    assert abs(centre - (k * out_rate / in_rate + r.delay)) < 0.5
    limit_ms = 5.0 if quality == "hq" else 1.5
    if min(in_rate, out_rate) >= 16000:
        assert r.delay / out_rate * 1000 <= limit_ms


def test_int16_in_int16_out_and_bytes_are_pcm16() -> None:
    x = noise(4800)
    r_float, r_int, r_bytes = (
        Resampler(48000, 24000),
        Resampler(48000, 24000),
        Resampler(48000, 24000),
    )
    as_int16 = f32_to_pcm16(x)
    y_float = np.concatenate([r_float.process(pcm16_to_f32(as_int16)), r_float.flush()])
    y_int = np.concatenate([r_int.process(as_int16), r_int.flush()])
    y_bytes = np.concatenate([r_bytes.process(as_int16.tobytes()), r_bytes.flush()])
    assert y_int.dtype == y_bytes.dtype == np.int16
    np.testing.assert_array_equal(y_int, f32_to_pcm16(y_float))
    np.testing.assert_array_equal(y_bytes, y_int)


def test_stereo_frames_and_downmix() -> None:
    left = noise(2400, seed=1)
    right = noise(2400, seed=2)
    stereo = np.ascontiguousarray(np.stack([left, right], axis=1))
    r = Resampler(48000, 24000, channels=2)
    y = np.concatenate([r.process(stereo), r.flush()])
    assert y.shape == (1200, 2)
    for ch, mono_in in enumerate([left, right]):
        m = Resampler(48000, 24000)
        np.testing.assert_array_equal(y[:, ch], np.concatenate([m.process(mono_in), m.flush()]))
    # Interleaved 1-D input gives interleaved 1-D output.
    r = Resampler(48000, 24000, channels=2)
    flat = np.concatenate([r.process(stereo.reshape(-1)), r.flush()])
    np.testing.assert_array_equal(flat, y.reshape(-1))
    d = Resampler(48000, 24000, channels=2, downmix=True)
    mixed = np.concatenate([d.process(stereo), d.flush()])
    m = Resampler(48000, 24000)
    expected = np.concatenate([m.process((left + right) * np.float32(0.5)), m.flush()])
    assert mixed.shape == (1200,)
    np.testing.assert_allclose(mixed, expected, atol=1e-6)


def test_reset_starts_a_new_stream() -> None:
    x = noise(1000)
    r = Resampler(16000, 24000)
    first = np.concatenate([r.process(x), r.flush()])
    r.process(noise(77, seed=5))
    r.reset()
    again = np.concatenate([r.process(x), r.flush()])
    assert again.tobytes() == first.tobytes()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_rate": 0, "out_rate": 24000},
        {"in_rate": -48000, "out_rate": 24000},
        {"in_rate": 48000, "out_rate": 192001},
        {"in_rate": 48000, "out_rate": 24000, "channels": 0},
        {"in_rate": 48000, "out_rate": 24000, "quality": "best"},
    ],
)
def test_bad_settings_raise_configuration_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Resampler(**kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value)


@pytest.mark.parametrize(
    ("channels", "samples", "match"),
    [
        (2, np.zeros((10, 3), np.float32), "3 channels"),
        (2, np.zeros(11, np.float32), "whole number of 2-channel frames"),
        (1, np.zeros(10, np.float64), "float64"),
        (1, np.zeros((4, 4), np.float32)[:, ::2], "C-contiguous"),
        (1, np.zeros((2, 2, 2), np.float32), "shape"),
    ],
)
def test_bad_input_raises_audio_format_error(
    channels: int, samples: npt.NDArray[Any], match: str
) -> None:
    with pytest.raises(AudioFormatError, match=match):
        Resampler(48000, 24000, channels=channels).process(samples)


def test_properties_and_repr() -> None:
    r = Resampler(44100, 24000, channels=2, quality="speech", downmix=True)
    assert (r.in_rate, r.out_rate, r.channels, r.quality, r.downmix) == (
        44100,
        24000,
        2,
        "speech",
        True,
    )
    assert math.isfinite(r.delay)
    assert r.delay > 0
    assert "44100" in repr(r)
    assert "speech" in repr(r)
