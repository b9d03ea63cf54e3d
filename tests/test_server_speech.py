"""Text to speech for the embedded server: espeak-ng when installed, else the built-in voice."""

from __future__ import annotations

import io
import logging
import math
import shutil
import struct
import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from realtalk.exceptions import ConfigurationError
from realtalk.server import _speech
from realtalk.server._speech import espeak_available, synthesize
from realtalk.server._vad import EnergyVad, SpeechStarted, SpeechStopped

requires_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed")

PHRASE = "hello there how are you today"


@pytest.fixture
def no_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make espeak-ng look uninstalled, so that synthesize() uses the built-in voice."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert not espeak_available()


@pytest.fixture(params=["builtin", pytest.param("espeak", marks=requires_espeak)])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each synthesis path in turn."""
    if request.param == "builtin":
        monkeypatch.setattr(shutil, "which", lambda name: None)
    return str(request.param)


def frame_levels_dbfs(samples: NDArray[np.int16], sample_rate: int) -> NDArray[np.float64]:
    frame = sample_rate // 100
    frames = samples[: samples.size // frame * frame].astype(np.float64).reshape(-1, frame)
    power = np.mean(frames * frames, axis=1)
    levels: NDArray[np.float64] = 10.0 * np.log10(np.maximum(power, 1e-12) / 32768.0**2)
    return levels


def expected_builtin_length(text: str, sample_rate: int) -> int:
    char_n = 70 * sample_rate // 1000
    pause_n = 20 * sample_rate // 1000
    return sum(char_n if c.isalnum() else pause_n for c in text.lower())


# --- both paths ----------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 24000])
def test_output_is_int16_speech_of_a_plausible_length(engine: str, sample_rate: int) -> None:
    samples = synthesize(PHRASE, sample_rate=sample_rate)
    assert samples.dtype == np.int16
    assert samples.ndim == 1
    # A short sentence: more than half a second, well under the 70 ms a letter upper bound.
    assert 0.5 * sample_rate < samples.size < 0.07 * len(PHRASE) * sample_rate * 1.5


@pytest.mark.parametrize("sample_rate", [8000, 24000])
def test_voiced_parts_have_speech_energy(engine: str, sample_rate: int) -> None:
    levels = frame_levels_dbfs(synthesize(PHRASE, sample_rate=sample_rate), sample_rate)
    voiced = levels[levels > -50.0]
    assert voiced.size > 0.5 * levels.size
    mean_dbfs = 10.0 * math.log10(float(np.mean(10.0 ** (voiced / 10.0))))
    assert -35.0 < mean_dbfs < -6.0


@pytest.mark.parametrize("sample_rate", [8000, 24000])
def test_the_vad_hears_one_utterance(engine: str, sample_rate: int) -> None:
    speech = synthesize(PHRASE, sample_rate=sample_rate)
    lead = np.zeros(sample_rate // 2, dtype=np.int16)
    trail = np.zeros(sample_rate, dtype=np.int16)
    vad = EnergyVad(sample_rate=sample_rate)
    events = vad.process(np.concatenate((lead, speech, trail)))
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    start, stop = events
    assert isinstance(start, SpeechStarted)
    assert isinstance(stop, SpeechStopped)
    speech_ms = speech.size * 1000 // sample_rate
    assert 500 - 300 <= start.audio_start_ms < 500 + speech_ms
    assert 500 + 500 < stop.audio_end_ms <= 500 + speech_ms + 500 + 10


def test_empty_text_is_empty(engine: str) -> None:
    samples = synthesize("", sample_rate=16000)
    assert samples.dtype == np.int16
    assert samples.shape == (0,)


@pytest.mark.parametrize("text", ["-v de", "--help", "--version", '"; rm -rf ~ #', "'$(reboot)'"])
def test_text_is_never_an_option_or_a_command(
    engine: str, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=_speech.__name__):
        samples = synthesize(text, sample_rate=24000)
    assert samples.size > 0
    assert np.any(samples != 0)
    # espeak-ng spoke it (it did not print help and fail over to the built-in voice).
    assert caplog.records == []
    if engine == "espeak":
        assert not np.array_equal(samples, _speech._builtin(text, 24000))


@pytest.mark.parametrize(
    "kwargs",
    [{"sample_rate": 0}, {"sample_rate": 7999}, {"sample_rate": 200_000}, {"sample_rate": 8e3}],
)
def test_bad_sample_rates_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="sample_rate"):
        synthesize("hi", **kwargs)  # type: ignore[arg-type]


def test_bad_types_are_refused() -> None:
    with pytest.raises(TypeError):
        synthesize(b"hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        synthesize("hi", voice=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        synthesize("hi", sample_rate=True)


# --- the built-in synthesiser -------------------------------------------------------------


@pytest.mark.usefixtures("no_espeak")
@pytest.mark.parametrize("sample_rate", [8000, 16000, 24000, 44100])
def test_builtin_length_is_70_ms_a_letter_and_20_ms_a_space(sample_rate: int) -> None:
    samples = synthesize("ab c, d", sample_rate=sample_rate)
    assert samples.size == 4 * (70 * sample_rate // 1000) + 3 * (20 * sample_rate // 1000)
    assert int(np.max(np.abs(samples.astype(np.int32)))) == 16384  # -6 dBFS


@pytest.mark.usefixtures("no_espeak")
def test_builtin_is_deterministic_and_ignores_the_voice() -> None:
    first = synthesize(PHRASE, sample_rate=24000)
    assert np.array_equal(first, synthesize(PHRASE, sample_rate=24000, voice="marin"))
    assert np.array_equal(first, synthesize(PHRASE, sample_rate=24000, voice="de"))
    assert np.array_equal(first, _speech._builtin(PHRASE, 24000))


@pytest.mark.usefixtures("no_espeak")
def test_builtin_pauses_are_silent() -> None:
    samples = synthesize("a a", sample_rate=8000)
    assert np.all(samples[560:720] == 0)
    assert np.all(synthesize("  ...  ", sample_rate=8000) == 0)


@pytest.mark.usefixtures("no_espeak")
def test_builtin_speaks_any_script() -> None:
    samples = synthesize("Grüße, 東京 42!", sample_rate=16000)
    assert samples.size == expected_builtin_length("Grüße, 東京 42!", 16000)
    assert np.any(samples != 0)


@settings(max_examples=40)
@given(text=st.text(max_size=16), sample_rate=st.sampled_from([8000, 11025, 24000]))
def test_builtin_any_text(text: str, sample_rate: int) -> None:
    samples = _speech._builtin(text, sample_rate) if text else np.zeros(0, dtype=np.int16)
    assert samples.dtype == np.int16
    assert samples.size == expected_builtin_length(text, sample_rate)
    assert int(np.max(np.abs(samples.astype(np.int32)), initial=0)) <= 16384


# --- espeak-ng --------------------------------------------------------------------------


@requires_espeak
@pytest.mark.parametrize("sample_rate", [8000, 22050, 24000])
def test_espeak_output_is_resampled_from_its_own_rate(sample_rate: int) -> None:
    exe = shutil.which("espeak-ng")
    assert exe is not None
    spoken = _speech._espeak(exe, PHRASE, None)
    assert spoken is not None
    raw, rate = spoken
    assert rate == 22050
    samples = synthesize(PHRASE, sample_rate=sample_rate)
    assert samples.size == math.ceil(raw.size * sample_rate / rate)
    if sample_rate == rate:
        assert np.array_equal(samples, raw)


@requires_espeak
def test_espeak_voices_are_passed_and_api_voices_ignored() -> None:
    exe = shutil.which("espeak-ng")
    assert exe is not None
    assert _speech._espeak_voice(exe, "en-us") == "en-us"
    assert _speech._espeak_voice(exe, "en-US+f3") == "en-US+f3"
    assert _speech._espeak_voice(exe, "gmw/en-GB-x-rp") == "gmw/en-GB-x-rp"
    for name in ["marin", "cedar", "alloy", "ash", "verse", "", "-x", "en+-x y", "en;rm"]:
        assert _speech._espeak_voice(exe, name) is None
    default = synthesize(PHRASE, sample_rate=24000)
    assert np.array_equal(synthesize(PHRASE, sample_rate=24000, voice="marin"), default)
    assert not np.array_equal(synthesize(PHRASE, sample_rate=24000, voice="en+f3"), default)


@pytest.mark.parametrize("broken", ["/bin/false", "/bin/true", "/nonexistent/espeak-ng"])
def test_a_broken_espeak_falls_back_to_the_builtin_voice(
    broken: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: broken)
    with caplog.at_level(logging.WARNING, logger=_speech.__name__):
        samples = synthesize("hi there", sample_rate=16000, voice="en")
    assert np.array_equal(samples, _speech._builtin("hi there", 16000))
    assert any("built-in" in record.getMessage() for record in caplog.records)


# --- WAV parsing ------------------------------------------------------------------------


def wav_bytes(samples: NDArray[np.int16], rate: int, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def test_parse_wav_agrees_with_the_wave_module() -> None:
    samples = np.arange(-500, 500, 3, dtype=np.int16)
    parsed, rate = _speech._parse_wav(wav_bytes(samples, 22050))
    assert rate == 22050
    assert np.array_equal(parsed, samples)


@pytest.mark.parametrize("placeholder", [0xFFFFFFFF, 0x7FFFF000])
def test_parse_wav_reads_a_stream_with_placeholder_sizes(placeholder: int) -> None:
    samples = np.array([1, -2, 3, 32767, -32768], dtype=np.int16)
    data = bytearray(wav_bytes(samples, 22050))
    struct.pack_into("<I", data, 4, placeholder)
    struct.pack_into("<I", data, 40, placeholder)
    parsed, _ = _speech._parse_wav(bytes(data) + b"\x07")  # and half a sample at the end
    assert np.array_equal(parsed, samples)


def test_parse_wav_skips_other_chunks() -> None:
    samples = np.array([5, 6, 7], dtype=np.int16)
    data = wav_bytes(samples, 16000)
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd size, padded
    parsed, rate = _speech._parse_wav(data[:36] + extra + data[36:])
    assert rate == 16000
    assert np.array_equal(parsed, samples)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"RIFX\x00\x00\x00\x00WAVE",
        wav_bytes(np.zeros(4, dtype=np.int16), 8000, channels=2),
        wav_bytes(np.zeros(4, dtype=np.int16), 8000)[:36],
    ],
)
def test_parse_wav_refuses_what_it_cannot_read(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        _speech._parse_wav(data)
