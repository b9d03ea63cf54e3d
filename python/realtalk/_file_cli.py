"""``realtalk file``: a spoken question from a WAV file in, the spoken answer to a WAV file.

What it does: read a WAV file (any layout :func:`realtalk.audio.read_wav` reads), mix it to
mono, send it push-to-talk (server VAD off) in 100 ms appends as fast as the socket takes
them, commit it, ask for a response, and write the answer's audio to a 24 kHz PCM16 WAV as
it arrives (and play it as it arrives with ``--play``), printing the transcript and a
summary. The endpoint is chosen as ``realtalk demo`` chooses it (:mod:`realtalk._targets`).

What it must never do: contact the network unless asked (a key in the environment,
``--url``); hold a long input in memory or in one message (it streams from the file);
leave the reply's WAV with a broken header, Ctrl-C included; or answer a user's or a
server's mistake with a traceback: one line on stderr and exit code 1 (130 after Ctrl-C).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import numpy.typing as npt
import trio

import realtalk
from realtalk._signals import Interrupted, until_signalled
from realtalk._targets import open_target
from realtalk.audio._wav import WavReader, WavWriter
from realtalk.core import AudioDelta
from realtalk.exceptions import RealtalkError, WavFormatError
from realtalk.protocol import (
    AudioTranscriptDelta,
    Dialect,
    ErrorEvent,
    ResponseDone,
    TextDelta,
)

if TYPE_CHECKING:
    from realtalk.audio import Speaker

#: Audio per append. 100 ms at 24 kHz PCM16 is 6.4 kB of base64 in JSON: a long file is
#: many small messages, never one giant one.
CHUNK_MS = 100
#: Reply audio queued for the speaker before reading on waits for playback (seconds; the
#: playback ring holds 60 s). The file is written at the same pace then.
PLAY_AHEAD_S = 20.0
#: Client events whose ``error`` means the reply is not coming.
_FATAL_CAUSES = frozenset(
    {"input_audio_buffer.append", "input_audio_buffer.commit", "response.create"}
)


class _Failure(Exception):
    """A problem worth one line to the user and exit code 1."""


@dataclass
class _State:
    """What happened so far: for the summary, and for the message after Ctrl-C."""

    output: Path
    writer: WavWriter | None = None
    committed_at: float | None = None
    first_delta_at: float | None = None
    deltas: int = 0
    transcript: list[str] = field(default_factory=list)


def _khz(sample_rate: int) -> str:
    return f"{sample_rate / 1000:g} kHz"


def _channels(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels} channels")


class _Progress:
    """``sending [######......]  42%  1.3 / 3.0 s`` redrawn in place on a terminal."""

    WIDTH = 30
    #: Seconds between redraws.
    PERIOD_S = 0.05

    def __init__(self, stream: TextIO, total_s: float, *, enabled: bool) -> None:
        self.stream = stream
        self.total_s = total_s
        self.enabled = enabled
        self._drawn_at = -math.inf

    def update(self, sent_s: float) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._drawn_at < self.PERIOD_S and sent_s < self.total_s):
            return
        self._drawn_at = now
        fraction = min(1.0, sent_s / self.total_s) if self.total_s else 1.0
        filled = round(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\rsending [{bar}] {fraction:4.0%}  {sent_s:.1f} / {self.total_s:.1f} s")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled and self._drawn_at > -math.inf:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _open_input(path: Path) -> WavReader:
    try:
        return WavReader(path)
    except WavFormatError as exc:
        raise _Failure(str(exc)) from None  # the message starts with the file's name
    except OSError as exc:
        raise _Failure(f"cannot read {path}: {exc.strerror or exc}") from None


def _open_speaker(source_rate: int) -> tuple[Speaker | None, str]:
    """The default output device's speaker, or ``None``; and the line that says so."""
    try:
        from realtalk.audio import Speaker, default_device

        device = default_device("output")
        if device is None:
            return None, "skipped (no output device; `realtalk devices` lists them)"
        speaker = Speaker(
            device, sample_rate=int(device.default_sample_rate), source_rate=source_rate
        )
        return speaker, f"played on {device.name} ({device.host_api})"
    except (RealtalkError, OSError) as exc:  # PortAudioError is a RealtalkError
        return None, f"skipped ({exc})"


async def _send(
    session: realtalk.Session,
    reader: WavReader,
    state: _State,
    progress: _Progress,
    out: TextIO,
) -> None:
    """Append the file in CHUNK_MS blocks as fast as the socket takes them, then commit
    and ask for the response."""
    rate = reader.sample_rate
    step = max(1, rate * CHUNK_MS // 1000)
    started = trio.current_time()
    sent = 0
    while len(block := reader.read(step)):
        mono: npt.NDArray[np.float32] = (
            block[:, 0] if reader.channels == 1 else block.mean(axis=1, dtype=np.float32)
        )
        await session.append_audio(np.ascontiguousarray(mono), sample_rate=rate)
        sent += len(block)
        progress.update(sent / rate)
    progress.clear()
    elapsed_ms = (trio.current_time() - started) * 1000
    await session.commit_audio()
    state.committed_at = trio.current_time()
    await session.create_response()
    appended_ms = session.statistics().connection.audio_appended_ms
    print(
        f"sent:       {sent / rate:.2f} s as 24 kHz PCM16 ({appended_ms} ms) in "
        f"{elapsed_ms:.0f} ms",
        file=out,
        flush=True,
    )


async def _play(speaker: Speaker, delta: AudioDelta) -> None:
    """Queue a delta, first waiting while PLAY_AHEAD_S are already queued."""
    limit = PLAY_AHEAD_S * speaker.buffer.source_rate
    while speaker.buffer.buffered_samples + len(delta.samples) > limit:
        await trio.sleep(0.05)
    speaker.push(delta)


async def _receive(
    session: realtalk.Session,
    writer: WavWriter,
    speaker: Speaker | None,
    state: _State,
    out: TextIO,
    err: TextIO,
) -> ResponseDone:
    """Write (and play) the reply's audio and print its transcript until response.done."""
    async for event in session.events():
        if isinstance(event, AudioDelta):
            if state.first_delta_at is None:
                state.first_delta_at = trio.current_time()
            state.deltas += 1
            writer.write(event.samples)
            if speaker is not None:
                await _play(speaker, event)
            continue
        match event:
            case AudioTranscriptDelta(delta=text) | TextDelta(delta=text):
                if not state.transcript:
                    print("transcript: ", end="", file=out)
                state.transcript.append(text)
                print(text, end="", file=out, flush=True)
            case ErrorEvent():
                problem = f"server error: {event.message or 'no message'}" + (
                    f" ({event.code})" if event.code else ""
                )
                if event.caused_by in _FATAL_CAUSES:
                    raise _Failure(problem)
                print(f"realtalk file: {problem}; going on", file=err, flush=True)
            case ResponseDone():
                return event
    raise _Failure("the connection closed before the reply was complete")


async def _drain(speaker: Speaker, seconds: float) -> None:
    """Wait until the speaker has played everything (at most ``seconds`` + 2 s)."""
    buffer = speaker.buffer
    buffer.end_of_stream()
    with trio.move_on_after(seconds + 2):
        while buffer.buffered_samples or not (buffer.notices() & buffer.NOTICE_DRAINED):
            await trio.sleep(0.05)
    # The device still holds its output latency's worth.
    await trio.sleep(speaker.stream.info.output_latency + 0.05)


async def _exchange(
    session: realtalk.Session,
    reader: WavReader,
    state: _State,
    progress: _Progress,
    play: bool,
    out: TextIO,
    err: TextIO,
) -> ResponseDone:
    """Send the question, then write (and play) the reply; its response.done."""
    rate = session.output_sample_rate
    speaker, playback = _open_speaker(rate) if play else (None, "")
    try:
        try:
            writer = WavWriter(state.output, rate)
        except OSError as exc:
            raise _Failure(f"cannot write {state.output}: {exc.strerror or exc}") from None
        with writer:
            state.writer = writer
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_send, session, reader, state, progress, out)
                done = await _receive(session, writer, speaker, state, out, err)
        print("" if state.transcript else "transcript: (none)", file=out)
        _report_reply(state, writer, out)
        if speaker is not None and writer.frames:
            await _drain(speaker, writer.duration_s)
    finally:
        if speaker is not None:
            speaker.close()
    if play:
        print(f"playback:   {playback}", file=out)
    return done


async def _run(
    path: Path,
    state: _State,
    *,
    play: bool,
    url: str | None,
    api_key_env: str | None,
    local: bool,
    dialect: Dialect,
    instructions: str | None,
    voice: str | None,
    out: TextIO,
    err: TextIO,
) -> int:
    if state.output.resolve() == path.resolve():
        raise _Failure(f"{path}: refusing to write the reply over the input (use -o)")
    with _open_input(path) as reader:
        if not reader.frames:
            raise _Failure(f"{path}: the file holds no audio (0 frames)")
        progress = _Progress(err, reader.duration_s, enabled=err.isatty())
        config = realtalk.SessionConfig(
            instructions=instructions,
            voice=voice,
            turn_detection=False,  # push-to-talk: we commit and ask for the response
            input_format="pcm16",
            output_format="pcm16",
        )
        async with open_target(url, local, api_key_env=api_key_env) as (
            endpoint,
            key,
            description,
        ):
            print(
                f"realtalk file: {path} ({reader.duration_s:.2f} s, {reader.format}, "
                f"{_khz(reader.sample_rate)} {_channels(reader.channels)}) to the {description}",
                file=out,
                flush=True,
            )
            async with realtalk.connect(
                endpoint, api_key=key, config=config, dialect=dialect
            ) as session:
                done = await _exchange(session, reader, state, progress, play, out, err)
    if done.status != "completed":
        details = done.response.get("status_details")
        raise _Failure(f"the response ended {done.status or 'without a status'}: {details}")
    return 0


def _report_reply(state: _State, writer: WavWriter, out: TextIO) -> None:
    line = f"reply:      {writer.name} ({writer.duration_s:.2f} s, {_khz(writer.sample_rate)}"
    line += f" PCM16 mono, {state.deltas} audio deltas"
    if state.first_delta_at is not None and state.committed_at is not None:
        first_ms = (state.first_delta_at - state.committed_at) * 1000
        line += f"; first audio {first_ms:.1f} ms after the commit"
    print(line + ")", file=out, flush=True)


def _single(exc: BaseException) -> BaseException:
    """The one error inside nested single-error groups (trio's nurseries make them)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def run_file(
    path: Path,
    *,
    output: Path | None = None,
    play: bool = False,
    url: str | None = None,
    api_key_env: str | None = None,
    local: bool = False,
    dialect: Dialect = "ga",
    instructions: str | None = None,
    voice: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``realtalk file``; the process exit code (0: the reply was written; 1: an
    error, said in one line on ``err``; 130: interrupted, the reply so far is written).

    ``out`` (transcript, summary) and ``err`` (progress bar on a terminal, errors) default
    to ``sys.stdout`` and ``sys.stderr`` as they are at the call.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    state = _State(output or Path(f"{path.stem}-reply.wav"))
    try:
        return trio.run(
            lambda: until_signalled(
                lambda: _run(
                    path,
                    state,
                    play=play,
                    url=url,
                    api_key_env=api_key_env,
                    local=local,
                    dialect=dialect,
                    instructions=instructions,
                    voice=voice,
                    out=out,
                    err=err,
                ),
            )
        )
    except BaseException as raised:
        exc = _single(raised)
        if isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt):
            exc = KeyboardInterrupt()
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            kept = state.writer.duration_s if state.writer is not None else 0.0
            note = f"; {state.output} holds the first {kept:.2f} s of the reply" if kept else ""
            print(f"\nrealtalk file: interrupted{note}", file=err)
            return 130
        if isinstance(exc, _Failure):
            message = str(exc)
        elif isinstance(exc, RealtalkError):
            message = f"{type(exc).__name__}: {exc}"
        elif isinstance(exc, OSError):
            message = str(exc)
        else:
            raise
        print(f"realtalk file: {message}", file=err)
        return 1
