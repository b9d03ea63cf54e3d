"""One connection of the embedded server: the Realtime session as the API runs it.

What this module owns: everything a session does after the WebSocket is accepted: the
effective configuration, the input audio buffer and server VAD, the conversation's items
(with their audio), responses streamed as the dialect's event sequence (with their
cancellation), the API's errors, session expiry and the fault injections of
:class:`Faults`. Client events are handled strictly in arrival order; a response streams
from its own task, and a cancellation waits for that task's ``response.done`` before the
next client event is looked at, so the order of events is deterministic.

What it must never do: answer for a brain (``_brains``), accept an event that
``_validate`` refuses, or block the reader on a response.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import trio
import trio_websocket

from realtalk.protocol import AudioFormat, SemanticVad, ServerVad, SessionConfig, audio_format_rate
from realtalk.server import _errors as errors
from realtalk.server._brains import Brain, BrainError, CallFunction, Say, Turn, TurnItem, run_brain
from realtalk.server._speech import synthesize
from realtalk.server._vad import EnergyVad, SpeechStarted, SpeechStopped, semantic_silence_ms
from realtalk.server._validate import validate_client_event
from realtalk.server._wire import (
    JSON,
    Dialect,
    assistant_part,
    default_session,
    event_name,
    from_pcm16,
    merge_session,
    message_item,
    new_id,
    stream_part,
    to_pcm16,
)

Int16Array = npt.NDArray[np.int16]
LogFn = Callable[[str], None]

#: The API refuses to commit less audio than this.
MIN_COMMIT_MS = 100


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour on purpose, for testing clients. All off by default.

    Attributes:
        drop_after_events: drop the TCP connection (no close frame) after this many
            server events.
        drop_mid_response: drop the connection right after the first audio (or text)
            delta of the first response.
        delay_ms: wait this long before every server event.
        stall_after_events: after this many server events, send nothing more (the
            socket stays open and client events are still read).
        corrupt_audio: the first audio delta of every response carries invalid base64.
        oversized_event_bytes: right after ``session.created``, send one
            ``rate_limits.updated`` padded with an extra field to about this many bytes.
        drop_mid_append: drop the connection when this many ``input_audio_buffer.append``
            events have arrived (the last one is not processed): the client is cut off
            while it streams audio.
        drop_during_tool_call: drop the connection right after the first
            ``response.function_call_arguments.done``, before the client's
            ``function_call_output`` can arrive.
        malformed_json_after_events: right after this many server events, send one text
            frame that is not JSON (an event cut short), then carry on.
        unknown_events: after every this many server events, send one event of a type
            the API does not have, with plausible fields, then carry on.
        error_burst: send this many unsolicited ``error`` events in a row (no
            ``event_id`` of the client's; cycling through ``server_error``,
            ``rate_limit_exceeded`` and ``conversation_already_has_active_response``),
            right after ``error_burst_after_events`` server events, then carry on.
        error_burst_after_events: when the burst comes (default: right after
            ``conversation.created``).

    Session expiry is not a fault but :attr:`ServerOptions.max_session_s`. The frames
    sent by ``malformed_json_after_events``, ``unknown_events`` and ``error_burst`` are
    not counted as events by the ``*_after_events`` options.
    """

    drop_after_events: int | None = None
    drop_mid_response: bool = False
    delay_ms: float = 0.0
    stall_after_events: int | None = None
    corrupt_audio: bool = False
    oversized_event_bytes: int | None = None
    drop_mid_append: int | None = None
    drop_during_tool_call: bool = False
    malformed_json_after_events: int | None = None
    unknown_events: int | None = None
    error_burst: int | None = None
    error_burst_after_events: int = 2


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How the embedded server behaves.

    Attributes:
        paced: stream audio deltas at real time instead of as fast as possible (the
            API's default is faster than real time).
        delta_ms: milliseconds of audio per audio delta.
        max_session_s: seconds before the session ends with ``session_expired`` (the
            API's limit is 60 minutes; set it short in tests).
        api_key: when set, the upgrade must carry exactly this key (``Bearer`` or
            ``api-key``); otherwise any non-empty credential is accepted.
        faults: fault injection, see :class:`Faults`.
        observer: called with an :class:`Observation` for every client event the
            server takes in (stamped as it starts handling it) and every server event
            it has written to the socket (stamped after the write), on the server's
            trio thread: keep it quick. For measuring a client from the server's side
            (``realtalk bench`` does).
    """

    paced: bool = False
    delta_ms: int = 100
    max_session_s: float = 3600.0
    api_key: str | None = None
    faults: Faults = field(default_factory=Faults)
    observer: Callable[[Observation], None] | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """One event through the embedded server, for :attr:`ServerOptions.observer`.

    Attributes:
        t_ns: ``time.monotonic_ns()`` when it arrived (``"in"``: the frame was read and
            parsed) or left (``"out"``: the frame was handed to the socket).
        direction: ``"in"`` (client event) or ``"out"`` (server event).
        event: the event as a JSON object (appends keep their base64 ``audio``).
        connection: the number of the connection on this server (1, 2, ...).
    """

    t_ns: int
    direction: Literal["in", "out"]
    event: JSON
    connection: int


class _Dropped(Exception):
    """Raised inside the session when a fault drops the connection."""


@dataclass(slots=True, eq=False)
class _Item:
    wire: JSON
    #: User input audio (at the input rate) or assistant audio sent (at the output rate).
    audio: Int16Array | None = None
    audio_rate: int = 24000
    previous_item_id: str | None = None
    #: Truncated by the client: a response still streaming it adds no more to it.
    truncated: bool = False


@dataclass(slots=True, eq=False)
class _Response:
    id: str
    out_of_band: bool
    metadata: Any
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    finished: trio.Event = field(default_factory=trio.Event)
    cancel_reason: str | None = None
    output: list[JSON] = field(default_factory=list)
    #: The item being streamed and whether its content part is open, for the done
    #: events a cancelled response still owes.
    open_item: _Item | None = None
    open_audio: bool = False
    open_text: list[str] = field(default_factory=list)
    output_tokens: int = 0


class ServerSession:
    """The server side of one accepted WebSocket."""

    def __init__(
        self,
        ws: trio_websocket.WebSocketConnection,
        *,
        dialect: Dialect,
        model: str,
        brain: Brain,
        options: ServerOptions,
        log: LogFn | None,
        number: int,
    ) -> None:
        self._ws = ws
        self.dialect: Dialect = dialect
        self._brain = brain
        self._options = options
        self._faults = options.faults
        self._log = log
        self._number = number
        self._started = time.monotonic()
        expires = int(time.time() + options.max_session_s)
        self.session = default_session(dialect, model, expires_at=expires)
        self._config = SessionConfig.from_wire(self.session, dialect)
        self._items: dict[str, _Item] = {}
        self._order: list[str] = []
        self._buffer: list[Int16Array] = []
        self._buffer_samples = 0
        self._input_clock = 0  # samples appended in the whole session (VAD's clock)
        self._vad: EnergyVad | None = None
        self._vad_item_id: str | None = None
        self._vad_start_ms: int | None = None
        self._speech_start_sample = 0
        self._active: _Response | None = None
        self._out_of_band: dict[str, _Response] = {}
        self._events_sent = 0
        self._appends_received = 0
        self._unknown_sent = 0
        self._audio_emitted = False
        self._send_lock = trio.Lock()
        self._stalled = False
        #: The session is closing (it expired): nothing more is sent.
        self._ending = False
        self._nursery: trio.Nursery | None = None
        self._conversation_id = new_id("conv")
        self._configure_vad()

    # -- formats ---------------------------------------------------------------------------

    @property
    def input_format(self) -> AudioFormat:
        return self._config.input_format or "pcm16"

    @property
    def output_format(self) -> AudioFormat:
        return self._config.output_format or "pcm16"

    @property
    def input_rate(self) -> int:
        return audio_format_rate(self.input_format)

    @property
    def output_rate(self) -> int:
        return audio_format_rate(self.output_format)

    def _audio_modality(self, response: Mapping[str, Any]) -> bool:
        key = "output_modalities" if self.dialect == "ga" else "modalities"
        modalities = response.get(key)
        if not isinstance(modalities, list):
            modalities = self.session.get(key) or ["audio"]
        return "audio" in modalities

    # -- sending ---------------------------------------------------------------------------

    async def emit(self, ga_name: str, **fields: Any) -> JSON:
        """Send one server event (the dialect's name, a fresh ``event_id``)."""
        event: JSON = {"type": event_name(self.dialect, ga_name), "event_id": new_id("event")}
        event.update(fields)
        await self._send(event)
        return event

    async def _send(self, event: JSON, text: str | None = None) -> None:
        faults = self._faults
        if self._stalled:
            # Dropped, not awaited forever: the reader (which sends errors and replies) must
            # keep reading client events, or trio-websocket stops answering pings too.
            return
        if faults.delay_ms:
            await trio.sleep(faults.delay_ms / 1000)
        # Shielded: a cancelled response must never leave half a frame on the socket.
        with trio.CancelScope(shield=True):
            async with self._send_lock:
                if self._ending:
                    return
                await self._write(event, text)
                # Extra frames go out under the same lock: nothing comes between.
                for extra in self._extra_frames():
                    await self._ws.send_message(extra)
        if faults.drop_after_events is not None and self._events_sent >= faults.drop_after_events:
            raise _Dropped
        if faults.stall_after_events is not None and self._events_sent >= faults.stall_after_events:
            self._stalled = True

    async def _write(self, event: JSON, text: str | None = None) -> None:
        """One event on the socket, counted and logged; the caller holds the send lock."""
        await self._ws.send_message(text or json.dumps(event, separators=(",", ":")))
        self._events_sent += 1
        if self._options.observer is not None:
            self._options.observer(Observation(time.monotonic_ns(), "out", event, self._number))
        if self._log is not None:
            self._log(self._describe("->", event))

    def _extra_frames(self) -> list[str]:
        """The frames the faults add after the event just sent (logged here)."""
        faults, count = self._faults, self._events_sent
        frames: list[JSON | str] = []
        if faults.malformed_json_after_events == count:
            # An event cut short, as a broken proxy would pass it on.
            frames.append('{"type":"response.output_text.delta","event_id":"event_cut","delta":"')
        if faults.unknown_events and count % faults.unknown_events == 0:
            frames.append(self._unknown_event())
        if faults.error_burst and faults.error_burst_after_events == count:
            session_id = str(self.session.get("id", ""))
            for n in range(faults.error_burst):
                error = _BURST_ERRORS[n % len(_BURST_ERRORS)](session_id)
                frames.append(error.event(event_id=new_id("event"), client_event_id=None))
        texts: list[str] = []
        for frame in frames:
            if isinstance(frame, str):
                texts.append(frame)
                if self._log is not None:
                    self._log(self._describe("->", {"type": "(not JSON)", "delta": frame}))
            else:
                texts.append(json.dumps(frame, separators=(",", ":")))
                if self._log is not None:
                    self._log(self._describe("->", frame))
        return texts

    def _unknown_event(self) -> JSON:
        """An event of a type the API does not have (yet), with fields like its own."""
        self._unknown_sent += 1
        event_id = new_id("event")
        kind = self._unknown_sent % 3
        if kind == 1:
            return {
                "type": "session.heartbeat",
                "event_id": event_id,
                "session_id": self.session.get("id"),
                "uptime_ms": round((time.monotonic() - self._started) * 1000),
            }
        if kind == 2:
            active = self._active
            return {
                "type": "response.output_audio.metrics",
                "event_id": event_id,
                "response_id": active.id if active is not None else None,
                "first_audio_ms": 180,
                "audio_ms_sent": 0,
            }
        return {
            "type": "conversation.item.annotated",
            "event_id": event_id,
            "item_id": self._order[-1] if self._order else None,
            "annotations": [{"type": "language", "value": "en"}],
        }

    def _describe(self, arrow: str, event: Mapping[str, Any]) -> str:
        elapsed = time.monotonic() - self._started
        kind = event.get("type", "?")
        detail = ""
        if kind == "error" and isinstance(event.get("error"), dict):
            detail = f" {event['error'].get('code')}: {event['error'].get('message')}"
        elif "delta" in event and isinstance(event["delta"], str) and "audio" not in kind:
            detail = f" {event['delta']!r}"
        return f"{elapsed:9.3f}s #{self._number} {arrow} {kind}{detail}"

    async def _error(self, error: errors.ApiError, client_event_id: str | None) -> None:
        await self._send(error.event(event_id=new_id("event"), client_event_id=client_event_id))

    # -- lifetime --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client closes it (or a fault drops it)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._expire)
                await self.emit("session.created", session=self.session)
                if self._faults.oversized_event_bytes:
                    await self._send_oversized(self._faults.oversized_event_bytes)
                await self.emit(
                    "conversation.created",
                    conversation={"id": self._conversation_id, "object": "realtime.conversation"},
                )
                await self._read_loop()
                nursery.cancel_scope.cancel()
        except* _Dropped:
            await self._drop()
        except* trio_websocket.ConnectionClosed:
            pass

    async def fail(self, exc: BaseException) -> None:
        """End the session after an unexpected error: a ``server_error`` event (as the API
        sends), then close code 1011. Never raises."""
        del exc
        with trio.move_on_after(1), contextlib.suppress(Exception):
            error = errors.server_error(str(self.session.get("id", "")))
            await self._ws.send_message(
                json.dumps(error.event(event_id=new_id("event"), client_event_id=None))
            )
            await self._ws.aclose(1011, "server error")

    async def _read_loop(self) -> None:
        while True:
            try:
                message = await self._ws.get_message()
            except trio_websocket.ConnectionClosed:
                return
            await self._handle(message)

    async def _drop(self) -> None:
        # An abrupt end: the TCP stream closes with no WebSocket close frame.
        stream = getattr(self._ws, "_stream", None)
        if stream is not None:
            await trio.aclose_forcefully(stream)

    async def _expire(self) -> None:
        await trio.sleep(self._options.max_session_s)
        expired = errors.session_expired(max(1, round(self._options.max_session_s / 60)))
        event = expired.event(event_id=new_id("event"), client_event_id=None)
        # As the live API ends it: the error, then the close with 1001 (going away) and the
        # error's message as the reason. Both under the send lock, and nothing sent after:
        # a response streaming now must neither slip a frame in between nor hit the
        # closing socket (which would end the session before the close frame went out).
        async with self._send_lock:
            self._ending = True
            await self._write(event)
            await self._ws.aclose(1001, expired.message)

    async def _send_oversized(self, size: int) -> None:
        limits = [{"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 0.06}]
        event = {"type": "rate_limits.updated", "event_id": new_id("event"), "rate_limits": limits}
        text = json.dumps(event)
        padding = max(0, size - len(text) - 16)
        text = text[:-1] + ', "padding": "' + "x" * padding + '"}'
        await self._send(event, text)

    # -- client events ---------------------------------------------------------------------

    async def _handle(self, message: str | bytes) -> None:
        arrived_ns = time.monotonic_ns()
        if isinstance(message, bytes):
            await self._error(errors.binary_frame(), None)
            return
        try:
            obj = json.loads(message, parse_constant=_refuse_constant)
        # JSONDecodeError, NaN / Infinity (which are not JSON), and nesting deeper than the
        # recursion limit (RecursionError would end the session and the whole server).
        except (ValueError, RecursionError):
            await self._error(errors.invalid_json(), None)
            return
        client_id = obj.get("event_id") if isinstance(obj, dict) else None
        client_id = client_id if isinstance(client_id, str) else None
        if self._log is not None and isinstance(obj, dict):
            self._log(self._describe("<-", obj))
        if self._options.observer is not None and isinstance(obj, dict):
            self._options.observer(Observation(arrived_ns, "in", obj, self._number))
        problem = validate_client_event(obj, self.dialect)
        if problem is not None:
            await self._error(problem, client_id)
            return
        handler = _HANDLERS.get(obj["type"])
        if handler is None:
            await self._error(errors.not_supported(obj["type"]), client_id)
            return
        await handler(self, obj, client_id)

    async def _on_session_update(self, obj: JSON, client_id: str | None) -> None:
        patch = obj["session"]
        negative = _negative_vad_duration(patch, self.dialect)
        if negative is not None:
            await self._error(negative, client_id)
            return
        if "model" in patch and patch["model"] != self.session.get("model"):
            await self._error(errors.model_immutable(), client_id)
            return
        new_voice = (
            patch.get("audio", {}).get("output", {}).get("voice")
            if self.dialect == "ga"
            else patch.get("voice")
        )
        old_voice = self._config.voice
        if self._audio_emitted and new_voice is not None and new_voice != old_voice:
            await self._error(errors.cannot_update_voice(), client_id)
            return
        patch = {k: v for k, v in patch.items() if k != "type"}
        self.session = merge_session(self.session, patch)
        self._config = SessionConfig.from_wire(self.session, self.dialect)
        self._configure_vad()
        await self.emit("session.updated", session=self.session)

    async def _on_transcription_session_update(self, obj: JSON, client_id: str | None) -> None:
        await self._error(errors.not_supported("transcription_session.update"), client_id)

    def _configure_vad(self) -> None:
        td = self._config.turn_detection
        if isinstance(td, ServerVad):
            silence = td.silence_duration_ms if td.silence_duration_ms is not None else 500
            threshold = td.threshold if td.threshold is not None else 0.5
        elif isinstance(td, SemanticVad):
            silence = semantic_silence_ms(td.eagerness or "auto")
            threshold = 0.5
        else:
            self._vad = None
            return
        padding = td.prefix_padding_ms if isinstance(td, ServerVad) else None
        vad = EnergyVad(
            sample_rate=self.input_rate,
            threshold=threshold,
            prefix_padding_ms=padding if padding is not None else 300,
            silence_duration_ms=silence,
            # The VAD's clock is the session's input clock: it starts where audio is now.
            start_sample=self._input_clock,
        )
        self._vad = vad

    async def _on_append(self, obj: JSON, client_id: str | None) -> None:
        self._appends_received += 1
        if self._appends_received == self._faults.drop_mid_append:
            raise _Dropped
        try:
            data = base64.b64decode(obj["audio"], validate=True)
        except (binascii.Error, ValueError):
            await self._error(errors.invalid_audio(), client_id)
            return
        samples = to_pcm16(data, self.input_format)
        self._buffer.append(samples)
        self._buffer_samples += len(samples)
        self._input_clock += len(samples)
        if self._vad is None:
            return
        for happening in self._vad.process(samples):
            if isinstance(happening, SpeechStarted):
                await self._speech_started(happening.audio_start_ms)
            elif isinstance(happening, SpeechStopped):
                await self._speech_stopped(happening.audio_end_ms)

    def _vad_flags(self) -> tuple[bool, bool]:
        td = self._config.turn_detection
        if isinstance(td, ServerVad | SemanticVad):
            return td.create_response is not False, td.interrupt_response is not False
        return False, False

    async def _speech_started(self, audio_start_ms: int) -> None:
        self._vad_item_id = new_id("item")
        self._vad_start_ms = audio_start_ms
        await self.emit(
            "input_audio_buffer.speech_started",
            audio_start_ms=audio_start_ms,
            item_id=self._vad_item_id,
        )
        _, interrupt = self._vad_flags()
        if interrupt and self._active is not None:
            await self._cancel(self._active, "turn_detected")

    async def _speech_stopped(self, audio_end_ms: int) -> None:
        item_id = self._vad_item_id or new_id("item")
        self._vad_item_id = None
        await self.emit(
            "input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id
        )
        await self._commit(item_id, span=(self._vad_start_ms, audio_end_ms))
        create, _ = self._vad_flags()
        if create and self._active is None:
            self._start_response({}, None)

    async def _on_commit(self, obj: JSON, client_id: str | None) -> None:
        buffered_ms = self._buffer_samples * 1000 / self.input_rate
        if buffered_ms < MIN_COMMIT_MS:
            await self._error(errors.input_audio_buffer_commit_empty(buffered_ms), client_id)
            return
        await self._commit(new_id("item"))

    async def _commit(self, item_id: str, span: tuple[int | None, int] | None = None) -> None:
        """Make the input buffer user item ``item_id``: all of it (a client commit), or
        for server VAD the ``(audio_start_ms, audio_end_ms)`` it reported, as the API
        does: audio before the speech (and its padding) is dropped, audio after it stays
        in the buffer for the next turn."""
        audio = np.concatenate(self._buffer) if self._buffer else np.zeros(0, np.int16)
        self._buffer, self._buffer_samples = [], 0
        if span is not None:
            first = self._input_clock - len(audio)  # the buffer's start on the input clock
            start_ms, end_ms = span
            start = first if start_ms is None else start_ms * self.input_rate // 1000
            end = end_ms * self.input_rate // 1000
            start = min(max(start - first, 0), len(audio))
            end = min(max(end - first, start), len(audio))
            audio, rest = audio[start:end], audio[end:]
            if len(rest):
                self._buffer, self._buffer_samples = [rest], len(rest)
        previous = self._order[-1] if self._order else None
        await self.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        wire = message_item(item_id, "user", [{"type": "input_audio", "transcript": None}])
        self._insert(_Item(wire, audio, self.input_rate), previous)
        await self._announce_item(wire, previous)

    async def _on_clear(self, obj: JSON, client_id: str | None) -> None:
        self._buffer, self._buffer_samples = [], 0
        await self.emit("input_audio_buffer.cleared")

    # -- items -----------------------------------------------------------------------------

    def _insert(self, item: _Item, previous: str | None) -> None:
        item_id = item.wire["id"]
        self._items[item_id] = item
        if previous == "root":
            self._order.insert(0, item_id)
        elif previous is not None and previous in self._items and previous != item_id:
            self._order.insert(self._order.index(previous) + 1, item_id)
        else:
            self._order.append(item_id)

    async def _announce_item(self, wire: JSON, previous: str | None) -> None:
        public = _without_audio(wire)
        if self.dialect == "beta":
            await self.emit("conversation.item.created", previous_item_id=previous, item=public)
        else:
            await self.emit("conversation.item.added", previous_item_id=previous, item=public)
            await self.emit("conversation.item.done", previous_item_id=previous, item=public)

    async def _on_item_create(self, obj: JSON, client_id: str | None) -> None:
        item = dict(obj["item"])
        previous = obj.get("previous_item_id")
        if previous is not None and previous != "root" and previous not in self._items:
            await self._error(
                errors.item_not_found(previous, event_type="conversation.item.create"), client_id
            )
            return
        if item.get("role") == "assistant" and any(
            isinstance(p, dict) and p.get("type") in ("audio", "output_audio")
            for p in item.get("content", [])
        ):
            await self._error(errors.assistant_audio_not_allowed(), client_id)
            return
        item_id = item.get("id") or new_id("item")
        if item_id in self._items:
            await self._error(errors.duplicate_item(item_id), client_id)
            return
        if previous is None and self._order:
            previous = self._order[-1]
        item["id"] = item_id
        item.setdefault("object", "realtime.item")
        item["status"] = "completed"
        audio, rate = None, self.input_rate
        for index, part in enumerate(item.get("content", []) or []):
            if isinstance(part, dict) and part.get("type") == "input_audio" and part.get("audio"):
                try:
                    data = base64.b64decode(part["audio"], validate=True)
                except (binascii.Error, ValueError):
                    param = f"item.content[{index}].audio"
                    await self._error(errors.invalid_audio(param), client_id)
                    return
                audio = to_pcm16(data, self.input_format)
        self._insert(_Item(item, audio, rate), previous)
        await self._announce_item(item, previous)

    async def _on_item_retrieve(self, obj: JSON, client_id: str | None) -> None:
        item = self._items.get(obj["item_id"])
        if item is None:
            await self._error(
                errors.item_not_found(obj["item_id"], event_type="conversation.item.retrieve"),
                client_id,
            )
            return
        wire = json.loads(json.dumps(item.wire))
        if item.audio is not None:
            fmt = self.input_format if wire.get("role") == "user" else self.output_format
            payload = base64.b64encode(from_pcm16(item.audio, fmt)).decode()
            for part in wire.get("content", []):
                if part.get("type") in ("input_audio", "audio", "output_audio"):
                    part["audio"] = payload
        await self.emit("conversation.item.retrieved", item=wire)

    async def _on_item_delete(self, obj: JSON, client_id: str | None) -> None:
        item_id = obj["item_id"]
        if item_id not in self._items:
            await self._error(
                errors.item_not_found(item_id, event_type="conversation.item.delete"), client_id
            )
            return
        del self._items[item_id]
        self._order.remove(item_id)
        await self.emit("conversation.item.deleted", item_id=item_id)

    async def _on_item_truncate(self, obj: JSON, client_id: str | None) -> None:
        item_id, end_ms = obj["item_id"], obj["audio_end_ms"]
        if end_ms < 0:  # the schema has no minimum; a negative slice would cut from the end
            await self._error(
                errors.value_below_minimum("audio_end_ms", end_ms, 0, integer=True), client_id
            )
            return
        item = self._items.get(item_id)
        if item is None:
            await self._error(
                errors.item_not_found(item_id, event_type="conversation.item.truncate"), client_id
            )
            return
        wire = item.wire
        if wire.get("type") != "message" or wire.get("role") != "assistant":
            await self._error(errors.truncate_unsupported_item(), client_id)
            return
        if obj["content_index"] != 0 or item.audio is None:
            await self._error(errors.truncate_unsupported_item(), client_id)
            return
        audio_ms = len(item.audio) * 1000 // item.audio_rate
        if end_ms > audio_ms:
            await self._error(errors.truncate_beyond_audio(audio_ms, end_ms), client_id)
            return
        item.audio = item.audio[: end_ms * item.audio_rate // 1000]
        item.truncated = True
        for part in wire.get("content", []):
            if "transcript" in part:
                part["transcript"] = ""
        await self.emit(
            "conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end_ms
        )

    # -- responses -------------------------------------------------------------------------

    async def _on_response_create(self, obj: JSON, client_id: str | None) -> None:
        request = obj.get("response") or {}
        if request.get("conversation") != "none" and self._active is not None:
            await self._error(
                errors.conversation_already_has_active_response(self._active.id), client_id
            )
            return
        self._start_response(request, client_id)

    async def _on_response_cancel(self, obj: JSON, client_id: str | None) -> None:
        wanted = obj.get("response_id")
        target = self._active
        if wanted is not None:
            target = self._out_of_band.get(wanted) or (
                self._active if self._active is not None and self._active.id == wanted else None
            )
        if target is None:
            await self._error(errors.response_cancel_not_active(), client_id)
            return
        await self._cancel(target, "client_cancelled")

    async def _on_output_audio_clear(self, obj: JSON, client_id: str | None) -> None:
        await self._error(errors.webrtc_only("output_audio_buffer.clear"), client_id)

    async def _cancel(self, response: _Response, reason: str) -> None:
        if response.cancel_reason is None:
            response.cancel_reason = reason
            response.scope.cancel()
        await response.finished.wait()

    def _start_response(self, request: JSON, client_id: str | None) -> None:
        out_of_band = request.get("conversation") == "none"
        response = _Response(new_id("resp"), out_of_band, request.get("metadata"))
        if out_of_band:
            self._out_of_band[response.id] = response
        else:
            self._active = response
        assert self._nursery is not None
        self._nursery.start_soon(self._run_response, response, request)

    def _response_object(
        self, response: _Response, request: Mapping[str, Any], status: str
    ) -> JSON:
        audio = self._audio_modality(request)
        obj: JSON = {
            "id": response.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": response.output,
            "conversation_id": None if response.out_of_band else self._conversation_id,
            "metadata": response.metadata,
            "usage": None,
        }
        if self.dialect == "ga":
            fmt = self.session["audio"]["output"]["format"]
            obj["output_modalities"] = ["audio"] if audio else ["text"]
            obj["audio"] = {"output": {"format": fmt, "voice": self._config.voice or "marin"}}
            obj["max_output_tokens"] = self.session.get("max_output_tokens", "inf")
        else:
            obj["modalities"] = ["text", "audio"] if audio else ["text"]
            obj["voice"] = self._config.voice or "alloy"
            obj["output_audio_format"] = self.output_format
            obj["temperature"] = self.session.get("temperature", 0.8)
            obj["max_output_tokens"] = self.session.get("max_response_output_tokens", "inf")
        return obj

    def _turn(self, request: Mapping[str, Any]) -> Turn:
        items = [self._turn_item(self._items[i]) for i in self._order]
        tools = request.get("tools", self.session.get("tools") or [])
        instructions = request.get("instructions", self.session.get("instructions") or "")
        return Turn(
            items=items,
            instructions=instructions,
            tools=[t for t in tools if isinstance(t, dict) and t.get("type") == "function"],
            audio=self._audio_modality(request),
            input_sample_rate=self.input_rate,
            output_sample_rate=self.output_rate,
            response=request,
        )

    @staticmethod
    def _turn_item(item: _Item) -> TurnItem:
        wire = item.wire
        kind = wire.get("type", "message")
        if kind == "function_call":
            text = wire.get("arguments", "")
        elif kind == "function_call_output":
            text = wire.get("output", "")
        else:
            text = "".join(
                str(p.get("text") or p.get("transcript") or "")
                for p in wire.get("content", [])
                if isinstance(p, dict)
            )
        return TurnItem(
            id=wire["id"],
            type=kind,
            role=wire.get("role"),
            text=text,
            audio=item.audio if wire.get("role") == "user" else None,
            name=wire.get("name"),
            call_id=wire.get("call_id"),
        )

    async def _run_response(self, response: _Response, request: JSON) -> None:
        status, details = "completed", None
        try:
            created = self._response_object(response, request, "in_progress")
            created["output"] = []
            await self.emit("response.created", response=created)
            await self.emit("rate_limits.updated", rate_limits=_rate_limits())
            with response.scope:
                try:
                    outputs = await run_brain(self._brain, self._turn(request))
                except BrainError as exc:
                    status = "failed"
                    details = {
                        "type": "failed",
                        "error": {
                            "type": "server_error",
                            "code": "brain_error",
                            "message": str(exc),
                        },
                    }
                    outputs = []
                for index, output in enumerate(outputs):
                    if isinstance(output, Say):
                        await self._say(response, request, index, output)
                    elif isinstance(output, CallFunction):
                        await self._call(response, index, output)
            if response.cancel_reason is not None:
                status = "cancelled"
                details = {"type": "cancelled", "reason": response.cancel_reason}
                await self._close_open_item(response)
            done = self._response_object(response, request, status)
            done["status_details"] = details
            done["usage"] = _usage(response.output_tokens)
            await self.emit("response.done", response=done)
        finally:
            if self._active is response:
                self._active = None
            self._out_of_band.pop(response.id, None)
            response.finished.set()

    async def _say(self, response: _Response, request: JSON, index: int, say: Say) -> None:
        audio_mode = self._audio_modality(request)
        item_id = new_id("item")
        empty = message_item(item_id, "assistant", [], status="in_progress")
        item = _Item(empty, None, self.output_rate)
        await self._open_item(response, index, item)
        common = {
            "response_id": response.id,
            "item_id": item_id,
            "output_index": index,
            "content_index": 0,
        }
        await self.emit("response.content_part.added", **common, part=stream_part(audio_mode))
        response.open_audio = audio_mode
        words = _words(say.text)
        if audio_mode:
            if say.audio is not None:
                samples = say.audio
            else:  # espeak-ng runs as a subprocess: keep it off the event loop
                samples = await trio.to_thread.run_sync(
                    lambda: synthesize(say.text, sample_rate=self.output_rate)
                )
            item.audio = np.zeros(0, np.int16)
            step = max(1, self.output_rate * self._options.delta_ms // 1000)
            chunks = max(1, math.ceil(len(samples) / step))
            # Transcript words spread evenly over the audio deltas, as the API interleaves them.
            word_chunk = [i * chunks // len(words) for i in range(len(words))]
            started = trio.current_time()
            for n in range(chunks):
                if item.truncated:
                    break  # the client cut the item while it streamed: it stays cut
                chunk = samples[n * step : (n + 1) * step]
                payload = base64.b64encode(from_pcm16(chunk, self.output_format)).decode()
                if self._faults.corrupt_audio and n == 0:
                    payload = "!!" + payload[2:]
                await self.emit("response.output_audio.delta", **common, delta=payload)
                item.audio = samples[: (n + 1) * step]  # what was sent so far (a view)
                self._audio_emitted = True
                if self._faults.drop_mid_response:
                    raise _Dropped  # right after the first delta, before its transcript
                for word, at in zip(words, word_chunk, strict=True):
                    if at == n:
                        response.open_text.append(word)
                        await self.emit(
                            "response.output_audio_transcript.delta", **common, delta=word
                        )
                if self._options.paced:
                    await trio.sleep_until(started + (n + 1) * step / self.output_rate)
                else:
                    await trio.lowlevel.checkpoint()
        else:
            for word in words:
                response.open_text.append(word)
                await self.emit("response.output_text.delta", **common, delta=word)
                if self._faults.drop_mid_response:
                    raise _Dropped
                await trio.lowlevel.checkpoint()
        response.output_tokens += len(words) + (
            len(item.audio) // 1200 if item.audio is not None else 0
        )
        await self._close_open_item(response)

    async def _open_item(self, response: _Response, index: int, item: _Item) -> None:
        response.open_item = item
        response.open_text = []
        wire = item.wire
        await self.emit(
            "response.output_item.added", response_id=response.id, output_index=index, item=wire
        )
        if not response.out_of_band:
            previous = self._order[-1] if self._order else None
            item.previous_item_id = previous
            self._insert(item, previous)
            await self._announce_added(wire, previous)

    async def _announce_added(self, wire: JSON, previous: str | None) -> None:
        name = "conversation.item.added" if self.dialect == "ga" else "conversation.item.created"
        await self.emit(name, previous_item_id=previous, item=_without_audio(wire))

    async def _close_open_item(self, response: _Response) -> None:
        """The done events of the item being streamed (also when it was cut short)."""
        item = response.open_item
        if item is None:
            return
        response.open_item = None
        wire = item.wire
        index = len(response.output)
        cancelled = response.cancel_reason is not None
        if wire["type"] == "message":
            # A truncated item keeps no transcript (the API drops it on truncation).
            text = "" if item.truncated else "".join(response.open_text)
            common = {
                "response_id": response.id,
                "item_id": wire["id"],
                "output_index": index,
                "content_index": 0,
            }
            if response.open_audio:
                await self.emit("response.output_audio.done", **common)
                await self.emit("response.output_audio_transcript.done", **common, transcript=text)
            else:
                await self.emit("response.output_text.done", **common, text=text)
            await self.emit(
                "response.content_part.done", **common, part=stream_part(response.open_audio, text)
            )
            wire["content"] = [assistant_part(self.dialect, response.open_audio, text)]
        wire["status"] = "incomplete" if cancelled or item.truncated else "completed"
        response.output.append(_without_audio(wire))
        await self.emit(
            "response.output_item.done",
            response_id=response.id,
            output_index=index,
            item=_without_audio(wire),
        )
        if not response.out_of_band and self.dialect == "ga":
            await self.emit(
                "conversation.item.done",
                previous_item_id=item.previous_item_id,
                item=_without_audio(wire),
            )

    async def _call(self, response: _Response, index: int, call: CallFunction) -> None:
        item_id, call_id = new_id("item"), new_id("call")
        wire: JSON = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call_id,
            "arguments": "",
        }
        item = _Item(wire)
        await self._open_item(response, index, item)
        arguments = call.arguments_json
        common = {
            "response_id": response.id,
            "item_id": item_id,
            "output_index": index,
            "call_id": call_id,
        }
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            if piece:
                await self.emit("response.function_call_arguments.delta", **common, delta=piece)
        done: JSON = {**common, "arguments": arguments}
        if self.dialect == "ga":
            done["name"] = call.name
        await self.emit("response.function_call_arguments.done", **done)
        if self._faults.drop_during_tool_call:
            raise _Dropped  # the client has the call, and can never answer it
        wire["arguments"] = arguments
        response.output_tokens += max(1, len(arguments) // 4)
        await self._close_open_item(response)


#: The unsolicited errors of :attr:`Faults.error_burst`, in turn.
_BURST_ERRORS: tuple[Callable[[str], errors.ApiError], ...] = (
    errors.server_error,
    lambda session_id: errors.rate_limit_exceeded(),
    lambda session_id: errors.conversation_already_has_active_response(new_id("resp")),
)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _negative_vad_duration(patch: Mapping[str, Any], dialect: Dialect) -> errors.ApiError | None:
    """The error for a negative turn detection duration in a ``session.update`` patch.

    The schema gives these integers no minimum, and :class:`EnergyVad` refuses negatives
    with ``ConfigurationError``, which would end the session and the whole server.
    """
    if dialect == "ga":
        where = "session.audio.input.turn_detection"
        turn_detection = patch.get("audio", {}).get("input", {}).get("turn_detection")
    else:
        where, turn_detection = "session.turn_detection", patch.get("turn_detection")
    if not isinstance(turn_detection, dict):
        return None
    for key, value in turn_detection.items():
        negative = isinstance(value, int | float) and value < 0
        if key in ("prefix_padding_ms", "silence_duration_ms") and negative:
            return errors.value_below_minimum(f"{where}.{key}", value, 0, integer=True)
    return None


def _without_audio(wire: JSON) -> JSON:
    """An item as events carry it: content without audio bytes (a copy)."""
    out = dict(wire)
    if isinstance(wire.get("content"), list):
        out["content"] = [{k: v for k, v in p.items() if k != "audio"} for p in wire["content"]]
    return out


def _words(text: str) -> list[str]:
    """``text`` split into word-sized deltas that join back to it exactly."""
    words: list[str] = []
    for n, word in enumerate(text.split(" ")):
        words.append(word if n == 0 else " " + word)
    return [w for w in words if w]


def _rate_limits() -> list[JSON]:
    return [
        {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
        {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
    ]


def _usage(output_tokens: int) -> JSON:
    input_tokens = 120
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {"text_tokens": input_tokens, "audio_tokens": 0, "cached_tokens": 0},
        "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0},
    }


_Handler = Callable[[ServerSession, JSON, "str | None"], Any]
_HANDLERS: dict[str, _Handler] = {
    "session.update": ServerSession._on_session_update,
    "transcription_session.update": ServerSession._on_transcription_session_update,
    "input_audio_buffer.append": ServerSession._on_append,
    "input_audio_buffer.commit": ServerSession._on_commit,
    "input_audio_buffer.clear": ServerSession._on_clear,
    "conversation.item.create": ServerSession._on_item_create,
    "conversation.item.retrieve": ServerSession._on_item_retrieve,
    "conversation.item.delete": ServerSession._on_item_delete,
    "conversation.item.truncate": ServerSession._on_item_truncate,
    "response.create": ServerSession._on_response_create,
    "response.cancel": ServerSession._on_response_cancel,
    "output_audio_buffer.clear": ServerSession._on_output_audio_clear,
}
