"""The trio session: a :class:`~realtalk.protocol.Connection` driven over a WebSocket.

What this module owns: the session's tasks (one reader, one per running tool call), all
inside the nursery of ``connect()``; writing the connection's outbox in order; waiting for
the server's answer where a call promises one; resampling appended audio to the session's
input format; tool execution off the audio path; the bounded event channel.

What it must never do: run a background task outside a nursery it owns, block the reader
on a tool, swallow a server ``error`` (it is an event, and raised only by a call that
waited for the answer), or leak an exception group for a single error.
"""

from __future__ import annotations

import inspect
import json
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import trio

from realtalk import _core
from realtalk._core import AudioDelta
from realtalk.client._endpoint import Endpoint, resolve_endpoint
from realtalk.client._transport import WebSocketTransport, connect_transport
from realtalk.exceptions import (
    AudioFormatError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    RemoteProtocolError,
    ServerError,
)
from realtalk.protocol._config import Dialect, FunctionTool, SessionConfig
from realtalk.protocol._connection import (
    Connection,
    ConnectionStatistics,
    Event,
    Interrupted,
)
from realtalk.protocol._conversation import Conversation, Item
from realtalk.protocol._events import (
    AudioDone,
    ErrorEvent,
    FunctionCallArgumentsDone,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    InputAudioCommitted,
    ResponseDone,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    UnknownEvent,
)
from realtalk.protocol._state import ResponseState

__all__ = [
    "DEFAULT_EVENT_BUFFER",
    "AudioSink",
    "GaveUp",
    "Reconnect",
    "Reconnected",
    "Reconnecting",
    "Resumed",
    "Session",
    "SessionStatistics",
    "StoppingAudioSink",
    "ToolCallFinished",
    "connect",
]

DEFAULT_EVENT_BUFFER = 256
"""Events the channel of :meth:`Session.events` holds before the reader waits for the
consumer (backpressure reaches the server through the socket)."""
CLOSE_TIMEOUT = 2.0
"""Seconds :meth:`Session.aclose` waits for the server's side of the close handshake."""
DEFAULT_CONNECT_TIMEOUT_S = 30.0
"""Seconds :func:`connect` waits for the WebSocket and ``session.created`` by default."""
DEFAULT_STALL_TIMEOUT_S = 60.0
"""Seconds of silence from the server during a response after which the connection is
taken for dead (by default)."""

# Close codes after which a reconnect can help (the peer went away, broke, restarted or
# is overloaded), and no code at all (the TCP connection dropped). 1000 qualifies only
# after the server said the session expired.
_RETRYABLE_CODES = frozenset({None, 1001, 1005, 1006, 1011, 1012, 1013, 1014, 1015})
# A connection up this long (s) before it failed resets the count of attempts; shorter
# ones (a server that drops every connection at once) count towards giving up.
_STABLE_S = 5.0

ToolHandler = Callable[..., Any]
"""A tool's handler: called with the call's arguments as keyword arguments; sync (run in a
worker thread) or async (run as a task); its return value is sent back as JSON text."""


@runtime_checkable
class AudioSink(Protocol):
    """Where received audio goes when a player is attached (the device layer's playback
    buffer implements this). Methods are called from the session's trio task and must
    not block."""

    def push(self, delta: AudioDelta) -> None:
        """Queue one delta's samples for playback."""

    def played_samples(self, item_id: str, content_index: int) -> int:
        """Samples of that item's audio the listener has heard so far."""

    def clear(self) -> None:
        """Drop everything not yet played (the user interrupted)."""


@runtime_checkable
class StoppingAudioSink(AudioSink, Protocol):
    """An :class:`AudioSink` that can stop playback and report exactly what was heard
    (the device layer's :class:`realtalk.audio.Speaker`); interruptions then wait for it
    instead of using the :meth:`~AudioSink.played_samples` estimate."""

    async def stop_playback(self, item_id: str | None, content_index: int = 0) -> int:
        """Stop playback (short fade) and return the samples of ``item_id`` heard."""

    def end_of_audio(self, item_id: str, content_index: int) -> None:
        """The server sent the last of that item's audio: play out what is buffered,
        and count running dry after it as the end, not as an underrun."""


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A tool handler ran for a function call and its result (or error) was sent back.

    ``output`` is the text sent as ``function_call_output``; ``error`` is the handler's
    exception text when it failed (the model is told, the session goes on).
    """

    call_id: str
    name: str
    arguments: Mapping[str, Any]
    output: str
    error: str | None


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How a session comes back after its connection fails (``connect(reconnect=...)``).

    - ``attempts``: reconnects tried in a row before giving up (>= 1).
    - ``initial_delay_s``, ``max_delay_s``: the wait before the first attempt, doubled for
      each further one up to the maximum (seconds).
    - ``jitter``: each wait is multiplied by a random factor in ``[1 - jitter, 1 +
      jitter]`` (0 to 1), so that many clients do not come back in step.
    - ``resume_conversation``: rebuild the conversation on the new connection from the
      client's cache, with the same item ids: text messages as they were; user audio as
      the input audio itself when the session keeps audio (``connect(keep_audio_ms=...)``
      at least as long as the turn: the client keeps what it appended for each committed
      item, since the server never sends it back), else as its transcript when one is
      known, else skipped and counted in :class:`Resumed`; assistant audio as its
      transcript; function calls and their outputs.
    - ``respond_after_resume``: when a response was running or requested as the
      connection dropped, ask for one again after the resume.
    - ``buffer_audio_s``: microphone audio appended while disconnected is kept up to this
      many seconds and sent after the resume; audio beyond it is dropped and counted.
    - ``handover_before_s``: this many seconds before the server's ``expires_at`` (from
      ``session.created``), at the first turn boundary (no response running, the user
      not speaking), the session moves to a new connection: it is opened while the old
      one still stands, then the old one closes and the configuration, tools and
      conversation are restored on the new one while microphone audio is held (and the
      last ``prefix_ms`` of it sent again, so that speech just starting is not lost).
      Playback is local and goes on: no dead air. ``None``: no handover (the expiry then
      ends in a reconnect).

    A reconnect follows a dropped connection, a close with a code that says the server
    went away, broke or is overloaded (1001, 1005, 1006, 1011-1015), a server silent for
    ``stall_timeout_s`` during a response, or the server's ``session_expired``. It never
    follows :meth:`Session.aclose`, a refused key (:class:`AuthenticationError`) or a
    normal close the server chose.

    Raises:
        ConfigurationError: a value out of range.
    """

    attempts: int = 5
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: float = 0.25
    resume_conversation: bool = True
    respond_after_resume: bool = True
    buffer_audio_s: float = 10.0
    handover_before_s: float | None = 60.0
    prefix_ms: int = 500

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigurationError(f"reconnect.attempts: must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ConfigurationError(f"reconnect.attempts: must be >= 1, got {self.attempts}")
        for name in ("initial_delay_s", "max_delay_s", "buffer_audio_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"reconnect.{name}: must be a number >= 0, got {value!r}")
        if not isinstance(self.jitter, int | float) or not 0 <= self.jitter <= 1:
            raise ConfigurationError(
                f"reconnect.jitter: must be between 0 and 1, got {self.jitter!r}"
            )

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """The wait before reconnect ``attempt`` (1-based), jitter included."""
        base = min(float(self.max_delay_s), float(self.initial_delay_s) * 2.0 ** (attempt - 1))
        return base * (1.0 + float(self.jitter) * (2.0 * rng.random() - 1.0))


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection failed; the session waits ``delay_s`` and tries again.

    ``reason`` says how the connection ended (close code and reason, or the connect
    error of the previous attempt); ``attempt`` counts from 1.
    """

    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection is up and has the session's configuration and tools again.

    ``planned`` is a handover before the old session expired (``attempt`` is then 0).
    """

    attempt: int
    planned: bool = False


@dataclass(frozen=True, slots=True)
class Resumed:
    """The new connection carries on where the old one stopped.

    ``items`` were recreated from the cache (``skipped``: user audio items with no
    transcript); ``audio_sent_ms`` of microphone audio appended while disconnected went
    out, ``audio_dropped_ms`` did not fit the buffer; ``response_lost`` says a response
    was cut by the failure (and ``response_requested`` that a new one was asked for).
    """

    items: int
    skipped: int
    audio_sent_ms: int
    audio_dropped_ms: int
    response_lost: bool
    response_requested: bool


@dataclass(frozen=True, slots=True)
class GaveUp:
    """Reconnecting failed ``attempts`` times in a row (or cannot help): the session is
    closed, :meth:`Session.events` ends after this event and calls raise
    :class:`~realtalk.exceptions.ConnectionClosed`."""

    attempts: int
    reason: str


SessionEvent = Event | ToolCallFinished | Reconnecting | Reconnected | Resumed | GaveUp
"""Everything :meth:`Session.events` yields."""


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """A snapshot of the session: the protocol counters plus the session's own."""

    connection: ConnectionStatistics
    """The protocol's counters (events, audio, responses)."""
    events_waiting: int
    """Events waiting in the :meth:`Session.events` channel for the consumer."""
    tool_calls: int
    """Tool handler runs started."""
    tool_errors: int
    """Tool handler runs that raised."""
    reconnects: int = 0
    """Connections that failed and were replaced (``connection`` counts the current one)."""
    offline_audio_dropped_ms: int = 0
    """Microphone audio appended while disconnected that did not fit the buffer."""


@dataclass(slots=True)
class _Waiter:
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: ErrorEvent | None = None


@dataclass(slots=True)
class _Tool:
    schema: FunctionTool
    handler: ToolHandler


class Session:
    """A live Realtime session. Get one from :func:`connect`; do not construct directly.

    Methods that write to the socket are ``async`` (they wait for the socket, not for
    the server) unless they say they wait for an answer. Every method raises
    :class:`~realtalk.exceptions.ConnectionClosed` once the socket is closed.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        nursery: trio.Nursery,
        *,
        event_buffer: int,
        audio_sink: AudioSink | None,
        keep_audio_ms: int = 0,
        reconnect: Reconnect | None = None,
        stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        self._endpoint = endpoint
        self._keep_audio_ms = keep_audio_ms
        self._conn = Connection(endpoint.dialect, keep_audio_ms=keep_audio_ms)
        self._ws: WebSocketTransport | None = None
        self._nursery = nursery
        self._send_lock = trio.Lock()
        self._events_in, self._events_out = trio.open_memory_channel[SessionEvent](event_buffer)
        self._reconnect = reconnect
        self._stall_timeout_s = stall_timeout_s
        self._rng = random.Random()
        # Set while a connection is up and (after a reconnect) restored: calls that write
        # wait for it; appends are buffered instead.
        self._online = trio.Event()
        self._closing = False
        self._expired = False
        self._reconnects = 0
        # What the caller asked the server to hold: restored on a new connection.
        self._wanted: SessionConfig | None = None
        self._offline_audio: list[npt.NDArray[np.int16]] = []
        self._offline_samples = 0
        self._offline_dropped = 0
        # Handover: when the server's session expires (unix s), whether the user is
        # speaking, and the last audio appended (sent again on the new connection).
        self._expires_at: float | None = None
        self._created_at = 0.0
        self._user_speaking = False
        self._recent_audio: list[npt.NDArray[np.int16]] = []
        self._recent_samples = 0
        self._sink = audio_sink
        self._tools: dict[str, _Tool] = {}
        self._update_waiters: dict[str, _Waiter] = {}
        self._created = trio.Event()
        self._closed: ConnectionClosed | None = None
        self._resamplers: dict[tuple[int, int], _core.Resampler] = {}
        self._tool_calls = 0
        self._tool_errors = 0
        # Tool calls per response: the follow-up response is requested once, when the
        # response is done and all its calls have answered.
        self._calls_running: dict[str, int] = {}
        self._responses_done: set[str] = set()

    # -- plumbing -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed is not None:
            raise ConnectionClosed(
                "the session is closed", code=self._closed.code, reason=self._closed.reason
            )

    async def _ready(self) -> None:
        """Raise if the session is closed; while it reconnects, wait until it is back."""
        self._check_open()
        if not self._online.is_set():
            await self._online.wait()
            self._check_open()

    async def _flush(self) -> None:
        """Write the connection's outbox, in order, whoever produced it. While the session
        reconnects, the outbox waits (the restore writes first)."""
        await self._ready()
        await self._write()

    async def _write(self) -> None:
        async with self._send_lock:
            ws = self._ws
            if ws is None:
                raise ConnectionClosed("the session is not connected")
            for text in self._conn.data_to_send():
                await ws.send_text(text)

    async def _supervise(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the connections: open one, read it until it ends, and (with ``reconnect``)
        open the next and restore the session on it, until the session closes."""
        first = True
        attempt = 0
        reason = ""
        try:
            while True:
                try:
                    ws = await connect_transport(self._nursery, self._endpoint)
                except (ConnectError, ConfigurationError) as exc:
                    if first:
                        raise  # connect() reports it
                    reason = str(exc)
                except AuthenticationError as exc:
                    if first:
                        raise
                    await self._give_up(attempt, str(exc), exc)
                    return
                else:
                    self._ws = ws
                    if first:
                        first = False
                        self._online.set()
                        task_status.started()
                    else:
                        old, self._conn = self._conn, self._conn.successor()
                        self._created = trio.Event()
                        self._nursery.start_soon(self._resume, old, attempt)
                    opened = trio.current_time()
                    closed = await self._read(ws)
                    while closed is None:  # time to hand over to a new connection
                        ws, closed = await self._handover(ws)
                    if self._online.is_set() and trio.current_time() - opened >= _STABLE_S:
                        attempt = 0  # it worked for a while: a new failure starts a new count
                    with trio.CancelScope(shield=True):
                        await ws.aclose()
                    if self._closing or not self._retryable(closed):
                        self._closed = closed
                        return
                    reason = str(closed)
                    self._online = trio.Event()
                # A failure a reconnect can help with.
                if self._reconnect is None:
                    self._closed = ConnectionClosed(reason)
                    return
                attempt += 1
                if attempt > self._reconnect.attempts:
                    await self._give_up(attempt - 1, reason, ConnectionClosed(reason))
                    return
                delay = self._reconnect.delay_s(attempt, self._rng)
                self._reconnects += 1
                await self._events_in.send(Reconnecting(attempt, delay, reason))
                await trio.sleep(delay)
        finally:
            if self._closed is None:
                self._closed = ConnectionClosed("the session ended")
            self._online.set()  # wake callers waiting for a connection: they see it closed
            self._created.set()
            for waiter in self._update_waiters.values():
                waiter.done.set()
            self._events_in.close()

    async def _handover(
        self, old_ws: WebSocketTransport
    ) -> tuple[WebSocketTransport, ConnectionClosed | None]:
        """Open the next connection while the old one still stands, move the session to
        it, and read it: (the connection now read, how it ended or ``None`` for the next
        handover). If the new connection cannot be opened, the old one goes on and the
        handover is tried again a little later."""
        try:
            new_ws = await connect_transport(self._nursery, self._endpoint)
        except (ConnectError, ConfigurationError, AuthenticationError):
            self._expires_at = (self._expires_at or time.time()) + 5.0  # retry in 5 s
            return old_ws, await self._read(old_ws)
        # From here appends wait offline and go to the new connection.
        self._online = trio.Event()
        prefix = list(self._recent_audio)
        self._recent_audio, self._recent_samples = [], 0
        self._offline_audio = prefix + self._offline_audio
        self._offline_samples += sum(len(chunk) for chunk in prefix)
        with trio.CancelScope(shield=True):
            await old_ws.aclose()
        self._ws = new_ws
        old, self._conn = self._conn, self._conn.successor()
        self._created = trio.Event()
        self._user_speaking = False
        self._reconnects += 1
        self._nursery.start_soon(self._resume, old, 0)
        return new_ws, await self._read(new_ws)

    async def _give_up(
        self, attempts: int, reason: str, error: ConnectionClosed | Exception
    ) -> None:
        self._closed = (
            error if isinstance(error, ConnectionClosed) else ConnectionClosed(str(error))
        )
        with trio.move_on_after(1):
            await self._events_in.send(GaveUp(attempts, reason))

    def _retryable(self, closed: ConnectionClosed) -> bool:
        if self._reconnect is None:
            return False
        return closed.code in _RETRYABLE_CODES or self._expired

    def _handover_due(self) -> float:
        """The trio time at which to move to a new connection (``inf``: never)."""
        policy = self._reconnect
        if policy is None or policy.handover_before_s is None or self._expires_at is None:
            return math.inf
        # At most half the session's life early, so that a server with short sessions
        # does not make every new connection hand over at once.
        lead = min(policy.handover_before_s, (self._expires_at - self._created_at) / 2)
        return trio.current_time() + (self._expires_at - lead - time.time())

    def _at_turn_boundary(self) -> bool:
        return not self._user_speaking and self._conn.response_state is ResponseState.IDLE

    async def _read(self, ws: WebSocketTransport) -> ConnectionClosed | None:
        """Read ``ws`` until it closes or stalls (how it ended), or until it is time to
        hand over to a new connection (``None``)."""
        try:
            while True:
                stall = self._stall_timeout_s
                deadline = (
                    trio.current_time() + stall
                    if stall is not None and self._conn.response_state is not ResponseState.IDLE
                    else math.inf
                )
                # (Only a restored connection hands over; while one is being restored
                # the old expiry is stale.)
                handover = self._handover_due() if self._online.is_set() else math.inf
                if handover <= trio.current_time():
                    if self._at_turn_boundary():
                        return None
                    handover = trio.current_time() + 0.05  # look again shortly
                with trio.move_on_at(min(deadline, handover)):
                    message = await ws.receive()
                    try:
                        events = self._conn.receive(message)
                    except RemoteProtocolError as exc:
                        # The server's mistake is reported, not fatal: the session goes on.
                        events = [UnknownEvent(type="", raw={}, problem=str(exc))]
                    for event in events:
                        await self._dispatch(event)
                    if self._online.is_set():
                        await self._write()
                    continue
                if trio.current_time() < deadline:
                    continue  # the handover time: checked at the top of the loop
                return ConnectionClosed(
                    f"the server sent nothing for {stall:g} s during a response", code=None
                )
        except ConnectionClosed as exc:
            return exc

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, AudioDelta) and self._sink is not None:
            self._sink.push(event)
            return
        if isinstance(event, SpeechStarted | SpeechStopped | InputAudioCommitted):
            self._user_speaking = isinstance(event, SpeechStarted)
        match event:
            case SessionCreated(session=created):
                expires = created.get("expires_at")
                self._expires_at = (
                    float(expires) if isinstance(expires, int | float) and expires > 0 else None
                )
                self._created_at = time.time()
                self._created.set()
            case SessionUpdated():
                # session.updated does not echo the event_id: answer the oldest update.
                if self._update_waiters:
                    key = next(iter(self._update_waiters))
                    waiter = self._update_waiters.pop(key)
                    waiter.result = event
                    waiter.done.set()
            case ErrorEvent(code="session_expired"):
                self._expired = True
            case ErrorEvent(caused_by="session.update"):
                refused = self._update_waiters.pop(event.client_event_id or "", None)
                if refused is not None:
                    refused.error = event
                    refused.done.set()
            case FunctionCallArgumentsDone():
                self._start_tool(event)
            case ResponseDone():
                self._response_done(event.response_id)
            case AudioDone() if isinstance(self._sink, StoppingAudioSink):
                self._sink.end_of_audio(event.item_id, event.content_index)
            case SpeechStarted() if self._sink is not None and self._speaking():
                interrupted = await self._interrupt_now(
                    server_cancels=self._conn.turn_detection_cancels()
                )
                await self._events_in.send(event)
                await self._events_in.send(interrupted)
                return
            case _:
                pass
        await self._events_in.send(event)

    # -- lifetime -------------------------------------------------------------------------

    async def _start(self, config: SessionConfig | None) -> None:
        await self._nursery.start(self._supervise)
        await self._created.wait()
        self._check_open()
        if config is not None:
            await self.update(config)

    async def _resume(self, old: Connection, attempt: int) -> None:
        """On a new connection: restore the configuration and tools, rebuild the
        conversation, send the audio appended meanwhile, then let callers through."""
        policy = self._reconnect
        assert policy is not None
        with trio.move_on_after(DEFAULT_CONNECT_TIMEOUT_S) as timeout:
            await self._created.wait()
        if timeout.cancelled_caught or self._closed is not None:
            return  # the supervisor sees the connection fail and tries again
        # Updates the caller was waiting for are answered by the restore's.
        waiting, self._update_waiters = self._update_waiters, {}
        try:
            if self._wanted is not None:
                event_id = self._conn.update_session(self._wanted)
                waiter = _Waiter()
                self._update_waiters[event_id] = waiter
                await self._write()
                await waiter.done.wait()
                for pending in waiting.values():
                    pending.result, pending.error = waiter.result, waiter.error
                    pending.done.set()
                if waiter.result is None:
                    return  # refused or closed: nothing more can be restored here
            await self._events_in.send(Reconnected(attempt, planned=attempt == 0))
            items = skipped = 0
            if policy.resume_conversation:
                for item in old.conversation.items:
                    created = _replay_item(item, self._conn, old.input_sample_rate)
                    if created is None:
                        skipped += 1
                        continue
                    self._conn.add_item(created)
                    items += 1
            sent = self._offline_samples
            for chunk in self._offline_audio:
                self._conn.append_audio(chunk)
            self._offline_audio, self._offline_samples = [], 0
            dropped, self._offline_dropped = self._offline_dropped, 0
            lost = (
                old.response_state is not ResponseState.IDLE
                or old.statistics().responses_queued > 0
            )
            requested = lost and policy.respond_after_resume
            if requested:
                self._conn.create_response()
            await self._write()
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the supervisor handles the failure
        rate = self._conn.input_sample_rate
        self._online.set()
        await self._events_in.send(
            Resumed(
                items=items,
                skipped=skipped,
                audio_sent_ms=sent * 1000 // rate,
                audio_dropped_ms=dropped * 1000 // rate,
                response_lost=lost,
                response_requested=requested,
            )
        )

    async def aclose(self) -> None:
        """Close the WebSocket (code 1000) and stop the session's tasks.

        Waits at most ``realtalk.client.CLOSE_TIMEOUT`` seconds (2) for the server to answer
        the close handshake; the socket is closed either way.
        """
        self._closing = True
        if self._closed is None:
            self._closed = ConnectionClosed("the session was closed by aclose()", code=1000)
        with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
            if self._ws is not None:
                await self._ws.aclose()
        self._nursery.cancel_scope.cancel()

    # -- configuration --------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """``"ga"`` or ``"beta"``."""
        return self._conn.dialect

    @property
    def closed(self) -> ConnectionClosed | None:
        """Why the connection ended (its close code and reason), or ``None`` while open."""
        return self._closed

    @property
    def config(self) -> SessionConfig:
        """The effective configuration, as the server last reported it."""
        return self._conn.config

    @property
    def conversation(self) -> Conversation:
        """The conversation's items as the client knows them (a
        :class:`~realtalk.protocol.Conversation`)."""
        return self._conn.conversation

    async def update(self, config: SessionConfig | None = None, **fields: Any) -> SessionUpdated:
        """Change the session's configuration and wait for the server's ``session.updated``.

        Pass a :class:`SessionConfig`, or its fields as keywords (both: keywords win).
        Fields ignored or changed by the server are reported as a
        :class:`~realtalk.protocol.ConfigDriftDetected` event.

        Raises:
            ConfigurationError: invalid values (nothing is sent), or a field this dialect
                cannot express.
            ServerError: the server refused the update with an ``error`` event.
            ConnectionClosed: the socket closed first.
        """
        await self._ready()
        merged = config or SessionConfig()
        if fields:
            try:
                merged = merged.merged(SessionConfig(**fields))
            except TypeError as exc:
                raise ConfigurationError(str(exc)) from None
        if self._tools and merged.tools is None:
            merged = merged.merged(
                SessionConfig(tools=tuple(t.schema for t in self._tools.values()))
            )
        event_id = self._conn.update_session(merged)
        waiter = _Waiter()
        self._update_waiters[event_id] = waiter
        await self._flush()
        await waiter.done.wait()
        if waiter.error is not None:
            raise _server_error(waiter.error)
        if waiter.result is None:
            self._check_open()
            raise ConnectionClosed("the session closed before session.updated arrived")
        result: SessionUpdated = waiter.result
        self._wanted = merged if self._wanted is None else self._wanted.merged(merged)
        return result

    # -- talking --------------------------------------------------------------------------

    async def send_text(self, text: str, *, respond: bool = True) -> str:
        """Add a user message and, unless ``respond=False``, ask for a response.

        Returns the ``event_id`` of the ``conversation.item.create``.
        """
        await self._ready()
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        event_id = self._conn.add_user_text(text)
        if respond:
            self._conn.create_response()
        await self._flush()
        return event_id

    async def append_audio(self, samples: npt.ArrayLike, *, sample_rate: int = 24000) -> None:
        """Append microphone audio to the server's input buffer.

        Args:
            samples: mono int16 (full scale 32768) or float32 (full scale 1.0) samples;
                2-D ``(frames, channels)`` input is mixed down.
            sample_rate: Hz of ``samples``; resampled (streaming, state kept between
                calls) to the session's input format: 24 kHz PCM16 or 8 kHz G.711.

        Raises:
            AudioFormatError: another dtype, or more than two dimensions.
            ConfigurationError: a sample rate that is not a positive integer.
        """
        self._check_open()
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigurationError(
                f"sample_rate: must be a positive int in Hz, got {sample_rate!r}"
            )
        array = np.asarray(samples)
        if array.dtype not in (np.int16, np.float32):
            raise AudioFormatError(f"samples: expected int16 or float32, got {array.dtype}")
        if array.ndim not in (1, 2):
            raise AudioFormatError(
                f"samples: expected 1-D or (frames, channels), got shape {array.shape}"
            )
        channels = 1 if array.ndim == 1 else array.shape[1]
        target = self._conn.input_sample_rate
        if sample_rate != target or channels != 1:
            key = (sample_rate, channels)
            resampler = self._resamplers.get(key)
            if resampler is None:
                # One stream at a time: a new rate or layout starts a new stream.
                resampler = _core.Resampler(
                    sample_rate, target, channels=channels, downmix=channels > 1
                )
                self._resamplers = {key: resampler}
            array = resampler.process(np.ascontiguousarray(array))
        pcm = array if array.dtype == np.int16 else _core.f32_to_pcm16(array)
        if not len(pcm):
            return
        if not self._online.is_set():
            # Reconnecting: keep it for the resume (a microphone must never block).
            self._hold_offline(pcm)
            return
        self._conn.append_audio(pcm)
        self._remember_recent(pcm)
        await self._flush()

    def _remember_recent(self, pcm: npt.NDArray[np.int16]) -> None:
        """Keep the last ``prefix_ms`` appended, to send again after a handover."""
        policy = self._reconnect
        if policy is None or policy.handover_before_s is None:
            return
        self._recent_audio.append(np.array(pcm, dtype=np.int16))
        self._recent_samples += len(pcm)
        keep = policy.prefix_ms * self._conn.input_sample_rate // 1000
        while self._recent_audio and self._recent_samples - len(self._recent_audio[0]) >= keep:
            self._recent_samples -= len(self._recent_audio.pop(0))

    def _hold_offline(self, pcm: npt.NDArray[np.int16]) -> None:
        policy = self._reconnect
        limit = 0 if policy is None else int(policy.buffer_audio_s * self._conn.input_sample_rate)
        room = max(0, limit - self._offline_samples)
        if room < len(pcm):
            self._offline_dropped += len(pcm) - room
            pcm = pcm[:room]
        if len(pcm):
            self._offline_audio.append(np.array(pcm, dtype=np.int16))
            self._offline_samples += len(pcm)

    async def commit_audio(self) -> None:
        """Turn the appended audio into a user item (push-to-talk; VAD commits by itself).

        Audio appended at another rate than the session's ends its resampled stream
        here: whatever the resampler still owes is sent first, and the next append
        starts a new stream.
        """
        await self._ready()
        for resampler in self._resamplers.values():
            tail: Any = resampler.flush()
            if len(tail):
                self._conn.append_audio(
                    tail if tail.dtype == np.int16 else _core.f32_to_pcm16(tail)
                )
        self._conn.send(InputAudioBufferCommit())
        await self._flush()

    async def clear_audio(self) -> None:
        """Drop appended audio the server has not committed."""
        await self._ready()
        for resampler in self._resamplers.values():
            resampler.reset()
        self._conn.send(InputAudioBufferClear())
        await self._flush()

    async def create_response(self, response: Mapping[str, Any] | None = None) -> str:
        """Ask for a response now, or as soon as the one in progress is done.

        ``response`` holds per-response settings in the dialect's wire shape (e.g.
        ``{"instructions": "…"}``). Returns the ``event_id`` the request carries.
        """
        await self._ready()
        event_id = self._conn.create_response(dict(response) if response is not None else None)
        await self._flush()
        return event_id

    async def cancel_response(self) -> bool:
        """Cancel the response in progress; ``False`` when there was none (nothing sent)."""
        await self._ready()
        sent = self._conn.cancel_response() is not None
        await self._flush()
        return sent

    def _speaking(self) -> bool:
        """Whether the assistant may be audible: audio was received for an item that has
        not been cut, or a response is on its way."""
        return (
            self._conn.audio_item() is not None
            or self._conn.response_state is not ResponseState.IDLE
        )

    async def _interrupt_now(
        self, *, server_cancels: bool, played_samples: int | None = None
    ) -> Interrupted:
        target = self._conn.audio_item()
        sink = self._sink
        if target is not None:
            # Deltas that arrive while the player stops must not queue behind the cut.
            self._conn.drop_audio_of(*target)
        if isinstance(sink, StoppingAudioSink):
            # A device sink stops with a short fade and reports exactly what it
            # consumed, all of which the listener hears.
            heard = await sink.stop_playback(*(target or (None, 0)))
            if played_samples is None:
                played_samples = heard
        elif sink is not None:
            if played_samples is None and target is not None:
                played_samples = sink.played_samples(*target)
            sink.clear()
        return self._conn.interrupt(
            played_samples=played_samples or 0, server_cancels=server_cancels
        )

    def attach_audio_sink(self, sink: AudioSink | None) -> None:
        """Send received audio to ``sink`` (a player) from now on, or back to
        :meth:`events` with ``None``. With a sink, interruptions use its playhead and
        server-VAD speech starts interrupt playback by themselves."""
        if sink is not None and not isinstance(sink, AudioSink):
            raise TypeError(f"audio sink needs push/played_samples/clear, got {sink!r}")
        self._sink = sink

    @property
    def output_sample_rate(self) -> int:
        """Hz of the audio the server sends: 24000 (PCM16) or 8000 (G.711)."""
        return self._conn.output_sample_rate

    async def interrupt(
        self, *, played_samples: int | None = None, played_ms: float | None = None
    ) -> Interrupted:
        """Stop the assistant now: cancel its response if one is running, drop unplayed
        audio, and cut the item on the server to what the listener heard.

        What was heard comes from the attached audio sink's playhead, or from
        ``played_samples`` (at the output rate) / ``played_ms`` when you play audio
        yourself. Sends ``conversation.item.truncate`` at the heard position,
        ``conversation.item.delete`` when nothing was heard, or nothing when playback had
        finished; the returned :class:`~realtalk.protocol.Interrupted` says which.
        """
        await self._ready()
        if played_ms is not None:
            if played_samples is not None:
                raise TypeError("pass played_samples or played_ms, not both")
            if not math.isfinite(played_ms) or played_ms < 0:
                raise ValueError(f"played_ms must be finite and >= 0, got {played_ms}")
            played_samples = int(played_ms * self._conn.output_sample_rate // 1000)
        interrupted = await self._interrupt_now(server_cancels=False, played_samples=played_samples)
        await self._flush()
        return interrupted

    # -- tools ----------------------------------------------------------------------------

    async def add_tool(
        self, schema: FunctionTool | Mapping[str, Any], handler: ToolHandler
    ) -> None:
        """Register a function tool and tell the server (waits for ``session.updated``).

        When the model calls it, ``handler(**arguments)`` runs in the session's nursery:
        an ``async def`` handler as a task, a plain function in a worker thread, so that
        neither delays audio. Its return value (``str`` as is, anything else as JSON) or
        its exception text is sent back as ``function_call_output``, and a response is
        requested once all calls of the model's response have answered.

        Raises:
            ConfigurationError: an invalid schema, or a name already registered.
        """
        tool = schema if isinstance(schema, FunctionTool) else FunctionTool.from_schema(schema)
        if not callable(handler):
            raise ConfigurationError(f"tools[{tool.name}]: handler is not callable")
        if tool.name in self._tools:
            raise ConfigurationError(f"tools[{tool.name}]: a tool of that name is registered")
        self._tools[tool.name] = _Tool(tool, handler)
        await self.update(SessionConfig(tools=tuple(t.schema for t in self._tools.values())))

    def _start_tool(self, event: FunctionCallArgumentsDone) -> None:
        item = self._conn.conversation.get(event.item_id)
        name = event.name or (item.name if item is not None else None) or ""
        tool = self._tools.get(name)
        if tool is None:
            return  # not ours to answer: the caller sees the event and may answer it
        self._calls_running[event.response_id] = self._calls_running.get(event.response_id, 0) + 1
        self._nursery.start_soon(self._run_tool, tool, event, name)

    async def _run_tool(self, tool: _Tool, event: FunctionCallArgumentsDone, name: str) -> None:
        self._tool_calls += 1
        error: str | None = None
        arguments: dict[str, Any] = {}
        try:
            parsed = json.loads(event.arguments or "{}")
            if not isinstance(parsed, dict):
                raise TypeError("arguments are not a JSON object")
            arguments = parsed
            if inspect.iscoroutinefunction(tool.handler):
                result = await tool.handler(**arguments)
            else:
                result = await trio.to_thread.run_sync(lambda: tool.handler(**arguments))
                if inspect.isawaitable(result):
                    result = await result
            output = result if isinstance(result, str) else json.dumps(result, default=str)
        except Exception as exc:  # the model is told; the session goes on
            self._tool_errors += 1
            error = f"{type(exc).__name__}: {exc}"
            output = json.dumps({"error": error})
        try:
            await self._ready()  # after a reconnect, the call is replayed first
        except ConnectionClosed:
            return
        self._conn.add_function_output(event.call_id, output)
        running = self._calls_running.get(event.response_id, 1) - 1
        self._calls_running[event.response_id] = running
        if running == 0 and event.response_id in self._responses_done:
            self._finish_tool_round(event.response_id)
        try:
            await self._flush()
            await self._events_in.send(
                ToolCallFinished(event.call_id, name, arguments, output, error)
            )
        except (ConnectionClosed, trio.ClosedResourceError, trio.BrokenResourceError):
            return

    def _response_done(self, response_id: str) -> None:
        if response_id in self._calls_running:
            self._responses_done.add(response_id)
            if self._calls_running[response_id] == 0:
                self._finish_tool_round(response_id)

    def _finish_tool_round(self, response_id: str) -> None:
        self._calls_running.pop(response_id, None)
        self._responses_done.discard(response_id)
        self._conn.create_response()

    # -- observing ------------------------------------------------------------------------

    def events(self) -> trio.MemoryReceiveChannel[SessionEvent]:
        """The session's events, in order, as a bounded trio channel.

        Holds ``event_buffer`` events (:func:`connect` argument, default 256,
        ``realtalk.client.DEFAULT_EVENT_BUFFER``); when full, the reader waits for you, and
        the server for the reader, so nothing is ever dropped. Iterate it (``async for event
        in session.events()``) for the whole session. It ends when the session closes.

        Items: typed server events (:class:`realtalk.protocol.ServerEvent` subclasses,
        :class:`~realtalk.protocol.UnknownEvent` for the rest),
        :class:`realtalk.core.AudioDelta` when no audio sink is attached, high-level
        conversation events, :class:`~realtalk.protocol.Interrupted`,
        :class:`~realtalk.protocol.ConfigDriftDetected`, :class:`ToolCallFinished`, and with
        ``reconnect``: :class:`Reconnecting`, :class:`Reconnected`, :class:`Resumed` and
        :class:`GaveUp`.
        """
        return self._events_out

    def statistics(self) -> SessionStatistics:
        """A frozen snapshot of the session's counters."""
        return SessionStatistics(
            connection=self._conn.statistics(),
            events_waiting=self._events_in.statistics().current_buffer_used,
            tool_calls=self._tool_calls,
            tool_errors=self._tool_errors,
            reconnects=self._reconnects,
            offline_audio_dropped_ms=self._offline_dropped * 1000 // self._conn.input_sample_rate,
        )


def _replay_item(item: Item, conn: Connection, audio_rate: int) -> dict[str, Any] | None:
    """The ``conversation.item.create`` item that rebuilds ``item`` on the new connection
    ``conn``, with its id, or ``None`` when there is nothing to rebuild it from (user
    audio neither kept nor transcribed, an empty message).

    User audio goes back as input audio when the conversation kept all of it (at
    ``audio_rate``, the old connection's input rate, which must be the new one's), with
    its transcript when known; otherwise as its transcript in text.
    """
    created: dict[str, Any]
    if item.type == "function_call":
        created = {
            "type": "function_call",
            "call_id": item.call_id or "",
            "name": item.name or "",
            "arguments": item.arguments or "{}",
        }
    elif item.type == "function_call_output":
        created = {
            "type": "function_call_output",
            "call_id": item.call_id or "",
            "output": item.output or "",
        }
    elif item.type == "message" and item.role in ("user", "system"):
        content: list[dict[str, Any]] = []
        for part in item.content:
            kept = part.type == "input_audio" and part.audio_samples > 0
            if kept and part.audio_dropped_samples == 0 and audio_rate == conn.input_sample_rate:
                audio: dict[str, Any] = {
                    "type": "input_audio",
                    "audio": conn.input_audio_base64(part.audio),
                }
                if part.transcript:
                    audio["transcript"] = part.transcript
                content.append(audio)
            elif text := part.text or part.transcript:
                content.append({"type": "input_text", "text": text})
        if not content:
            return None
        created = {"type": "message", "role": item.role, "content": content}
    elif item.type == "message" and item.role in (None, "assistant"):
        text = item.text  # audio answers come back as what was said (their transcript)
        if not text:
            return None
        kind = "output_text" if conn.dialect == "ga" else "text"
        created = {
            "type": "message",
            "role": "assistant",
            "content": [{"type": kind, "text": text}],
        }
    else:
        return None
    created["id"] = item.id
    return created


def _server_error(event: ErrorEvent) -> ServerError:
    error = event.error

    def text(key: str) -> str | None:
        value = error.get(key)
        return value if isinstance(value, str) else None

    return ServerError(
        f"server error: {event.message or 'no message'}"
        + (f" ({event.code})" if event.code else ""),
        error_type=text("type") or "",
        code=event.code,
        param=text("param"),
        event_id=event.client_event_id,
    )


@asynccontextmanager
async def connect(
    url: str | None = None,
    *,
    api_key: str | None = None,
    model: str | None = None,
    dialect: Dialect = "ga",
    azure_endpoint: str | None = None,
    azure_deployment: str | None = None,
    api_version: str | None = None,
    token_provider: Callable[[], str | Awaitable[str]] | None = None,
    config: SessionConfig | None = None,
    tools: Sequence[tuple[FunctionTool | Mapping[str, Any], ToolHandler]] = (),
    audio_sink: AudioSink | None = None,
    event_buffer: int = DEFAULT_EVENT_BUFFER,
    keep_audio_ms: int = 0,
    extra_headers: Mapping[str, str] | None = None,
    extra_query: Mapping[str, str] | None = None,
    reconnect: Reconnect | None = None,
    connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
) -> AsyncIterator[Session]:
    """Open a Realtime session; the :class:`Session` lives inside the ``async with``.

    The endpoint is OpenAI (``wss://api.openai.com/v1/realtime?model=…``), Azure
    (``azure_endpoint=``; preview shape with ``api_version``, GA ``/openai/v1`` shape
    without), or any ``ws://``/``wss://`` ``url`` (the embedded server, a relay). Keys
    come from the arguments or ``OPENAI_API_KEY`` / ``AZURE_OPENAI_API_KEY``; a
    ``token_provider`` (sync or async) is called on every connect. Keys never appear in
    reprs, logs or exception messages.

    The session waits for the server's ``session.created``, then sends ``config`` (and
    registered ``tools``) and waits for ``session.updated``. Callers own timeouts: wrap
    in ``trio.fail_after``.

    Args:
        event_buffer: size of the :meth:`Session.events` channel (events), >= 1.
        keep_audio_ms: audio kept per content part in :attr:`Session.conversation` (ms):
            the audio received, and the microphone audio behind each committed user
            item (what a reconnect replays). 0 keeps none; counting is always on.
        audio_sink: where audio deltas go (a player); interruptions then use its playhead,
            and server VAD speech starts interrupt automatically.
        reconnect: come back after a failed connection (:class:`Reconnect`: back-off,
            configuration, tools and conversation restored, microphone audio buffered);
            ``None`` (default): a failure closes the session.
        connect_timeout_s: seconds for the WebSocket, ``session.created`` and the
            ``session.updated`` of ``config`` (``None``: no limit); then
            :class:`ConnectError`.
        stall_timeout_s: seconds of silence from the server while a response runs after
            which the connection is taken for dead: closed, or reconnected with
            ``reconnect`` (``None``: wait forever).

    Raises:
        ConfigurationError: bad arguments or no credentials (nothing is opened).
        AuthenticationError, ConnectError: the WebSocket could not be opened.
        ConnectionClosed: the server closed before ``session.created``.
        ServerError: the server refused ``config``.
    """
    if isinstance(event_buffer, bool) or not isinstance(event_buffer, int) or event_buffer < 1:
        raise ConfigurationError(f"event_buffer: must be an int >= 1, got {event_buffer!r}")
    if config is not None and not isinstance(config, SessionConfig):
        raise ConfigurationError(f"config: expected SessionConfig, got {type(config).__name__}")
    endpoint = resolve_endpoint(
        url,
        api_key=api_key,
        model=model,
        dialect=dialect,
        azure_endpoint=azure_endpoint,
        azure_deployment=azure_deployment,
        api_version=api_version,
        token_provider=token_provider,
        extra_headers=extra_headers,
        extra_query=extra_query,
    )
    # Validate tools and config before opening anything.
    registered = [
        (t if isinstance(t, FunctionTool) else FunctionTool.from_schema(t), h) for t, h in tools
    ]
    if config is not None:
        config.render(endpoint.dialect)
    for name, value in (
        ("connect_timeout_s", connect_timeout_s),
        ("stall_timeout_s", stall_timeout_s),
    ):
        if value is not None and (not isinstance(value, int | float) or not value > 0):
            raise ConfigurationError(f"{name}: must be a number > 0 or None, got {value!r}")
    try:
        async with trio.open_nursery() as nursery:
            session = Session(
                endpoint,
                nursery,
                event_buffer=event_buffer,
                audio_sink=audio_sink,
                keep_audio_ms=keep_audio_ms,
                reconnect=reconnect,
                stall_timeout_s=stall_timeout_s,
            )
            for schema, handler in registered:
                if not callable(handler):
                    raise ConfigurationError(f"tools[{schema.name}]: handler is not callable")
                session._tools[schema.name] = _Tool(schema, handler)
            if registered and (config is None or config.tools is None):
                config = (config or SessionConfig()).merged(
                    SessionConfig(tools=tuple(s for s, _ in registered))
                )
            try:
                with trio.fail_after(connect_timeout_s if connect_timeout_s else math.inf):
                    await session._start(config)
            except trio.TooSlowError:
                raise ConnectError(
                    f"no session from {endpoint.host} within {connect_timeout_s:g} s "
                    "(connect_timeout_s)"
                ) from None
            try:
                yield session
            finally:
                await session.aclose()
    except BaseExceptionGroup as group:
        # One error in one task is that error, not a group (STYLE.md).
        errors = group.exceptions
        if len(errors) == 1 and isinstance(errors[0], Exception):
            raise errors[0] from None
        raise
