"""``realtalk talk``: a live voice conversation between a microphone, a speaker and a model.

What it owns: the conversation loop of the command (devices opened once, a session per
connection, reconnecting when a live connection drops), the terminal display (status,
live transcripts, input and output meters, per-turn latency measured at the device,
underruns), push-to-talk and barge-in keys, and the built-in demo tools (``get_weather``
from an offline sample table, ``set_memory`` notes shown on screen).

Latency is measured where the user is: from the moment the last sample of the user's
speech was captured (server VAD's ``audio_end_ms`` mapped back onto the microphone's
clock, or the key release with push-to-talk) to the moment the first sample of the answer
left the speaker (the speaker's playhead, which already discounts the device's output
latency, extrapolated back to its first sample).

What it must never do: leave the terminal in cbreak mode, a device open or a traceback
behind; retry a connection that failed for a reason a retry cannot fix (credentials,
configuration).
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import termios
import tty
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import trio

import realtalk
from realtalk._targets import open_target, url_key
from realtalk._tui import Screen, level_db, meter
from realtalk.core import AudioDelta
from realtalk.exceptions import (
    ConfigurationError,
    ConnectionClosed,
    RealtalkError,
)
from realtalk.protocol import (
    AudioTranscriptDone,
    ConfigDriftDetected,
    ErrorEvent,
    InputAudioCommitted,
    InputTranscriptionCompleted,
    InterruptAction,
    Interrupted,
    ItemUpdated,
    ResponseCreated,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TextDone,
)

TurnDetection = Literal["server", "semantic", "key"]

#: Display refresh period and the playhead poll that finds the first sample heard (s).
TICK_S = 0.02
REDRAW_EVERY = 5
#: How a live connection that fails comes back: back-off, then the session restored.
RECONNECT = realtalk.Reconnect(attempts=5, initial_delay_s=0.5, max_delay_s=8.0)
#: How long the end-of-turn line waits for the Interrupted event of a cut it saw (s).
CUT_REPORT_WAIT_S = 0.5

# --- the demo tools ---------------------------------------------------------------------

#: Sample data, not weather: what ``get_weather`` answers with, offline.
SAMPLE_WEATHER: Mapping[str, tuple[float, str]] = {
    "amsterdam": (11.0, "light rain"),
    "berlin": (9.0, "overcast"),
    "london": (12.0, "drizzle"),
    "new york": (16.0, "clear"),
    "paris": (14.0, "partly cloudy"),
    "san francisco": (17.0, "fog in the morning, then sun"),
    "sydney": (22.0, "sunny"),
    "tokyo": (18.0, "clear"),
}
SAMPLE_LABEL = "realtalk sample data (offline, not a real forecast)"

GET_WEATHER = realtalk.FunctionTool(
    name="get_weather",
    description=(
        "Weather in a city, from realtalk's offline sample table (not a real forecast; "
        "say so when you answer)."
    ),
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "city name, e.g. Paris"}},
        "required": ["city"],
    },
)
SET_MEMORY = realtalk.FunctionTool(
    name="set_memory",
    description="Remember a short note for the rest of the conversation, as key and value.",
    parameters={
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "what the note is about, e.g. name"},
            "value": {"type": "string", "description": "the note"},
        },
        "required": ["key", "value"],
    },
)


def get_weather(city: str) -> dict[str, Any]:
    """The sample table's entry for ``city`` (case-insensitive), labelled as sample data."""
    entry = SAMPLE_WEATHER.get(city.strip().lower())
    if entry is None:
        return {
            "city": city,
            "error": "no sample data for this city",
            "cities": sorted(c.title() for c in SAMPLE_WEATHER),
            "source": SAMPLE_LABEL,
        }
    temperature_c, conditions = entry
    return {
        "city": city,
        "temperature_c": temperature_c,
        "conditions": conditions,
        "source": SAMPLE_LABEL,
    }


# --- options ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TalkOptions:
    """What ``realtalk talk`` was asked to do (the command-line options)."""

    url: str | None = None
    api_key_env: str | None = None
    local: bool = False
    dialect: Literal["ga", "beta"] = "ga"
    model: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str | None = None
    token_command: str | None = None
    instructions: str | None = None
    voice: str | None = None
    temperature: float | None = None
    turn_detection: TurnDetection = "server"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    transcribe: str | None = None
    tools: bool = True
    input: str | None = None
    output: str | None = None
    sample_rate: int = 48000
    brain: str | None = None

    def session_config(self) -> realtalk.SessionConfig:
        """The :class:`~realtalk.SessionConfig` these options ask for (checked)."""
        detection: realtalk.ServerVad | realtalk.SemanticVad | Literal[False]
        if self.turn_detection == "key":
            detection = False
        elif self.turn_detection == "semantic":
            detection = realtalk.SemanticVad(eagerness=self.eagerness)
        else:
            detection = realtalk.ServerVad(
                threshold=self.threshold,
                prefix_padding_ms=self.prefix_padding_ms,
                silence_duration_ms=self.silence_duration_ms,
            )
        return realtalk.SessionConfig(
            instructions=self.instructions,
            voice=self.voice,
            temperature=self.temperature,
            turn_detection=detection,
            input_transcription=(
                realtalk.InputTranscription(model=self.transcribe) if self.transcribe else None
            ),
            tools=(GET_WEATHER, SET_MEMORY) if self.tools else None,
        )

    def token_provider(self) -> Any:
        """A function running ``token_command`` for an Entra bearer token, or ``None``."""
        if self.token_command is None:
            return None
        command = shlex.split(self.token_command)

        def provider() -> str:
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=60, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigurationError(f"--token-command failed: {exc}") from None
            token = done.stdout.strip()
            if done.returncode != 0 or not token:
                why = done.stderr.strip().splitlines()[-1:] or ["no output"]
                raise ConfigurationError(f"--token-command exited with {done.returncode}: {why[0]}")
            return token

        return provider


# --- measuring ------------------------------------------------------------------------


@dataclass
class _Turn:
    """One user turn and the answer to it, with the times (trio clock, s) that matter."""

    number: int
    how: str  # what ended the user's speech: "VAD" or "key"
    speech_end: float  # the last sample of the user's speech, at the microphone
    ended_at: float  # when realtalk learnt it (speech_stopped arrived, key released)
    first_delta: float | None = None  # the first audio delta of the answer arrived
    item_id: str | None = None  # the answer's audio item
    heard: float | None = None  # its first sample left the speaker
    underruns_before: int = 0
    response_done: bool = False
    interrupted: bool = False
    cut_seen: float | None = None  # playback was flushed (before the Interrupted event)
    finished: bool = False

    @property
    def latency_ms(self) -> float | None:
        return None if self.heard is None else (self.heard - self.speech_end) * 1000


@dataclass
class _Totals:
    """What the summary at the end reports."""

    turns: list[_Turn] = field(default_factory=list)
    interrupts: int = 0
    sessions: int = 0
    tool_calls: int = 0
    mic_ms: float = 0.0
    dropped_ms: float = 0.0  # late audio of interrupted answers, not played
    underruns: int = 0
    overflows: int = 0
    errors: int = 0


class _MicClock:
    """Maps a position in the audio appended this session (ms) to the time it was
    captured: each read of the capture ring is stamped with the trio clock."""

    def __init__(self, sample_rate: int, input_latency_s: float) -> None:
        self.sample_rate = sample_rate
        self.input_latency_s = input_latency_s
        self.samples = 0
        self._marks: deque[tuple[float, int]] = deque(maxlen=4096)

    def appended(self, now: float, frames: int) -> None:
        self.samples += frames
        self._marks.append((now, self.samples))

    def time_of(self, audio_ms: float) -> float | None:
        """When the sample at ``audio_ms`` was captured; ``None`` if no longer known."""
        target = audio_ms * self.sample_rate / 1000
        for now, samples in self._marks:
            if samples >= target:
                return now - (samples - target) / self.sample_rate - self.input_latency_s
        return None


class _MeteredSpeaker:
    """The speaker as the session's audio sink, also keeping each item's level envelope
    (RMS per 20 ms) so the output meter shows what is playing now, and noting the arrival
    of each item's first delta."""

    def __init__(self, speaker: realtalk.audio.Speaker, talk: _Talk) -> None:
        self.speaker = speaker
        self._talk = talk
        self._block = speaker.buffer.source_rate // 50
        self._levels: dict[tuple[str, int], list[float]] = {}

    def push(self, delta: AudioDelta) -> None:
        key = (delta.item_id, delta.content_index)
        levels = self._levels.get(key)
        if levels is None:
            if len(self._levels) >= 32:
                self._levels.pop(next(iter(self._levels)))
            levels = self._levels[key] = []
            self._talk.first_delta(delta.item_id)
        samples = delta.samples
        for start in range(0, len(samples), self._block):
            levels.append(level_db(samples[start : start + self._block]))
        self.speaker.push(delta)

    def played_samples(self, item_id: str, content_index: int) -> int:
        return self.speaker.played_samples(item_id, content_index)

    def clear(self) -> None:
        self.speaker.clear()

    async def stop_playback(self, item_id: str | None, content_index: int = 0) -> int:
        return await self.speaker.stop_playback(item_id, content_index)

    def end_of_audio(self, item_id: str, content_index: int) -> None:
        self.speaker.end_of_audio(item_id, content_index)

    def level_db(self) -> float:
        """The level of the audio at the playhead now (``-inf`` when nothing plays)."""
        buffer = self.speaker.buffer
        if buffer.buffered_samples == 0:
            return -math.inf
        playhead = buffer.playhead()
        if playhead is None:
            return -math.inf
        levels = self._levels.get((playhead.item_id, playhead.content_index), [])
        index = playhead.played_samples // self._block
        return levels[index] if index < len(levels) else -math.inf


# --- the conversation ---------------------------------------------------------------------


class _Quit(Exception):
    """The user asked to end the conversation."""


class _Talk:
    def __init__(self, options: TalkOptions, screen: Screen) -> None:
        self.options = options
        self.screen = screen
        self.totals = _Totals()
        self.notes: dict[str, str] = {}
        self.status = "starting"
        self.session: realtalk.Session | None = None
        self.speaker: _MeteredSpeaker | None = None
        self.mic: realtalk.audio.Microphone | None = None
        self.clock: _MicClock | None = None
        self.input_db = -math.inf
        self.recording = False
        self.user_text = ""
        self.assistant_text = ""
        self.turn: _Turn | None = None
        self.quit = trio.Event()
        self.target = ""

    # tools

    def set_memory(self, key: str, value: str) -> dict[str, str]:
        self.notes[key] = value
        self.screen.log(f"  memory: {key} = {value}")
        return {"saved": key, "notes": ", ".join(f"{k}={v}" for k, v in self.notes.items())}

    def tools(self) -> list[tuple[realtalk.FunctionTool, Any]]:
        if not self.options.tools:
            return []
        return [(GET_WEATHER, get_weather), (SET_MEMORY, self.set_memory)]

    # turns

    def begin_turn(self, how: str, speech_end: float, ended_at: float) -> _Turn:
        assert self.speaker is not None
        turn = _Turn(
            number=len(self.totals.turns) + 1,
            how=how,
            speech_end=speech_end,
            ended_at=ended_at,
            underruns_before=self.speaker.speaker.buffer.statistics()["underruns"],
        )
        self.totals.turns.append(turn)
        self.turn = turn
        return turn

    def first_delta(self, item_id: str) -> None:
        turn = self.turn
        if turn is not None and turn.item_id is None:
            turn.item_id = item_id
            turn.first_delta = trio.current_time()
        self.status = "speaking"

    def _check_turn(self, now: float) -> None:
        """Find the first sample heard, and the end of the turn's playback."""
        turn, speaker = self.turn, self.speaker
        if turn is None or speaker is None or turn.item_id is None or turn.finished:
            return
        buffer = speaker.speaker.buffer
        if turn.heard is None:
            played = buffer.played_samples(turn.item_id, 0)
            if played <= 0:
                return
            turn.heard = now - played / buffer.source_rate
            self._report_latency(turn)
        playhead = buffer.playhead(turn.item_id, 0)
        flushed = playhead is not None and playhead.flushed_samples > 0
        if flushed and not turn.interrupted and turn.cut_seen is None:
            turn.cut_seen = now  # the session cut playback; its Interrupted event follows
        waiting = turn.cut_seen is not None and now - turn.cut_seen < CUT_REPORT_WAIT_S
        if turn.interrupted or (turn.response_done and buffer.buffered_samples == 0):
            if flushed and not turn.interrupted and waiting:
                return
            turn.finished = True
            underruns = buffer.statistics()["underruns"] - turn.underruns_before
            played_s = buffer.played_samples(turn.item_id, 0) / buffer.source_rate
            cut = " (cut short)" if turn.interrupted or flushed else ""
            self.screen.log(
                f"  turn {turn.number}: {played_s:.2f} s heard{cut}, underruns {underruns}"
            )
            if self.status == "speaking":
                self.status = self._idle_status()

    def _report_latency(self, turn: _Turn) -> None:
        assert turn.heard is not None
        assert turn.first_delta is not None
        total = (turn.heard - turn.speech_end) * 1000
        detect = (turn.ended_at - turn.speech_end) * 1000
        server = (turn.first_delta - turn.ended_at) * 1000
        device = (turn.heard - turn.first_delta) * 1000
        self.screen.log(
            f"  turn {turn.number}: end of speech -> first sample heard {total:.0f} ms "
            f"(end of turn detected by {turn.how} {detect:.0f} + server {server:.0f} "
            f"+ buffering and device {device:.0f})"
        )

    def _idle_status(self) -> str:
        if self.options.turn_detection == "key":
            return "press space to talk"
        return "listening"

    # display

    def live_lines(self) -> list[str]:
        lines = []
        if self.user_text:
            lines.append(f"you ▸ {self.user_text}")
        if self.assistant_text:
            lines.append(f"assistant ▸ {self.assistant_text}")
        out_db = self.speaker.level_db() if self.speaker is not None else -math.inf
        underruns = 0
        if self.speaker is not None:
            underruns = self.speaker.speaker.buffer.statistics()["underruns"]
        latencies = [t.latency_ms for t in self.totals.turns if t.latency_ms is not None]
        last = f"{latencies[-1]:.0f} ms" if latencies else "-"
        lines.append(
            f"[{self.status}]  turns {len(self.totals.turns)} · last latency {last} · "
            f"underruns {underruns}"
        )
        lines.append(f"mic {meter(self.input_db)}   speaker {meter(out_db)}")
        if self.notes:
            lines.append("memory: " + "; ".join(f"{k} = {v}" for k, v in self.notes.items()))
        return lines

    async def display(self) -> None:
        tick = 0
        while True:
            now = trio.current_time()
            self._check_turn(now)
            if tick % REDRAW_EVERY == 0:
                self.screen.live(self.live_lines())
            tick += 1
            await trio.sleep(TICK_S)

    # input

    async def pump(self, session: realtalk.Session) -> None:
        """Microphone frames to the session (all of them with VAD; while the key is
        down with push-to-talk), and the input meter."""
        assert self.mic is not None
        assert self.clock is not None
        rate = self.mic.sample_rate
        async for chunk in self.mic.frames():
            now = trio.current_time()
            self.input_db = level_db(chunk)
            if self.options.turn_detection == "key" and not self.recording:
                continue
            await session.append_audio(chunk, sample_rate=rate)
            self.clock.appended(now, len(chunk))
            self.totals.mic_ms += len(chunk) * 1000 / rate

    async def keys(self) -> None:
        """Space: talk (push-to-talk) or interrupt; q: quit. Needs a terminal on stdin."""
        fd = sys.stdin.fileno()
        while True:
            await trio.lowlevel.wait_readable(fd)
            data = os.read(fd, 64)
            if not data:
                return
            for char in data.decode(errors="ignore"):
                if char in "qQ":
                    self.quit.set()
                elif char == " ":
                    await self.space()

    async def space(self) -> None:
        session = self.session
        if session is None:
            return
        if self.options.turn_detection != "key":
            await self.interrupt(session, "key")
            return
        if not self.recording:
            await self.interrupt(session, "key", quiet=True)
            await session.clear_audio()
            self.recording = True
            self.status = "recording: space to send"
            return
        self.recording = False
        now = trio.current_time()
        self.begin_turn("key", now, now)
        self.status = "thinking"
        await session.commit_audio()
        await session.create_response()

    async def interrupt(self, session: realtalk.Session, by: str, *, quiet: bool = False) -> None:
        done = await session.interrupt()
        if done.action is InterruptAction.NOTHING and not done.cancelled_response:
            if not quiet:
                self.screen.log("  (nothing to interrupt)")
            return
        self.report_interrupt(done, by)

    def report_interrupt(self, done: Interrupted, by: str) -> None:
        self.totals.interrupts += 1
        if self.turn is not None and self.turn.item_id == done.item_id:
            self.turn.interrupted = True
        if done.action is InterruptAction.TRUNCATE:
            what = f"truncated the answer at {done.audio_end_ms} ms (what you heard)"
        elif done.action is InterruptAction.DELETE:
            what = "deleted the answer (none of it was heard)"
        else:
            what = "cancelled the response (its audio had finished playing)"
        self.screen.log(f"  barge-in by {by}: {what}")
        self.assistant_text = ""

    # events

    async def events(self, session: realtalk.Session) -> None:
        async for event in session.events():
            now = trio.current_time()
            match event:
                case SpeechStarted():
                    self.status = "hearing you"
                case SpeechStopped(audio_end_ms=ms):
                    assert self.clock is not None
                    # audio_end_ms includes the silence that ended the turn.
                    detection = session.config.turn_detection
                    silence_ms = 0
                    if isinstance(detection, realtalk.ServerVad):
                        silence_ms = detection.silence_duration_ms or 0
                    end = self.clock.time_of(max(0, ms - silence_ms))
                    self.begin_turn("VAD", now if end is None else end, now)
                    self.status = "thinking"
                case InputAudioCommitted():
                    pass
                case Interrupted():
                    self.report_interrupt(event, "voice")
                case ItemUpdated(kind="input_transcript", delta=delta):
                    self.user_text += delta
                case ItemUpdated(kind="transcript" | "text", delta=delta):
                    self.assistant_text += delta
                case InputTranscriptionCompleted(transcript=text):
                    self.user_text = ""
                    self.screen.log(f"you: {text.strip()}")
                case AudioTranscriptDone(transcript=text) | TextDone(text=text):
                    self.assistant_text = ""
                    self.screen.log(f"assistant: {text.strip()}")
                case realtalk.ToolCallFinished():
                    self.totals.tool_calls += 1
                    args = ", ".join(f"{k}={v!r}" for k, v in event.arguments.items())
                    result = f"error: {event.error}" if event.error else event.output
                    self.screen.log(f"  tool {event.name}({args}) -> {result}")
                case ErrorEvent():
                    self.totals.errors += 1
                    cause = f" (caused by {event.caused_by})" if event.caused_by else ""
                    self.screen.log(f"  server error {event.code}: {event.message}{cause}")
                case ConfigDriftDetected():
                    fields = ", ".join(d.path for d in event.drift)
                    self.screen.log(f"  note: the server did not take these settings: {fields}")
                case realtalk.Reconnecting(attempt=attempt, delay_s=delay, reason=reason):
                    self.status = "reconnecting"
                    self.screen.log(
                        f"connection lost: {reason}; reconnecting in {delay:.1f} s "
                        f"(attempt {attempt} of {RECONNECT.attempts})"
                    )
                case realtalk.Reconnected():
                    self.totals.sessions += 1
                    self.screen.log("reconnected; restoring the session")
                case realtalk.Resumed() as resumed:
                    self.status = self._idle_status()
                    lost = (
                        " (the answer in progress was cut; asked again)"
                        if resumed.response_lost
                        else ""
                    )
                    dropped = (
                        f", {resumed.audio_dropped_ms} ms dropped"
                        if resumed.audio_dropped_ms
                        else ""
                    )
                    skipped = (
                        f" ({resumed.skipped} without a transcript left out)"
                        if resumed.skipped
                        else ""
                    )
                    self.screen.log(
                        f"resumed: {resumed.items} conversation items restored{skipped}, "
                        f"{resumed.audio_sent_ms} ms of microphone audio sent{dropped}{lost}"
                    )
                case realtalk.GaveUp(attempts=attempts, reason=reason):
                    self.screen.log(f"connection lost: {reason}; gave up after {attempts} attempts")
                case ResponseCreated():
                    if self.status != "speaking":
                        self.status = "thinking"
                case ResponseDone():
                    if self.turn is not None and not event.function_calls:
                        self.turn.response_done = True
                    if event.status not in ("completed", "cancelled"):
                        self.screen.log(f"  response {event.status}")
                    if self.status == "thinking" and not event.function_calls:
                        self.status = self._idle_status()
                case _:
                    pass

    # lifetime

    async def run_session(self, session: realtalk.Session) -> None:
        """Until the user quits (returns) or the connection drops (raises)."""
        assert self.speaker is not None
        assert self.mic is not None
        self.session = session
        self.totals.sessions += 1
        self.clock = _MicClock(self.mic.sample_rate, self.mic.stream.info.input_latency)
        session.attach_audio_sink(self.speaker)
        self.status = self._idle_status()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.pump, session)

                async def events_then_close() -> None:
                    await self.events(session)
                    raise session.closed or ConnectionClosed("the session ended")

                nursery.start_soon(events_then_close)
                await self.quit.wait()
                nursery.cancel_scope.cancel()
        finally:
            stats = session.statistics().connection
            self.totals.dropped_ms += (
                stats.audio_dropped_samples * 1000 / session.output_sample_rate
            )
            session.attach_audio_sink(None)
            self.session = None
            self.recording = False


@contextmanager
def _cbreak(enabled: bool) -> Iterator[bool]:
    """Keys without Enter (and without echo) while inside; the terminal restored after."""
    if not enabled:
        yield False
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@asynccontextmanager
async def _endpoint(options: TalkOptions) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """(url or None for OpenAI/Azure from options and environment, key, description)."""
    remote = bool(
        options.azure_endpoint
        or (os.environ.get("AZURE_OPENAI_ENDPOINT") and options.token_command)
    )
    async with open_target(
        options.url,
        options.local,
        api_key_env=options.api_key_env,
        remote=remote,
        brain=options.brain,
    ) as target:
        yield target


async def _talk(options: TalkOptions, talk: _Talk) -> int:
    from realtalk.audio import Microphone, Speaker
    from realtalk.audio._player import SWITCH_INTERVAL_S, gil_switch_interval

    config = options.session_config()  # bad options fail here, before any device opens
    config.render(options.dialect)
    url_key(options.url, options.api_key_env)
    azure = options.azure_deployment or options.api_version
    if azure and options.url is not None:
        raise ConfigurationError("--deployment and --api-version are for Azure, not --url")
    if azure and not (options.azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")):
        raise ConfigurationError(
            "--deployment and --api-version need --azure-endpoint or AZURE_OPENAI_ENDPOINT"
        )
    keys = sys.stdin.isatty()
    if options.turn_detection == "key" and not keys:
        raise ConfigurationError("push-to-talk (--turn-detection key) needs a terminal on stdin")
    with _devices_named():
        speaker = Speaker(options.output, sample_rate=options.sample_rate)
    with speaker:
        with _devices_named():
            mic = Microphone(options.input, sample_rate=options.sample_rate)
        with mic, gil_switch_interval(SWITCH_INTERVAL_S):
            return await _talk_on(options, talk, speaker, mic, config, keys)


@contextmanager
def _devices_named() -> Iterator[None]:
    """A device that cannot be found gets the hint that finds one."""
    try:
        yield
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{exc} (`realtalk devices` lists them; choose with --input / --output)"
        ) from None


async def _talk_on(
    options: TalkOptions,
    talk: _Talk,
    speaker: realtalk.audio.Speaker,
    mic: realtalk.audio.Microphone,
    config: realtalk.SessionConfig,
    keys: bool,
) -> int:
    screen = talk.screen
    talk.speaker = _MeteredSpeaker(speaker, talk)
    talk.mic = mic
    screen.log(
        f"speaker: {speaker.stream.device.name}, microphone: {mic.stream.device.name} "
        f"({options.sample_rate} Hz)"
    )
    async with _endpoint(options) as (url, key, description):
        talk.target = description
        hint = "space: talk/send" if options.turn_detection == "key" else "space: interrupt"
        screen.log(
            f"realtalk talk: {description}\n  {hint}, q or Ctrl-C: quit"
            if keys
            else f"realtalk talk: {description}\n  Ctrl-C: quit"
        )
        with _cbreak(keys), trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    async for _ in sigs:
                        talk.quit.set()

                nursery.start_soon(on_signal)
                nursery.start_soon(talk.display)
                if keys:
                    nursery.start_soon(talk.keys)
                code = await _connect_loop(options, talk, url, key, config)
                nursery.cancel_scope.cancel()
    stats = speaker.buffer.statistics()
    talk.totals.underruns = stats["underruns"]
    talk.totals.overflows = mic.buffer.statistics().get("overflow_frames", 0)
    return code


async def _connect_loop(
    options: TalkOptions,
    talk: _Talk,
    url: str | None,
    key: str | None,
    config: realtalk.SessionConfig,
) -> int:
    """Connect and talk until the user quits; the exit code. A live connection that
    fails is reconnected and resumed by the session itself (``RECONNECT``)."""
    try:
        async with realtalk.connect(
            url,
            api_key=key,
            model=options.model,
            dialect=options.dialect,
            azure_endpoint=None if url else options.azure_endpoint,
            azure_deployment=None if url else options.azure_deployment,
            api_version=None if url else options.api_version,
            token_provider=options.token_provider(),
            config=config,
            tools=talk.tools(),
            reconnect=RECONNECT,
        ) as session:
            talk.screen.log(f"connected ({session.dialect} dialect); {talk._idle_status()}")
            await talk.run_session(session)
            return 0
    except BaseException as exc:
        # The session said why on screen (GaveUp); the pump and the event reader may both
        # have seen the closed session.
        if not all(isinstance(e, ConnectionClosed) for e in _leaves(exc)):
            raise
        return 0 if talk.quit.is_set() else 1


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in a (nested) group, or the exception itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _summary(talk: _Talk, out: TextIO) -> None:
    totals = talk.totals
    latencies = [t.latency_ms for t in totals.turns if t.latency_ms is not None]
    print("\nsummary:", file=out)
    print(
        f"  {len(totals.turns)} turns, {totals.interrupts} barge-ins, "
        f"{totals.tool_calls} tool calls, {totals.sessions} connections, "
        f"{totals.errors} server errors",
        file=out,
    )
    if latencies:
        print(
            f"  end of speech -> first sample heard: median {statistics.median(latencies):.0f} "
            f"ms, min {min(latencies):.0f} ms, max {max(latencies):.0f} ms",
            file=out,
        )
    print(
        f"  microphone: {totals.mic_ms / 1000:.1f} s sent, {totals.overflows} frames lost; "
        f"speaker: {totals.underruns} underruns, {totals.dropped_ms:.0f} ms of late audio "
        "of interrupted answers not played",
        file=out,
    )
    print("  devices and connection closed", file=out, flush=True)


def _only_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error in a (nested) exception group, else the group itself."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group


def run_talk(options: TalkOptions, *, out: TextIO = sys.stdout) -> int:
    """Run ``realtalk talk``; the process exit code."""
    screen = Screen(out)
    talk = _Talk(options, screen)
    code = 1
    try:
        try:
            code = trio.run(_talk, options, talk)
        except BaseExceptionGroup as group:
            raise _only_error(group) from None
    except ConfigurationError as exc:
        screen.close()
        print(f"realtalk talk: {exc}", file=sys.stderr)
        return 2 if talk.speaker is None else 1
    except RealtalkError as exc:
        screen.close()
        print(f"realtalk talk: {type(exc).__name__}: {exc}", file=sys.stderr)
    except OSError as exc:
        screen.close()
        print(f"realtalk talk: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    screen.close()
    if talk.totals.sessions:
        _summary(talk, out)
    return code


__all__ = ["SAMPLE_WEATHER", "TalkOptions", "get_weather", "run_talk"]
