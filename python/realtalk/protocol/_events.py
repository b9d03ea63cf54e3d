"""Typed Realtime API events of both dialects, server and client.

What this module owns: one class per server event *meaning*, shared by the GA and beta
dialects (``response.output_text.delta`` and beta's ``response.text.delta`` are both a
:class:`TextDelta`; ``type`` keeps the name seen on the wire), the parse of a decoded JSON
object into those classes, and the client events with their rendering per dialect.

What it must never do: drop or mis-type an event. A server event whose ``type`` is not
known here, or a known one whose required fields are missing or of the wrong JSON type,
becomes :class:`UnknownEvent` with the raw object kept (``problem`` says which field).
Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from realtalk.protocol._config import Dialect, SessionConfig

__all__ = [
    "AudioDone",
    "AudioTranscriptDelta",
    "AudioTranscriptDone",
    "ClientEvent",
    "ContentPartAdded",
    "ContentPartDone",
    "ConversationCreated",
    "ConversationItemCreate",
    "ConversationItemDelete",
    "ConversationItemRetrieve",
    "ConversationItemTruncate",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "InputAudioBufferClear",
    "InputAudioBufferCommit",
    "InputAudioCleared",
    "InputAudioCommitted",
    "InputAudioTimeout",
    "InputTranscriptionCompleted",
    "InputTranscriptionDelta",
    "InputTranscriptionFailed",
    "ItemCreated",
    "ItemDeleted",
    "ItemDone",
    "ItemRetrieved",
    "ItemTruncated",
    "OutputItemAdded",
    "OutputItemDone",
    "RateLimitsUpdated",
    "ResponseCancel",
    "ResponseCreate",
    "ResponseCreated",
    "ResponseDone",
    "ServerEvent",
    "SessionCreated",
    "SessionUpdate",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "TextDelta",
    "TextDone",
    "UnknownEvent",
    "parse_server_object",
]

JSON = dict[str, Any]


# --- server events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerEvent:
    """Base of every server event: the wire ``type``, the server's ``event_id``, and the
    decoded JSON object as received (``raw``, not part of equality or the repr)."""

    TYPES: ClassVar[tuple[str, ...]] = ()
    """The wire names this class stands for, GA first then beta (empty for the base)."""

    type: str
    event_id: str | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(ServerEvent):
    """A server event realtalk has no class for, or a known one with malformed fields.

    ``problem`` is ``None`` for an unknown ``type``; otherwise it names the field that was
    missing or of the wrong JSON type. The event is passed on, never dropped.
    """

    problem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated(ServerEvent):
    """``session.created``: the first event, with the server's default configuration."""

    TYPES = ("session.created",)
    session: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdated(ServerEvent):
    """``session.updated`` (and beta ``transcription_session.updated``): the full
    effective configuration after a ``session.update``."""

    TYPES = ("session.updated", "transcription_session.updated")
    session: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationCreated(ServerEvent):
    """``conversation.created``: the default conversation exists."""

    TYPES = ("conversation.created",)
    conversation: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemCreated(ServerEvent):
    """An item entered the conversation: ``conversation.item.created`` (both dialects)
    or GA ``conversation.item.added``, treated alike."""

    TYPES = ("conversation.item.added", "conversation.item.created")
    item: JSON
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDone(ServerEvent):
    """GA ``conversation.item.done``: the item is final (content without audio)."""

    TYPES = ("conversation.item.done",)
    item: JSON
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRetrieved(ServerEvent):
    """``conversation.item.retrieved``: the server's full copy of an item, audio included."""

    TYPES = ("conversation.item.retrieved",)
    item: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDeleted(ServerEvent):
    """``conversation.item.deleted``: acknowledgement of ``conversation.item.delete``."""

    TYPES = ("conversation.item.deleted",)
    item_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemTruncated(ServerEvent):
    """``conversation.item.truncated``: the server kept ``audio_end_ms`` of the item's
    audio and dropped its transcript."""

    TYPES = ("conversation.item.truncated",)
    item_id: str
    content_index: int
    audio_end_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptionDelta(ServerEvent):
    """``conversation.item.input_audio_transcription.delta``: part of the transcript of
    the user's audio."""

    TYPES = ("conversation.item.input_audio_transcription.delta",)
    item_id: str
    content_index: int = 0
    delta: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptionCompleted(ServerEvent):
    """``conversation.item.input_audio_transcription.completed``: the whole transcript."""

    TYPES = ("conversation.item.input_audio_transcription.completed",)
    item_id: str
    content_index: int
    transcript: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptionFailed(ServerEvent):
    """``conversation.item.input_audio_transcription.failed``, with the server's error."""

    TYPES = ("conversation.item.input_audio_transcription.failed",)
    item_id: str
    content_index: int
    error: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(ServerEvent):
    """``input_audio_buffer.speech_started``: server VAD heard speech begin.

    ``audio_start_ms`` counts from the start of all audio appended in the session and
    includes ``prefix_padding_ms``; ``item_id`` is the user item the speech will become.
    """

    TYPES = ("input_audio_buffer.speech_started",)
    audio_start_ms: int
    item_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped(ServerEvent):
    """``input_audio_buffer.speech_stopped``: server VAD heard speech end (ms as above)."""

    TYPES = ("input_audio_buffer.speech_stopped",)
    audio_end_ms: int
    item_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioTimeout(ServerEvent):
    """GA ``input_audio_buffer.timeout_triggered``: ``idle_timeout_ms`` passed."""

    TYPES = ("input_audio_buffer.timeout_triggered",)
    audio_start_ms: int
    audio_end_ms: int
    item_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioCommitted(ServerEvent):
    """``input_audio_buffer.committed``: the buffer became user item ``item_id``."""

    TYPES = ("input_audio_buffer.committed",)
    item_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioCleared(ServerEvent):
    """``input_audio_buffer.cleared``: acknowledgement of ``input_audio_buffer.clear``."""

    TYPES = ("input_audio_buffer.cleared",)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCreated(ServerEvent):
    """``response.created``: a response started (``response["id"]`` is ``response_id``)."""

    TYPES = ("response.created",)
    response: JSON

    @property
    def response_id(self) -> str:
        """The response's id (``resp_…``), or ``""`` if the server sent none."""
        rid = self.response.get("id")
        return rid if isinstance(rid, str) else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseDone(ServerEvent):
    """``response.done``: a response ended, whatever its status (no audio bytes inside)."""

    TYPES = ("response.done",)
    response: JSON

    @property
    def response_id(self) -> str:
        """The response's id (``resp_…``), or ``""`` if the server sent none."""
        rid = self.response.get("id")
        return rid if isinstance(rid, str) else ""

    @property
    def status(self) -> str:
        """``completed``, ``cancelled``, ``failed``, ``incomplete`` (or what the server said)."""
        status = self.response.get("status")
        return status if isinstance(status, str) else ""

    @property
    def status_details(self) -> JSON:
        """Why the response ended as it did (the API's ``status_details``): e.g.
        ``{"type": "cancelled", "reason": "turn_detected"}``, or for a failed response
        ``{"type": "failed", "error": {"type": ..., "code": ..., "message": ...}}``;
        ``{}`` when the server sent none."""
        details = self.response.get("status_details")
        return details if isinstance(details, dict) else {}

    @property
    def function_calls(self) -> list[JSON]:
        """The ``function_call`` items of the response's output (empty when it answered
        without calling a tool: then it is the answer the user waits for)."""
        output = self.response.get("output")
        if not isinstance(output, list):
            return []
        return [i for i in output if isinstance(i, dict) and i.get("type") == "function_call"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputItemAdded(ServerEvent):
    """``response.output_item.added``: the response started item ``item``."""

    TYPES = ("response.output_item.added",)
    response_id: str
    output_index: int
    item: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputItemDone(ServerEvent):
    """``response.output_item.done``: the response finished item ``item``."""

    TYPES = ("response.output_item.done",)
    response_id: str
    output_index: int
    item: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class _PartEvent(ServerEvent):
    response_id: str
    item_id: str
    output_index: int
    content_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentPartAdded(_PartEvent):
    """``response.content_part.added``: a text or audio part of an item began."""

    TYPES = ("response.content_part.added",)
    part: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentPartDone(_PartEvent):
    """``response.content_part.done``: a part of an item ended."""

    TYPES = ("response.content_part.done",)
    part: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta(_PartEvent):
    """``response.output_text.delta`` (beta ``response.text.delta``)."""

    TYPES = ("response.output_text.delta", "response.text.delta")
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDone(_PartEvent):
    """``response.output_text.done`` (beta ``response.text.done``), with the whole text."""

    TYPES = ("response.output_text.done", "response.text.done")
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDone(_PartEvent):
    """``response.output_audio.done`` (beta ``response.audio.done``): no more audio for
    this part. Audio deltas themselves are :class:`realtalk.core.AudioDelta`."""

    TYPES = ("response.output_audio.done", "response.audio.done")


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioTranscriptDelta(_PartEvent):
    """``response.output_audio_transcript.delta`` (beta ``response.audio_transcript.delta``)."""

    TYPES = ("response.output_audio_transcript.delta", "response.audio_transcript.delta")
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioTranscriptDone(_PartEvent):
    """``response.output_audio_transcript.done`` (beta ``response.audio_transcript.done``)."""

    TYPES = ("response.output_audio_transcript.done", "response.audio_transcript.done")
    transcript: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallArgumentsDelta(ServerEvent):
    """``response.function_call_arguments.delta``: part of a call's JSON arguments."""

    TYPES = ("response.function_call_arguments.delta",)
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallArgumentsDone(ServerEvent):
    """``response.function_call_arguments.done``: the call's complete arguments.

    ``name`` is sent by GA only; in beta it is ``None`` here and known from the
    ``response.output_item.added`` event of the same item.
    """

    TYPES = ("response.function_call_arguments.done",)
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    arguments: str
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitsUpdated(ServerEvent):
    """``rate_limits.updated``: sent at the start of each response."""

    TYPES = ("rate_limits.updated",)
    rate_limits: list[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(ServerEvent):
    """A server ``error`` event: data, not an exception; the session stays open.

    ``caused_by`` is the client event the error names (``error.event_id``) as realtalk
    sent it, e.g. ``"response.create"``, when that event is still remembered.
    """

    TYPES = ("error",)
    error: JSON
    caused_by: str | None = None

    @property
    def code(self) -> str | None:
        """The error code, e.g. ``conversation_already_has_active_response``."""
        code = self.error.get("code")
        return code if isinstance(code, str) else None

    @property
    def message(self) -> str:
        """The server's message."""
        message = self.error.get("message")
        return message if isinstance(message, str) else ""

    @property
    def client_event_id(self) -> str | None:
        """The ``event_id`` of the client event that caused the error, if given."""
        eid = self.error.get("event_id")
        return eid if isinstance(eid, str) else None


# The JSON type each field must have, from the annotation's text (checked when parsing).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "JSON": (dict,),
    "list[Any]": (list,),
}


def _field_checks(cls: type[ServerEvent]) -> list[tuple[str, tuple[type, ...], bool, bool]]:
    """(name, JSON types, required, nullable) of the fields a class reads from the wire."""
    checks = []
    for f in dataclasses.fields(cls):
        if f.name in {"type", "event_id", "raw", "caused_by", "problem"}:
            continue
        text = str(f.type)
        nullable = text.endswith("| None")
        base = text.removesuffix(" | None")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        checks.append((f.name, _JSON_TYPES[base], required, nullable))
    return checks


_SERVER_CLASSES: tuple[type[ServerEvent], ...] = (
    SessionCreated,
    SessionUpdated,
    ConversationCreated,
    ItemCreated,
    ItemDone,
    ItemRetrieved,
    ItemDeleted,
    ItemTruncated,
    InputTranscriptionDelta,
    InputTranscriptionCompleted,
    InputTranscriptionFailed,
    SpeechStarted,
    SpeechStopped,
    InputAudioTimeout,
    InputAudioCommitted,
    InputAudioCleared,
    ResponseCreated,
    ResponseDone,
    OutputItemAdded,
    OutputItemDone,
    ContentPartAdded,
    ContentPartDone,
    TextDelta,
    TextDone,
    AudioDone,
    AudioTranscriptDelta,
    AudioTranscriptDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    RateLimitsUpdated,
    ErrorEvent,
)
_BY_TYPE: dict[str, tuple[type[ServerEvent], list[tuple[str, tuple[type, ...], bool, bool]]]] = {
    wire: (cls, _field_checks(cls)) for cls in _SERVER_CLASSES for wire in cls.TYPES
}


def parse_server_object(obj: Mapping[str, Any]) -> ServerEvent:
    """The typed event for one decoded server event object (what ``json.loads`` gives).

    Both dialects' names are accepted whatever the session's dialect, so a server in the
    middle of a migration is still understood. Integers must be JSON integers (``true``
    is not ``1``); extra fields are ignored here and stay in ``raw``.

    Never raises for server data: an object without a string ``type`` becomes
    ``UnknownEvent(type="", problem=...)``.
    """
    raw = obj if isinstance(obj, dict) else dict(obj)
    wire = raw.get("type")
    event_id = raw.get("event_id")
    if not isinstance(event_id, str):
        event_id = None
    if not isinstance(wire, str):
        return UnknownEvent(type="", event_id=event_id, raw=raw, problem="type: not a string")
    known = _BY_TYPE.get(wire)
    if known is None:
        return UnknownEvent(type=wire, event_id=event_id, raw=raw)
    cls, checks = known
    kwargs: dict[str, Any] = {}
    for name, json_types, required, nullable in checks:
        if name not in raw:
            if required:
                return UnknownEvent(
                    type=wire, event_id=event_id, raw=raw, problem=f"{name}: missing"
                )
            continue
        value = raw[name]
        if value is None and nullable:
            kwargs[name] = None
            continue
        if not isinstance(value, json_types) or isinstance(value, bool):
            return UnknownEvent(
                type=wire,
                event_id=event_id,
                raw=raw,
                problem=f"{name}: expected {json_types[0].__name__}, got {type(value).__name__}",
            )
        kwargs[name] = value
    return cls(type=wire, event_id=event_id, raw=raw, **kwargs)


# --- client events -------------------------------------------------------------------------


CLIENT_EVENT_TYPES: tuple[str, ...] = (
    "session.update",
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
)
"""The client event types of the WebSocket API (both dialects), in the order the API
lists them when it refuses an unknown one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientEvent:
    """Base of the events realtalk sends. :meth:`to_wire` gives the JSON object for a
    dialect; ``event_id`` is filled in by the connection when left ``None``."""

    TYPE: ClassVar[str] = ""

    event_id: str | None = None

    def body(self, dialect: Dialect) -> JSON:
        """The event's fields other than ``type`` and ``event_id``."""
        return {}

    def to_wire(self, dialect: Dialect) -> JSON:
        """The JSON object of this event in ``dialect`` (absent = omitted)."""
        out: JSON = {"type": self.TYPE}
        if self.event_id is not None:
            out["event_id"] = self.event_id
        out.update(self.body(dialect))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdate(ClientEvent):
    """``session.update`` with a :class:`SessionConfig` rendered for the dialect."""

    TYPE = "session.update"
    config: SessionConfig

    def body(self, dialect: Dialect) -> JSON:
        return {"session": self.config.render(dialect)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemCreate(ClientEvent):
    """``conversation.item.create``: insert ``item`` (after ``previous_item_id``, at the
    end when ``None``, at the start when ``"root"``)."""

    TYPE = "conversation.item.create"
    item: JSON
    previous_item_id: str | None = None

    def body(self, dialect: Dialect) -> JSON:
        out: JSON = {"item": self.item}
        if self.previous_item_id is not None:
            out["previous_item_id"] = self.previous_item_id
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemTruncate(ClientEvent):
    """``conversation.item.truncate``: keep ``audio_end_ms`` of an assistant item's audio."""

    TYPE = "conversation.item.truncate"
    item_id: str
    content_index: int
    audio_end_ms: int

    def body(self, dialect: Dialect) -> JSON:
        return {
            "item_id": self.item_id,
            "content_index": self.content_index,
            "audio_end_ms": self.audio_end_ms,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemDelete(ClientEvent):
    """``conversation.item.delete``."""

    TYPE = "conversation.item.delete"
    item_id: str

    def body(self, dialect: Dialect) -> JSON:
        return {"item_id": self.item_id}


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemRetrieve(ClientEvent):
    """``conversation.item.retrieve``: ask for the server's copy, audio included."""

    TYPE = "conversation.item.retrieve"
    item_id: str

    def body(self, dialect: Dialect) -> JSON:
        return {"item_id": self.item_id}


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferCommit(ClientEvent):
    """``input_audio_buffer.commit``: turn the appended audio into a user item."""

    TYPE = "input_audio_buffer.commit"


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferClear(ClientEvent):
    """``input_audio_buffer.clear``: drop the appended, uncommitted audio."""

    TYPE = "input_audio_buffer.clear"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCreate(ClientEvent):
    """``response.create``, with optional per-response settings (the wire ``response``
    object of the dialect, passed through as given)."""

    TYPE = "response.create"
    response: JSON | None = None

    def body(self, dialect: Dialect) -> JSON:
        return {} if self.response is None else {"response": self.response}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCancel(ClientEvent):
    """``response.cancel`` of the active response (or of ``response_id``)."""

    TYPE = "response.cancel"
    response_id: str | None = None

    def body(self, dialect: Dialect) -> JSON:
        return {} if self.response_id is None else {"response_id": self.response_id}


def _annotation_sanity() -> None:
    # Every annotation text used by server event fields must be known to the parser;
    # fail at import, not on the first odd event.
    for cls in _SERVER_CLASSES:
        for f in dataclasses.fields(cls):
            if f.name in {"type", "event_id", "raw", "caused_by", "problem"}:
                continue
            base = str(f.type).removesuffix(" | None")
            assert base in _JSON_TYPES, (cls.__name__, f.name, f.type)


_annotation_sanity()
