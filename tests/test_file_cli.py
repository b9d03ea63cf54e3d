"""``realtalk file`` against the embedded server: every WAV layout in, the echo brain's
reply (the input, resampled to 24 kHz) out; the errors; the progress bar; Ctrl-C.

Most tests call ``realtalk.cli.main`` in-process (fast); the ones about what a user sees on
a real terminal or after a signal run ``python -m realtalk`` as a subprocess. No test
touches the network or an audio device (``--play`` runs with PortAudio unloadable)."""

from __future__ import annotations

import io
import signal
import struct
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import trio

from realtalk.audio import read_wav, write_wav
from realtalk.cli import main

signal_module = pytest.importorskip("scipy.signal")
wavfile = pytest.importorskip("scipy.io.wavfile")

CLI = [sys.executable, "-m", "realtalk"]
DURATION_S = 0.6


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key in the environment (so the embedded server answers), and tmp_path as cwd."""
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def offline_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if "OPENAI" not in k and "AZURE" not in k}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def chirp(rate: int, channels: int) -> npt.NDArray[np.float64]:
    """A 200 Hz -> 0.4 * rate chirp (below every resampler's passband edge) at half scale;
    the second channel is a quieter, delayed copy, so averaging the channels matters."""
    t = np.arange(int(DURATION_S * rate)) / rate
    top = min(3000.0, 0.4 * rate)
    left = 0.5 * np.sin(2 * np.pi * (200 * t + (top - 200) * t**2 / (2 * DURATION_S)))
    if channels == 1:
        return left[:, None]
    return np.stack([left, 0.3 * np.roll(left, 7)], axis=1)


def pcm_bytes(x: npt.NDArray[np.float64], width: int) -> bytes:
    top = 2 ** (8 * width - 1)
    ints = np.clip(np.round(x * top), -top, top - 1).astype(np.int64).reshape(-1)
    if width == 1:
        return (ints + 128).astype(np.uint8).tobytes()
    if width == 3:
        return ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return ints.astype(f"<i{width}").tobytes()


def stdlib_pcm(width: int) -> Callable[[Path, npt.NDArray[np.float64], int], None]:
    def make(path: Path, x: npt.NDArray[np.float64], rate: int) -> None:
        with wave.open(str(path), "wb") as w:
            w.setnchannels(x.shape[1])
            w.setsampwidth(width)
            w.setframerate(rate)
            w.writeframes(pcm_bytes(x, width))

    return make


def float_wav(dtype: str) -> Callable[[Path, npt.NDArray[np.float64], int], None]:
    def make(path: Path, x: npt.NDArray[np.float64], rate: int) -> None:
        wavfile.write(path, rate, x.astype(dtype))

    return make


def ulaw_wav(path: Path, x: npt.NDArray[np.float64], rate: int) -> None:
    from realtalk.core import f32_to_pcm16, ulaw_encode

    codes = ulaw_encode(f32_to_pcm16(x[:, 0].astype(np.float32)))
    fmt = struct.pack("<HHIIHHH", 7, 1, rate, rate, 1, 8, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(codes)) + codes + b"\x00" * (len(codes) & 1)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


FORMATS = {
    "pcm8-8k-mono": (stdlib_pcm(1), 8000, 1),
    "pcm16-16k-mono": (stdlib_pcm(2), 16000, 1),
    "pcm16-24k-mono": (stdlib_pcm(2), 24000, 1),
    "pcm16-44.1k-stereo": (stdlib_pcm(2), 44100, 2),
    "pcm24-48k-stereo": (stdlib_pcm(3), 48000, 2),
    "pcm32-22.05k-mono": (stdlib_pcm(4), 22050, 1),
    "float32-48k-stereo": (float_wav("float32"), 48000, 2),
    "float64-16k-mono": (float_wav("float64"), 16000, 1),
    "ulaw-8k-mono": (ulaw_wav, 8000, 1),
}


def _delayed(x: npt.NDArray[np.float64], delay: float) -> npt.NDArray[np.float64]:
    """``x`` delayed by ``delay`` samples (fractional: a linear phase shift, zero-padded)."""
    nfft = 2 * len(x)
    shift = np.exp(-2j * np.pi * np.fft.rfftfreq(nfft) * delay)
    return np.fft.irfft(np.fft.rfft(x, nfft) * shift, nfft)[: len(x)]


def _correlation(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def best_correlation(reply: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]) -> float:
    """The highest normalised correlation of ``reply`` with ``reference`` delayed by up to
    10 ms (the resampler's delay, a fraction of a sample included)."""
    n = min(len(reply), len(reference))
    reply, reference = reply[:n], reference[:n]
    whole = max(range(241), key=lambda lag: _correlation(reply[lag:], reference[: n - lag]))
    return max(
        _correlation(reply, _delayed(reference, whole + fraction))
        for fraction in np.arange(-1.0, 1.0, 0.05)
    )


@pytest.mark.parametrize("case", FORMATS)
def test_every_format_comes_back_as_24_khz_mono_pcm16(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, rate, channels = FORMATS[case]
    signal_in = chirp(rate, channels)
    make(tmp_path / "in.wav", signal_in, rate)
    dialect = "beta" if case.startswith("float64") else "ga"  # both dialects, once each way

    assert main(["file", "in.wav", "--dialect", dialect]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # not a terminal: no progress bar
    assert "embedded server at ws://127.0.0.1:" in out
    assert f"in.wav ({DURATION_S:.2f} s, " in out
    assert "sent:       0.60 s as 24 kHz PCM16 (600 ms)" in out
    assert "transcript: (your words, played back)" in out
    assert "reply:      in-reply.wav (0.60 s, 24 kHz PCM16 mono" in out
    assert "ms after the commit)" in out

    with wave.open("in-reply.wav", "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        reply = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
    assert abs(len(reply) / 24000 - DURATION_S) < 0.060
    reference = signal_module.resample_poly(signal_in.mean(axis=1), 24000, rate)
    assert best_correlation(reply, reference) > 0.99


def test_output_path_and_instructions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_wav("q.wav", (chirp(16000, 1) * 32767).astype(np.int16), 16000)
    (tmp_path / "out").mkdir()
    code = main(
        ["file", "q.wav", "-o", "out/a.wav", "--instructions", "Be brief.", "--voice", "marin"]
    )
    assert code == 0
    assert "reply:      out/a.wav (0.60 s" in capsys.readouterr().out
    assert read_wav("out/a.wav").sample_rate == 24000
    assert not Path("q-reply.wav").exists()


def test_a_long_file_is_streamed(capsys: pytest.CaptureFixture[str]) -> None:
    x = np.tile(chirp(48000, 2), (50, 1))  # 30 s of 48 kHz stereo
    write_wav("long.wav", x.astype(np.float32), 48000, sample_format="float32")
    assert main(["file", "long.wav"]) == 0
    assert "sent:       30.00 s as 24 kHz PCM16 (30000 ms)" in capsys.readouterr().out
    assert read_wav("long-reply.wav").frames == pytest.approx(30 * 24000, abs=240)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    from realtalk._file_cli import run_file

    write_wav("q.wav", (chirp(16000, 1) * 32767).astype(np.int16), 16000)
    out, err = io.StringIO(), FakeTerminal()
    assert run_file(Path("q.wav"), out=out, err=err) == 0
    bar = err.getvalue()
    assert bar.startswith("\rsending [")
    assert "100%  0.6 / 0.6 s" in bar
    assert bar.endswith("\r\x1b[K")  # cleared before the summary
    assert "sent:" in out.getvalue()


def _adpcm() -> bytes:
    fmt = struct.pack("<HHIIHHH", 2, 1, 8000, 4096, 256, 4, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    return b"RIFF" + struct.pack("<I", len(body) + 260) + body + struct.pack("<I", 256) + bytes(256)


def _empty() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 0)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "realtalk file: cannot read in.wav: No such file or directory"),
        (
            b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" * 100,
            [],
            "realtalk file: in.wav: an MP3 file, not a WAV file; use PCM 8/16/24/32-bit or "
            "float 32/64-bit WAV",
        ),
        (
            _adpcm(),
            [],
            "realtalk file: in.wav: ADPCM (format tag 2) is not supported; use PCM "
            "8/16/24/32-bit or float 32/64-bit WAV",
        ),
        (_empty(), [], "realtalk file: in.wav: the file holds no audio (0 frames)"),
        (
            _empty(),
            ["-o", "in.wav"],
            "realtalk file: in.wav: refusing to write the reply over the input (use -o)",
        ),
        (
            "tone",
            ["-o", "no/such/dir.wav"],
            "realtalk file: cannot write no/such/dir.wav: No such file or directory",
        ),
        (
            "tone",
            ["--url", "ws://127.0.0.1:9/v1/realtime"],
            "realtalk file: ConnectError: cannot connect to 127.0.0.1:9",
        ),
    ],
)
def test_errors_are_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], content: bytes | str | None, args: list[str], message: str
) -> None:
    if content == "tone":
        write_wav("in.wav", (chirp(8000, 1) * 32767).astype(np.int16), 8000)
    elif isinstance(content, bytes):
        Path("in.wav").write_bytes(content)
    assert main(["file", "in.wav", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert not Path("in-reply.wav").exists()


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["file"])
    assert info.value.code == 2
    assert "the following arguments are required: IN.wav" in capsys.readouterr().err


def test_bad_file_as_a_user_sees_it(tmp_path: Path) -> None:
    (tmp_path / "song.wav").write_bytes(b"ID3\x04" + bytes(100))
    done = subprocess.run(
        [*CLI, "file", "song.wav"],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("realtalk file: song.wav: an MP3 file, not a WAV file")
    assert "Traceback" not in done.stderr


def test_play_without_portaudio_skips_playback_and_writes_the_file(tmp_path: Path) -> None:
    write_wav(tmp_path / "q.wav", (chirp(16000, 1) * 32767).astype(np.int16), 16000)
    done = subprocess.run(
        [*CLI, "file", "q.wav", "--play"],
        cwd=tmp_path,
        # No PortAudio: deterministic, and no sound on a device other tests may share.
        env=offline_env(REALTALK_PORTAUDIO_LIB=str(tmp_path / "no-portaudio.so")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "playback:   skipped (PortAudio library not found" in done.stdout
    assert read_wav(tmp_path / "q-reply.wav").duration_s == pytest.approx(0.6, abs=0.06)


# A paced server (audio deltas at real time) in place of the embedded one, so that the
# reply is still arriving when the signal comes.
PACED = """
import sys
from contextlib import asynccontextmanager
import realtalk._file_cli
from realtalk.server import ServerOptions, open_server

@asynccontextmanager
async def paced(url, local, **_):
    async with open_server(options=ServerOptions(paced=True)) as server:
        yield server.url, "k", f"paced embedded server at {server.url}"

realtalk._file_cli.open_target = paced
from realtalk.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def test_ctrl_c_exits_130_with_a_valid_partial_reply(tmp_path: Path) -> None:
    x = np.tile(chirp(24000, 1), (10, 1))  # 6 s
    write_wav(tmp_path / "q.wav", (x * 32767).astype(np.int16), 24000)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", PACED, "file", "q.wav"],
        cwd=tmp_path,
        env=offline_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        with trio.fail_after(30):
            seen = b""
            while b"transcript: " not in seen:  # the reply has started
                seen += await proc.stdout.receive_some(4096)
            await trio.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 130
            err = (await proc.stderr.receive_some(65536)).decode()
    finally:  # a failure must not leave the process (and its pipes) to a later test
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
            await proc.stdout.aclose()
            await proc.stderr.aclose()
    assert "Traceback" not in err
    assert "realtalk file: interrupted; q-reply.wav holds the first " in err
    with wave.open(str(tmp_path / "q-reply.wav"), "rb") as w:  # sizes patched on the way out
        frames = w.getnframes()
        assert len(w.readframes(frames)) == 2 * frames
    assert 0 < frames < 6 * 24000
