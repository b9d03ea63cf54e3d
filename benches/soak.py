"""Soak: an hour of two-way conversation against the embedded server, in half a minute.

Owns: a simulated caller and its counters, the balances checked when it hangs up, RSS
sampled over the run, and many such callers at once against one server. It must never
judge timing (timing never fails a run), nor reach into the server's session objects: it
learns what the server holds through the protocol (``conversation.item.retrieve``).

The caller: audio turns (a spoken phrase, 24, 48 or 16 kHz, between 0.2-0.6 s of silence
before and 0.8-1.2 s after, in 20 ms chunks, so that server VAD makes the turn and
EchoBrain plays it back), text turns, tool turns (the user names ``lookup_order``, the
tool runs, a second response reads its result) and out-of-band text responses; 30% of
audio and text turns are interrupted (``interrupt(played_ms=...)``) at a seeded random
delta and position, at 0 ms (a delete), or after playback (nothing sent). Simulated time
is what the call would have taken: the audio appended plus the assistant audio heard (all
of a response, or up to the cut). The server streams as fast as it can and VAD counts
samples, not wall time, so the run goes as fast as the CPU allows (or ``--speedup``).

Balances, when the caller hangs up: responses created = done = expected, one server echo
(truncated/deleted, same item and ms) per truncate or delete and none otherwise, appended
audio ≥ the audio the server committed (retrieved) = the client's count of each user item's
audio (VAD's span, or what a commit covered), sample for sample, received audio =
the connection's count, no error events but the benign "cancel after done" race, the
session's per-response bookkeeping empty again, no audio kept (``keep_audio_ms=0``), the
conversation holding exactly the items the turns made. Memory: RSS growth after warm-up
beyond the audio the server keeps by design stays under ``--rss-bound-mb`` per simulated
hour. Any failure exits 1.

    python benches/soak.py --server process --report soak-report.md   # make soak
    python benches/soak.py --sessions 100 --turns 5                     # make soak-sessions
    python benches/soak.py --sessions 100 --speedup 1 --paced           # 100 real-time calls
    python benches/soak.py --check            # CI: 5 simulated minutes + 100 sessions
    python benches/soak.py --simulated-s 600 --tracemalloc   # where memory grew
"""

from __future__ import annotations

import argparse
import base64
import gc
import importlib.resources
import math
import os
import random
import subprocess
import sys
import time
import tracemalloc
import wave
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import trio

import realtalk
from realtalk.client import ToolCallFinished
from realtalk.core import AudioDelta
from realtalk.protocol import (
    ConversationItemRetrieve,
    Dialect,
    ErrorEvent,
    InputAudioCommitted,
    InterruptAction,
    ItemDeleted,
    ItemRetrieved,
    ItemTruncated,
    ResponseCreated,
    ResponseDone,
    ResponseState,
    SpeechStarted,
    SpeechStopped,
    UnknownEvent,
)
from realtalk.protocol._connection import _CUT_MEMORY, SENT_MEMORY
from realtalk.server import ServerOptions, open_server
from realtalk.server._speech import synthesize
from realtalk.server._vad import EnergyVad
from realtalk.server._vad import SpeechStarted as VadStarted
from realtalk.server._vad import SpeechStopped as VadStopped

Int16Array = npt.NDArray[np.int16]

CHUNK_MS = 20
"""Microphone frames appended per call, as a capture callback delivers them."""
OUTPUT_RATE = 24000
"""Hz of the server's audio (PCM16)."""
WAIT_S = 60.0
"""Wall seconds any one wait may take before the run reports the session stuck."""
RSS_BOUND_MB = 20.0
"""Default bound on RSS growth after warm-up, per simulated hour (and at least this)."""
SAMPLE_EVERY_S = 30.0
"""Simulated seconds between RSS samples."""

TOOL: dict[str, Any] = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look an order up by its number",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
}
PHRASES = (
    "What is the weather like today?",
    "Can you tell me more about that?",
    "I would like to book a table for two tonight.",
    "How long does the train to the airport take?",
    "Please remind me to call my sister tomorrow morning.",
    "That sounds good, thank you very much.",
    "What time does the museum open on Sundays?",
)
TEXTS = (
    "What is the capital of France?",
    "Give me a short summary.",
    "Thanks, that helps.",
    "Is it going to rain?",
)
# Turn kinds and their weights; "interrupt" applies to audio and text turns.
WEIGHTS = {"audio": 0.62, "text": 0.18, "tool": 0.1, "oob": 0.1}
INTERRUPT_P = 0.3
LATE_INTERRUPT_P = 0.3  # of interrupts: after playback finished (sends nothing)
DELETE_P = 0.2  # of mid-response interrupts: nothing heard (sends a delete)
FIRST_TURNS = ("audio", "text", "tool", "audio", "oob")  # every kind early, then random


# -- material ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clip:
    """A spoken phrase: int16 samples at ``sample_rate`` Hz (the caller's microphone)."""

    text: str
    samples: Int16Array
    sample_rate: int


def load_clips() -> list[Clip]:
    """The bundled question and synthesised phrases at 24, 48 and 16 kHz (the last two
    go through the session's resampler), each checked to make exactly one VAD turn."""
    wav = importlib.resources.files("realtalk") / "data" / "question.wav"
    with wav.open("rb") as file, wave.open(file) as reader:
        rate = reader.getframerate()
        question = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    clips = [Clip("(the bundled question)", question.astype(np.int16), rate)]
    rates = (24000, 48000, 16000)
    for n, phrase in enumerate(PHRASES):
        sample_rate = rates[n % len(rates)]
        clips.append(Clip(phrase, synthesize(phrase, sample_rate=sample_rate), sample_rate))
    for clip in clips:
        turns = _vad_turns(clip)
        if turns != (1, 1):
            raise SystemExit(f"soak: {clip.text!r} makes {turns} VAD starts/stops, not one turn")
    return clips


def _vad_turns(clip: Clip) -> tuple[int, int]:
    """(starts, stops) the server's VAD finds in the clip with the shortest silences a
    turn gets (so a pause inside a phrase never splits a turn)."""
    vad = EnergyVad(sample_rate=clip.sample_rate)
    lead = np.zeros(clip.sample_rate // 5, np.int16)
    tail = np.zeros(clip.sample_rate * 4 // 5, np.int16)
    found = vad.process(np.concatenate([lead, clip.samples, tail]))
    return (
        sum(isinstance(f, VadStarted) for f in found),
        sum(isinstance(f, VadStopped) for f in found),
    )


# -- memory --------------------------------------------------------------------------------


def rss_mb(pid: int | None = None) -> float:
    """VmRSS of a process (this one by default) in MB, from /proc; NaN if unreadable."""
    path = Path(f"/proc/{pid or 'self'}/status")
    try:
        for line in path.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default), from /proc."""
    try:
        fields = Path(f"/proc/{pid or 'self'}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Approximate bytes held by ``obj`` and everything it refers to (dicts, sequences,
    slots and instance attributes; each object counted once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, type) or callable(obj):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(x, seen) for x in obj)
    elif isinstance(obj, str | bytes | int | float | bool | np.ndarray) or obj is None:
        pass
    else:
        for name in getattr(type(obj), "__slots__", ()):
            size += deep_size(getattr(obj, name, None), seen)
        if hasattr(obj, "__dict__"):
            size += deep_size(vars(obj), seen)
    return size


# -- one conversation ----------------------------------------------------------------------


@dataclass(slots=True)
class ResponseInfo:
    """What the caller saw of one response (by its order of creation)."""

    id: str
    deltas: int = 0
    samples: int = 0
    item_id: str | None = None
    done: bool = False
    status: str = ""


@dataclass(slots=True)
class Counters:
    """Everything counted from the caller's side of one conversation."""

    turns: Counter[str] = field(default_factory=Counter)
    speech_started: int = 0
    speech_stopped: int = 0
    commits: int = 0
    manual_commits: int = 0
    responses_created: int = 0
    responses_done: int = 0
    responses_expected: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    interrupts: Counter[str] = field(default_factory=Counter)  # by action sent
    interrupt_surprises: int = 0  # an action or cut other than the one predicted
    cancels_sent: int = 0
    cancel_races: int = 0  # response.cancel refused: the response had just finished
    echoes_matched: int = 0
    echoes_wrong: int = 0
    audio_deltas: int = 0
    audio_received_samples: int = 0
    spoken_samples: int = 0  # received in answers to text (synthesised, not echoed)
    audio_appended_ms: float = 0.0  # at the microphone's rates, before resampling
    heard_ms: float = 0.0
    tool_calls: int = 0
    tool_errors: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # unexpected ones, by code


class Stuck(Exception):
    """A wait took longer than ``WAIT_S``."""


class Listener:
    """Reads the session's events (the one consumer of ``session.events()``), counts them,
    and wakes the caller's waits."""

    def __init__(self, session: realtalk.Session, counters: Counters) -> None:
        self.session = session
        self.c = counters
        self.responses: dict[int, ResponseInfo] = {}  # by creation order, 1-based
        self._by_id: dict[str, ResponseInfo] = {}
        self.echoes: dict[str, tuple[InterruptAction, int]] = {}
        self.retrieved: dict[str, int] = {}  # item id -> audio samples the server holds
        self.ttfa_s: dict[str, list[float]] = {}
        self._ttfa_kind: str | None = None
        self._ttfa_t0: float | None = None
        self._changed = trio.Event()
        self.ended = False
        self.last_commit = ""

    def time_first_audio(self, kind: str, *, from_now: bool) -> None:
        """Time the next audio delta: from now, or (audio turns) from speech_stopped."""
        self._ttfa_kind = kind
        self._ttfa_t0 = time.perf_counter() if from_now else None

    async def run(self) -> None:
        try:
            async for event in self.session.events():
                self._on(event)
                self._changed.set()
                self._changed = trio.Event()
        finally:
            self.ended = True
            self._changed.set()

    async def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        with trio.move_on_after(WAIT_S):
            while not ready():
                if self.ended:
                    raise Stuck(f"the session ended while waiting for {what}")
                await self._changed.wait()
            return
        raise Stuck(f"no {what} within {WAIT_S:.0f} s ({self.c.responses_created} created)")

    def _on(self, event: object) -> None:
        c = self.c
        match event:
            case AudioDelta():
                c.audio_deltas += 1
                c.audio_received_samples += len(event.samples)
                info = self._by_id.get(event.response_id)
                if info is not None:
                    info.deltas += 1
                    info.samples += len(event.samples)
                    info.item_id = event.item_id
                if self._ttfa_kind is not None and self._ttfa_t0 is not None:
                    elapsed = time.perf_counter() - self._ttfa_t0
                    self.ttfa_s.setdefault(self._ttfa_kind, []).append(elapsed)
                    self._ttfa_kind = None
            case SpeechStarted():
                c.speech_started += 1
            case SpeechStopped():
                c.speech_stopped += 1
                if self._ttfa_kind == "audio":
                    self._ttfa_t0 = time.perf_counter()
            case InputAudioCommitted():
                c.commits += 1
                self.last_commit = event.item_id
            case ResponseCreated():
                c.responses_created += 1
                info = ResponseInfo(event.response_id)
                self.responses[c.responses_created] = info
                self._by_id[info.id] = info
            case ResponseDone():
                c.responses_done += 1
                c.statuses[event.status] += 1
                done = self._by_id.get(event.response_id)
                if done is not None:
                    done.done, done.status = True, event.status
            case ItemTruncated():
                self.echoes[event.item_id] = (InterruptAction.TRUNCATE, event.audio_end_ms)
            case ItemDeleted():
                self.echoes[event.item_id] = (InterruptAction.DELETE, 0)
            case ItemRetrieved():
                parts = event.item.get("content") or []
                self.retrieved[str(event.item.get("id"))] = sum(
                    len(base64.b64decode(p["audio"])) // 2
                    for p in parts
                    if isinstance(p, dict) and p.get("audio")
                )
            case ErrorEvent():
                if event.code == "response_cancel_not_active" and (
                    event.caused_by == "response.cancel"
                ):
                    c.cancel_races += 1  # the response ended before the cancel arrived
                else:
                    c.errors[f"{event.code}: {event.message}"[:120]] += 1
            case UnknownEvent(problem=str(problem)):
                c.errors[f"unusable {event.type}: {problem}"[:120]] += 1
            case ToolCallFinished():
                c.tool_calls += 1
                c.tool_errors += event.error is not None
            case _:
                pass

    def forget_responses(self) -> None:
        """Drop the finished responses' records (the caller keeps only counts)."""
        self.responses.clear()
        self._by_id.clear()


async def lookup_order(query: str) -> dict[str, Any]:
    """The soak's tool: an order status from a sentence naming the order."""
    digits = "".join(ch for ch in query if ch.isdigit()) or "0"
    await trio.sleep(0)
    return {"order": int(digits), "status": "shipped"}


@dataclass(slots=True)
class Sample:
    """One RSS sample during a soak."""

    sim_s: float
    wall_s: float
    rss_mb: float
    server_rss_mb: float
    held_mb: float  # audio the server keeps by design (see SoakResult.memory)
    cpu_s: float
    server_cpu_s: float
    items: int
    turns: int


@dataclass(slots=True)
class ConversationResult:
    """One conversation: its counters, what the checks found, and what was measured."""

    counters: Counters
    problems: list[str]
    sim_s: float = 0.0
    wall_s: float = 0.0
    connect_s: float = 0.0
    ttfa_s: dict[str, list[float]] = field(default_factory=dict)
    items: int = 0
    conversation_kb: float = 0.0
    appended_samples: int = 0
    committed_samples: int = 0
    counted_samples: int = 0
    received_samples: int = 0
    dropped_samples: int = 0
    retrieved_audio_kept_mb: float = 0.0
    retrieved_items: int = 0


class Caller:
    """Drives one conversation: turns, interruptions, and the settling after each."""

    def __init__(
        self,
        session: realtalk.Session,
        listener: Listener,
        clips: Sequence[Clip],
        rng: random.Random,
        speedup: float = 0.0,
    ) -> None:
        self.session = session
        self.speedup = speedup
        self._t0 = trio.current_time()
        self.listener = listener
        self.c = listener.c
        self.clips = clips
        self.rng = rng
        self.expected_echoes: dict[str, tuple[InterruptAction, int]] = {}
        self.sim_ms = 0.0
        self._cut_responses: set[str] = set()  # interrupted: heard up to the cut only
        self._mic_rate = OUTPUT_RATE
        self._kind = ""
        self.rate_switches = 0  # microphone rate changes that need a new resampler

    async def pace(self, sim_ms: float) -> None:
        """With a speedup, wait until ``sim_ms`` of simulated time is due (the
        microphone's chunks and the listener's playback run at ``speedup`` x real time)."""
        if self.speedup > 0:
            await trio.sleep_until(self._t0 + sim_ms / 1000 / self.speedup)

    # -- settling -----------------------------------------------------------------------

    def _settled(self) -> bool:
        c, listener = self.c, self.listener
        vad_commits = c.commits - c.manual_commits
        return (
            vad_commits >= c.turns["audio"]
            and c.speech_stopped >= c.turns["audio"]
            and c.responses_done >= self._expected_responses()
            and c.responses_created == c.responses_done
            and c.tool_calls >= c.turns["tool"]
            and all(item_id in listener.echoes for item_id in self.expected_echoes)
            and self.session.statistics().connection.response_state is ResponseState.IDLE
        )

    def _expected_responses(self) -> int:
        t = self.c.turns
        vad_commits = self.c.commits - self.c.manual_commits
        return vad_commits + t["text"] + 2 * t["tool"] + t["oob"]

    async def settle(self) -> None:
        """Wait until every response asked for is done and every cut echoed."""
        await self.listener.wait_until(self._settled, "settled turn")
        for item_id, expected in self.expected_echoes.items():
            got = self.listener.echoes.pop(item_id)
            if got == expected:
                self.c.echoes_matched += 1
            else:
                self.c.echoes_wrong += 1
                self.c.errors[f"echo {got} for {item_id}, expected {expected}"] += 1
        self.c.echoes_wrong += len(self.listener.echoes)  # cuts nobody asked for
        for item_id, got in self.listener.echoes.items():
            self.c.errors[f"unexpected echo {got} for {item_id}"] += 1
        self.listener.echoes.clear()
        self.expected_echoes.clear()
        for info in self.listener.responses.values():
            if info.id not in self._cut_responses:
                self.c.heard_ms += info.samples * 1000 / OUTPUT_RATE
            if self._kind in ("text", "tool"):
                self.c.spoken_samples += info.samples
        self._cut_responses.clear()
        self.listener.forget_responses()
        self.c.responses_expected = self._expected_responses()

    # -- turns --------------------------------------------------------------------------

    async def turn(self, kind: str) -> None:
        """One turn of ``kind`` (audio, text, tool, oob), perhaps interrupted; settled."""
        self._kind = kind
        interrupt: str | None = None
        if kind in ("audio", "text") and self.rng.random() < INTERRUPT_P:
            interrupt = "late" if self.rng.random() < LATE_INTERRUPT_P else "mid"
        # Drawn now, whatever happens later, so a seed gives the same choices every run.
        cut_draws = (self.rng.randint(1, 4), self.rng.random(), self.rng.random())
        ordinal = self.c.responses_created + 1  # the response this turn starts
        async with trio.open_nursery() as nursery:
            if interrupt == "mid":
                nursery.start_soon(self._interrupt_mid, ordinal, cut_draws)
            if kind == "audio":
                await self._speak()
            elif kind == "text":
                self.c.turns["text"] += 1
                self.listener.time_first_audio("text", from_now=True)
                await self.session.send_text(self.rng.choice(TEXTS))
            elif kind == "tool":
                self.c.turns["tool"] += 1
                self.listener.time_first_audio("tool", from_now=True)
                await self.session.send_text(f"Please lookup order {self.rng.randint(1, 9999)}.")
            elif kind == "oob":
                self.c.turns["oob"] += 1
                key = "output_modalities" if self.session.dialect == "ga" else "modalities"
                await self.session.create_response(
                    {"conversation": "none", "instructions": "Summarise.", key: ["text"]}
                )
            else:
                raise ValueError(f"unknown turn kind {kind!r}")
        await self.settle()
        if interrupt == "late":
            await self._interrupt_late()

    async def _speak(self) -> None:
        clip = self.rng.choice(self.clips)
        rate = clip.sample_rate
        if rate not in (OUTPUT_RATE, self._mic_rate):
            self.rate_switches += 1
            self._mic_rate = rate
        lead = np.zeros(int(rate * self.rng.uniform(0.2, 0.6)), np.int16)
        tail = np.zeros(int(rate * self.rng.uniform(0.8, 1.2)), np.int16)
        mic = np.concatenate([lead, clip.samples, tail])
        step = rate * CHUNK_MS // 1000
        self.c.turns["audio"] += 1
        self.listener.time_first_audio("audio", from_now=False)
        for start in range(0, len(mic), step):
            await self.pace(self.sim_ms + start * 1000 / rate)
            await self.session.append_audio(mic[start : start + step], sample_rate=rate)
        appended_ms = len(mic) * 1000 / rate
        self.c.audio_appended_ms += appended_ms
        self.sim_ms += appended_ms

    async def _interrupt_mid(self, ordinal: int, draws: tuple[int, float, float]) -> None:
        """Interrupt response ``ordinal`` once ``draws[0]`` of its deltas arrived (or it
        ended), at a random heard position (or at 0: nothing heard)."""
        deltas, delete_draw, position_draw = draws
        listener = self.listener

        def ready() -> bool:
            info = listener.responses.get(ordinal)
            return info is not None and (info.deltas >= deltas or info.done)

        await listener.wait_until(ready, f"response #{ordinal} to interrupt")
        info = listener.responses[ordinal]
        if info.samples == 0 or info.item_id is None:
            return
        received_ms = info.samples * 1000 // OUTPUT_RATE
        if delete_draw < DELETE_P or received_ms < 2:
            played_ms, expected = 0, InterruptAction.DELETE
        else:
            played_ms = 1 + int(position_draw * (received_ms - 2))
            expected = InterruptAction.TRUNCATE
        was_active = self.session.statistics().connection.response_state is not ResponseState.IDLE
        interrupted = await self.session.interrupt(played_ms=played_ms)
        self.c.interrupts[interrupted.action.value] += 1
        self.c.cancels_sent += interrupted.cancelled_response
        if (
            interrupted.action is not expected
            or interrupted.item_id != info.item_id
            or interrupted.audio_end_ms != played_ms
            or interrupted.cancelled_response != was_active
        ):
            self.c.interrupt_surprises += 1
        if interrupted.item_id is not None and interrupted.action is not InterruptAction.NOTHING:
            self.expected_echoes[interrupted.item_id] = (interrupted.action, played_ms)
        self._cut_responses.add(info.id)
        self.c.heard_ms += played_ms

    async def _interrupt_late(self) -> None:
        """Interrupt after playback finished: nothing may be sent."""
        interrupted = await self.session.interrupt(played_ms=10**7)
        self.c.interrupts[interrupted.action.value] += 1
        if interrupted.action is not InterruptAction.NOTHING or interrupted.cancelled_response:
            self.c.interrupt_surprises += 1

    async def hang_up(self) -> None:
        """Commit what the last turn left in the server's buffer, and settle."""
        await self.session.append_audio(np.zeros(OUTPUT_RATE // 5, np.int16))
        self.c.audio_appended_ms += 200
        self.c.manual_commits += 1
        await self.session.commit_audio()
        await self.settle()
        conversation, listener = self.session.conversation, self.listener

        def announced() -> bool:  # no response follows a manual commit to wait for
            item = conversation.get(listener.last_commit)
            return item is not None and bool(item.content)

        await listener.wait_until(announced, "the committed item")


def _bookkeeping(session: realtalk.Session) -> list[str]:
    """White-box: the session's and connection's per-response state is empty again, and
    its memories are within their bounds, once everything settled."""
    conn: Any = session._conn
    problems = []
    sizes = {
        "session._calls_running": len(session._calls_running),
        "session._responses_done": len(session._responses_done),
        "session._update_waiters": len(session._update_waiters),
        "connection._queue": len(conn._queue),
        "connection._out_of_band_requests": len(conn._out_of_band_requests),
        "connection._out_of_band_responses": len(conn._out_of_band_responses),
        "connection._updates": len(conn._updates),
    }
    for name, size in sizes.items():
        if size:
            problems.append(f"{name} holds {size} entries after settling")
    if len(conn._cut) > _CUT_MEMORY or len(conn._sent) > SENT_MEMORY:
        problems.append(f"cut/sent memories over their bounds: {len(conn._cut)}/{len(conn._sent)}")
    return problems


async def converse(
    url: str,
    clips: Sequence[Clip],
    *,
    seed: int,
    simulated_s: float,
    turns: int | None = None,
    dialect: Dialect = "ga",
    speedup: float = 0.0,
    on_turn: Callable[[Caller], None] | None = None,
    on_hang_up: Callable[[Caller], None] | None = None,
) -> ConversationResult:
    """One conversation until ``simulated_s`` simulated seconds or ``turns`` turns, then
    hang up, check the balances, and retrieve the audio the server holds."""
    counters = Counters()
    result = ConversationResult(counters, [])
    rng = random.Random(seed)
    wall0 = time.perf_counter()
    async with realtalk.connect(
        url,
        api_key="soak",
        dialect=dialect,
        tools=[(TOOL, lookup_order)],
        keep_audio_ms=0,
    ) as session:
        result.connect_s = time.perf_counter() - wall0
        listener = Listener(session, counters)
        caller = Caller(session, listener, clips, rng, speedup)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run)
            n = 0
            while (turns is None or n < turns) and caller.sim_ms / 1000 < simulated_s:
                kind = FIRST_TURNS[n] if n < len(FIRST_TURNS) else _pick(rng)
                await caller.turn(kind)
                n += 1
                caller.sim_ms = counters.audio_appended_ms + counters.heard_ms
                if on_turn is not None:
                    on_turn(caller)
                await caller.pace(caller.sim_ms)  # the answer was heard
            if on_hang_up is not None:
                on_hang_up(caller)
            await caller.hang_up()
            result.sim_s = (counters.audio_appended_ms + counters.heard_ms) / 1000
            result.wall_s = time.perf_counter() - wall0
            result.problems += _bookkeeping(session)
            conversation = session.conversation
            result.items = len(conversation)
            result.conversation_kb = deep_size(conversation) / 1024
            kept = sum(len(p.audio_chunks) for item in conversation for p in item.content)
            if kept:
                result.problems.append(f"{kept} audio chunks kept with keep_audio_ms=0")
            stats = session.statistics()
            if stats.tool_errors:
                result.problems.append(f"{stats.tool_errors} tool handler errors")
            if getattr(stats, "reconnects", 0):
                result.problems.append(f"the session reconnected {stats.reconnects} times")
            # Each new microphone rate starts a new resampler stream, which may round
            # its length up by a fraction of a sample.
            resampled_ms = stats.connection.audio_appended_samples * 1000 / OUTPUT_RATE
            slack_ms = (caller.rate_switches + 1) * 1000 / OUTPUT_RATE
            if abs(resampled_ms - counters.audio_appended_ms) > slack_ms:
                result.problems.append(
                    f"{counters.audio_appended_ms:.1f} ms from the microphone became "
                    f"{resampled_ms:.1f} ms at 24 kHz"
                )
            expected_items = (
                2 * counters.turns["audio"]
                + 2 * counters.turns["text"]
                + 4 * counters.turns["tool"]
                + counters.manual_commits
                - counters.interrupts["delete"]
            )
            if result.items != expected_items:
                result.problems.append(
                    f"conversation holds {result.items} items, expected {expected_items}"
                )
            await _retrieve(session, listener, result)
            result.problems += _balances(result, stats.connection)
            result.ttfa_s = listener.ttfa_s
            nursery.cancel_scope.cancel()
    return result


def _has(mapping: dict[str, int], key: str) -> Callable[[], bool]:
    return lambda: key in mapping


def _pick(rng: random.Random) -> str:
    return rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]


async def _retrieve(
    session: realtalk.Session, listener: Listener, result: ConversationResult
) -> None:
    """Ask the server for every user audio item and every truncated item (one at a time):
    what it holds is compared with what was appended and where the cuts were."""
    conversation = session.conversation
    users = [i.id for i in conversation if i.role == "user" and i.content and i.content[0].is_audio]
    cut = {i.id: i.truncated_at_ms for i in conversation if i.truncated_at_ms is not None}
    for item_id in [*users, *cut]:
        session._conn.send(ConversationItemRetrieve(item_id=item_id))
        await session._flush()
        await listener.wait_until(_has(listener.retrieved, item_id), "item.retrieved")
    result.committed_samples = sum(listener.retrieved[i] for i in users)
    # The client's own count of each user item's audio (VAD's span, or what a commit
    # covered), worked out from what it appended: must be what the server holds.
    result.counted_samples = sum(conversation[i].content[0].audio_samples for i in users)
    for item_id, end_ms in cut.items():
        held = listener.retrieved[item_id]
        if held != (end_ms or 0) * OUTPUT_RATE // 1000:
            result.problems.append(f"server holds {held} samples of {item_id} cut at {end_ms} ms")
    # A retrieved item's wire object, base64 audio included, stays in the conversation.
    kept = 0
    for item in conversation:
        for part in item.raw.get("content") or []:
            if isinstance(part, dict) and isinstance(part.get("audio"), str):
                kept += len(part["audio"])
    result.retrieved_audio_kept_mb = kept / 1e6
    result.retrieved_items = len(users) + len(cut)


def _balances(result: ConversationResult, stats: Any) -> list[str]:
    """What must add up once a conversation settled."""
    c = result.counters
    problems = []
    result.appended_samples = stats.audio_appended_samples
    result.received_samples = stats.audio_received_samples
    result.dropped_samples = stats.audio_dropped_samples

    def expect(what: str, got: object, wanted: object) -> None:
        if got != wanted:
            problems.append(f"{what}: {got} != {wanted}")

    expect("responses created vs done", c.responses_created, c.responses_done)
    expect("responses done vs expected", c.responses_done, c.responses_expected)
    expect("responses created (events vs connection)", c.responses_created, stats.responses_created)
    expect("responses done (events vs connection)", c.responses_done, stats.responses_done)
    expect(
        "VAD turns (started, stopped) vs audio turns",
        (c.speech_started, c.speech_stopped),
        (c.turns["audio"],) * 2,
    )
    expect(
        "truncates sent",
        stats.sent_by_type.get("conversation.item.truncate", 0),
        c.interrupts["truncate"],
    )
    expect(
        "deletes sent",
        stats.sent_by_type.get("conversation.item.delete", 0),
        c.interrupts["delete"],
    )
    expect(
        "server echoes matched", c.echoes_matched, c.interrupts["truncate"] + c.interrupts["delete"]
    )
    expect(
        "cancels sent vs response.cancel",
        c.cancels_sent,
        stats.sent_by_type.get("response.cancel", 0),
    )
    expect("wrong or unasked echoes", c.echoes_wrong, 0)
    expect("interrupt decisions not as predicted", c.interrupt_surprises, 0)
    expect(
        "audio committed: the client's count of its items vs the server's",
        result.counted_samples,
        result.committed_samples,
    )
    if result.committed_samples > stats.audio_appended_samples:
        problems.append(
            f"the server holds more audio ({result.committed_samples} samples) than was "
            f"appended ({stats.audio_appended_samples})"
        )
    expect(
        "audio received (events vs connection)",
        c.audio_received_samples,
        stats.audio_received_samples,
    )
    expect("tool calls", c.tool_calls, c.turns["tool"])
    expect("failed responses", c.statuses["failed"] + c.statuses["incomplete"], 0)
    expect("errors the server reported or the client could not parse", sum(c.errors.values()), 0)
    expect(
        "error events (connection) vs counted",
        stats.errors,
        sum(c.errors.values()) + c.cancel_races,
    )
    if c.errors:
        problems.append("errors: " + "; ".join(f"{k} x{v}" for k, v in c.errors.most_common(5)))
    return problems


# -- the server ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where the sessions connect, and the server's process id when it has its own."""

    url: str
    pid: int | None


@asynccontextmanager
async def open_target(
    mode: str, max_session_s: float, *, paced: bool = False
) -> AsyncIterator[Target]:
    """The embedded server (EchoBrain; audio as fast as possible unless ``paced``): in
    this process, or ``realtalk serve`` in a child process (then its RSS is measured apart
    from the client's)."""
    if mode == "inproc":
        options = ServerOptions(paced=paced, max_session_s=max_session_s)
        async with open_server(options=options) as server:
            yield Target(server.url, None)
        return
    command = [sys.executable, "-m", "realtalk", "serve", "--port", "0", "--quiet"]
    command += ["--max-session-s", str(max_session_s), *(["--paced"] if paced else [])]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        seen = b""
        with trio.fail_after(30):
            while b"listening on " not in seen or not seen.endswith(b"\n"):
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"realtalk serve exited: {seen.decode(errors='replace')}")
                seen += chunk
        line = next(x for x in seen.decode().splitlines() if "listening on " in x)
        yield Target(line.split("listening on ", 1)[1].strip(), process.pid)
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


# -- runs ----------------------------------------------------------------------------------


@dataclass(slots=True)
class SoakResult:
    """A long single conversation with RSS samples."""

    conversation: ConversationResult
    samples: list[Sample]
    warmup_s: float
    rss_bound_mb: float
    server: str
    top_growth: list[str] = field(default_factory=list)

    def after_warmup(self) -> list[Sample]:
        return [s for s in self.samples if s.sim_s >= self.warmup_s]

    def memory(self) -> dict[str, float]:
        """RSS (MB) after warm-up, at the end, max, growth and slope (MB per simulated
        hour) of this process and, in process mode, of the server's; and the growth not
        explained by the audio the server holds ("residual").

        The server keeps every item's audio for ``conversation.item.retrieve``, as the API
        does: every committed input sample and every synthesised answer (echoes are views
        of the input), 2 bytes a sample, for the session's life (at most 60 min).
        """
        kept = self.after_warmup() or self.samples[-1:]
        sim = [s.sim_s for s in kept]
        rss = [s.rss_mb for s in kept]
        held = kept[-1].held_mb - kept[0].held_mb
        out = {
            "start": self.samples[0].rss_mb,
            "warm": rss[0],
            "end": rss[-1],
            "max": max(s.rss_mb for s in self.samples),
            "growth": rss[-1] - rss[0],
            "slope": _slope(sim, rss),
            "held_growth": held,
        }
        server = [s.server_rss_mb for s in kept]
        if any(math.isnan(x) for x in server):
            out["residual"] = out["growth"] - held  # the server lives in this process
        else:
            out |= {
                "residual": out["growth"],  # this process is the client alone
                "server_start": self.samples[0].server_rss_mb,
                "server_warm": server[0],
                "server_end": server[-1],
                "server_max": max(s.server_rss_mb for s in self.samples),
                "server_growth": server[-1] - server[0],
                "server_slope": _slope(sim, server),
                "server_residual": server[-1] - server[0] - held,
            }
        return out

    def problems(self) -> list[str]:
        problems = list(self.conversation.problems)
        memory = self.memory()
        hours = max(1.0, (self.samples[-1].sim_s - self.warmup_s) / 3600)
        bound = self.rss_bound_mb * hours
        for key, who in (("residual", "this process"), ("server_residual", "the server")):
            if memory.get(key, 0.0) > bound:
                problems.append(
                    f"RSS of {who} grew {memory[key]:.1f} MB after warm-up beyond the audio "
                    f"the server holds (bound {bound:.0f} MB)"
                )
        return problems


def _slope(sim_s: Sequence[float], mb: Sequence[float]) -> float:
    """Least-squares MB per simulated hour."""
    if len(sim_s) < 2 or max(sim_s) - min(sim_s) <= 0:
        return 0.0
    return float(np.polyfit(np.asarray(sim_s) / 3600, np.asarray(mb), 1)[0])


async def soak(
    target: Target,
    clips: Sequence[Clip],
    *,
    simulated_s: float,
    seed: int = 1,
    dialect: Dialect = "ga",
    speedup: float = 0.0,
    rss_bound_mb: float = RSS_BOUND_MB,
    server: str = "inproc",
    trace: bool = False,
) -> SoakResult:
    """One conversation of ``simulated_s`` simulated seconds, RSS sampled (after a gc)
    every ``SAMPLE_EVERY_S`` of them and before hanging up; warm-up is the first 5
    simulated minutes or 20%."""
    warmup_s = min(300.0, simulated_s * 0.2)
    wall0 = time.perf_counter()
    samples: list[Sample] = []
    snapshots: list[tracemalloc.Snapshot] = []
    next_sample = 0.0

    def sample(caller: Caller) -> None:
        gc.collect()
        stats = caller.session.statistics().connection
        held = stats.audio_appended_samples + caller.c.spoken_samples
        samples.append(
            Sample(
                caller.sim_ms / 1000,
                time.perf_counter() - wall0,
                rss_mb(),
                rss_mb(target.pid) if target.pid else math.nan,
                held * 2 / 2**20,
                cpu_s(),
                cpu_s(target.pid) if target.pid else math.nan,
                len(caller.session.conversation),
                sum(caller.c.turns.values()),
            )
        )
        if trace and (len(snapshots) == 0) == (caller.sim_ms / 1000 >= warmup_s):
            snapshots.append(tracemalloc.take_snapshot())

    def on_turn(caller: Caller) -> None:
        nonlocal next_sample
        if caller.sim_ms / 1000 >= next_sample:
            next_sample = (caller.sim_ms / 1000 // SAMPLE_EVERY_S + 1) * SAMPLE_EVERY_S
            sample(caller)

    def on_hang_up(caller: Caller) -> None:
        if not samples or samples[-1].sim_s < caller.sim_ms / 1000:
            sample(caller)
        if trace and len(snapshots) == 1:
            snapshots.append(tracemalloc.take_snapshot())

    if trace:
        tracemalloc.start()
    conversation = await converse(
        target.url,
        clips,
        seed=seed,
        simulated_s=simulated_s,
        dialect=dialect,
        speedup=speedup,
        on_turn=on_turn,
        on_hang_up=on_hang_up,
    )
    result = SoakResult(conversation, samples, warmup_s, rss_bound_mb, server)
    if trace:
        tracemalloc.stop()
        if len(snapshots) == 2:
            growth = snapshots[1].compare_to(snapshots[0], "lineno")
            result.top_growth = [str(stat) for stat in growth[:12]]
    return result


@dataclass(slots=True)
class SessionsResult:
    """Many concurrent conversations against one server."""

    results: list[ConversationResult | BaseException]
    wall_s: float
    rss_before_mb: float
    rss_max_mb: float
    rss_after_mb: float
    server_rss_max_mb: float
    cpu_s: float  # this process, during the run
    server_cpu_s: float  # the server's process (NaN in process)

    def problems(self) -> list[str]:
        problems = []
        for n, result in enumerate(self.results):
            if isinstance(result, BaseException):
                problems.append(f"session {n}: {type(result).__name__}: {result}")
            else:
                problems += [f"session {n}: {p}" for p in result.problems]
        return problems

    def ok(self) -> list[ConversationResult]:
        return [r for r in self.results if isinstance(r, ConversationResult)]


async def sessions(
    target: Target,
    clips: Sequence[Clip],
    *,
    count: int,
    turns: int,
    seed: int = 1,
    dialect: Dialect = "ga",
    speedup: float = 0.0,
) -> SessionsResult:
    """``count`` conversations of ``turns`` turns each, all at once, against one server
    (as fast as possible, or at ``speedup`` x real time)."""
    results: list[ConversationResult | BaseException] = [RuntimeError("did not finish")] * count
    gc.collect()
    before = rss_mb()
    peak = [before, math.nan]

    async def one(n: int) -> None:
        try:
            results[n] = await converse(
                target.url,
                clips,
                seed=seed + n,
                simulated_s=math.inf,
                turns=turns,
                dialect=dialect,
                speedup=speedup,
            )
        except Exception as exc:  # reported per session; the others go on
            results[n] = exc

    async def sample_peak() -> None:
        while True:
            peak[0] = max(peak[0], rss_mb())
            if target.pid:
                server = rss_mb(target.pid)
                peak[1] = server if math.isnan(peak[1]) else max(peak[1], server)
            await trio.sleep(0.1)

    wall0 = time.perf_counter()
    cpu0, server_cpu0 = cpu_s(), cpu_s(target.pid) if target.pid else math.nan
    async with trio.open_nursery() as outer:
        outer.start_soon(sample_peak)
        async with trio.open_nursery() as nursery:
            for n in range(count):
                nursery.start_soon(one, n)
        outer.cancel_scope.cancel()
    wall_s = time.perf_counter() - wall0
    gc.collect()
    return SessionsResult(
        results,
        wall_s,
        before,
        max(peak[0], rss_mb()),
        rss_mb(),
        peak[1],
        cpu_s() - cpu0,
        cpu_s(target.pid) - server_cpu0 if target.pid else math.nan,
    )


# -- reporting -----------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _table(rows: Sequence[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def counter_rows(result: ConversationResult) -> list[tuple[str, str]]:
    c = result.counters
    turns = ", ".join(f"{k} {v}" for k, v in sorted(c.turns.items()))
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(c.statuses.items()))
    interrupts = ", ".join(f"{k} {v}" for k, v in sorted(c.interrupts.items())) or "none"
    rate = OUTPUT_RATE / 1000
    return [
        ("turns", f"{sum(c.turns.values())} ({turns})"),
        (
            "VAD speech started / stopped / commits",
            f"{c.speech_started} / {c.speech_stopped} / {c.commits} (+{c.manual_commits} manual)",
        ),
        (
            "responses created / done / expected",
            f"{c.responses_created} / {c.responses_done} / {c.responses_expected} ({statuses})",
        ),
        (
            "interrupts",
            f"{interrupts}; response.cancel sent {c.cancels_sent}, "
            f"of which refused (had just finished) {c.cancel_races}",
        ),
        (
            "server echoes (truncated/deleted) matched / wrong",
            f"{c.echoes_matched} / {c.echoes_wrong}",
        ),
        (
            "audio appended (client, 24 kHz)",
            f"{result.appended_samples} samples = {result.appended_samples / rate / 1000:.1f} s",
        ),
        (
            "audio committed (server, retrieved)",
            f"{result.committed_samples} samples = {result.committed_samples / rate / 1000:.1f} s",
        ),
        (
            "audio committed (client's count of its items)",
            f"{result.counted_samples} samples = {result.counted_samples / rate / 1000:.1f} s",
        ),
        (
            "audio received / dropped after a cut",
            f"{result.received_samples / rate / 1000:.1f} s"
            f" / {result.dropped_samples / rate:.0f} ms",
        ),
        ("assistant audio heard", f"{c.heard_ms / 1000:.1f} s"),
        ("tool calls / errors", f"{c.tool_calls} / {c.tool_errors}"),
        ("unexpected errors", str(sum(c.errors.values()))),
        (
            "conversation items / approx. size",
            f"{result.items} / {result.conversation_kb:.0f} KB"
            f" ({result.conversation_kb * 1024 / max(1, result.items):.0f} B per item)",
        ),
        (
            "retrieved items / their base64 audio kept in Item.raw",
            f"{result.retrieved_items} / {result.retrieved_audio_kept_mb:.1f} MB",
        ),
    ]


def soak_lines(result: SoakResult) -> list[str]:
    conv = result.conversation
    m = result.memory()
    apart = "server_warm" in m
    where = "the client alone" if apart else "client and server"
    minutes = result.warmup_s / 60

    def row(name: str, key: str, fmt: str = ".1f") -> str:
        mine = format(m[key], fmt)
        theirs = format(m["server_" + key], fmt) if apart else ""
        return f"| {name} | {mine} | {theirs} |"

    first, last = result.samples[0], result.samples[-1]
    hours = max(last.sim_s - first.sim_s, 1e-9) / 3600
    cpu = f"CPU per simulated hour: this process {(last.cpu_s - first.cpu_s) / hours:.1f} s"
    if apart:
        cpu += f", server process {(last.server_cpu_s - first.server_cpu_s) / hours:.1f} s"
    lines = [
        f"Simulated {conv.sim_s / 60:.1f} min in {conv.wall_s:.1f} s wall "
        f"({conv.sim_s / max(conv.wall_s, 1e-9):.0f}x real time), server {result.server}. "
        f"{cpu}.",
        "",
        f"Memory: RSS in MB, from /proc; this process holds {where}. Warm-up: the first "
        f"{minutes:.0f} simulated min. The server keeps every committed input sample and "
        f"every synthesised answer ({m['held_growth']:.1f} MB more after warm-up) by design; "
        f"bound: growth after warm-up beyond that audio <= {result.rss_bound_mb:.0f} MB per "
        "simulated hour.",
        "",
        "| | this process | server process |",
        "|---|---|---|",
        row("at start (before connecting)", "start"),
        row("after warm-up", "warm"),
        row("before hanging up", "end"),
        row("max", "max"),
        row("growth after warm-up", "growth", "+.1f"),
        row("slope after warm-up (MB per simulated hour)", "slope", "+.1f"),
        row("growth beyond the audio the server holds", "residual", "+.1f"),
        "",
        "RSS over the run:",
        "",
        "| simulated min | wall s | RSS MB | server RSS MB | server audio MB | items | turns |",
        "|---|---|---|---|---|---|---|",
    ]
    every = max(1, len(result.samples) // 12)
    shown = result.samples[::every]
    if shown[-1] is not result.samples[-1]:
        shown.append(result.samples[-1])
    for s in shown:
        server = "" if math.isnan(s.server_rss_mb) else f"{s.server_rss_mb:.1f}"
        lines.append(
            f"| {s.sim_s / 60:.1f} | {s.wall_s:.1f} | {s.rss_mb:.1f} | {server} "
            f"| {s.held_mb:.1f} | {s.items} | {s.turns} |"
        )
    lines += ["", "Counters:", "", *_table(counter_rows(conv))]
    ttfa = conv.ttfa_s
    if ttfa:
        lines += ["", "Time to first audio delta (wall ms, p50 / p99):", ""]
        lines += _table(
            [(k, f"{_pct(v, 0.5) * 1e3:.1f} / {_pct(v, 0.99) * 1e3:.1f}") for k, v in ttfa.items()]
        )
    if result.top_growth:
        lines += ["", "tracemalloc, largest growth since warm-up:", "", "```"]
        lines += [*result.top_growth, "```"]
    return lines


def sessions_lines(result: SessionsResult, turns: int) -> list[str]:
    ok = result.ok()
    ttfa: dict[str, list[float]] = {}
    for r in ok:
        for kind, values in r.ttfa_s.items():
            ttfa.setdefault(kind, []).extend(values)
    every = [v for values in ttfa.values() for v in values]
    connect = [r.connect_s for r in ok]
    total = Counters()
    for r in ok:
        total.turns.update(r.counters.turns)
        total.interrupts.update(r.counters.interrupts)
        total.statuses.update(r.counters.statuses)
        total.responses_created += r.counters.responses_created
        total.responses_done += r.counters.responses_done
        total.cancel_races += r.counters.cancel_races
    server = (
        ""
        if math.isnan(result.server_rss_max_mb)
        else f"; server process max {result.server_rss_max_mb:.1f}"
    )
    rows = [
        ("sessions completed", f"{len(ok)} of {len(result.results)}, {turns} turns each"),
        ("wall time", f"{result.wall_s:.1f} s"),
        (
            "CPU time: this process / server process",
            f"{result.cpu_s:.1f} s / "
            + (
                "(in this process)"
                if math.isnan(result.server_cpu_s)
                else f"{result.server_cpu_s:.1f} s"
            ),
        ),
        ("turns", ", ".join(f"{k} {v}" for k, v in sorted(total.turns.items()))),
        ("responses created / done", f"{total.responses_created} / {total.responses_done}"),
        ("interrupts", ", ".join(f"{k} {v}" for k, v in sorted(total.interrupts.items()))),
        (
            "connect (wall ms, p50 / p99)",
            f"{_pct(connect, 0.5) * 1e3:.0f} / {_pct(connect, 0.99) * 1e3:.0f}",
        ),
        (
            "first audio delta, all turns (wall ms, p50 / p99)",
            f"{_pct(every, 0.5) * 1e3:.0f} / {_pct(every, 0.99) * 1e3:.0f} (n={len(every)})",
        ),
        *[
            (
                f"first audio delta, {kind} turns",
                f"{_pct(v, 0.5) * 1e3:.0f} / {_pct(v, 0.99) * 1e3:.0f} (n={len(v)})",
            )
            for kind, v in sorted(ttfa.items())
        ],
        (
            "RSS before / max / after (MB)",
            f"{result.rss_before_mb:.1f} / {result.rss_max_mb:.1f} / {result.rss_after_mb:.1f}"
            + server,
        ),
        ("problems", str(len(result.problems()))),
    ]
    return _table(rows)


# -- command line --------------------------------------------------------------------------


def _print(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


async def main(args: argparse.Namespace) -> int:
    clips = await trio.to_thread.run_sync(load_clips)
    pace = args.speedup if args.speedup > 0 else 1000.0
    max_session_s = max(3600.0, 2 * args.simulated_s / pace + 600)
    report: list[str] = ["# realtalk soak", ""]
    problems: list[str] = []
    async with open_target(args.server, max_session_s, paced=args.paced) as target:
        if args.sessions <= 1:
            result = await soak(
                target,
                clips,
                simulated_s=args.simulated_s,
                seed=args.seed,
                dialect=args.dialect,
                speedup=args.speedup,
                rss_bound_mb=args.rss_bound_mb,
                server=args.server,
                trace=args.tracemalloc,
            )
            lines = soak_lines(result)
            problems += result.problems()
            report += ["## One long conversation", "", *lines, ""]
        else:
            turns = args.turns or len(FIRST_TURNS)
            many = await sessions(
                target,
                clips,
                count=args.sessions,
                turns=turns,
                seed=args.seed,
                dialect=args.dialect,
                speedup=args.speedup,
            )
            lines = sessions_lines(many, turns)
            problems += many.problems()
            report += [f"## {args.sessions} concurrent sessions", "", *lines, ""]
    _print(lines)
    verdict = ["", "Balances and bounds: " + ("all hold" if not problems else "FAILED")]
    verdict += [f"- {p}" for p in problems[:40]]
    _print(verdict)
    if args.report:
        Path(args.report).write_text("\n".join([*report, *verdict, ""]), encoding="utf-8")
        print(f"report written to {args.report}")
    return 1 if problems else 0


async def check() -> int:
    """The CI run: 5 simulated minutes (in-process server, generous RSS bound), then 100
    sessions of two turns; exit 1 on any broken balance."""
    clips = await trio.to_thread.run_sync(load_clips)
    failed = []
    async with open_target("inproc", 3600) as target:
        one = await soak(target, clips, simulated_s=300, rss_bound_mb=60)
        _print(soak_lines(one))
        failed += one.problems()
        many = await sessions(target, clips, count=100, turns=2)
        _print(["", "100 sessions:", *sessions_lines(many, 2)])
        failed += many.problems()
    _print(["", "check: " + ("ok" if not failed else "FAILED"), *failed[:40]])
    return 1 if failed else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--simulated-s",
        type=float,
        default=3600.0,
        help="simulated seconds of conversation (default: 3600)",
    )
    parser.add_argument(
        "--sessions", type=int, default=1, help="concurrent sessions (default: 1, the long soak)"
    )
    parser.add_argument(
        "--turns",
        type=int,
        default=None,
        help=f"turns per session with --sessions (default: {len(FIRST_TURNS)})",
    )
    parser.add_argument(
        "--speedup",
        type=float,
        default=0.0,
        help="simulated seconds per wall second (default 0: as fast as possible)",
    )
    parser.add_argument(
        "--server",
        choices=["inproc", "process"],
        default="inproc",
        help="embedded server in this process (default) or a child process",
    )
    parser.add_argument(
        "--paced",
        action="store_true",
        help="the server sends audio at real time (use with --speedup 1)",
    )
    parser.add_argument("--dialect", choices=["ga", "beta"], default="ga")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rss-bound-mb",
        type=float,
        default=RSS_BOUND_MB,
        help="allowed RSS growth after warm-up per simulated hour (MB)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also report the largest allocation growth (slower)",
    )
    parser.add_argument("--report", metavar="PATH", help="write a markdown report")
    parser.add_argument(
        "--check",
        action="store_true",
        help="short run with assertions (CI): 5 simulated min + 100 sessions",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    code = trio.run(check) if arguments.check else trio.run(main, arguments)
    sys.exit(code)
