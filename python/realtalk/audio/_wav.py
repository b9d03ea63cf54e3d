"""WAV files: read the common PCM, float and G.711 layouts; write PCM16 or float32.

What this module owns: parsing RIFF/WAVE (the chunk walk, odd-size padding, ``fmt `` tags
1 PCM, 3 IEEE float, 6 A-law, 7 µ-law, and WAVE_FORMAT_EXTENSIBLE with those subformats),
decoding to float32 ``(frames, channels)``, and writing files whole (:func:`write_wav`) or
as audio arrives (:class:`WavWriter`, sizes patched on close).

What it must never do: load PortAudio (this is file I/O; ``realtalk.audio`` imports it
without touching a device), or let a malformed file escape as a ``struct`` or numpy
exception: every problem is a :class:`~realtalk.exceptions.WavFormatError` that names the
file, says what is wrong, and what is supported.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Final, Literal, cast

import numpy as np
import numpy.typing as npt

from realtalk import _core
from realtalk.exceptions import AudioFormatError, ConfigurationError, WavFormatError

__all__ = ["WavAudio", "WavReader", "WavWriter", "read_wav", "write_wav"]

Float32Array = npt.NDArray[np.float32]
SampleFormat = Literal["pcm16", "float32"]

_PCM: Final = 0x0001
_FLOAT: Final = 0x0003
_ALAW: Final = 0x0006
_ULAW: Final = 0x0007
_EXTENSIBLE: Final = 0xFFFE
#: The 14 bytes after the format tag in every KSDATAFORMAT_SUBTYPE_* GUID of a WAVE format.
_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
#: What the errors recommend.
_SUPPORTED: Final = "use PCM 8/16/24/32-bit or float 32/64-bit WAV"
#: Format tags people meet, for an error that says what the file is (mmreg.h names).
_CODECS: Final = {
    0x0002: "ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0050: "MPEG audio",
    0x0055: "MP3",
    0x0092: "AC-3",
    0x0161: "WMA",
    0x0162: "WMA Pro",
    0x2000: "AC-3",
    0x2001: "DTS",
    0xF1AC: "FLAC",
}
#: The largest RIFF chunk: its size field is 32 bits.
_MAX_CHUNK: Final = 0xFFFFFFFF
#: Data sizes that streaming writers leave in the header: "to the end of the file".
_UNKNOWN_SIZES: Final = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True, eq=False)
class WavAudio:
    """A decoded WAV file.

    ``samples`` is float32 of shape ``(frames, channels)``: integer formats are scaled to
    [-1.0, 1.0] (16-bit -32768 is -1.0, 8-bit 128 is 0.0), float files are as stored
    (they may exceed ±1.0). ``sample_rate`` is in Hz; ``format`` a short description such
    as ``"24-bit PCM"`` or ``"32-bit float"``.
    """

    samples: Float32Array
    sample_rate: int
    format: str

    def __post_init__(self) -> None:
        if self.samples.dtype != np.float32 or self.samples.ndim != 2:
            raise AudioFormatError(
                f"samples: expected float32 (frames, channels), got {self.samples.dtype} "
                f"of shape {self.samples.shape}"
            )

    @property
    def channels(self) -> int:
        """Channels per frame."""
        return int(self.samples.shape[1])

    @property
    def frames(self) -> int:
        """Frames (samples per channel)."""
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def mono(self) -> Float32Array:
        """The samples averaged over channels: 1-D float32, ``frames`` long."""
        return _mono(self.samples)


def _mono(samples: Float32Array) -> Float32Array:
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0])
    mixed: Float32Array = samples.mean(axis=1, dtype=np.float32)
    return mixed


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the header says: how to find and decode the frames."""

    tag: int  # _PCM, _FLOAT, _ALAW or _ULAW (EXTENSIBLE resolved to its subformat)
    channels: int
    sample_rate: int
    width: int  # bytes per sample in the file (the container)
    bits: int  # valid bits per sample (<= width * 8)
    data_offset: int  # bytes from the start of the file
    frames: int

    @property
    def block_align(self) -> int:
        return self.width * self.channels

    @property
    def format(self) -> str:
        if self.tag == _FLOAT:
            return f"{self.bits}-bit float"
        if self.tag == _ALAW:
            return "8-bit A-law"
        if self.tag == _ULAW:
            return "8-bit µ-law"
        if self.bits != self.width * 8:
            return f"{self.bits}-bit PCM in {self.width * 8}-bit"
        return f"{self.bits}-bit PCM"


def _number(tag: int) -> str:
    """A format tag as mmreg.h writes it: small ones in decimal, the rest in hex."""
    return str(tag) if tag < 10 else f"{tag:#06x}"


def _seconds(frames: int, rate: int) -> str:
    return f"{frames / rate:.2f} s"


class _Parser:
    """The header walk of one open file; every failure names the file."""

    def __init__(self, file: BinaryIO, name: str) -> None:
        self.file = file
        self.name = name
        file.seek(0, os.SEEK_END)
        self.size = file.tell()

    def fail(self, problem: str, position: int | None = None) -> WavFormatError:
        return WavFormatError(f"{self.name}: {problem}", position)

    def read_at(self, offset: int, nbytes: int) -> bytes:
        self.file.seek(offset)
        return self.file.read(nbytes)

    def layout(self) -> _Layout:
        self._check_magic(self.read_at(0, 12))
        fmt, data = self._walk()
        if fmt is None:
            raise self.fail("no 'fmt ' chunk: not a valid WAV file")
        if data is None:
            raise self.fail("no 'data' chunk: the file holds no audio")
        fmt_offset, fmt_bytes = fmt
        tag, channels, rate, width, bits = self._format(fmt_offset, fmt_bytes)
        data_offset, declared = data
        available = self.size - data_offset
        block_align = width * channels
        if declared in _UNKNOWN_SIZES:
            # A streaming writer that never came back to patch the size: to end of file.
            nbytes = available
        elif declared > available:
            raise self.fail(
                f"truncated: the data chunk declares {_seconds(declared // block_align, rate)} "
                f"({declared} bytes) but the file ends after "
                f"{_seconds(available // block_align, rate)} ({available} bytes)",
                self.size,
            )
        else:
            nbytes = declared
        # A partial frame at the end (a writer cut off mid-frame) is dropped.
        return _Layout(tag, channels, rate, width, bits, data_offset, nbytes // block_align)

    def _check_magic(self, head: bytes) -> None:
        if not head:
            raise self.fail("empty file, not a WAV file", 0)
        kinds = {
            b"RIFX": "a big-endian (RIFX) WAV file, which is not supported",
            b"RF64": "an RF64 (64-bit size) WAV file, which is not supported",
            b"BW64": "a BW64 (64-bit size) WAV file, which is not supported",
            b"FORM": "an AIFF file, not a WAV file",
            b"OggS": "an Ogg file, not a WAV file",
            b"fLaC": "a FLAC file, not a WAV file",
        }
        kind = kinds.get(head[:4])
        if kind is None and (head[:3] == b"ID3" or (head[0] == 0xFF and head[1:2] >= b"\xe0")):
            kind = "an MP3 file, not a WAV file"
        if kind is None and (len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE"):
            kind = "not a WAV file (no RIFF/WAVE header)"
        if kind is not None:
            raise self.fail(f"{kind}; {_SUPPORTED}", 0)

    def _walk(self) -> tuple[tuple[int, bytes] | None, tuple[int, int] | None]:
        """(offset, bytes) of the first ``fmt `` chunk and (offset, declared size) of the
        first ``data`` chunk. Other chunks (LIST, fact, bext, ...) are skipped."""
        fmt: tuple[int, bytes] | None = None
        data: tuple[int, int] | None = None
        position = 12
        # The RIFF size is not trusted (writers get it wrong): chunks run to the end of file.
        while fmt is None or data is None:
            header = self.read_at(position, 8)
            if len(header) < 8:
                break
            chunk_id = header[:4]
            (chunk_size,) = struct.unpack("<I", header[4:])
            body = position + 8
            if chunk_id == b"data":
                data = (body, chunk_size)
                if chunk_size in _UNKNOWN_SIZES:
                    break  # it runs to the end of the file: nothing can follow
            elif chunk_id == b"fmt ":
                if body + chunk_size > self.size:
                    raise self.fail(
                        f"truncated 'fmt ' chunk ({chunk_size} bytes declared, "
                        f"{self.size - body} in the file)",
                        position,
                    )
                fmt = (position, self.read_at(body, chunk_size))
            # Chunks are padded to an even size; the pad byte is not counted.
            position = body + chunk_size + (chunk_size & 1)
        return fmt, data

    def _format(self, offset: int, fmt: bytes) -> tuple[int, int, int, int, int]:
        """(tag, channels, sample rate, bytes per sample, valid bits) from ``fmt `` bytes."""
        if len(fmt) < 16:
            raise self.fail(f"'fmt ' chunk is {len(fmt)} bytes, at least 16 expected", offset)
        tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
        valid_bits = bits
        described = f"format tag {_number(tag)}"
        if tag == _EXTENSIBLE:
            if len(fmt) < 40:
                raise self.fail(
                    f"WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is {len(fmt)} bytes, 40 expected",
                    offset,
                )
            valid_bits = struct.unpack_from("<H", fmt, 18)[0] or bits
            guid = fmt[24:40]
            if guid[2:] != _GUID_TAIL:
                raise self.fail(
                    f"WAVE_FORMAT_EXTENSIBLE with subformat {uuid.UUID(bytes_le=guid)} is not "
                    f"supported; {_SUPPORTED}",
                    offset + 32,
                )
            tag = struct.unpack_from("<H", guid)[0]
            described = f"WAVE_FORMAT_EXTENSIBLE subformat {_number(tag)}"
        if tag not in (_PCM, _FLOAT, _ALAW, _ULAW):
            codec = f"{_CODECS[tag]} ({described})" if tag in _CODECS else described
            raise self.fail(f"{codec} is not supported; {_SUPPORTED}", offset + 8)
        if channels == 0:
            raise self.fail("the 'fmt ' chunk says 0 channels", offset + 10)
        if rate == 0:
            raise self.fail("the 'fmt ' chunk says a sample rate of 0 Hz", offset + 12)
        if tag == _PCM and not 1 <= bits <= 32:
            raise self.fail(f"{bits}-bit PCM is not supported; {_SUPPORTED}", offset + 22)
        if tag == _FLOAT and bits not in (32, 64):
            raise self.fail(f"{bits}-bit float is not supported; {_SUPPORTED}", offset + 22)
        if tag in (_ALAW, _ULAW) and bits != 8:
            raise self.fail(f"{bits}-bit G.711 is not supported (G.711 is 8-bit)", offset + 22)
        width = (bits + 7) // 8
        if block_align != width * channels:
            raise self.fail(
                f"block_align is {block_align} bytes, but {channels} channel(s) of {bits}-bit "
                f"samples take {width * channels}",
                offset + 20,
            )
        if valid_bits > bits:
            raise self.fail(
                f"{valid_bits} valid bits in a {bits}-bit sample is not possible", offset + 26
            )
        return tag, channels, rate, width, valid_bits


def _decode(raw: bytes, layout: _Layout) -> Float32Array:
    """Whole frames of ``raw`` as float32 ``(frames, channels)``."""
    width = layout.width
    raw = raw[: len(raw) // layout.block_align * layout.block_align]
    samples: Float32Array
    if layout.tag == _FLOAT:
        stored = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8")
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes ±inf
            samples = stored.astype(np.float32)
    elif layout.tag in (_ALAW, _ULAW):
        decode = _core.alaw_decode if layout.tag == _ALAW else _core.ulaw_decode
        samples = decode(raw).astype(np.float32) / np.float32(32768)
    elif width == 1:
        # 8-bit WAV is unsigned, centred on 128.
        unsigned = np.frombuffer(raw, dtype=np.uint8).astype(np.float32)
        samples = (unsigned - np.float32(128)) / np.float32(128)
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / np.float32(2**15)
    elif width == 3:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        joined = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        signed = (joined << 8) >> 8  # sign-extend bit 23
        samples = signed.astype(np.float32) / np.float32(2**23)
    else:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / np.float32(2**31)
    return samples.reshape(-1, layout.channels)


class WavReader:
    """An open WAV file, read a block of frames at a time (long files need not fit in memory).

    Args:
        path: the file.

    Raises:
        OSError: the file cannot be opened or read.
        WavFormatError: not a WAV file this module reads (the message says why).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self._layout = _Parser(self._file, self.name).layout()
        except BaseException:
            self._file.close()
            raise
        self._position = 0

    @property
    def sample_rate(self) -> int:
        """Frames per second (Hz)."""
        return self._layout.sample_rate

    @property
    def channels(self) -> int:
        """Channels per frame."""
        return self._layout.channels

    @property
    def frames(self) -> int:
        """Frames in the file."""
        return self._layout.frames

    @property
    def format(self) -> str:
        """Short description of the sample format, e.g. ``"24-bit PCM"``."""
        return self._layout.format

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def read(self, frames: int) -> Float32Array:
        """The next ``frames`` frames (fewer at the end; none after it) as float32
        ``(frames, channels)``, scaled as :class:`WavAudio` says.

        Raises:
            WavFormatError: the file shrank while being read.
        """
        count = max(0, min(frames, self.frames - self._position))
        layout = self._layout
        self._file.seek(layout.data_offset + self._position * layout.block_align)
        raw = self._file.read(count * layout.block_align)
        if len(raw) < count * layout.block_align:
            raise WavFormatError(f"{self.name}: the file was truncated while being read")
        self._position += count
        return _decode(raw, layout)

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_wav(path: str | os.PathLike[str]) -> WavAudio:
    """Read a whole WAV file.

    Reads PCM 8-bit (unsigned), 16, 24 and 32-bit (signed, little-endian); IEEE float 32
    and 64-bit; G.711 A-law and µ-law; any sample rate and channel count; plain
    ``WAVE_FORMAT_PCM``/``_IEEE_FLOAT`` headers and ``WAVE_FORMAT_EXTENSIBLE``. A data
    size of 0 or 0xFFFFFFFF (left by streaming writers) means "to the end of the file"; a
    partial frame at the end is dropped.

    Returns:
        :class:`WavAudio`: float32 ``(frames, channels)`` samples, the rate in Hz, a
        description of the stored format.

    Raises:
        OSError: the file cannot be opened or read (e.g. ``FileNotFoundError``).
        WavFormatError: not a WAV file, or one this function does not read: RIFX, RF64,
            compressed codecs (ADPCM, MP3, ...), a missing ``fmt `` or ``data`` chunk, a
            data chunk longer than the file, 0 channels, a 0 Hz rate, a ``block_align``
            that does not match the sample size. ``position`` is the byte offset of the
            problem when it has one.
    """
    with WavReader(path) as reader:
        samples = reader.read(reader.frames)
        return WavAudio(samples, reader.sample_rate, reader.format)


def _frames(samples: npt.ArrayLike, channels: int | None) -> npt.NDArray[np.int16 | np.float32]:
    """``samples`` as a C-contiguous 2-D int16 or float32 array (float64 is narrowed)."""
    array = np.asarray(samples)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    if array.dtype not in (np.int16, np.float32):
        raise AudioFormatError(f"samples: expected int16 or float32, got {array.dtype}")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    elif array.ndim != 2 or array.shape[1] == 0:
        raise AudioFormatError(
            f"samples: expected 1-D (mono) or (frames, channels), got shape {array.shape}"
        )
    if channels is not None and array.shape[1] != channels:
        raise AudioFormatError(f"samples: expected {channels} channel(s), got {array.shape[1]}")
    return np.ascontiguousarray(array)


class WavWriter:
    """A WAV file written as audio arrives; the header's sizes are patched on :meth:`close`.

    Until then the header holds 0xFFFFFFFF sizes, which :func:`read_wav` (and most
    players) read as "to the end of the file", so a file left by a crash is still usable.

    Args:
        path: the file to create (replaced if it exists).
        sample_rate: Hz, 1 to 4294967295.
        channels: channels per frame, 1 to 65535.
        sample_format: ``"pcm16"`` (16-bit PCM) or ``"float32"`` (32-bit IEEE float).

    Raises:
        ConfigurationError: a bad rate, channel count or sample format.
        OSError: the file cannot be created.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        *,
        channels: int = 1,
        sample_format: SampleFormat = "pcm16",
    ) -> None:
        for name, value, top in (
            ("sample_rate", sample_rate, 0xFFFFFFFF),
            ("channels", channels, 0xFFFF),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ConfigurationError(f"{name}: must be an int from 1 to {top}, got {value!r}")
        if sample_format not in ("pcm16", "float32"):
            raise ConfigurationError(
                f"sample_format: must be 'pcm16' or 'float32', got {sample_format!r}"
            )
        self.name = os.fspath(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_format: SampleFormat = sample_format
        self.frames = 0
        self._width = 2 if sample_format == "pcm16" else 4
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed by close())
        try:
            self._write_header(_MAX_CHUNK, _MAX_CHUNK)
        except BaseException:
            self._file.close()
            raise

    @property
    def duration_s(self) -> float:
        """Seconds written so far."""
        return self.frames / self.sample_rate

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._file.closed

    def _write_header(self, riff_size: int, data_size: int) -> None:
        block_align = self._width * self.channels
        head = [b"RIFF", struct.pack("<I", riff_size), b"WAVE"]
        rate, channels = self.sample_rate, self.channels
        byte_rate = min(rate * block_align, _MAX_CHUNK)
        if self.sample_format == "pcm16":
            fmt = struct.pack("<HHIIHH", _PCM, channels, rate, byte_rate, block_align, 16)
            head += [b"fmt ", struct.pack("<I", len(fmt)), fmt]
        else:
            # Non-PCM formats carry cbSize and a fact chunk (the frame count).
            fmt = struct.pack("<HHIIHHH", _FLOAT, channels, rate, byte_rate, block_align, 32, 0)
            frames = min(self.frames, _MAX_CHUNK)
            head += [
                b"fmt ",
                struct.pack("<I", len(fmt)),
                fmt,
                b"fact",
                struct.pack("<II", 4, frames),
            ]
        head += [b"data", struct.pack("<I", data_size)]
        self._header = b"".join(head)
        self._file.seek(0)
        self._file.write(self._header)

    def write(self, samples: npt.ArrayLike) -> None:
        """Append frames: int16 (full scale 32768) or float32 (full scale 1.0; float64 is
        narrowed), 1-D when mono or ``(frames, channels)``. For ``"pcm16"`` floats are
        rounded, clipped to [-1, 1) and NaN becomes 0 (:func:`realtalk.core.f32_to_pcm16`).

        Raises:
            AudioFormatError: another dtype or shape, or a channel count other than the
                writer's.
            WavFormatError: more than a WAV file's 4 GiB in all.
            ValueError: the writer is closed.
        """
        if self._file.closed:
            raise ValueError(f"{self.name}: the WavWriter is closed")
        array = _frames(samples, self.channels)
        pcm16 = self.sample_format == "pcm16"
        out: npt.NDArray[np.int16] | Float32Array
        # _frames() made it int16 or float32; numpy's dtype test does not narrow the type.
        if array.dtype == np.int16:
            ints = cast("npt.NDArray[np.int16]", array)
            out = ints if pcm16 else _core.pcm16_to_f32(ints)
        else:
            floats = cast("Float32Array", array)
            out = _core.f32_to_pcm16(floats) if pcm16 else floats
        data = out.astype("<i2" if pcm16 else "<f4", copy=False).tobytes()
        written = self.frames * self._width * self.channels
        if len(self._header) - 8 + written + len(data) > _MAX_CHUNK - 1:
            raise WavFormatError(f"{self.name}: a WAV file cannot hold more than 4 GiB of audio")
        self._file.write(data)
        self.frames += len(array)

    def close(self) -> None:
        """Write the final sizes into the header and close the file (idempotent)."""
        if self._file.closed:
            return
        try:
            data_size = self.frames * self._width * self.channels
            self._write_header(len(self._header) - 8 + data_size, data_size)
        finally:
            self._file.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_wav(
    path: str | os.PathLike[str],
    samples: npt.ArrayLike,
    sample_rate: int,
    *,
    sample_format: SampleFormat = "pcm16",
) -> None:
    """Write a WAV file: 16-bit PCM (default) or 32-bit float.

    Args:
        path: the file to create (replaced if it exists).
        samples: int16 (full scale 32768) or float32 (full scale 1.0; float64 is narrowed),
            1-D for mono or ``(frames, channels)``. For ``"pcm16"`` floats are rounded,
            clipped to [-1, 1) and NaN becomes 0.
        sample_rate: Hz.
        sample_format: ``"pcm16"`` or ``"float32"``.

    Raises:
        AudioFormatError: samples of another dtype or shape.
        ConfigurationError: a bad rate or sample format.
        OSError: the file cannot be written.
    """
    array = _frames(samples, None)
    with WavWriter(
        path, sample_rate, channels=array.shape[1], sample_format=sample_format
    ) as writer:
        writer.write(array)
