"""Text to PCM16 speech for the embedded server's audio responses.

This module owns turning a reply's text into mono int16 samples at a requested rate: with
espeak-ng when it is installed, else with a small built-in synthesiser whose output is
speech-like enough (pitched, formant-shaped, 70 ms per character) for an energy VAD and a
listener to tell it is talking. It must never go through a shell (the text is written to
espeak-ng's stdin, so nothing in it can become an option or a command), never play audio or
touch a device, and never fail because espeak-ng is missing or broken: it falls back.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import struct
import subprocess
from typing import Final

import numpy as np
from numpy.typing import NDArray

from realtalk.core import Resampler
from realtalk.exceptions import ConfigurationError

__all__ = ["espeak_available", "synthesize"]

logger = logging.getLogger(__name__)

_ESPEAK: Final = "espeak-ng"
_ESPEAK_TIMEOUT_S: Final = 30.0
_MIN_RATE: Final = 8000
_MAX_RATE: Final = 192_000

# The built-in synthesiser, in ms and fractions of full scale.
_CHAR_MS: Final = 70
_PAUSE_MS: Final = 20
_FADE_MS: Final = 5
_BURST_MS: Final = 25
_PEAK: Final = 0.5  # -6 dBFS
_F0_HZ: Final = 120.0
_TOP_HZ: Final = 4000.0  # harmonics above this add little to a speech-like sound
_BANDWIDTHS_HZ: Final = (80.0, 120.0)
# (F1, F2) in Hz: textbook averages for adult male vowels, and rough ones for the
# voiced consonants; obstruents get a noise burst and then the neutral vowel.
_VOWELS: Final = {
    "a": (730.0, 1090.0),
    "e": (530.0, 1840.0),
    "i": (270.0, 2290.0),
    "o": (570.0, 840.0),
    "u": (300.0, 870.0),
    "y": (440.0, 1020.0),
}
_VOICED_CONSONANTS: Final = {
    "j": (280.0, 2200.0),
    "l": (360.0, 1300.0),
    "m": (250.0, 1200.0),
    "n": (250.0, 1500.0),
    "r": (420.0, 1300.0),
    "w": (300.0, 700.0),
}
_OBSTRUENTS: Final = frozenset("bcdfghkpqstvxz")
_SCHWA: Final = (500.0, 1500.0)
_VOWEL_GAIN: Final = 1.0
_CONSONANT_GAIN: Final = 0.6
_BURST_GAIN: Final = 0.35


def espeak_available() -> bool:
    """Whether an ``espeak-ng`` executable is on ``PATH`` (then :func:`synthesize` uses it)."""
    return shutil.which(_ESPEAK) is not None


def synthesize(
    text: str, *, sample_rate: int = 24000, voice: str | None = None
) -> NDArray[np.int16]:
    """Speak ``text``: mono int16 samples (PCM16, full scale 32768) at ``sample_rate`` Hz.

    With espeak-ng installed, its 22050 Hz output is resampled to ``sample_rate`` (and so
    begins with the resampler's few ms of delay). Without it, or when it fails, a
    deterministic built-in synthesiser speaks: 70 ms per letter or digit, 20 ms of silence
    per space or punctuation mark, peaks at -6 dBFS.

    Args:
        text: what to say; ``""`` gives an empty array.
        sample_rate: of the output, in Hz (8000 to 192000).
        voice: an espeak-ng voice (``"en-us"``, ``"de"``, ``"en+f3"``, ``"gmw/en-GB-x-rp"``).
            Anything espeak-ng does not list, such as the Realtime API's voice names
            (``"marin"``, ``"alloy"``), is ignored and the default voice speaks.

    Raises:
        TypeError: ``text`` is not a ``str``, or ``voice`` neither ``str`` nor ``None``.
        ConfigurationError: ``sample_rate`` is not an int from 8000 to 192000.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    if voice is not None and not isinstance(voice, str):
        raise TypeError(f"voice must be str or None, not {type(voice).__name__}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise ConfigurationError(f"sample_rate must be an int, not {type(sample_rate).__name__}")
    if not _MIN_RATE <= sample_rate <= _MAX_RATE:
        raise ConfigurationError(
            f"sample_rate must be between {_MIN_RATE} and {_MAX_RATE} Hz, not {sample_rate}"
        )
    if not text:
        return np.zeros(0, dtype=np.int16)
    exe = shutil.which(_ESPEAK)
    if exe is not None:
        spoken = _espeak(exe, text, voice)
        if spoken is not None:
            samples, rate = spoken
            return _resample(samples, rate, sample_rate)
    return _builtin(text, sample_rate)


# --- espeak-ng -------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _espeak_voices(exe: str) -> frozenset[str]:
    """Lower-cased names ``-v`` accepts: languages and voice files, as ``--voices`` lists."""
    try:
        listing = subprocess.run(
            [exe, "--voices"], capture_output=True, check=True, timeout=_ESPEAK_TIMEOUT_S
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names: set[str] = set()
    # Columns: Pty, Language, Age/Gender, VoiceName, File, then "(lang pty)" groups.
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        names.add(fields[1].lower())
        names.add(fields[4].lower())
        names.add(fields[4].rsplit("/", 1)[-1].lower())
    return frozenset(names)


_VARIANT: Final = re.compile(r"[A-Za-z0-9_-]+")


def _espeak_voice(exe: str, voice: str | None) -> str | None:
    """``voice`` if espeak-ng knows it (optionally with a ``+variant``), else ``None``."""
    if not voice:
        return None
    base, plus, variant = voice.partition("+")
    if plus and not _VARIANT.fullmatch(variant):
        return None
    return voice if base.lower() in _espeak_voices(exe) else None


def _espeak(exe: str, text: str, voice: str | None) -> tuple[NDArray[np.int16], int] | None:
    """espeak-ng's samples and their rate in Hz, or ``None`` (logged) if it fails."""
    args = [exe, "--stdout", "--stdin"]
    chosen = _espeak_voice(exe, voice)
    if chosen is not None:
        args += ["-v", chosen]
    try:
        done = subprocess.run(
            args,
            input=text.encode("utf-8", "replace"),
            capture_output=True,
            timeout=_ESPEAK_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("espeak-ng failed (%s); using the built-in synthesiser", exc)
        return None
    if done.returncode != 0:
        logger.warning(
            "espeak-ng exited with %d (%s); using the built-in synthesiser",
            done.returncode,
            done.stderr.decode("utf-8", "replace").strip(),
        )
        return None
    try:
        samples, rate = _parse_wav(done.stdout)
    except ValueError as exc:
        logger.warning("espeak-ng wrote no usable WAV (%s); using the built-in synthesiser", exc)
        return None
    if samples.size == 0:
        logger.warning("espeak-ng wrote no audio; using the built-in synthesiser")
        return None
    return samples, rate


def _parse_wav(data: bytes) -> tuple[NDArray[np.int16], int]:
    """Mono PCM16 samples and the rate in Hz from a RIFF/WAVE byte string.

    Written to a pipe, espeak-ng cannot seek back to fill in the RIFF and data sizes, so
    they hold a placeholder (0xFFFFFFFF or 0x7FFFF000): the data chunk is taken to end at
    the end of the bytes when its size says more than there is.

    Raises:
        ValueError: not RIFF/WAVE, not mono 16-bit PCM, or no data chunk.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    rate: int | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise ValueError("truncated fmt chunk")
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt != 1 or channels != 1 or bits != 16 or rate == 0:
                raise ValueError(
                    f"need mono 16-bit PCM, got format {fmt}, {channels} channels, {bits} bits"
                )
        elif chunk_id == b"data":
            if rate is None:
                raise ValueError("data chunk before fmt chunk")
            end = min(body + size, len(data))
            end -= (end - body) % 2
            samples = np.frombuffer(data, dtype="<i2", count=(end - body) // 2, offset=body)
            return samples.astype(np.int16), rate
        # Chunks are padded to an even length.
        pos = body + size + (size & 1)
    raise ValueError("no data chunk")


def _resample(samples: NDArray[np.int16], in_rate: int, out_rate: int) -> NDArray[np.int16]:
    if in_rate == out_rate:
        return samples
    resampler = Resampler(in_rate, out_rate)
    head = resampler.process(samples)
    tail = resampler.flush()
    return np.concatenate((head, tail)).astype(np.int16, copy=False)


# --- built-in synthesiser ---------------------------------------------------------------


def _resonance(freqs: NDArray[np.float64], centre: float, bandwidth: float) -> NDArray[np.float64]:
    """Magnitude response of a two-pole resonator (1 at DC) at ``freqs`` Hz."""
    c2 = centre * centre
    response: NDArray[np.float64] = c2 / np.sqrt((c2 - freqs**2) ** 2 + (bandwidth * freqs) ** 2)
    return response


def _voiced(
    n: int, sample_rate: int, f0: float, formants: tuple[float, float], phase: float
) -> tuple[NDArray[np.float64], float]:
    """``n`` samples of a buzz at ``f0`` Hz through two formant resonators, peak 1.

    Built as a sum of the buzz's harmonics, each weighted by the resonators' response at
    its frequency, so nothing aliases at any sample rate. Returns the samples and the
    phase (radians) at which the next segment continues.
    """
    top = min(_TOP_HZ, 0.45 * sample_rate)
    harmonics = np.arange(1, max(2, int(top // f0) + 1), dtype=np.float64)
    freqs = harmonics * f0
    # A 1/h source: a glottal pulse (-12 dB/octave) plus lip radiation (+6 dB/octave).
    weights = (
        _resonance(freqs, formants[0], _BANDWIDTHS_HZ[0])
        * _resonance(freqs, formants[1], _BANDWIDTHS_HZ[1])
        / harmonics
    )
    step = 2.0 * np.pi * f0 / sample_rate
    phases = phase + step * np.arange(n, dtype=np.float64)
    out: NDArray[np.float64] = np.sin(np.outer(phases, harmonics)) @ weights
    peak = float(np.max(np.abs(out))) if n else 0.0
    if peak > 0.0:
        out /= peak
    return out, float((phase + step * n) % (2.0 * np.pi))


def _burst(n: int, seed: int) -> NDArray[np.float64]:
    """``n`` samples of high-passed noise, peak 1, the same for the same ``seed``."""
    noise = np.random.default_rng(seed).standard_normal(n + 1)
    out: NDArray[np.float64] = np.diff(noise)
    peak = float(np.max(np.abs(out))) if n else 0.0
    return out / peak if peak > 0.0 else out


def _fade(segment: NDArray[np.float64], fade: int) -> NDArray[np.float64]:
    """Linear fade-in and fade-out of ``fade`` samples each, so segments do not click."""
    k = min(fade, segment.size // 2)
    if k > 0:
        ramp = np.arange(1, k + 1, dtype=np.float64) / (k + 1)
        segment[:k] *= ramp
        segment[-k:] *= ramp[::-1]
    return segment


def _builtin(text: str, sample_rate: int) -> NDArray[np.int16]:
    """The fallback synthesiser: deterministic, speech-like, peak -6 dBFS."""
    char_n = _CHAR_MS * sample_rate // 1000
    pause_n = _PAUSE_MS * sample_rate // 1000
    burst_n = _BURST_MS * sample_rate // 1000
    fade_n = _FADE_MS * sample_rate // 1000
    vowels = list(_VOWELS.values())
    segments: list[NDArray[np.float64]] = []
    phase = 0.0
    count = max(1, len(text) - 1)
    for index, char in enumerate(text.lower()):
        if not char.isalnum():
            segments.append(np.zeros(pause_n))
            continue
        # Pitch falls gently over the utterance, like a statement's intonation.
        f0 = _F0_HZ * (1.08 - 0.16 * index / count)
        if char in _OBSTRUENTS:
            segments.append(_fade(_BURST_GAIN * _burst(burst_n, ord(char)), fade_n))
            tail, phase = _voiced(char_n - burst_n, sample_rate, f0, _SCHWA, phase)
            segments.append(_fade(_CONSONANT_GAIN * tail, fade_n))
        elif char in _VOICED_CONSONANTS:
            body, phase = _voiced(char_n, sample_rate, f0, _VOICED_CONSONANTS[char], phase)
            segments.append(_fade(_CONSONANT_GAIN * body, fade_n))
        else:
            # Vowels, digits and other scripts' letters all get a vowel sound.
            formants = _VOWELS.get(char, vowels[ord(char) % len(vowels)])
            body, phase = _voiced(char_n, sample_rate, f0, formants, phase)
            segments.append(_fade(_VOWEL_GAIN * body, fade_n))
    signal = np.concatenate(segments)
    peak = float(np.max(np.abs(signal)))
    if peak > 0.0:
        signal *= _PEAK * 32768.0 / peak
    return np.rint(signal).astype(np.int16)
