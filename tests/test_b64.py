"""b64encode and b64decode against the standard library's base64, and strict decoding."""

import array
import base64
import binascii
import string
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from realtalk import AudioFormatError, Base64DecodeError
from realtalk.core import b64decode, b64encode
from realtalk.testing import pcm16_arrays

ALPHABET = string.ascii_letters + string.digits + "+/"
NOT_ALPHABET = st.characters(codec="utf-8").filter(lambda c: c not in ALPHABET + "=")


def stdlib_decode(text: str | bytes) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# --- encoding -------------------------------------------------------------------------


@given(st.binary(max_size=2000))
def test_b64encode_matches_stdlib(data: bytes) -> None:
    expected = base64.b64encode(data).decode("ascii")
    for form in (data, bytearray(data), memoryview(data)):
        got = b64encode(form)
        assert type(got) is str
        assert got == expected


@given(pcm16_arrays())
def test_b64encode_of_int16_array_is_its_pcm16_bytes(x: np.ndarray) -> None:
    assert b64encode(x) == base64.b64encode(x.tobytes()).decode("ascii")


@pytest.mark.parametrize("dtype", ["int16", "float32", "uint8", "int8"])
@pytest.mark.parametrize("shape", [(0,), (6,), (2, 3)], ids=str)
def test_b64encode_of_sample_arrays(dtype: str, shape: tuple[int, ...]) -> None:
    x = np.arange(-3, int(np.prod(shape)) - 3).astype(dtype).reshape(shape)
    assert b64encode(x) == base64.b64encode(x.tobytes()).decode("ascii")


@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_b64encode_takes_any_contiguous_array(dtype: str) -> None:
    # The docstring: "any bytes-like object or C-contiguous numpy array".
    x = np.arange(-3, 3).astype(dtype).reshape(2, 3)
    assert b64encode(x) == base64.b64encode(x.tobytes()).decode("ascii")


@pytest.mark.parametrize(
    "data",
    [
        array.array("h", [1, -2, 300]),
        array.array("f", [0.5, -1.0]),
        array.array("B", b"xyz"),
        array.array("d", [0.25]),
        memoryview(b"abcdef").cast("H"),
    ],
    ids=["array-h", "array-f", "array-B", "array-d", "memoryview-H"],
)
def test_b64encode_takes_any_bytes_like(data: Any) -> None:
    assert b64encode(data) == base64.b64encode(bytes(data)).decode("ascii")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param("abc", TypeError, id="str"),
        pytest.param([1, 2], TypeError, id="list"),
        pytest.param(None, TypeError, id="None"),
        pytest.param(12, TypeError, id="int"),
        pytest.param(np.arange(8, dtype=np.int16)[::2], AudioFormatError, id="non-contiguous"),
    ],
)
def test_b64encode_rejects(data: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        b64encode(data)


# --- decoding: differential -----------------------------------------------------------


@given(st.binary(max_size=2000))
def test_b64decode_round_trips_like_stdlib(data: bytes) -> None:
    text = base64.b64encode(data).decode("ascii")
    assert b64decode(text, sample_width=1) == data
    assert b64decode(text.encode("ascii"), sample_width=1) == data
    assert b64decode(bytearray(text.encode("ascii")), sample_width=1) == data
    assert b64decode(memoryview(text.encode("ascii")), sample_width=1) == data
    assert b64decode(np.frombuffer(text.encode("ascii"), dtype=np.uint8), sample_width=1) == data


@given(st.text(alphabet=ALPHABET + "=", max_size=24))
@example("Zm9v")
@example("Zg==")
@example("Zh==")
@example("Zm9v=")
def test_b64decode_agrees_with_stdlib_except_where_documented(text: str) -> None:
    # Accepting means the stdlib accepts too, with the same bytes. Where only the stdlib
    # accepts, the docstring names two reasons: non-zero unused bits in the last
    # character, and padding beyond what makes the length a multiple of 4.
    expected = stdlib_decode(text)
    try:
        got: bytes | None = b64decode(text, sample_width=1)
    except Base64DecodeError:
        got = None
    if got is not None:
        assert got == expected
        return
    if expected is not None:
        canonical = base64.b64encode(expected).decode("ascii")
        last = len(text.rstrip("=")) - 1
        only_last_differs = len(canonical) == len(text) and (
            canonical[:last] + canonical[last + 1 :] == text[:last] + text[last + 1 :]
        )
        surplus_padding = text.startswith(canonical) and set(text[len(canonical) :]) == {"="}
        assert only_last_differs or surplus_padding, (
            f"{text!r}: the stdlib accepts it as {expected!r}, but it is rejected for a "
            "reason other than non-canonical trailing bits or surplus padding"
        )


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=8))
def test_b64decode_checks_whole_samples(data: bytes, sample_width: int) -> None:
    text = base64.b64encode(data).decode("ascii")
    if len(data) % sample_width == 0:
        assert b64decode(text, sample_width=sample_width) == data
    else:
        with pytest.raises(Base64DecodeError) as info:
            b64decode(text, sample_width=sample_width)
        assert info.value.position == len(text)


def test_default_sample_width_is_pcm16() -> None:
    assert b64decode("AAE=") == b"\x00\x01"
    with pytest.raises(Base64DecodeError):
        b64decode("AA==")
    with pytest.raises(Base64DecodeError):
        b64decode("AAAA")


# --- decoding: strictness ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("Zm9v!mFy", 4),
        ("Zm9vY mFy", 5),
        (" Zm9v", 0),
        ("Zm9v\n", 4),
        ("Zm9v\r\nYmFy", 4),
        ("Zm9v\tYmFy", 4),
        ("Zm9vYmF-", 7),
        ("Zm9vYmF_", 7),
        ("Zg-_", 2),
        ("Zm9v\x00", 4),
        ("Zm9v\x7f", 4),
        ("Zm9vé", 4),
        ("Zm9v😀xyz", 4),
        ("Zg=a", 2),
        ("Zm9vYg==Zg==", 6),
        ("=Zm9", 0),
        ("Zg==\n", 4),
        ("Zm8= ", 4),
        ("Zm9v\ud800", 4),
    ],
)
def test_b64decode_invalid_characters(text: str, position: int) -> None:
    with pytest.raises(Base64DecodeError) as info:
        b64decode(text, sample_width=1)
    assert info.value.position == position
    assert isinstance(info.value.position, int)


@pytest.mark.parametrize(
    "text",
    [
        "Zg",  # missing padding
        "Zm8",
        "Zm9vYg",
        "Z",
        "Zm9vY",
        "Zg=",  # incomplete padding
        "Zg===",  # too much
        "Zm9v=",
        "Zm9v==",
        "Zm9v====",
        "====",
        "=",
        "A===",
    ],
)
def test_b64decode_bad_padding(text: str) -> None:
    with pytest.raises(Base64DecodeError) as info:
        b64decode(text, sample_width=1)
    assert 0 <= info.value.position <= len(text)


@pytest.mark.parametrize("text", ["Zh==", "Zm9=", "AB==", "AAB=", "Zm9vYh==", "//9="])
def test_b64decode_rejects_non_canonical_trailing_bits(text: str) -> None:
    # Stricter than the stdlib, as documented: it accepts these.
    assert stdlib_decode(text) is not None
    with pytest.raises(Base64DecodeError) as info:
        b64decode(text, sample_width=1)
    assert info.value.position == len(text.rstrip("=")) - 1


@given(st.binary(min_size=1, max_size=60), st.data())
def test_inserted_bad_character_is_found(data: bytes, draw: st.DataObject) -> None:
    # One bad character anywhere before the padding: its index is the position, in
    # characters for str and in bytes for bytes (the prefix is ASCII, so they agree).
    text = base64.b64encode(data).decode("ascii")
    body = len(text.rstrip("="))
    at = draw.draw(st.integers(min_value=0, max_value=body), label="at")
    bad = draw.draw(NOT_ALPHABET, label="bad")
    broken = text[:at] + bad + text[at:]
    with pytest.raises(Base64DecodeError) as info:
        b64decode(broken, sample_width=1)
    assert info.value.position == at
    with pytest.raises(Base64DecodeError) as info:
        b64decode(broken.encode("utf-8"), sample_width=1)
    assert info.value.position == at


@given(st.binary(min_size=1, max_size=60), st.data())
def test_any_corruption_is_rejected_or_decodes_as_stdlib(data: bytes, draw: st.DataObject) -> None:
    text = base64.b64encode(data).decode("ascii")
    at = draw.draw(st.integers(min_value=0, max_value=len(text) - 1), label="at")
    char = draw.draw(st.sampled_from(ALPHABET + "=\n -_"), label="char")
    broken = text[:at] + char + text[at + 1 :]
    assume(broken != text)
    expected = stdlib_decode(broken)
    try:
        got = b64decode(broken, sample_width=1)
    except Base64DecodeError:
        return
    assert got == expected


def test_error_is_an_audio_format_error_and_a_value_error() -> None:
    with pytest.raises(Base64DecodeError) as info:
        b64decode("Zm9v!", sample_width=1)
    assert isinstance(info.value, AudioFormatError)
    assert isinstance(info.value, ValueError)
    assert "4" in str(info.value)


def test_position_of_a_decoded_length_problem_follows_a_bad_character() -> None:
    # A bad character says more than the length it leads to, so it is reported first.
    with pytest.raises(Base64DecodeError) as info:
        b64decode("AA!=", sample_width=4)
    assert info.value.position == 2


def test_non_ascii_bytes_position_is_in_bytes() -> None:
    with pytest.raises(Base64DecodeError) as info:
        b64decode("AAAA\u00e9".encode(), sample_width=1)
    assert info.value.position == 4


@pytest.mark.parametrize("sample_width", [0, -1])
def test_sample_width_below_one(sample_width: int) -> None:
    with pytest.raises(ValueError, match="sample_width") as info:
        b64decode("AAAA", sample_width=sample_width)
    assert not isinstance(info.value, Base64DecodeError)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(12, TypeError, id="int"),
        pytest.param(None, TypeError, id="None"),
        pytest.param(["AAAA"], TypeError, id="list"),
    ],
)
def test_b64decode_rejects_types(text: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        b64decode(text)


@pytest.mark.parametrize(
    "make",
    [str, lambda s: s.encode(), lambda s: bytearray(s.encode()), lambda s: memoryview(s.encode())],
    ids=["str", "bytes", "bytearray", "memoryview"],
)
def test_empty_text_decodes_to_nothing(make: Callable[[str], Any]) -> None:
    assert b64decode(make("")) == b""
    assert b64decode(make(""), sample_width=1) == b""
