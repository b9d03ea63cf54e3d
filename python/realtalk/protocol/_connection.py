"""The sans-IO Realtime session: text in, events out; calls in, text out.

What this module owns: one session's protocol state (the response arbitration of
``_state``, the conversation cache, the effective configuration, which client event
caused which server error, per-item audio counters for interruptions) and the JSON text
of every client event. The I/O layer (``realtalk.client``) feeds received messages to
:meth:`Connection.receive` and writes whatever :meth:`Connection.data_to_send` returns.

What it must never do: touch a socket, a clock or trio; raise on server data (server
``error`` events and odd events are data); send ``response.create`` while a response is
active.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from realtalk import _core
from realtalk._core import AudioDelta
from realtalk.exceptions import EventParseError, LocalProtocolError, RemoteProtocolError
from realtalk.protocol._config import (
    AudioFormat,
    ConfigDrift,
    Dialect,
    SemanticVad,
    ServerVad,
    SessionConfig,
    audio_format_rate,
    config_drift,
)
from realtalk.protocol._conversation import Conversation, ConversationEvent, Item, ItemAppended
from realtalk.protocol._events import (
    ClientEvent,
    ConversationItemCreate,
    ConversationItemDelete,
    ConversationItemTruncate,
    ErrorEvent,
    InputAudioCommitted,
    ResponseCancel,
    ResponseCreate,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    UnknownEvent,
    parse_server_object,
)
from realtalk.protocol._input_audio import InputAudioKeeper
from realtalk.protocol._state import (
    RESPONSE_TRANSITIONS,
    InterruptAction,
    InterruptDecision,
    ResponseAction,
    ResponseState,
    ResponseTrigger,
    decide_interrupt,
    samples_to_ms,
)

__all__ = [
    "ConfigDriftDetected",
    "Connection",
    "ConnectionStatistics",
    "Event",
    "Interrupted",
]

Int16Array = npt.NDArray[np.int16]

SENT_MEMORY = 1024
"""How many sent client events are remembered to name the cause of a server error."""
REQUEST_TAG = "realtalk_event_id"
"""The ``response.metadata`` key holding the ``event_id`` of the request that asked
for the response."""
METADATA_MAX_PAIRS = 16
"""The API's limit on metadata pairs."""


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Playback of an assistant item was interrupted, and what was sent about it.

    ``played_ms`` is what the listener heard (whole ms), ``audio_end_ms`` the truncation
    point sent (``TRUNCATE``), ``action`` what was sent, ``rule`` the row of
    ``realtalk.protocol.INTERRUPT_RULES`` that decided, ``cancelled_response`` whether a
    ``response.cancel`` went out with it.
    """

    item_id: str | None
    content_index: int
    played_ms: int
    audio_end_ms: int
    action: InterruptAction
    rule: str
    cancelled_response: bool


@dataclass(frozen=True, slots=True)
class ConfigDriftDetected:
    """The ``session.updated`` echo differs from the ``session.update`` that was sent:
    the server ignored (``kind == "ignored"``) or changed fields."""

    drift: tuple[ConfigDrift, ...]


Event = ServerEvent | AudioDelta | ConversationEvent | Interrupted | ConfigDriftDetected


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    """A snapshot of one connection's counters.

    Sample counts are at the session's input rate (appended) and output rate (received);
    ``*_ms`` fields are those counts in milliseconds. ``audio_received_samples`` counts
    every audio sample delivered (out-of-band responses' included);
    ``audio_dropped_samples`` counts audio of interrupted items that arrived after the
    cut and was not delivered.
    """

    events_sent: int
    events_received: int
    sent_by_type: Mapping[str, int]
    received_by_type: Mapping[str, int]
    audio_appended_samples: int
    audio_appended_ms: int
    audio_received_samples: int
    audio_received_ms: int
    audio_dropped_samples: int
    responses_created: int
    responses_done: int
    responses_queued: int
    errors: int
    response_state: ResponseState


@dataclass(slots=True)
class _PendingCreate:
    event_id: str
    response: dict[str, Any] | None
    cancelled: bool = False


#: Cut audio parts remembered, to drop their late deltas.
_CUT_MEMORY = 64


def _as_object(text: str | bytes) -> dict[str, Any] | None:
    """``text`` as a JSON object, or ``None`` if it is not one."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        return None
    return obj if isinstance(obj, dict) else None


class Connection:
    """One Realtime session's protocol state machine, for either dialect.

    Args:
        dialect: ``"ga"`` (the current API) or ``"beta"`` (Azure preview deployments).
        keep_audio_ms: milliseconds of received audio to keep per content part in the
            :attr:`conversation` (0 keeps none; audio is always counted).
        event_id_prefix: prefix of the ``event_id`` given to every client event, which the
            server echoes in errors so they can be traced to the call that caused them.

    Every method that sends adds JSON text to the outbox; :meth:`data_to_send` drains it.
    """

    def __init__(
        self, dialect: Dialect = "ga", *, keep_audio_ms: int = 0, event_id_prefix: str = "rt"
    ) -> None:
        if dialect not in ("ga", "beta"):
            raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
        self.dialect: Dialect = dialect
        self._keep_audio_ms = keep_audio_ms
        self.conversation = Conversation(keep_audio_ms=keep_audio_ms)
        self.config = SessionConfig()
        """The effective configuration, from the last ``session.created``/``updated``."""
        self._input_audio = InputAudioKeeper(keep_audio_ms, self.input_sample_rate)
        self.response_state = ResponseState.IDLE
        self.active_response_id: str | None = None
        """The id of the response in progress, once ``response.created`` named it."""
        self._prefix = event_id_prefix
        self._next_id = 0
        self._outbox: list[str] = []
        self._queue: deque[_PendingCreate] = deque()
        self._in_flight_create: _PendingCreate | None = None
        self._sent: OrderedDict[str, str] = OrderedDict()
        self._updates: deque[tuple[str, dict[str, Any]]] = deque()
        self._sent_counts: Counter[str] = Counter()
        self._received_counts: Counter[str] = Counter()
        self._appended_samples = 0
        self._received_samples = 0
        self._errors = 0
        self._out_of_band_requests: set[str] = set()
        self._out_of_band_responses: set[str] = set()
        # The assistant item whose audio arrived last: the default target of interrupt().
        self._audio_item: tuple[str, int] | None = None
        # Audio parts the client cut: their late deltas are dropped (insertion-ordered,
        # the oldest forgotten beyond _CUT_MEMORY).
        self._cut: dict[tuple[str, int], None] = {}
        self._dropped_samples = 0

    # -- formats --------------------------------------------------------------------------

    @property
    def input_format(self) -> AudioFormat:
        """The audio format the server expects appended audio in (``pcm16`` by default)."""
        return self.config.input_format or "pcm16"

    @property
    def output_format(self) -> AudioFormat:
        """The audio format of the server's audio deltas (``pcm16`` by default)."""
        return self.config.output_format or "pcm16"

    @property
    def input_sample_rate(self) -> int:
        """Hz of appended audio: 24000 for PCM16, 8000 for G.711."""
        return audio_format_rate(self.input_format)

    @property
    def output_sample_rate(self) -> int:
        """Hz of received audio: 24000 for PCM16, 8000 for G.711."""
        return audio_format_rate(self.output_format)

    # -- sending --------------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """The JSON texts to write to the socket, in order, emptying the outbox."""
        out, self._outbox = self._outbox, []
        return out

    def new_event_id(self) -> str:
        """A fresh client ``event_id``."""
        self._next_id += 1
        return f"{self._prefix}_{self._next_id}"

    def _remember(self, event_id: str, event_type: str) -> None:
        self._sent[event_id] = event_type
        if len(self._sent) > SENT_MEMORY:
            self._sent.popitem(last=False)
        self._sent_counts[event_type] += 1

    def _emit(self, event: ClientEvent) -> str:
        event_id = event.event_id or self.new_event_id()
        wire = event.to_wire(self.dialect)
        wire["event_id"] = event_id
        text = json.dumps(wire, ensure_ascii=False, separators=(",", ":"))
        if not text.isascii():
            try:
                text.encode()
            except UnicodeEncodeError:
                # A lone surrogate (in an id the server sent, say) has no UTF-8 form and
                # could not go out in a text frame: escaped, it is valid JSON all the same.
                text = json.dumps(wire, separators=(",", ":"))
        self._outbox.append(text)
        self._remember(event_id, event.TYPE)
        if event.TYPE == "input_audio_buffer.commit":
            self._input_audio.commit_sent(event_id)
        elif event.TYPE == "input_audio_buffer.clear":
            self._input_audio.clear_sent()
        return event_id

    def send(self, event: ClientEvent) -> str | None:
        """Queue one client event for sending; its ``event_id`` (assigned if ``None``),
        or ``None`` for a ``response.cancel`` with nothing to cancel (nothing is sent).

        ``response.create`` and ``response.cancel`` go through the response arbitration
        (:meth:`create_response`, :meth:`cancel_response`); ``session.update`` through
        :meth:`update_session`.
        """
        if isinstance(event, ResponseCreate):
            return self.create_response(event.response, event_id=event.event_id)
        if isinstance(event, ResponseCancel):
            return self.cancel_response()
        if isinstance(event, SessionUpdate):
            return self.update_session(event.config, event_id=event.event_id)
        return self._emit(event)

    def update_session(self, config: SessionConfig, *, event_id: str | None = None) -> str:
        """Send ``session.update``; the echo in ``session.updated`` is checked for drift.

        Raises:
            ConfigurationError: the configuration cannot be expressed in this dialect.
        """
        rendered = config.render(self.dialect)
        event_id = self._emit(SessionUpdate(config=config, event_id=event_id))
        self._updates.append((event_id, rendered))
        return event_id

    def add_item(self, item: dict[str, Any], *, previous_item_id: str | None = None) -> str:
        """Send ``conversation.item.create`` for a wire item object."""
        return self._emit(ConversationItemCreate(item=item, previous_item_id=previous_item_id))

    def add_user_text(self, text: str) -> str:
        """Send a user message holding ``text``."""
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        return self.add_item(item)

    def add_function_output(self, call_id: str, output: str) -> str:
        """Send the result of function call ``call_id`` (``output`` is usually JSON)."""
        return self.add_item({"type": "function_call_output", "call_id": call_id, "output": output})

    def input_audio_base64(self, samples: Int16Array) -> str:
        """int16 samples at the input rate as the base64 the server takes for input
        audio (PCM16 little-endian, or G.711 encoded here)."""
        fmt = self.input_format
        if fmt == "pcm16":
            return _core.b64encode(np.ascontiguousarray(samples, dtype="<i2").tobytes())
        encoded = _core.ulaw_encode(samples) if fmt == "g711_ulaw" else _core.alaw_encode(samples)
        return _core.b64encode(encoded)

    def append_audio(self, samples: Int16Array) -> str:
        """Send ``input_audio_buffer.append`` for int16 samples already in the session's
        input format's rate (24 kHz PCM16 or 8 kHz G.711, which is encoded here).

        Returns the JSON text's event type (appends carry no ``event_id``: the server
        never answers them, and ids would cost bytes at 50 events a second).
        """
        if self.input_format == "pcm16":
            text = _core.encode_append(samples)
        else:
            audio = self.input_audio_base64(samples)
            text = '{"type":"input_audio_buffer.append","audio":"' + audio + '"}'
        self._outbox.append(text)
        self._appended_samples += len(samples)
        self._input_audio.appended(samples)
        self._sent_counts["input_audio_buffer.append"] += 1
        return "input_audio_buffer.append"

    # -- response arbitration --------------------------------------------------------------

    def _step(self, trigger: ResponseTrigger) -> ResponseAction:
        state, action = RESPONSE_TRANSITIONS.get(
            (self.response_state, trigger), (self.response_state, ResponseAction.NOTHING)
        )
        self.response_state = state
        return action

    def _send_create(self, pending: _PendingCreate) -> None:
        self._in_flight_create = pending
        # Tag the request so that its response.created can be told from one the server
        # started by VAD (the server echoes metadata in the response object).
        response = dict(pending.response or {})
        metadata = response.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
        if len(metadata) < METADATA_MAX_PAIRS:
            metadata[REQUEST_TAG] = pending.event_id
        response["metadata"] = metadata
        self._emit(ResponseCreate(response=response, event_id=pending.event_id))

    def _send_queued(self) -> None:
        if self._queue:
            pending = self._queue.popleft()
            self.response_state = ResponseState.REQUESTED
            self._send_create(pending)

    def create_response(
        self, response: dict[str, Any] | None = None, *, event_id: str | None = None
    ) -> str:
        """Ask for a response: sent now when none is active, else queued until
        ``response.done``. A plain request (no ``response`` settings) already queued is
        not queued twice. Returns the ``event_id`` the ``response.create`` carries (or
        will carry, or the one it coalesced into).

        An out-of-band request (``response["conversation"] == "none"``) writes nothing to
        the conversation and may run beside the default response: it is sent at once,
        and neither its response nor its items touch the arbitration or
        :attr:`conversation`.

        Every request carries ``metadata["realtalk_event_id"]`` (its ``event_id``),
        which the server echoes in the response object: that is how realtalk tells its
        own responses from those server VAD starts.
        """
        pending = _PendingCreate(event_id or self.new_event_id(), response)
        if response is not None and response.get("conversation") == "none":
            self._out_of_band_requests.add(pending.event_id)
            in_flight = self._in_flight_create
            self._send_create(pending)
            self._in_flight_create = in_flight
            return pending.event_id
        action = self._step(ResponseTrigger.CREATE)
        if action is ResponseAction.SEND_CREATE:
            self._send_create(pending)
        elif action is ResponseAction.QUEUE_CREATE:
            if response is None:
                for queued in self._queue:
                    if queued.response is None:
                        return queued.event_id
            self._queue.append(pending)
        return pending.event_id

    def cancel_response(self) -> str | None:
        """Cancel the response in progress: sends ``response.cancel`` (and forgets queued
        requests) when one is requested or active; returns its ``event_id``, or ``None``
        when there was nothing to cancel (nothing is sent then)."""
        action = self._step(ResponseTrigger.CANCEL)
        if action is ResponseAction.SEND_CANCEL:
            self._queue.clear()
            if self._in_flight_create is not None:
                self._in_flight_create.cancelled = True  # never retried
            return self._emit(ResponseCancel(response_id=self.active_response_id))
        return None

    @property
    def pending_request_id(self) -> str | None:
        """The ``event_id`` of our ``response.create`` that the server has neither
        started (``response.created`` carrying it in ``metadata``) nor refused."""
        pending = self._in_flight_create
        return pending.event_id if pending is not None else None

    @property
    def queued_responses(self) -> int:
        """Response requests waiting for the active response to finish."""
        return len(self._queue)

    def drop_audio_of(self, item_id: str, content_index: int = 0) -> None:
        """Drop (and count) every further audio delta of this part: it is being cut.

        :meth:`interrupt` does this itself; call it first when the player needs time to
        stop, so that deltas arriving meanwhile are not queued behind the cut.
        """
        self._cut[(item_id, content_index)] = None
        if len(self._cut) > _CUT_MEMORY:
            del self._cut[next(iter(self._cut))]

    def successor(self) -> Connection:
        """A fresh state machine with this one's settings (dialect, kept audio, event id
        prefix), for the next WebSocket of the same session after this one failed."""
        return Connection(
            self.dialect, keep_audio_ms=self._keep_audio_ms, event_id_prefix=self._prefix
        )

    # -- interruption ----------------------------------------------------------------------

    def audio_item(self) -> tuple[str, int] | None:
        """(item_id, content_index) of the assistant audio received last, if any."""
        return self._audio_item

    def interrupt(
        self,
        *,
        played_samples: int,
        item_id: str | None = None,
        content_index: int = 0,
        server_cancels: bool = False,
    ) -> Interrupted:
        """Stop the assistant: cancel its response if one is running and cut its item to
        what the listener heard.

        Args:
            played_samples: samples of the item's audio the listener heard, at the
                session's output rate (from the device's playhead).
            item_id: the assistant item that was playing; default: the one whose audio
                arrived last.
            content_index: the audio part's index (0 in practice).
            server_cancels: the server is cancelling the response itself (server VAD with
                ``interrupt_response``), so no ``response.cancel`` is sent.

        Raises:
            LocalProtocolError: ``item_id`` names an item that is not an assistant message.
            ValueError: ``played_samples`` or ``content_index`` is negative.
        """
        if played_samples < 0:
            raise ValueError(f"played_samples must not be negative, got {played_samples}")
        if content_index < 0:
            raise ValueError(f"content_index must not be negative, got {content_index}")
        cancelled = False
        if not server_cancels and self.response_state in (
            ResponseState.REQUESTED,
            ResponseState.ACTIVE,
            ResponseState.ACTIVE_REQUESTED,
        ):
            cancelled = self.cancel_response() is not None
        self._queue.clear()
        if item_id is None and self._audio_item is not None:
            item_id, content_index = self._audio_item
        rate = self.output_sample_rate
        played_ms = samples_to_ms(played_samples, rate)
        item = self.conversation.get(item_id) if item_id is not None else None
        if item_id is None or item is None:
            decision = InterruptDecision(InterruptAction.NOTHING, 0, "no_audio_item")
        else:
            decision = self._decide(item, content_index, played_samples, rate)
        if decision.action is InterruptAction.TRUNCATE:
            assert item_id is not None
            self._emit(
                ConversationItemTruncate(
                    item_id=item_id,
                    content_index=content_index,
                    audio_end_ms=decision.audio_end_ms,
                )
            )
        elif decision.action is InterruptAction.DELETE:
            assert item_id is not None
            self._emit(ConversationItemDelete(item_id=item_id))
        if decision.action is not InterruptAction.NOTHING:
            self._audio_item = None
            if item is not None:
                item.status = "incomplete"
            assert item_id is not None
            self.drop_audio_of(item_id, content_index)
        return Interrupted(
            item_id=item_id,
            content_index=content_index,
            played_ms=played_ms,
            audio_end_ms=decision.audio_end_ms,
            action=decision.action,
            rule=decision.rule,
            cancelled_response=cancelled,
        )

    def _decide(self, item: Item, content_index: int, played: int, rate: int) -> InterruptDecision:
        if item.type != "message" or (item.role not in (None, "assistant")):
            raise LocalProtocolError(
                f"only assistant messages can be truncated; item {item.id!r} is a "
                f"{item.role or ''} {item.type}".replace("  ", " ")
            )
        if item.truncated_at_ms is not None or item.status == "incomplete":
            return InterruptDecision(
                InterruptAction.NOTHING, item.truncated_at_ms or 0, "already_cut"
            )
        if content_index >= len(item.content) or not item.content[content_index].is_audio:
            if item.completed:
                return InterruptDecision(InterruptAction.NOTHING, 0, "no_audio_part")
            return decide_interrupt(
                played_samples=played, received_samples=0, audio_done=False, sample_rate=rate
            )
        part = item.content[content_index]
        return decide_interrupt(
            played_samples=played,
            received_samples=part.audio_samples,
            audio_done=part.audio_done,
            sample_rate=rate,
        )

    # -- receiving -------------------------------------------------------------------------

    def receive(self, text: str | bytes) -> list[Event]:
        """Process one server message; the events it makes, in order.

        An audio delta comes back as the native :class:`realtalk.core.AudioDelta` (its
        payload decoded once, in Rust); every other event as its typed class, followed
        by the high-level events it caused.

        An audio delta of an item this connection cut (:meth:`interrupt` sent a truncate
        or a delete for it) arrived after the cut: it is dropped, so nothing plays it, and
        counted in ``statistics().audio_dropped_samples``.

        An audio delta that is a JSON object but malformed (bad base64, a missing field)
        comes back as :class:`UnknownEvent` with ``problem`` saying what is wrong.

        Raises:
            RemoteProtocolError: the text is not a JSON object (or nests deeper than
                Python's ``json`` decodes). The connection stays usable.
        """
        try:
            parsed = _core.parse_server_event(text, audio_format=self.output_format)
        except EventParseError as exc:
            # A well-formed object with a bad audio payload is kept, not dropped.
            kept = _as_object(text)
            if kept is None:
                # Counted (under type ""), as the session delivers it as an UnknownEvent.
                self._received_counts[""] += 1
                raise RemoteProtocolError(f"server sent an unusable event: {exc}") from exc
            event_id, wire_type = kept.get("event_id"), kept.get("type")
            event = UnknownEvent(
                type=wire_type if isinstance(wire_type, str) else "",
                event_id=event_id if isinstance(event_id, str) else None,
                raw=kept,
                problem=str(exc),
            )
            self._received_counts[event.type] += 1
            return [event]
        if isinstance(parsed, AudioDelta):
            self._received_counts[parsed.type] += 1
            if parsed.response_id in self._out_of_band_responses:
                self._received_samples += len(parsed.samples)
                return [parsed]
            if (parsed.item_id, parsed.content_index) in self._cut:
                # Sent before the server saw the cut: the listener must not hear it.
                self._dropped_samples += len(parsed.samples)
                return []
            self._received_samples += len(parsed.samples)
            known = parsed.item_id in self.conversation
            if self.conversation.apply_audio(parsed) is None:
                return [parsed]
            self._audio_item = (parsed.item_id, parsed.content_index)
            if not known:  # audio of an item never announced: a placeholder holds it
                return [parsed, ItemAppended(self.conversation[parsed.item_id])]
            return [parsed]
        return self.receive_object(parsed)

    def receive_object(self, obj: Mapping[str, Any]) -> list[Event]:
        """Process one decoded server event object (see :meth:`receive`)."""
        event = parse_server_object(obj)
        self._received_counts[event.type] += 1
        out: list[Event] = []
        match event:
            case ErrorEvent():
                event = self._on_error(event)
            case SessionCreated(session=session):
                self.config = SessionConfig.from_wire(session, self.dialect)
                self._sync_rates()
            case SessionUpdated(session=session):
                self.config = SessionConfig.from_wire(session, self.dialect)
                self._sync_rates()
                if self._updates:
                    _, sent = self._updates.popleft()
                    drift = config_drift(sent, session)
                    if drift:
                        out.append(ConfigDriftDetected(tuple(drift)))
            case ResponseCreated(response=response) if self._tag(response) in (
                self._out_of_band_requests
            ):
                self._out_of_band_requests.discard(self._tag(response) or "")
                self._out_of_band_responses.add(event.response_id)
            case ResponseDone() if event.response_id in self._out_of_band_responses:
                self._out_of_band_responses.discard(event.response_id)
            case ResponseCreated(response=response):
                self.active_response_id = event.response_id or None
                tag = self._tag(response)
                pending = self._in_flight_create
                if pending is not None and tag == pending.event_id:
                    self._in_flight_create = None
                    self._step(ResponseTrigger.CREATED_OURS)
                else:
                    self._step(ResponseTrigger.CREATED_OTHER)
            case SpeechStarted(item_id=item_id, audio_start_ms=start_ms):
                self._input_audio.speech_started(item_id, start_ms)
            case SpeechStopped(item_id=item_id, audio_end_ms=end_ms):
                self._input_audio.speech_stopped(item_id, end_ms)
            case InputAudioCommitted(item_id=item_id):
                # Counted always, kept only when the conversation keeps audio.
                if (kept := self._input_audio.committed(item_id)) is not None:
                    self.conversation.keep_input_audio(item_id, *kept)
            case ResponseDone():
                if self.active_response_id in (None, event.response_id):
                    self.active_response_id = None
                    if self._step(ResponseTrigger.DONE) is ResponseAction.SEND_QUEUED:
                        self._send_queued()
            case _:
                pass
        if getattr(event, "response_id", None) in self._out_of_band_responses:
            return [event, *out]  # out-of-band output is not part of the conversation
        conversation_events = self.conversation.apply(event)
        return [event, *out, *conversation_events]

    @staticmethod
    def _tag(response: Mapping[str, Any]) -> str | None:
        metadata = response.get("metadata")
        tag = metadata.get(REQUEST_TAG) if isinstance(metadata, dict) else None
        return tag if isinstance(tag, str) else None

    def _sync_rates(self) -> None:
        self.conversation.output_sample_rate = self.output_sample_rate
        if self._input_audio.sample_rate != self.input_sample_rate:
            # Kept audio is counted in samples of one rate: a new input format starts anew.
            self._input_audio = InputAudioKeeper(self._keep_audio_ms, self.input_sample_rate)

    def _on_error(self, event: ErrorEvent) -> ErrorEvent:
        self._errors += 1
        cause_id = event.client_event_id
        cause = self._sent.get(cause_id) if cause_id is not None else None
        if cause is None:
            return event
        if cause == "response.create":
            pending = self._in_flight_create
            # Only the request in flight moves the state; a stale error is just data.
            if pending is not None and pending.event_id == cause_id:
                self._in_flight_create = None
                busy = event.code == "conversation_already_has_active_response"
                action = self._step(
                    ResponseTrigger.CREATE_REJECTED_BUSY if busy else ResponseTrigger.CREATE_FAILED
                )
                if action is ResponseAction.REQUEUE_CREATE and not pending.cancelled:
                    # Sent again only after a response.done, so a refusal costs one
                    # round trip and can never spin.
                    self._queue.appendleft(pending)
                elif action is ResponseAction.SEND_QUEUED:
                    self._send_queued()
        elif cause == "response.cancel":
            if self._step(ResponseTrigger.CANCEL_FAILED) is ResponseAction.SEND_QUEUED:
                self._send_queued()
        elif cause == "session.update":
            self._updates = deque(u for u in self._updates if u[0] != cause_id)
        elif cause == "input_audio_buffer.commit" and cause_id is not None:
            self._input_audio.commit_refused(cause_id)
        return dataclasses.replace(event, caused_by=cause)

    # -- statistics ------------------------------------------------------------------------

    def statistics(self) -> ConnectionStatistics:
        """A frozen snapshot of the counters."""
        return ConnectionStatistics(
            events_sent=sum(self._sent_counts.values()),
            events_received=sum(self._received_counts.values()),
            sent_by_type=dict(self._sent_counts),
            received_by_type=dict(self._received_counts),
            audio_appended_samples=self._appended_samples,
            audio_appended_ms=samples_to_ms(self._appended_samples, self.input_sample_rate),
            audio_received_samples=self._received_samples,
            audio_received_ms=samples_to_ms(self._received_samples, self.output_sample_rate),
            audio_dropped_samples=self._dropped_samples,
            responses_created=self._received_counts["response.created"],
            responses_done=self._received_counts["response.done"],
            responses_queued=len(self._queue),
            errors=self._errors,
            response_state=self.response_state,
        )

    def turn_detection_cancels(self) -> bool:
        """Whether server VAD cancels the response itself when speech starts.

        True when turn detection is on and ``interrupt_response`` is not known to be off
        (the API's default is on).
        """
        td = self.config.turn_detection
        if isinstance(td, ServerVad | SemanticVad):
            return td.interrupt_response is not False
        return False
