"""Energy-based voice activity detection for the embedded server's ``server_vad``.

This module owns the decision "is the user speaking", made on 10 ms frames of mono PCM16,
and the two timestamps the Realtime API reports for it (``speech_started.audio_start_ms``,
``speech_stopped.audio_end_ms``), both counted on the session's input clock: samples since
the first one this detector saw. It must never depend on how the audio was chunked (a
partial frame is carried over to the next call), never read a wall clock, and never build
protocol events or touch the input buffer: the server turns its results into events.

Rules, all in whole frames of ``sample_rate // 100`` samples (10 ms at the usual rates):

* A frame is voiced when its RMS level exceeds ``threshold_dbfs = -60 + 50 * threshold``
  dBFS (full scale 32768): 0.0 -> -60 dBFS (very sensitive), 0.5 -> -35 dBFS (speech at
  -30..-15 dBFS triggers, room noise below -50 does not), 1.0 -> -10 dBFS (only shouting).
* Speech starts after ``START_FRAMES`` (2, i.e. 20 ms) consecutive voiced frames, so a
  single click does not count. ``audio_start_ms`` is the start of the first of them minus
  ``prefix_padding_ms``, clamped at 0.
* Speech stops once the voiced frames are followed by at least ``silence_duration_ms`` of
  unvoiced frames (a voiced frame in between restarts the count). ``audio_end_ms`` is
  the end of the last voiced frame plus ``silence_duration_ms``: the point where the silence
  run completed, never later than the audio seen so far.

``semantic_vad`` is emulated with the same detector: :func:`semantic_silence_ms` gives the
silence length that stands in for each ``eagerness``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from realtalk.core import f32_to_pcm16
from realtalk.exceptions import AudioFormatError, ConfigurationError

__all__ = [
    "START_FRAMES",
    "EnergyVad",
    "SpeechStarted",
    "SpeechStopped",
    "semantic_silence_ms",
    "threshold_dbfs",
]

#: Consecutive voiced 10 ms frames needed before speech is reported as started.
START_FRAMES: Final = 2

_FULL_SCALE: Final = 32768.0
_MIN_RATE: Final = 100  # one sample per 10 ms frame
_MAX_RATE: Final = 192_000

# Silence lengths (ms) that stand in for semantic_vad's eagerness; "auto" is "medium".
_SEMANTIC_SILENCE_MS: Final = {"low": 1500, "medium": 800, "auto": 800, "high": 400}


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech began; ``audio_start_ms`` includes the prefix padding (ms, session clock)."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """Speech ended; ``audio_end_ms`` includes the silence duration (ms, session clock)."""

    audio_end_ms: int


def threshold_dbfs(threshold: float) -> float:
    """The frame RMS level in dBFS (full scale 32768) above which a frame is voiced.

    ``-60 + 50 * threshold``: 0.0 -> -60 dBFS, 0.5 -> -35 dBFS, 1.0 -> -10 dBFS. A higher
    ``threshold`` makes the detector less sensitive.
    """
    return -60.0 + 50.0 * threshold


def semantic_silence_ms(eagerness: str) -> int:
    """The silence length in ms that emulates ``semantic_vad`` with a given ``eagerness``.

    The embedded server has no semantic model: it runs :class:`EnergyVad` with this
    ``silence_duration_ms`` instead. ``"low"`` -> 1500, ``"medium"`` and ``"auto"`` -> 800,
    ``"high"`` -> 400.

    Raises:
        ConfigurationError: ``eagerness`` is none of those four.
    """
    try:
        return _SEMANTIC_SILENCE_MS[eagerness]
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"eagerness must be 'low', 'medium', 'high' or 'auto', not {eagerness!r}"
        ) from None


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigurationError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ConfigurationError(f"{name} must be {bounds}, not {value}")
    return int(value)


def _as_pcm16(samples: object) -> NDArray[np.int16]:
    """1-D native int16 samples from int16 or float32 input; anything else is refused."""
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"samples must be a numpy array, not {type(samples).__name__}")
    arr: NDArray[Any] = samples
    if arr.ndim != 1:
        raise AudioFormatError(f"samples must be 1-D (mono), not of shape {arr.shape}")
    # Byte order does not change the values, so swapped arrays are accepted as copies.
    if arr.dtype.kind == "i" and arr.dtype.itemsize == 2:
        return arr.astype(np.int16, copy=False)
    if arr.dtype.kind == "f" and arr.dtype.itemsize == 4:
        return f32_to_pcm16(np.ascontiguousarray(arr, dtype=np.float32))
    raise AudioFormatError(f"samples must be int16 or float32, not {arr.dtype}")


class EnergyVad:
    """Streaming server VAD: PCM16 in, :class:`SpeechStarted` / :class:`SpeechStopped` out.

    Args:
        sample_rate: of the input, in Hz (100 to 192000). Frames are
            ``sample_rate // 100`` samples.
        threshold: 0.0 to 1.0; see :func:`threshold_dbfs` for the level it maps to.
        prefix_padding_ms: how far before the detected start ``audio_start_ms`` points, in
            ms (0 or more).
        silence_duration_ms: unvoiced time that ends speech, in ms (0 or more).
        start_sample: where the clock starts, in samples: the session's input clock when
            the VAD is (re)configured mid-session, so timestamps stay on that clock.

    Raises:
        ConfigurationError: an argument of the wrong type or out of range (the message
            names it).
    """

    __slots__ = (
        "_carry",
        "_energy_limit",
        "_frame_samples",
        "_prefix_padding_ms",
        "_sample_rate",
        "_samples_seen",
        "_silence_duration_ms",
        "_silence_samples",
        "_speaking",
        "_speech_end_sample",
        "_speech_start_sample",
        "_threshold",
        "_unvoiced_samples",
        "_voiced_frames",
        "_voiced_start_sample",
    )

    def __init__(
        self,
        *,
        sample_rate: int,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        start_sample: int = 0,
    ) -> None:
        self._sample_rate = _check_int("sample_rate", sample_rate, _MIN_RATE, _MAX_RATE)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
            raise ConfigurationError(f"threshold must be a number, not {type(threshold).__name__}")
        if not 0.0 <= threshold <= 1.0:  # also refuses NaN
            raise ConfigurationError(f"threshold must be between 0.0 and 1.0, not {threshold}")
        self._threshold = float(threshold)
        self._prefix_padding_ms = _check_int("prefix_padding_ms", prefix_padding_ms, 0)
        self._silence_duration_ms = _check_int("silence_duration_ms", silence_duration_ms, 0)

        self._frame_samples = self._sample_rate // 100
        # Mean square per frame, compared without a log or a square root per frame.
        limit = _FULL_SCALE * 10.0 ** (threshold_dbfs(self._threshold) / 20.0)
        self._energy_limit = limit * limit
        # Rounded up, so that the silence reported is never shorter than asked for.
        self._silence_samples = math.ceil(self._silence_duration_ms * self._sample_rate / 1000)
        # The session's input clock may have run before this VAD was configured.
        self._samples_seen = _check_int("start_sample", start_sample, 0)
        self._carry: NDArray[np.int16] = np.zeros(0, dtype=np.int16)
        self._clear_state()

    def _clear_state(self) -> None:
        self._speaking = False
        self._voiced_frames = 0  # consecutive voiced frames while not speaking
        self._voiced_start_sample = 0  # first sample of that run
        self._unvoiced_samples = 0  # consecutive unvoiced samples while speaking
        self._speech_start_sample: int | None = None
        self._speech_end_sample = 0  # end of the last voiced frame while speaking

    @property
    def sample_rate(self) -> int:
        """Input sample rate in Hz."""
        return self._sample_rate

    @property
    def threshold(self) -> float:
        """The configured threshold, 0.0 to 1.0."""
        return self._threshold

    @property
    def threshold_dbfs(self) -> float:
        """The frame RMS level in dBFS above which a frame is voiced."""
        return threshold_dbfs(self._threshold)

    @property
    def prefix_padding_ms(self) -> int:
        """Padding before the detected start, in ms."""
        return self._prefix_padding_ms

    @property
    def silence_duration_ms(self) -> int:
        """Unvoiced time that ends speech, in ms."""
        return self._silence_duration_ms

    @property
    def frame_samples(self) -> int:
        """Samples per analysis frame (``sample_rate // 100``)."""
        return self._frame_samples

    @property
    def samples_seen(self) -> int:
        """Samples processed since creation: the session's input clock (``reset`` keeps it)."""
        return self._samples_seen

    @property
    def speaking(self) -> bool:
        """Whether speech has started and not yet stopped."""
        return self._speaking

    @property
    def speech_start_sample(self) -> int | None:
        """Session-clock sample where the current or last speech began, before padding.

        ``None`` until speech is first detected, and again after :meth:`reset`.
        """
        return self._speech_start_sample

    def _ms(self, sample: int) -> int:
        return sample * 1000 // self._sample_rate

    def process(
        self, samples: NDArray[np.int16] | NDArray[np.float32]
    ) -> list[SpeechStarted | SpeechStopped]:
        """Feed the next chunk of audio; returns the events it completes, in order.

        Args:
            samples: 1-D mono int16 (PCM16), or float32 (full scale 1.0, converted as by
                :func:`realtalk.core.f32_to_pcm16`), at :attr:`sample_rate`. Any length,
                including 0; a trailing partial frame waits for the next call.

        Raises:
            AudioFormatError: another dtype, or not 1-D.
            TypeError: not a numpy array.
        """
        pcm = _as_pcm16(samples)
        if pcm.size == 0:
            return []
        frame = self._frame_samples
        data = np.concatenate((self._carry, pcm)) if self._carry.size else pcm
        # The clock counts a frame's samples when they arrive, carried or not.
        first_sample = self._samples_seen - self._carry.size
        self._samples_seen += pcm.size
        whole = data.size // frame * frame
        self._carry = data[whole:].copy()
        if whole == 0:
            return []
        frames = data[:whole].astype(np.float64).reshape(-1, frame)
        voiced = np.mean(frames * frames, axis=1) > self._energy_limit

        events: list[SpeechStarted | SpeechStopped] = []
        for index, is_voiced in enumerate(voiced.tolist()):
            start = first_sample + index * frame
            end = start + frame
            if not self._speaking:
                if not is_voiced:
                    self._voiced_frames = 0
                    continue
                if self._voiced_frames == 0:
                    self._voiced_start_sample = start
                self._voiced_frames += 1
                if self._voiced_frames >= START_FRAMES:
                    self._speaking = True
                    self._voiced_frames = 0
                    self._unvoiced_samples = 0
                    self._speech_start_sample = self._voiced_start_sample
                    self._speech_end_sample = end
                    start_ms = self._ms(self._voiced_start_sample) - self._prefix_padding_ms
                    events.append(SpeechStarted(audio_start_ms=max(0, start_ms)))
            elif is_voiced:
                self._unvoiced_samples = 0
                self._speech_end_sample = end
            else:
                self._unvoiced_samples += frame
                if self._unvoiced_samples >= self._silence_samples:
                    self._speaking = False
                    self._unvoiced_samples = 0
                    stop = self._speech_end_sample + self._silence_samples
                    events.append(SpeechStopped(audio_end_ms=self._ms(stop)))
        return events

    def reset(self) -> None:
        """Forget any speech in progress and the partial frame, but keep the clock.

        :attr:`samples_seen` keeps counting, so later timestamps stay on the session's
        clock; the next frame starts at the next sample fed. No event is emitted for
        speech cut off by a reset: the caller decides what that means.
        """
        self._carry = np.zeros(0, dtype=np.int16)
        self._clear_state()
