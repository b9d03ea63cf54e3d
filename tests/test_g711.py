"""G.711 mu-law and A-law, bit-exact against the standard library's audioop."""

import array
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given

from realtalk import AudioFormatError
from realtalk.core import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from realtalk.testing import pcm16_arrays


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    # audioop is deprecated in 3.11-3.12 and gone in 3.13, where the audioop-lts package
    # provides the same module.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip(
                f"no audioop on Python {sys.version_info[0]}.{sys.version_info[1]}; "
                "install audioop-lts for the G.711 reference"
            )
    return audioop


ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))

ENCODERS = {"ulaw": (ulaw_encode, "lin2ulaw"), "alaw": (alaw_encode, "lin2alaw")}
DECODERS = {"ulaw": (ulaw_decode, "ulaw2lin"), "alaw": (alaw_decode, "alaw2lin")}


def _pcm_bytes(x: npt.NDArray[np.int16]) -> bytes:
    return x.astype("<i2").tobytes()


@pytest.mark.parametrize("law", ENCODERS)
def test_encode_every_int16_matches_audioop(audioop: ModuleType, law: str) -> None:
    encode, reference = ENCODERS[law]
    expected = getattr(audioop, reference)(_pcm_bytes(ALL_INT16), 2)
    got = encode(ALL_INT16)
    assert isinstance(got, bytes)
    assert len(got) == len(ALL_INT16)
    if got != expected:
        bad = next(i for i in range(len(got)) if got[i] != expected[i])
        pytest.fail(
            f"{law}: sample {ALL_INT16[bad]} encodes to {got[bad]:#04x}, "
            f"audioop gives {expected[bad]:#04x}"
        )


@pytest.mark.parametrize("law", DECODERS)
def test_decode_every_code_matches_audioop(audioop: ModuleType, law: str) -> None:
    decode, reference = DECODERS[law]
    expected = np.frombuffer(getattr(audioop, reference)(ALL_CODES, 2), dtype="<i2")
    got = decode(ALL_CODES)
    assert got.dtype == np.int16
    assert got.shape == (256,)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("law", ENCODERS)
@given(x=pcm16_arrays())
def test_encode_random_arrays_match_audioop(
    audioop: ModuleType, law: str, x: npt.NDArray[np.int16]
) -> None:
    encode, reference = ENCODERS[law]
    assert encode(x) == getattr(audioop, reference)(_pcm_bytes(x), 2)


@pytest.mark.parametrize("law", DECODERS)
@given(x=pcm16_arrays())
def test_decode_random_bytes_match_audioop(
    audioop: ModuleType, law: str, x: npt.NDArray[np.int16]
) -> None:
    decode, reference = DECODERS[law]
    data = x.tobytes()
    expected = np.frombuffer(getattr(audioop, reference)(data, 2), dtype="<i2")
    np.testing.assert_array_equal(decode(data), expected)


def _input_forms(x: npt.NDArray[np.int16]) -> dict[str, Any]:
    raw = _pcm_bytes(x)
    return {
        "ndarray": x,
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "array.array": array.array("h", x.tolist()),
        "2-D ndarray": x.reshape(-1, 2),
    }


@pytest.mark.parametrize("law", ENCODERS)
@pytest.mark.parametrize(
    "form", ["ndarray", "bytes", "bytearray", "memoryview", "array.array", "2-D ndarray"]
)
def test_encode_accepts_every_input_form(audioop: ModuleType, law: str, form: str) -> None:
    x = np.array([-32768, -1000, -1, 0, 1, 1000, 12345, 32767], dtype=np.int16)
    encode, reference = ENCODERS[law]
    expected = getattr(audioop, reference)(_pcm_bytes(x), 2)
    assert encode(_input_forms(x)[form]) == expected


@pytest.mark.parametrize("law", DECODERS)
@pytest.mark.parametrize(
    "make",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: np.frombuffer(b, dtype=np.uint8),
        lambda b: np.frombuffer(b, dtype=np.int8),
        lambda b: array.array("B", b),
    ],
    ids=["bytes", "bytearray", "memoryview", "uint8", "int8", "array.array"],
)
def test_decode_accepts_every_input_form(
    audioop: ModuleType, law: str, make: Callable[[bytes], Any]
) -> None:
    decode, reference = DECODERS[law]
    expected = np.frombuffer(getattr(audioop, reference)(ALL_CODES, 2), dtype="<i2")
    np.testing.assert_array_equal(decode(make(ALL_CODES)), expected)


@pytest.mark.parametrize("law", ENCODERS)
def test_empty(law: str) -> None:
    encode, _ = ENCODERS[law]
    decode, _ = DECODERS[law]
    assert encode(np.empty(0, dtype=np.int16)) == b""
    assert encode(b"") == b""
    out = decode(b"")
    assert (out.shape, out.dtype) == ((0,), np.int16)


@pytest.mark.parametrize("law", ENCODERS)
def test_encode_misaligned_array_is_right_or_an_error(
    audioop: ModuleType, law: str, misaligned: Callable[[Any], Any]
) -> None:
    # Right values or an AudioFormatError; never a silently empty or short result.
    encode, reference = ENCODERS[law]
    x = np.arange(1000, 7000, 1000, dtype=np.int16)
    try:
        got = encode(misaligned(x))
    except AudioFormatError:
        return
    assert got == getattr(audioop, reference)(_pcm_bytes(x), 2)


I16 = np.arange(8, dtype=np.int16)


@pytest.mark.parametrize("law", ENCODERS)
@pytest.mark.parametrize(
    ("samples", "error"),
    [
        pytest.param(I16.astype(np.float32), AudioFormatError, id="float32"),
        pytest.param(I16.astype(np.int32), AudioFormatError, id="int32"),
        pytest.param(I16.astype(np.float64), AudioFormatError, id="float64"),
        pytest.param(I16[::2], AudioFormatError, id="non-contiguous"),
        pytest.param(I16.astype(I16.dtype.newbyteorder("S")), AudioFormatError, id="swapped"),
        pytest.param(b"\x00\x01\x02", AudioFormatError, id="odd-bytes"),
        pytest.param(memoryview(bytes(8))[::2], AudioFormatError, id="strided-mv"),
        pytest.param([0, 1], TypeError, id="list"),
        pytest.param("ab", TypeError, id="str"),
        pytest.param(None, TypeError, id="None"),
        pytest.param(7, TypeError, id="int"),
    ],
)
def test_encode_rejects(law: str, samples: object, error: type[Exception]) -> None:
    encode, _ = ENCODERS[law]
    with pytest.raises(error):
        encode(samples)


@pytest.mark.parametrize("law", DECODERS)
@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(np.zeros(4, dtype=np.int16), AudioFormatError, id="int16"),
        pytest.param(np.zeros(4, dtype=np.float32), AudioFormatError, id="float32"),
        pytest.param(np.zeros(4, dtype=np.uint16), AudioFormatError, id="uint16"),
        pytest.param(np.zeros(8, dtype=np.uint8)[::2], AudioFormatError, id="non-contiguous"),
        pytest.param(array.array("h", [0, 1]), AudioFormatError, id="array-h"),
        pytest.param([0, 1], TypeError, id="list"),
        pytest.param("abc", TypeError, id="str"),
        pytest.param(None, TypeError, id="None"),
        pytest.param(3, TypeError, id="int"),
    ],
)
def test_decode_rejects(law: str, data: object, error: type[Exception]) -> None:
    decode, _ = DECODERS[law]
    with pytest.raises(error):
        decode(data)
