"""f32_to_pcm16 and pcm16_to_f32 against numpy, plus their input checks."""

import array
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtalk import AudioFormatError
from realtalk.core import f32_to_pcm16, pcm16_to_f32
from realtalk.testing import float32_arrays, pcm16_arrays

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
LSB = 1.0 / 32768.0
Misalign = Callable[[npt.NDArray[Any]], npt.NDArray[Any]]


def reference_f32_to_pcm16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    # In float64, so that scaling neither overflows (no RuntimeWarning) nor rounds.
    scaled = np.nan_to_num(x.astype(np.float64) * 32768, nan=0, posinf=32767, neginf=-32768)
    return np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)


def reference_pcm16_to_f32(x: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return (x.astype(np.float64) / 32768).astype(np.float32)


# --- f32_to_pcm16 ---------------------------------------------------------------------


@given(float32_arrays())
def test_f32_to_pcm16_matches_numpy(x: npt.NDArray[np.float32]) -> None:
    got = f32_to_pcm16(x)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, reference_f32_to_pcm16(x))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), 0),
        (-float("nan"), 0),
        (float("inf"), 32767),
        (float("-inf"), -32768),
        (1.0, 32767),
        (-1.0, -32768),
        (2.0, 32767),
        (-7.0, -32768),
        (float(np.finfo(np.float32).max), 32767),
        (float(np.finfo(np.float32).min), -32768),
        (0.0, 0),
        (-0.0, 0),
        (1e-45, 0),
        (0.5 * LSB, 0),
        (1.5 * LSB, 2),
        (2.5 * LSB, 2),
        (-0.5 * LSB, 0),
        (-1.5 * LSB, -2),
        (-2.5 * LSB, -2),
        (0.49 * LSB, 0),
        (0.51 * LSB, 1),
        (32766.5 * LSB, 32766),
        (32767.5 * LSB, 32767),
        (-32767.5 * LSB, -32768),
    ],
)
def test_f32_to_pcm16_special_values(value: float, expected: int) -> None:
    x = np.array([value], dtype=np.float32)
    assert f32_to_pcm16(x).tolist() == [expected]


def test_f32_to_pcm16_every_lane_of_a_long_array() -> None:
    # Long and odd-length, so that a vectorised loop and its scalar tail both run.
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(100_003) * 0.7).astype(np.float32)
    x[::97] = np.nan
    x[5::101] = np.inf
    x[7::103] = -np.inf
    np.testing.assert_array_equal(f32_to_pcm16(x), reference_f32_to_pcm16(x))


# --- pcm16_to_f32 ---------------------------------------------------------------------


def test_every_int16_round_trips_exactly() -> None:
    f = pcm16_to_f32(ALL_INT16)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, reference_pcm16_to_f32(ALL_INT16))
    assert f[0] == -1.0
    assert f.min() >= -1.0
    assert f.max() < 1.0
    np.testing.assert_array_equal(f32_to_pcm16(f), ALL_INT16)


@given(pcm16_arrays())
def test_pcm16_to_f32_matches_numpy(x: npt.NDArray[np.int16]) -> None:
    np.testing.assert_array_equal(pcm16_to_f32(x), reference_pcm16_to_f32(x))


@given(pcm16_arrays())
def test_pcm16_to_f32_reads_bytes_as_little_endian(x: npt.NDArray[np.int16]) -> None:
    raw = x.astype("<i2").tobytes()
    expected = reference_pcm16_to_f32(x)
    for data in (raw, bytearray(raw), memoryview(raw)):
        got = pcm16_to_f32(data)
        assert got.shape == (len(x),)
        np.testing.assert_array_equal(got, expected)


def test_pcm16_to_f32_reads_typed_buffers() -> None:
    values = [-32768, -1, 0, 1, 32767]
    got = pcm16_to_f32(array.array("h", values))
    np.testing.assert_array_equal(got, np.array(values, dtype=np.float32) / 32768)


def test_f32_to_pcm16_reads_typed_buffers() -> None:
    values = [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert f32_to_pcm16(array.array("f", values)).tolist() == [-32768, -16384, 0, 16384, 32767]


# --- shapes -----------------------------------------------------------------------------

SHAPES = [(), (0,), (7,), (3, 4), (2, 0, 5), (2, 3, 4), (1, 1), (4, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_f32_to_pcm16_keeps_shape(shape: tuple[int, ...]) -> None:
    n = int(np.prod(shape))
    x = np.linspace(-1.2, 1.2, n, dtype=np.float32).reshape(shape)
    got = f32_to_pcm16(x)
    assert got.shape == shape
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, reference_f32_to_pcm16(x))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_pcm16_to_f32_keeps_shape(shape: tuple[int, ...]) -> None:
    n = int(np.prod(shape))
    x = np.arange(-n * 1000, n * 1000, 2000, dtype=np.int16)[:n].reshape(shape)
    got = pcm16_to_f32(x)
    assert got.shape == shape
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, reference_pcm16_to_f32(x))


@given(
    st.integers(min_value=1, max_value=6),
    pcm16_arrays(max_size=600).filter(lambda a: len(a) > 0),
)
def test_two_dimensional_round_trip(channels: int, flat: npt.NDArray[np.int16]) -> None:
    frames = len(flat) // channels
    x = flat[: frames * channels].reshape(frames, channels)
    f = pcm16_to_f32(x)
    assert f.shape == x.shape
    np.testing.assert_array_equal(f32_to_pcm16(f), x)


def test_empty_inputs() -> None:
    a = f32_to_pcm16(np.empty(0, dtype=np.float32))
    assert (a.shape, a.dtype) == ((0,), np.int16)
    for empty in (np.empty(0, dtype=np.int16), b"", bytearray(), memoryview(b"")):
        b = pcm16_to_f32(empty)
        assert (b.shape, b.dtype) == ((0,), np.float32)


def test_outputs_are_new_arrays() -> None:
    x = np.array([0.25, -0.25], dtype=np.float32)
    y = f32_to_pcm16(x)
    x[:] = 0
    assert y.tolist() == [8192, -8192]


# --- misaligned arrays: right values or a clear error, never a silent wrong result ------


def _values_or_format_error(
    func: Callable[[Any], npt.NDArray[Any]], x: npt.NDArray[Any], expected: npt.NDArray[Any]
) -> None:
    # Leave a freed block of non-matching values for the output to land on, so that an
    # output left unwritten cannot pass for the right one by luck.
    junk = np.full(expected.shape, 99, dtype=expected.dtype)
    del junk
    try:
        got = func(x)
    except AudioFormatError:
        return
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape", [(6,), (2, 3)], ids=str)
def test_pcm16_to_f32_misaligned_array(shape: tuple[int, ...], misaligned: Misalign) -> None:
    x = np.arange(1, 7, dtype=np.int16).reshape(shape)
    _values_or_format_error(pcm16_to_f32, misaligned(x), reference_pcm16_to_f32(x))


@pytest.mark.parametrize("shape", [(6,), (2, 3)], ids=str)
def test_f32_to_pcm16_misaligned_array(shape: tuple[int, ...], misaligned: Misalign) -> None:
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(shape)
    _values_or_format_error(f32_to_pcm16, misaligned(x), reference_f32_to_pcm16(x))


# --- errors -----------------------------------------------------------------------------

F32 = np.linspace(-1, 1, 8, dtype=np.float32)
I16 = np.arange(8, dtype=np.int16)


@pytest.mark.parametrize(
    ("samples", "error"),
    [
        pytest.param(F32.astype(np.float64), AudioFormatError, id="float64"),
        pytest.param(F32.astype(np.float16), AudioFormatError, id="float16"),
        pytest.param(I16, AudioFormatError, id="int16"),
        pytest.param(I16.astype(np.int32), AudioFormatError, id="int32"),
        pytest.param(F32[::2], AudioFormatError, id="non-contiguous"),
        pytest.param(np.asfortranarray(F32.reshape(2, 4)), AudioFormatError, id="fortran"),
        pytest.param(F32.astype(F32.dtype.newbyteorder("S")), AudioFormatError, id="byte-swapped"),
        pytest.param(F32.tobytes(), AudioFormatError, id="bytes"),
        pytest.param(memoryview(F32.tobytes()).cast("f")[::2], AudioFormatError, id="strided-mv"),
        pytest.param([0.0, 0.5], TypeError, id="list"),
        pytest.param(0.5, TypeError, id="float"),
        pytest.param("0.5", TypeError, id="str"),
        pytest.param(None, TypeError, id="None"),
    ],
)
def test_f32_to_pcm16_rejects(samples: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        f32_to_pcm16(samples)


@pytest.mark.parametrize(
    ("samples", "error"),
    [
        pytest.param(F32, AudioFormatError, id="float32"),
        pytest.param(F32.astype(np.float64), AudioFormatError, id="float64"),
        pytest.param(I16.astype(np.int32), AudioFormatError, id="int32"),
        pytest.param(I16.astype(np.uint16), AudioFormatError, id="uint16"),
        pytest.param(I16.astype(np.int64), AudioFormatError, id="int64"),
        pytest.param(I16[::2], AudioFormatError, id="non-contiguous"),
        pytest.param(np.asfortranarray(I16.reshape(2, 4)), AudioFormatError, id="fortran"),
        pytest.param(I16.astype(I16.dtype.newbyteorder("S")), AudioFormatError, id="byte-swapped"),
        pytest.param(b"\x00", AudioFormatError, id="1-byte"),
        pytest.param(b"\x00\x01\x02", AudioFormatError, id="3-bytes"),
        pytest.param(bytearray(5), AudioFormatError, id="odd-bytearray"),
        pytest.param(memoryview(bytes(7)), AudioFormatError, id="odd-memoryview"),
        pytest.param(np.zeros(3, dtype=np.uint8), AudioFormatError, id="odd-uint8-array"),
        pytest.param(memoryview(bytes(8))[::2], AudioFormatError, id="strided-mv"),
        pytest.param([0, 1], TypeError, id="list"),
        pytest.param(3, TypeError, id="int"),
        pytest.param("abcd", TypeError, id="str"),
        pytest.param(None, TypeError, id="None"),
    ],
)
def test_pcm16_to_f32_rejects(samples: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        pcm16_to_f32(samples)


def test_audio_format_error_is_a_value_error_with_a_useful_message() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        f32_to_pcm16(F32[::2])
    with pytest.raises(ValueError, match="byte"):
        pcm16_to_f32(b"\x00\x01\x02")
