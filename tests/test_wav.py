"""WAV reading and writing: every supported layout against references (the stdlib ``wave``
module, scipy.io.wavfile, audioop for G.711, hand-built headers), the chunk walk, every
error message, and round trips."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import uuid
import warnings
import wave
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtalk.audio import WavAudio, WavWriter, read_wav, write_wav
from realtalk.audio._wav import WavReader
from realtalk.exceptions import AudioFormatError, ConfigurationError, WavFormatError
from realtalk.testing import float32_arrays, pcm16_arrays

wavfile = pytest.importorskip("scipy.io.wavfile")

RATES = [8000, 16000, 22050, 44100, 48000]
SUPPORTED = "use PCM 8/16/24/32-bit or float 32/64-bit WAV"
PCM_GUID = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
FLOAT_GUID = struct.pack("<H", 3) + PCM_GUID[2:]


# -- building files -------------------------------------------------------------------------


def riff(
    *chunks: tuple[bytes, bytes], riff_size: int | None = None, form: bytes = b"WAVE"
) -> bytes:
    """A RIFF file of ``chunks`` (id, body), each padded to an even size."""
    body = form + b"".join(
        cid + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) & 1)
        for cid, data in chunks
    )
    size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body


def fmt(
    tag: int, channels: int, rate: int, bits: int, *, block_align: int | None = None
) -> tuple[bytes, bytes]:
    align = channels * ((bits + 7) // 8) if block_align is None else block_align
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    if tag != 1:
        body += struct.pack("<H", 0)  # cbSize
    return b"fmt ", body


def extensible(
    guid: bytes, channels: int, rate: int, bits: int, valid_bits: int | None = None
) -> tuple[bytes, bytes]:
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * align, align, bits)
    body += struct.pack("<HHI", 22, bits if valid_bits is None else valid_bits, 0) + guid
    return b"fmt ", body


def int_bytes(samples: npt.NDArray[np.int64], width: int) -> bytes:
    """Interleaved little-endian integer samples as WAV stores them (8-bit is unsigned)."""
    flat = samples.reshape(-1)
    if width == 1:
        return (flat + 128).astype(np.uint8).tobytes()
    if width == 3:
        return flat.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return flat.astype(f"<i{width}").tobytes()


def random_ints(
    rng: np.random.Generator, frames: int, channels: int, width: int
) -> npt.NDArray[np.int64]:
    top = 2 ** (8 * width - 1)
    ints = rng.integers(-top, top, size=(frames, channels))
    ints[:2, 0] = [-top, top - 1]  # the extremes, always
    return ints


def expected_floats(ints: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.float32]:
    """What the reader must give: float32 of the int, then an exact power-of-two scale."""
    return ints.astype(np.float32) / np.float32(2 ** (8 * width - 1))


Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write bytes to a file in tmp_path; its path."""

    def write(data: bytes, name: str = "x.wav") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


# -- integer PCM via the stdlib wave module ---------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_int_pcm_written_by_stdlib_wave(
    tmp_path: Path, width: int, channels: int, rate: int
) -> None:
    ints = random_ints(np.random.default_rng(width * rate + channels), 1000, channels, width)
    path = tmp_path / "x.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(int_bytes(ints, width))
    audio = read_wav(path)
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape == (1000, channels)
    assert (audio.sample_rate, audio.channels, audio.frames) == (rate, channels, 1000)
    assert audio.format == f"{width * 8}-bit PCM"
    assert audio.duration_s == pytest.approx(1000 / rate)
    np.testing.assert_array_equal(audio.samples, expected_floats(ints, width))
    assert np.all(np.abs(audio.samples) <= 1.0)


@pytest.mark.parametrize(
    ("width", "stored", "expected"),
    [
        (1, [0, 1, 128, 255], [-1.0, -127 / 128, 0.0, 127 / 128]),
        (2, [-32768, -1, 0, 1, 32767], [-1.0, -1 / 32768, 0.0, 1 / 32768, 32767 / 32768]),
        (3, [-(2**23), 0, 2**23 - 1], [-1.0, 0.0, (2**23 - 1) / 2**23]),
        # float32 has 24 bits of mantissa: 2**31 - 1 rounds to 2**31, i.e. 1.0.
        (4, [-(2**31), 0, 2**31 - 1, 2**8], [-1.0, 0.0, 1.0, 2**-23]),
    ],
)
def test_exact_values(write: Write, width: int, stored: list[int], expected: list[float]) -> None:
    raw = np.array(stored, dtype=np.int64)
    data = bytes(stored) if width == 1 else int_bytes(raw, width)
    path = write(riff(fmt(1, 1, 8000, width * 8), (b"data", data)))
    np.testing.assert_array_equal(read_wav(path).samples[:, 0], np.array(expected, np.float32))


# -- scipy as a differential reference -------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_files_written_by_scipy(tmp_path: Path, dtype: str, channels: int) -> None:
    rng = np.random.default_rng(channels)
    if dtype.startswith("float"):
        data = rng.uniform(-1.2, 1.2, (500, channels)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, (500, channels), endpoint=True).astype(dtype)
    path = tmp_path / "x.wav"
    wavfile.write(path, 22050, data)
    audio = read_wav(path)
    assert audio.sample_rate == 22050
    assert audio.samples.shape == (500, channels)
    if dtype == "uint8":
        expected = (data.astype(np.float32) - 128) / 128
    elif dtype.startswith("int"):
        expected = data.astype(np.float32) / np.float32(2 ** (8 * data.itemsize - 1))
    else:
        expected = data.astype(np.float32)  # float files come back as stored, beyond ±1 too
    np.testing.assert_array_equal(audio.samples, expected)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_scipy_reads_the_same_int_values(tmp_path: Path, width: int) -> None:
    ints = random_ints(np.random.default_rng(width), 300, 2, width)
    path = tmp_path / "x.wav"
    path.write_bytes(riff(fmt(1, 2, 16000, width * 8), (b"data", int_bytes(ints, width))))
    rate, reference = wavfile.read(path)
    assert rate == 16000
    if width == 1:
        scaled = (reference.astype(np.float32) - 128) / 128
    else:
        # scipy gives 24-bit samples left-justified in int32.
        scaled = reference.astype(np.float32) / np.float32(2 ** (8 * reference.itemsize - 1))
    np.testing.assert_array_equal(read_wav(path).samples, scaled)


# -- float, EXTENSIBLE and G.711 headers -----------------------------------------------------


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("with_fact", [True, False])
def test_ieee_float(write: Write, bits: int, with_fact: bool) -> None:
    values = np.array([[0.0, -1.0], [0.5, 1.0], [1.5, -2.25], [np.nan, np.inf]])
    data = values.astype(f"<f{bits // 8}").tobytes()
    chunks = [fmt(3, 2, 48000, bits)]
    if with_fact:
        chunks.append((b"fact", struct.pack("<I", len(values))))
    path = write(riff(*chunks, (b"data", data)))
    audio = read_wav(path)
    assert audio.format == f"{bits}-bit float"
    np.testing.assert_array_equal(audio.samples, values.astype(np.float32))


def test_float64_beyond_float32_range_becomes_infinite_without_a_warning(write: Write) -> None:
    path = write(riff(fmt(3, 1, 8000, 64), (b"data", np.array([1e300, -1e300]).tobytes())))
    assert list(read_wav(path).samples[:, 0]) == [np.inf, -np.inf]  # warnings are errors here


@pytest.mark.parametrize(
    ("bits", "valid", "dtype", "description"),
    [
        (16, 16, "<i2", "16-bit PCM"),
        (24, 24, None, "24-bit PCM"),
        (24, 20, None, "20-bit PCM in 24-bit"),
        (32, 32, "<i4", "32-bit PCM"),
    ],
)
def test_extensible_pcm(
    write: Write, bits: int, valid: int, dtype: str | None, description: str
) -> None:
    ints = random_ints(np.random.default_rng(bits), 200, 6, bits // 8)
    if valid < bits:
        ints = ints >> (bits - valid) << (bits - valid)  # left-justified, low bits zero
    data = int_bytes(ints, bits // 8)
    path = write(riff(extensible(PCM_GUID, 6, 96000, bits, valid), (b"data", data)))
    audio = read_wav(path)
    assert (audio.channels, audio.sample_rate, audio.format) == (6, 96000, description)
    np.testing.assert_array_equal(audio.samples, expected_floats(ints, bits // 8))


def test_extensible_float(write: Write) -> None:
    values = np.linspace(-1, 1, 40, dtype=np.float32).reshape(-1, 4)
    path = write(riff(extensible(FLOAT_GUID, 4, 44100, 32), (b"data", values.tobytes())))
    audio = read_wav(path)
    assert audio.format == "32-bit float"
    np.testing.assert_array_equal(audio.samples, values)


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip("no audioop (Python 3.13+ without audioop-lts)")
    return audioop


@pytest.mark.parametrize(
    ("tag", "name", "reference"), [(6, "A-law", "alaw2lin"), (7, "µ-law", "ulaw2lin")]
)
def test_g711_matches_audioop(
    write: Write, audioop: ModuleType, tag: int, name: str, reference: str
) -> None:
    codes = bytes(range(256))
    path = write(riff(fmt(tag, 1, 8000, 8), (b"data", codes)))
    audio = read_wav(path)
    assert audio.format == f"8-bit {name}"
    expected = np.frombuffer(getattr(audioop, reference)(codes, 2), "<i2") / 32768
    np.testing.assert_array_equal(audio.samples[:, 0], expected.astype(np.float32))


# -- the chunk walk --------------------------------------------------------------------------


def test_odd_sized_chunks_are_padded(write: Write) -> None:
    pcm = np.arange(-5, 5, dtype="<i2")
    path = write(
        riff(
            (b"LIST", b"INFOISFT\x05\x00\x00\x00abcd\x00"),  # 17 bytes: a pad byte follows
            fmt(1, 1, 16000, 16),
            (b"junk", b"x"),  # 1 byte, padded
            (b"data", pcm.tobytes()),
            (b"LIST", b"trailing odd"),
        )
    )
    np.testing.assert_array_equal(read_wav(path).samples[:, 0], pcm / np.float32(32768))


def test_odd_sized_data_chunk_of_8_bit_audio(write: Write) -> None:
    path = write(riff(fmt(1, 1, 8000, 8), (b"data", bytes([128, 255, 0])), (b"LIST", b"ab")))
    np.testing.assert_array_equal(read_wav(path).samples[:, 0], [0.0, 127 / 128, -1.0])


def test_fmt_after_data(write: Write) -> None:
    pcm = np.array([1, 2, 3, 4], dtype="<i2")
    path = write(riff((b"data", pcm.tobytes()), fmt(1, 2, 8000, 16)))
    audio = read_wav(path)
    assert audio.samples.shape == (2, 2)
    np.testing.assert_array_equal(audio.samples.reshape(-1), pcm / np.float32(32768))


def test_wrong_riff_size_is_ignored(write: Write) -> None:
    pcm = np.array([7, -7], dtype="<i2")
    path = write(riff(fmt(1, 1, 8000, 16), (b"data", pcm.tobytes()), riff_size=4))
    assert read_wav(path).frames == 2


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_unknown_data_size_means_to_the_end_of_the_file(write: Write, size: int) -> None:
    pcm = np.arange(11, dtype="<i2")  # 5 stereo frames and half of one
    header = riff(fmt(1, 2, 8000, 16))
    data = header + b"data" + struct.pack("<I", size) + pcm.tobytes()
    path = write(data[:4] + struct.pack("<I", 0xFFFFFFFF) + data[8:])
    audio = read_wav(path)
    assert audio.frames == 5  # the partial frame is dropped
    np.testing.assert_array_equal(audio.samples.reshape(-1), pcm[:10] / np.float32(32768))


def test_partial_final_frame_is_dropped(write: Write) -> None:
    data = np.arange(9, dtype="<i2").tobytes()  # 3 frames of 3 channels, then 1 byte more
    path = write(riff(fmt(1, 3, 8000, 16), (b"data", data[:-1])))
    audio = read_wav(path)
    assert audio.samples.shape == (2, 3)


def test_no_frames(write: Write) -> None:
    audio = read_wav(write(riff(fmt(1, 2, 8000, 24), (b"data", b""))))
    assert audio.samples.shape == (0, 2)
    assert audio.duration_s == 0.0
    assert audio.mono().shape == (0,)


def test_reader_reads_in_blocks(write: Write) -> None:
    ints = random_ints(np.random.default_rng(3), 1001, 2, 3)
    path = write(riff(fmt(1, 2, 8000, 24), (b"data", int_bytes(ints, 3))))
    with WavReader(path) as reader:
        blocks = [reader.read(100) for _ in range(12)]
    assert [len(b) for b in blocks] == [100] * 10 + [1, 0]
    np.testing.assert_array_equal(np.concatenate(blocks), expected_floats(ints, 3))


# -- errors ----------------------------------------------------------------------------------

PCM16 = fmt(1, 1, 8000, 16)
AMBISONIC = uuid.UUID("00000001-0721-11d3-8644-c8c1ca000000")  # B-format PCM
NO_DATA = (b"data", b"")


def _fmt_bytes(tag: int, channels: int, rate: int, align: int, bits: int) -> tuple[bytes, bytes]:
    return b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


ERRORS = {
    "empty": (b"", "empty file, not a WAV file"),
    "text": (b"not a wav file at all", f"not a WAV file (no RIFF/WAVE header); {SUPPORTED}"),
    "short": (b"RIFF", "not a WAV file (no RIFF/WAVE header)"),
    "avi": (riff((b"avih", b"\x00" * 8), form=b"AVI "), "not a WAV file (no RIFF/WAVE header)"),
    "mp3 with id3": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64), "an MP3 file, not a WAV file"),
    "mp3 frame": (b"\xff\xfb\x90\x64" + bytes(64), "an MP3 file, not a WAV file"),
    "rifx": (b"RIFX" + riff(PCM16)[4:], "a big-endian (RIFX) WAV file, which is not supported"),
    "rf64": (b"RF64" + riff(PCM16)[4:], "an RF64 (64-bit size) WAV file, which is not supported"),
    "aiff": (b"FORM\x00\x00\x00\x10AIFF" + bytes(16), "an AIFF file, not a WAV file"),
    "ogg": (b"OggS" + bytes(40), "an Ogg file, not a WAV file"),
    "flac": (b"fLaC" + bytes(40), "a FLAC file, not a WAV file"),
    "no fmt": (riff((b"data", b"\x00\x00")), "no 'fmt ' chunk: not a valid WAV file"),
    "no data": (riff(PCM16, (b"LIST", b"abcd")), "no 'data' chunk: the file holds no audio"),
    "fmt too short": (
        riff((b"fmt ", bytes(14)), NO_DATA),
        "'fmt ' chunk is 14 bytes, at least 16 expected",
    ),
    "fmt truncated": (
        riff(PCM16)[:-4],
        "truncated 'fmt ' chunk (16 bytes declared, 12 in the file)",
    ),
    "data truncated": (
        riff(PCM16) + b"data" + struct.pack("<I", 16000) + bytes(8000),
        "truncated: the data chunk declares 1.00 s (16000 bytes) but the file ends after "
        "0.50 s (8000 bytes)",
    ),
    "adpcm": (
        riff(fmt(2, 1, 8000, 4, block_align=256), (b"data", bytes(256))),
        f"ADPCM (format tag 2) is not supported; {SUPPORTED}",
    ),
    "mp3 in wav": (
        riff(fmt(0x55, 2, 44100, 0, block_align=1), (b"data", bytes(10))),
        f"MP3 (format tag 0x0055) is not supported; {SUPPORTED}",
    ),
    "unknown tag": (
        riff(fmt(0x1234, 1, 8000, 16), NO_DATA),
        f"format tag 0x1234 is not supported; {SUPPORTED}",
    ),
    "extensible adpcm": (
        riff(extensible(struct.pack("<H", 2) + PCM_GUID[2:], 1, 8000, 16), NO_DATA),
        f"ADPCM (WAVE_FORMAT_EXTENSIBLE subformat 2) is not supported; {SUPPORTED}",
    ),
    "extensible ambisonic guid": (
        riff(extensible(AMBISONIC.bytes_le, 4, 48000, 16), NO_DATA),
        f"WAVE_FORMAT_EXTENSIBLE with subformat {AMBISONIC} is not supported",
    ),
    "extensible too short": (
        riff(fmt(0xFFFE, 1, 8000, 16), NO_DATA),
        "WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is 18 bytes, 40 expected",
    ),
    "zero channels": (
        riff(_fmt_bytes(1, 0, 8000, 0, 16), NO_DATA),
        "the 'fmt ' chunk says 0 channels",
    ),
    "zero rate": (
        riff(_fmt_bytes(1, 1, 0, 2, 16), NO_DATA),
        "the 'fmt ' chunk says a sample rate of 0 Hz",
    ),
    "40-bit pcm": (riff(fmt(1, 1, 8000, 40), NO_DATA), f"40-bit PCM is not supported; {SUPPORTED}"),
    "16-bit float": (
        riff(fmt(3, 1, 8000, 16), NO_DATA),
        f"16-bit float is not supported; {SUPPORTED}",
    ),
    "16-bit mu-law": (
        riff(fmt(7, 1, 8000, 16), NO_DATA),
        "16-bit G.711 is not supported (G.711 is 8-bit)",
    ),
    "block_align": (
        riff(fmt(1, 2, 8000, 24, block_align=8), (b"data", bytes(8))),
        "block_align is 8 bytes, but 2 channel(s) of 24-bit samples take 6",
    ),
    "valid bits": (
        riff(extensible(PCM_GUID, 1, 8000, 16, valid_bits=20), NO_DATA),
        "20 valid bits in a 16-bit sample is not possible",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_name_the_file_and_the_problem(write: Write, case: str) -> None:
    data, message = ERRORS[case]
    path = write(data, "bad.wav")
    with pytest.raises(WavFormatError) as info:
        read_wav(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert isinstance(info.value, AudioFormatError)
    assert isinstance(info.value, ValueError)
    if info.value.position is not None:
        assert 0 <= info.value.position <= len(data)


def test_adpcm_message_in_full(write: Write) -> None:
    path = write(ERRORS["adpcm"][0], "x.wav")
    with pytest.raises(WavFormatError) as info:
        read_wav(path)
    assert str(info.value) == (
        f"{path}: ADPCM (format tag 2) is not supported; "
        "use PCM 8/16/24/32-bit or float 32/64-bit WAV"
    )
    assert info.value.position == 20  # the format tag's offset


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "nope.wav")


def _valid_file() -> bytes:
    pcm = np.arange(-20, 20, dtype="<i2").tobytes()
    return riff((b"LIST", b"odd"), extensible(PCM_GUID, 2, 8000, 16), (b"data", pcm))


@given(
    st.data(),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
    st.integers(0, 200),
)
def test_damaged_files_raise_wav_format_error_or_read(
    data: st.DataObject, edits: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(_valid_file())
    for offset, value in edits:
        if offset < len(raw):
            raw[offset] = value
    if data.draw(st.booleans()):
        del raw[len(raw) - min(cut, len(raw)) :]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.wav"
        path.write_bytes(bytes(raw))
        try:
            audio = read_wav(path)
        except WavFormatError:
            return
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 2


# -- writing ---------------------------------------------------------------------------------


def _int16_frames(channels: int) -> st.SearchStrategy[npt.NDArray[np.int16]]:
    return hnp.arrays(np.int16, st.tuples(st.integers(0, 500), st.just(channels)))


@given(st.integers(1, 3).flatmap(_int16_frames))
def test_write_read_round_trip_of_int16_is_exact(samples: npt.NDArray[np.int16]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.wav"
        write_wav(path, samples, 24000)
        audio = read_wav(path)
        with wave.open(str(path), "rb") as w:  # and the stdlib reads the same file
            params = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            assert params == (samples.shape[1], 2, 24000)
            stdlib = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    np.testing.assert_array_equal(audio.samples * 32768, samples)
    np.testing.assert_array_equal(stdlib, samples.reshape(-1))


@given(pcm16_arrays(max_size=2000))
def test_mono_1d_round_trip(samples: npt.NDArray[np.int16]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.wav"
        write_wav(path, samples, 8000)
        audio = read_wav(path)
    assert audio.channels == 1
    np.testing.assert_array_equal(audio.mono() * 32768, samples)


@given(float32_arrays(max_size=1000))
def test_float_to_pcm16_is_clipped_and_nan_is_zero(samples: npt.NDArray[np.float32]) -> None:
    from realtalk.core import f32_to_pcm16

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.wav"
        write_wav(path, samples, 16000)
        _, stored = wavfile.read(path)
    np.testing.assert_array_equal(stored, f32_to_pcm16(samples))


def test_float_extremes(tmp_path: Path) -> None:
    write_wav(tmp_path / "x.wav", np.array([np.nan, 2.0, -2.0, 1.0, -1.0, 0.5], np.float32), 8000)
    _, stored = wavfile.read(tmp_path / "x.wav")
    assert list(stored) == [0, 32767, -32768, 32767, -32768, 16384]


@given(float32_arrays(max_size=1000))
def test_float32_files_keep_every_value(samples: npt.NDArray[np.float32]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.wav"
        write_wav(path, samples, 48000, sample_format="float32")
        audio = read_wav(path)
        _, reference = wavfile.read(path)
    np.testing.assert_array_equal(audio.samples[:, 0], samples)
    np.testing.assert_array_equal(reference, samples)
    assert audio.format == "32-bit float"


def test_int16_to_float32_file(tmp_path: Path) -> None:
    samples = np.array([[-32768, 16384]], np.int16)
    write_wav(tmp_path / "x.wav", samples, 8000, sample_format="float32")
    np.testing.assert_array_equal(read_wav(tmp_path / "x.wav").samples, [[-1.0, 0.5]])


def test_float64_input_is_narrowed(tmp_path: Path) -> None:
    write_wav(tmp_path / "x.wav", np.array([0.25, -0.5]), 8000)
    np.testing.assert_array_equal(read_wav(tmp_path / "x.wav").samples[:, 0], [0.25, -0.5])


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(4, np.int32), "samples: expected int16 or float32, got int32"),
        (np.zeros((2, 2, 2), np.int16), "samples: expected 1-D (mono) or (frames, channels)"),
        (np.zeros((4, 0), np.int16), "samples: expected 1-D (mono) or (frames, channels)"),
    ],
)
def test_write_rejects_other_arrays(
    tmp_path: Path, samples: npt.NDArray[np.generic], message: str
) -> None:
    with pytest.raises(AudioFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_wav(tmp_path / "x.wav", samples, 8000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": 0}, "sample_rate: must be an int from 1 to 4294967295, got 0"),
        ({"sample_rate": 8000.0}, "sample_rate: must be an int"),
        ({"sample_rate": True}, "sample_rate: must be an int"),
        ({"sample_rate": 8000, "channels": 0}, "channels: must be an int from 1 to 65535, got 0"),
        (
            {"sample_rate": 8000, "sample_format": "pcm24"},
            "sample_format: must be 'pcm16' or 'float32'",
        ),
    ],
)
def test_writer_rejects_bad_settings(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WavWriter(tmp_path / "x.wav", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("sample_format", ["pcm16", "float32"])
def test_streaming_writer_equals_whole_file(tmp_path: Path, sample_format: str) -> None:
    rng = np.random.default_rng(5)
    samples = rng.integers(-32768, 32768, (1234, 2)).astype(np.int16)
    write_wav(tmp_path / "whole.wav", samples, 24000, sample_format=sample_format)  # type: ignore[arg-type]
    parts = tmp_path / "parts.wav"
    with WavWriter(parts, 24000, channels=2, sample_format=sample_format) as writer:  # type: ignore[arg-type]
        for start in range(0, 1234, 100):
            writer.write(samples[start : start + 100])
        assert writer.frames == 1234
        assert writer.duration_s == pytest.approx(1234 / 24000)
    assert writer.closed
    assert (tmp_path / "parts.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()


def test_unclosed_writer_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    writer = WavWriter(path, 24000)
    writer.write(np.arange(100, dtype=np.int16))
    writer._file.flush()  # as if the process died here
    header = path.read_bytes()[:44]
    assert header[4:8] == header[40:44] == b"\xff\xff\xff\xff"
    np.testing.assert_array_equal(read_wav(path).mono() * 32768, np.arange(100))
    writer.close()
    writer.close()  # idempotent
    assert struct.unpack("<I", path.read_bytes()[40:44]) == (200,)
    with pytest.raises(ValueError, match="closed"):
        writer.write(np.zeros(1, np.int16))


def test_writer_checks_the_channel_count(tmp_path: Path) -> None:
    with WavWriter(tmp_path / "x.wav", 8000, channels=2) as writer:
        with pytest.raises(AudioFormatError, match="expected 2 channel"):
            writer.write(np.zeros(10, np.int16))
        writer.write(np.zeros((10, 2), np.int16))
    assert read_wav(tmp_path / "x.wav").samples.shape == (10, 2)


def test_writer_closes_on_an_exception(tmp_path: Path) -> None:
    def interrupted() -> None:
        with WavWriter(tmp_path / "x.wav", 8000) as writer:
            writer.write(np.ones(10, np.int16))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    with wave.open(str(tmp_path / "x.wav"), "rb") as w:
        assert w.getnframes() == 10


# -- WavAudio and the package ----------------------------------------------------------------


def test_mono_averages_channels() -> None:
    audio = WavAudio(np.array([[1.0, 0.0], [-0.5, 0.5]], np.float32), 8000, "32-bit float")
    np.testing.assert_array_equal(audio.mono(), [0.5, 0.0])
    assert (audio.channels, audio.frames, audio.duration_s) == (2, 2, 2 / 8000)


def test_wav_audio_wants_2d_float32() -> None:
    with pytest.raises(AudioFormatError, match=r"float32 \(frames, channels\)"):
        WavAudio(np.zeros(4, np.float32), 8000, "16-bit PCM")


def test_wav_io_works_without_portaudio(tmp_path: Path) -> None:
    script = (
        "import sys, numpy as np\n"
        "from realtalk.audio import read_wav, write_wav\n"
        f"write_wav({str(tmp_path / 'x.wav')!r}, np.zeros(10, np.int16), 8000)\n"
        f"assert read_wav({str(tmp_path / 'x.wav')!r}).frames == 10\n"
        "import realtalk.audio._portaudio as pa\n"
        "assert pa._lib is None, 'PortAudio was loaded'\n"
    )
    env = {**os.environ, "REALTALK_PORTAUDIO_LIB": str(tmp_path / "no-such-lib.so")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
