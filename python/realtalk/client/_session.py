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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import trio

from realtalk import _core
from realtalk._core import AudioDelta
from realtalk.client._endpoint import resolve_endpoint
from realtalk.client._transport import WebSocketTransport, open_transport
from realtalk.exceptions import (
    AudioFormatError,
    ConfigurationError,
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
from realtalk.protocol._conversation import Conversation
from realtalk.protocol._events import (
    AudioDone,
    ErrorEvent,
    FunctionCallArgumentsDone,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    ResponseDone,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    UnknownEvent,
)
from realtalk.protocol._state import ResponseState

__all__ = [
    "DEFAULT_EVENT_BUFFER",
    "AudioSink",
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
        transport: WebSocketTransport,
        connection: Connection,
        nursery: trio.Nursery,
        *,
        event_buffer: int,
        audio_sink: AudioSink | None,
    ) -> None:
        self._ws = transport
        self._conn = connection
        self._nursery = nursery
        self._send_lock = trio.Lock()
        self._events_in, self._events_out = trio.open_memory_channel[Event | ToolCallFinished](
            event_buffer
        )
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

    async def _flush(self) -> None:
        """Write the connection's outbox, in order, whoever produced it."""
        async with self._send_lock:
            for text in self._conn.data_to_send():
                await self._ws.send_text(text)

    async def _reader(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                message = await self._ws.receive()
                try:
                    events = self._conn.receive(message)
                except RemoteProtocolError as exc:
                    # The server's mistake is reported, not fatal: the session goes on.
                    events = [UnknownEvent(type="", raw={}, problem=str(exc))]
                for event in events:
                    await self._dispatch(event)
                await self._flush()
        except ConnectionClosed as exc:
            self._closed = exc
        finally:
            self._created.set()
            for waiter in self._update_waiters.values():
                waiter.done.set()
            self._events_in.close()

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, AudioDelta) and self._sink is not None:
            self._sink.push(event)
            return
        match event:
            case SessionCreated():
                self._created.set()
            case SessionUpdated():
                # session.updated does not echo the event_id: answer the oldest update.
                if self._update_waiters:
                    key = next(iter(self._update_waiters))
                    waiter = self._update_waiters.pop(key)
                    waiter.result = event
                    waiter.done.set()
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
        await self._nursery.start(self._reader)
        await self._created.wait()
        self._check_open()
        if config is not None:
            await self.update(config)

    async def aclose(self) -> None:
        """Close the WebSocket (code 1000) and stop the session's tasks.

        Waits at most ``realtalk.client.CLOSE_TIMEOUT`` seconds (2) for the server to answer
        the close handshake; the socket is closed either way.
        """
        if self._closed is None:
            self._closed = ConnectionClosed("the session was closed by aclose()", code=1000)
        with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
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
        self._check_open()
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
        return result

    # -- talking --------------------------------------------------------------------------

    async def send_text(self, text: str, *, respond: bool = True) -> str:
        """Add a user message and, unless ``respond=False``, ask for a response.

        Returns the ``event_id`` of the ``conversation.item.create``.
        """
        self._check_open()
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
        if len(pcm):
            self._conn.append_audio(pcm)
            await self._flush()

    async def commit_audio(self) -> None:
        """Turn the appended audio into a user item (push-to-talk; VAD commits by itself).

        Audio appended at another rate than the session's ends its resampled stream
        here: whatever the resampler still owes is sent first, and the next append
        starts a new stream.
        """
        self._check_open()
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
        self._check_open()
        for resampler in self._resamplers.values():
            resampler.reset()
        self._conn.send(InputAudioBufferClear())
        await self._flush()

    async def create_response(self, response: Mapping[str, Any] | None = None) -> str:
        """Ask for a response now, or as soon as the one in progress is done.

        ``response`` holds per-response settings in the dialect's wire shape (e.g.
        ``{"instructions": "…"}``). Returns the ``event_id`` the request carries.
        """
        self._check_open()
        event_id = self._conn.create_response(dict(response) if response is not None else None)
        await self._flush()
        return event_id

    async def cancel_response(self) -> bool:
        """Cancel the response in progress; ``False`` when there was none (nothing sent)."""
        self._check_open()
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
        self._check_open()
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
        if self._closed is not None:
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

    def events(self) -> trio.MemoryReceiveChannel[Event | ToolCallFinished]:
        """The session's events, in order, as a bounded trio channel.

        Holds ``event_buffer`` events (:func:`connect` argument, default 256,
        ``realtalk.client.DEFAULT_EVENT_BUFFER``); when full, the reader waits for you, and
        the server for the reader, so nothing is ever dropped. Iterate it (``async for event
        in session.events()``) for the whole session. It ends when the session closes.

        Items: typed server events (:class:`realtalk.protocol.ServerEvent` subclasses,
        :class:`~realtalk.protocol.UnknownEvent` for the rest),
        :class:`realtalk.core.AudioDelta` when no audio sink is attached, high-level
        conversation events, :class:`~realtalk.protocol.Interrupted`,
        :class:`~realtalk.protocol.ConfigDriftDetected` and :class:`ToolCallFinished`.
        """
        return self._events_out

    def statistics(self) -> SessionStatistics:
        """A frozen snapshot of the session's counters."""
        return SessionStatistics(
            connection=self._conn.statistics(),
            events_waiting=self._events_in.statistics().current_buffer_used,
            tool_calls=self._tool_calls,
            tool_errors=self._tool_errors,
        )


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
        keep_audio_ms: received audio kept per item in :attr:`Session.conversation`.
        audio_sink: where audio deltas go (a player); interruptions then use its playhead,
            and server VAD speech starts interrupt automatically.

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
    connection = Connection(endpoint.dialect, keep_audio_ms=keep_audio_ms)
    async with open_transport(endpoint) as transport:
        try:
            async with trio.open_nursery() as nursery:
                session = Session(
                    transport,
                    connection,
                    nursery,
                    event_buffer=event_buffer,
                    audio_sink=audio_sink,
                )
                for schema, handler in registered:
                    if not callable(handler):
                        raise ConfigurationError(f"tools[{schema.name}]: handler is not callable")
                    session._tools[schema.name] = _Tool(schema, handler)
                if registered and (config is None or config.tools is None):
                    config = (config or SessionConfig()).merged(
                        SessionConfig(tools=tuple(s for s, _ in registered))
                    )
                await session._start(config)
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
