"""``realtalk demo``: one spoken question, one answer, and where the time went.

What it does: start the embedded server in-process (or use a real endpoint when a key or
``--url`` is given), stream a bundled spoken question at real time as a microphone would,
let server VAD find the end of the turn, and print a live timeline of the session's
events with millisecond timestamps, the transcript, and a latency summary (end of speech
→ first audio delta → last audio delta). The reply is written to a WAV file and played
on the default output device when there is one.

What it must never do: contact the network unless asked (an API key in the environment,
``--url``), or hide an error behind a traceback: failures are one line and exit code 1.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt
import trio

import realtalk
from realtalk._signals import Interrupted, until_signalled
from realtalk._targets import open_target
from realtalk.audio._wav import read_wav, write_wav
from realtalk.core import AudioDelta
from realtalk.exceptions import RealtalkError, WavFormatError
from realtalk.protocol import (
    AudioTranscriptDelta,
    ErrorEvent,
    InputAudioCommitted,
    ResponseCreated,
    ResponseDone,
    SessionCreated,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
)

SAMPLE_RATE = 24_000
CHUNK_MS = 20
TRAILING_SILENCE_MS = 1200

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]


@dataclass
class _Timeline:
    out: TextIO
    start: float = 0.0
    first_delta: float | None = None
    last_delta: float | None = None
    speech_stopped: float | None = None
    deltas: int = 0
    reply: list[Int16Array] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    status: str = ""

    def now_ms(self) -> float:
        return (trio.current_time() - self.start) * 1000

    def line(self, text: str) -> None:
        print(f"  {self.now_ms():7.1f} ms  {text}", file=self.out, flush=True)


def _read_question(path: Path | None) -> tuple[str, Float32Array, int]:
    """(name, mono samples, sample rate in Hz) of the question: any WAV read_wav reads,
    its channels averaged."""
    if path is None:
        ref = resources.files("realtalk") / "data" / "question.wav"
        with resources.as_file(ref) as p:
            audio = read_wav(p)
        name = "bundled question.wav"
    else:
        try:
            audio = read_wav(path)
        except WavFormatError as exc:
            # The message starts with the file's name.
            raise SystemExit(f"realtalk demo: cannot read {exc}") from None
        except OSError as exc:
            raise SystemExit(f"realtalk demo: cannot read {path}: {exc.strerror or exc}") from None
        name = str(path)
    return name, audio.mono(), audio.sample_rate


async def _stream(session: realtalk.Session, audio: Float32Array, rate: int, tl: _Timeline) -> None:
    """Append ``audio`` then silence in 20 ms chunks, at real time like a microphone."""
    step = max(1, rate * CHUNK_MS // 1000)
    silence = np.zeros(rate * TRAILING_SILENCE_MS // 1000, dtype=np.float32)
    mic = np.concatenate([audio, silence])
    chunks = math.ceil(len(mic) / step)
    started = trio.current_time()
    for n in range(chunks):
        await session.append_audio(mic[n * step : (n + 1) * step], sample_rate=rate)
        await trio.sleep_until(started + (n + 1) * CHUNK_MS / 1000)


async def _run(
    question: Path | None,
    output: Path,
    url: str | None,
    api_key_env: str | None,
    local: bool,
    dialect: str,
    play: bool,
    out: TextIO,
) -> int:
    name, audio, rate = _read_question(question)
    seconds = len(audio) / rate
    tl = _Timeline(out)
    async with open_target(url, local, api_key_env=api_key_env) as (endpoint, key, description):
        print(f"realtalk demo: {name} ({seconds:.2f} s) to the {description}", file=out)
        tl.start = trio.current_time()
        config = realtalk.SessionConfig(
            instructions="Answer the question briefly.",
            turn_detection=realtalk.ServerVad(silence_duration_ms=500),
        )
        async with realtalk.connect(
            endpoint,
            api_key=key,
            config=config,
            dialect=dialect,  # type: ignore[arg-type]
        ) as session:
            tl.line(f"connected; streaming {seconds:.2f} s of speech in {CHUNK_MS} ms appends")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stream, session, audio, rate, tl)
                await _watch(session, tl)
                nursery.cancel_scope.cancel()
            stats = session.statistics().connection
    reply = _summary(tl, output, stats.audio_appended_ms)
    if play:
        await _play(reply, out)
    return 0 if tl.status == "completed" else 1


async def _watch(session: realtalk.Session, tl: _Timeline) -> None:
    async for event in session.events():
        if isinstance(event, AudioDelta):
            now = tl.now_ms()
            if tl.first_delta is None:
                tl.first_delta = now
                tl.line(f"first audio delta ({len(event.samples)} samples)")
            tl.last_delta = now
            tl.deltas += 1
            tl.reply.append(event.samples)
            continue
        match event:
            case SessionCreated():
                tl.line("session.created")
            case SpeechStarted(audio_start_ms=ms):
                tl.line(f"speech_started (audio_start_ms={ms})")
            case SpeechStopped(audio_end_ms=ms):
                tl.speech_stopped = tl.now_ms()
                tl.line(f"speech_stopped (audio_end_ms={ms})")
            case InputAudioCommitted(item_id=item_id):
                tl.line(f"committed as {item_id}")
            case ResponseCreated():
                tl.line(f"response.created {event.response_id}")
            case AudioTranscriptDelta(delta=text) | TextDelta(delta=text):
                tl.transcript.append(text)
                tl.line(f"transcript {text!r}")
            case ErrorEvent():
                tl.line(f"error {event.code}: {event.message}")
            case ResponseDone():
                tl.status = event.status
                tl.line(f"response.done ({event.status}; {tl.deltas} audio deltas)")
                return


def _summary(tl: _Timeline, output: Path, appended_ms: int) -> Int16Array:
    out = tl.out
    reply = np.concatenate(tl.reply) if tl.reply else np.zeros(0, np.int16)
    print(f"\ntranscript: {''.join(tl.transcript).strip() or '(none)'}", file=out)
    if tl.speech_stopped is not None and tl.first_delta is not None and tl.last_delta is not None:
        first = tl.first_delta - tl.speech_stopped
        last = tl.last_delta - tl.speech_stopped
        print(
            f"latency:    end of speech -> first audio delta {first:.1f} ms, "
            f"-> last delta {last:.1f} ms ({len(reply) / SAMPLE_RATE:.2f} s of audio, "
            f"{tl.deltas} deltas; sent {appended_ms} ms of microphone audio)",
            file=out,
        )
    write_wav(output, reply, SAMPLE_RATE)
    print(f"reply:      {output} ({len(reply) / SAMPLE_RATE:.2f} s, 24 kHz PCM16)", file=out)
    return reply


async def _play(reply: Int16Array, out: TextIO) -> None:
    """Play the reply on the default output device, if there is one; say what happened."""
    if not len(reply):
        return
    try:
        from realtalk.audio import PortAudioError, default_device
        from realtalk.audio._player import Speaker

        device = default_device("output")
        if device is None:
            print("playback:   skipped (no output device; `realtalk devices` lists them)", file=out)
            return
        with Speaker(device, sample_rate=int(device.default_sample_rate)) as speaker:
            speaker.buffer.push("reply", 0, reply)
            speaker.buffer.end_of_stream()
            seconds = len(reply) / SAMPLE_RATE
            with trio.move_on_after(seconds + 2):
                while speaker.buffer.buffered_samples or not (
                    speaker.buffer.notices() & speaker.buffer.NOTICE_DRAINED
                ):
                    await trio.sleep(0.05)
            # The device still holds its output latency's worth.
            await trio.sleep(speaker.stream.info.output_latency + 0.05)
        print(f"playback:   played on {device.name} ({device.host_api})", file=out)
    except (PortAudioError, RealtalkError, OSError) as exc:
        print(f"playback:   skipped ({exc})", file=out)


def run_demo(
    question: Path | None,
    *,
    output: Path,
    url: str | None = None,
    api_key_env: str | None = None,
    local: bool = False,
    dialect: str = "ga",
    play: bool = True,
    out: TextIO = sys.stdout,
) -> int:
    """Run the demo; the process exit code (0: the answer arrived and was written; 1: an
    error, said in one line; 130: interrupted by Ctrl-C or SIGTERM)."""
    try:
        return trio.run(
            until_signalled,
            lambda: _run(question, output, url, api_key_env, local, dialect, play, out),
        )
    except Interrupted:
        print("\nrealtalk demo: interrupted", file=sys.stderr)
        return 130
    except RealtalkError as exc:
        print(f"realtalk demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"realtalk demo: {exc}", file=sys.stderr)
        return 1
