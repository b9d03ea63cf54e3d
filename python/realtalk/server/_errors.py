"""The Realtime API's ``error`` events, as the embedded server sends them.

This module owns the catalogue of errors the real API gives a client: one constructor per
situation, each returning an :class:`ApiError` with the API's ``type``, ``code``, ``message``
and ``param``, and the mapping from a schema :class:`ValidationProblem` (found by
:mod:`realtalk.server._validate`) to its error. It must never decide *whether* something is
an error (the validator and the server's state do), never do I/O, and never raise for a
client's mistake: a client error is data, sent back as an ``error`` event.

Where the wording comes from. "Verbatim" means the code and message (with the variable parts
filled in) were seen in an ``error`` event of the live API quoted in a public source; the
sources are named per constructor. The rest is reconstructed: the code follows the API's
pattern, the message follows the same validator's wording for a neighbouring case.

* verbatim: unknown event type, unknown parameter, missing required parameter, invalid
  type (``session.audio.input.format``), invalid value, range (``session.temperature``,
  ``format.rate``), invalid JSON (first sentence), binary frame, active response, cancel
  without a response, commit under 100 ms, truncate past the end, truncate of a non-audio
  item, unknown item id for truncate, voice change after audio, undecodable audio,
  session expired, server error. The string-length and too-many-properties messages are
  the API-wide validator's, seen verbatim on the HTTP API (same wording family).
* reconstructed: the top-level "not an object" error, item not found for delete /
  retrieve / ``previous_item_id``, the 15 MiB append limit (the docs state the limit, no
  capture of its error is public), the mid-session rate limit error (the HTTP API's
  code and wording), ``"a decimal number"`` as the name of a float in "but
  got ... instead".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from realtalk.protocol._events import CLIENT_EVENT_TYPES

__all__ = [
    "EVENT_TYPE_ORDER",
    "ApiError",
    "ProblemKind",
    "ValidationProblem",
    "binary_frame",
    "cannot_update_voice",
    "conversation_already_has_active_response",
    "input_audio_buffer_commit_empty",
    "invalid_audio",
    "invalid_json",
    "invalid_type",
    "invalid_value",
    "item_not_found",
    "json_kind",
    "missing_required_parameter",
    "not_an_object",
    "problem_error",
    "property_name_too_long",
    "rate_limit_exceeded",
    "response_cancel_not_active",
    "server_error",
    "session_expired",
    "string_above_max_length",
    "too_many_properties",
    "truncate_beyond_audio",
    "truncate_unsupported_item",
    "unknown_event_type",
    "unknown_parameter",
    "value_above_maximum",
    "value_below_minimum",
]

INVALID_REQUEST: Final = "invalid_request_error"

#: The order in which the live GA API lists its client event types when it rejects an
#: unknown one ("Supported values are: ..."). The live list also names the translation
#: endpoint's ``session.close`` and ``session.input_audio_buffer.append``, which this server
#: does not serve, and leaves out ``output_audio_buffer.clear`` (WebRTC/SIP only); we list
#: exactly the types we accept, in this order, unknown ones last.
EVENT_TYPE_ORDER: Final[tuple[str, ...]] = CLIENT_EVENT_TYPES


@dataclass(frozen=True, slots=True)
class ApiError:
    """One ``error`` event's payload: ``type`` (``invalid_request_error`` or
    ``server_error``), ``code`` (may be ``None``), human-readable ``message``, and the
    dotted path of the offending parameter (``None`` when it is not about one)."""

    type: str
    code: str | None
    message: str
    param: str | None = None

    def event(self, *, event_id: str, client_event_id: str | None) -> dict[str, object]:
        """The server ``error`` event: ``event_id`` is the server's own id for it,
        ``client_event_id`` the ``event_id`` of the client event that failed (``None``
        when it had none, or the failure is not about one event)."""
        return {
            "type": "error",
            "event_id": event_id,
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "event_id": client_event_id,
            },
        }


def _request_error(code: str | None, message: str, param: str | None = None) -> ApiError:
    return ApiError(INVALID_REQUEST, code, message, param)


# --- wording helpers -------------------------------------------------------------------------


def json_kind(value: object) -> str:
    """How the API names the JSON type of ``value`` in "but got ... instead"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return "an object"


def _quoted(values: Iterable[object]) -> list[str]:
    return [f"'{v}'" for v in values]


def _and_list(items: list[str]) -> str:
    # "'a'", "'a' and 'b'", "'a', 'b', and 'c'" -- the API's own list style.
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _number(value: float) -> str:
    # The API prints bounds without a trailing ".0" ("Expected a value >= 0").
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- framing and event type -----------------------------------------------------------------


def invalid_json() -> ApiError:
    """A text frame that is not JSON.

    Code and the first sentence verbatim from a live GA capture ("Invalid event: failed to
    parse JSON value. ..." with the rest elided), in a public probe document
    ("WebSocket captures: Inworld TTS/STT and OpenAI Realtime", 2026-09-18, found in the
    code index; its repository was not named by the index). The second sentence is the
    HTTP API's wording for an unparsable body (reconstructed for Realtime).
    """
    return _request_error(
        "invalid_json",
        "Invalid event: failed to parse JSON value. Please check the value to ensure it is "
        "valid JSON. (Common errors include trailing commas, missing closing brackets, "
        "missing quotation marks, etc.)",
    )


def binary_frame() -> ApiError:
    """A binary WebSocket frame. Verbatim from the same live capture as :func:`invalid_json`."""
    return _request_error(
        "invalid_event", "Expected a text WebSocket message; binary frames are not supported."
    )


def not_an_object(value: object) -> ApiError:
    """Valid JSON that is not an object (``[]``, ``"x"``, ``1``). Reconstructed: the
    validator's invalid-type wording, with no parameter to name."""
    return _request_error(
        "invalid_type",
        f"Invalid type for event: expected an object, but got {json_kind(value)} instead.",
    )


def unknown_event_type(value: str, supported: Iterable[str]) -> ApiError:
    """A ``type`` that is not a client event of the dialect.

    Verbatim (code ``invalid_value``, param ``type``, "Invalid value: 'nope'. Supported
    values are: 'session.update', ..., and 'response.cancel'.") from the live GA capture
    cited at :func:`invalid_json`; the same wording is quoted in
    crmitchelmore/justspeaktoit#427 ("Invalid value: 'transcription_session.update'").
    The list is ``supported`` in :data:`EVENT_TYPE_ORDER`.
    """
    rank = {name: i for i, name in enumerate(EVENT_TYPE_ORDER)}
    ordered = sorted(supported, key=lambda t: (rank.get(t, len(rank)), t))
    return invalid_value("type", value, ordered)


# --- schema validation ----------------------------------------------------------------------


def unknown_parameter(param: str) -> ApiError:
    """A key the event's schema does not have. Verbatim, e.g. "Unknown parameter:
    'session.input_audio_transcription.enabled'." (openai/openai-realtime-api-beta#9,
    beta) and "Unknown parameter: 'session.bogus_field'." (live GA capture)."""
    return _request_error("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def missing_required_parameter(param: str) -> ApiError:
    """A required key is absent. Verbatim: "Missing required parameter: 'session.type'."
    (microsoft/agent-framework#924, TanStack/ai#586)."""
    return _request_error(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param
    )


def invalid_type(param: str, expected: str, value: object) -> ApiError:
    """A value of the wrong JSON type; ``expected`` is e.g. ``"a decimal"``, ``"an
    object"``, ``"one of 'a', 'b', or 'c'"``. Verbatim: "Invalid type for
    'session.audio.input.format': expected an object, but got a string instead." with code
    ``invalid_type`` and that param (openai/openai-go#502, the GA session validator behind
    ``/v1/realtime/client_secrets``; the same sentence is quoted for ``session.update`` in
    public GA client code). The union wording "expected one of a string or array of
    objects" and the enum wording "expected one of 'a', 'b', or 'c'" are the HTTP API's."""
    return _request_error(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {json_kind(value)} instead.",
        param,
    )


def invalid_value(param: str, value: object, supported: Iterable[object]) -> ApiError:
    """A string outside its enum. Verbatim: "Invalid value: 'g711-ulaw'. Supported values
    are: 'pcm16', 'g711_ulaw', and 'g711_alaw'." with param ``session.input_audio_format``
    (dongri/openai-api-rs#135, beta)."""
    values = _and_list(_quoted(supported))
    return _request_error(
        "invalid_value", f"Invalid value: '{value}'. Supported values are: {values}.", param
    )


def value_below_minimum(param: str, value: float, minimum: float, *, integer: bool) -> ApiError:
    """A number under its documented minimum. Verbatim: "Invalid 'session.temperature':
    decimal below minimum value. Expected a value >= 0.6, but got 0.3 instead." (beta,
    quoted in public client code in the code index, which does not name repositories;
    code ``decimal_below_min_value`` with param ``session.temperature`` is matched by
    name in several clients there); ``integer_below_min_value`` on
    ``session.audio.input.format.rate`` ("Expected a value >= 24000") in the live GA
    capture cited at :func:`invalid_json`."""
    kind = "integer" if integer else "decimal"
    return _request_error(
        f"{kind}_below_min_value",
        f"Invalid '{param}': {kind} below minimum value. Expected a value >= "
        f"{_number(minimum)}, but got {_number(value)} instead.",
        param,
    )


def value_above_maximum(param: str, value: float, maximum: float, *, integer: bool) -> ApiError:
    """A number over its documented maximum; the mirror of :func:`value_below_minimum`
    (``decimal_above_max_value`` / ``integer_above_max_value``, the API-wide codes)."""
    kind = "integer" if integer else "decimal"
    return _request_error(
        f"{kind}_above_max_value",
        f"Invalid '{param}': {kind} above maximum value. Expected a value <= "
        f"{_number(maximum)}, but got {_number(value)} instead.",
        param,
    )


def string_above_max_length(param: str, length: int, max_length: int) -> ApiError:
    """A string over its limit: the API-wide ``string_above_max_length`` wording ("Invalid
    'messages[3].content': string too long. Expected a string with maximum length 1048576,
    but got a string with length 2097152 instead."). Used for the 15 MiB
    ``input_audio_buffer.append`` limit (reconstructed: the limit is documented, its
    Realtime error is not public) and for ``metadata`` values (512)."""
    return _request_error(
        "string_above_max_length",
        f"Invalid '{param}': string too long. Expected a string with maximum length "
        f"{max_length}, but got a string with length {length} instead.",
        param,
    )


def too_many_properties(param: str, count: int, max_properties: int) -> ApiError:
    """An object with too many keys (``metadata``: 16), API-wide wording."""
    return _request_error(
        "object_above_max_properties",
        f"Invalid '{param}': too many properties. Expected an object with at most "
        f"{max_properties} properties, but got an object with {count} properties instead.",
        param,
    )


def property_name_too_long(param: str, key: str, max_length: int) -> ApiError:
    """A key of a map over its limit (``metadata`` keys: 64), API-wide wording; ``param``
    is the map's path. The code is reconstructed."""
    return _request_error(
        "string_above_max_length",
        f"Invalid property name in '{param}': '{key}' is too long. Expected a string with "
        f"maximum length {max_length}, but got a string with length {len(key)} instead.",
        f"{param}.{key}",
    )


# --- conversation and response state --------------------------------------------------------


def conversation_already_has_active_response(response_id: str) -> ApiError:
    """``response.create`` while a response writes to the default conversation. Verbatim
    (tleyden/arty#81, openai/openai-agents-python#1466)."""
    return _request_error(
        "conversation_already_has_active_response",
        f"Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one.",
    )


def response_cancel_not_active() -> ApiError:
    """``response.cancel`` with nothing to cancel. Verbatim (openai/openai-agents-js#189)."""
    return _request_error(
        "response_cancel_not_active", "Cancellation failed: no active response found"
    )


def input_audio_buffer_commit_empty(buffered_ms: float) -> ApiError:
    """``input_audio_buffer.commit`` with under 100 ms of audio. Verbatim
    (betalgo/openai#674; code in openai/openai-agents-js#748)."""
    return _request_error(
        "input_audio_buffer_commit_empty",
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
    )


def cannot_update_voice() -> ApiError:
    """``session.update`` changing the voice after the model has produced audio. Verbatim
    (openai/openai-python#2607, openai/openai-agents-python#1661)."""
    return _request_error(
        "cannot_update_voice", "Cannot update a conversation's voice if assistant audio is present."
    )


def invalid_audio(param: str = "audio.audio") -> ApiError:
    """``input_audio_buffer.append`` whose ``audio`` is not base64 (decoding it is the
    server's job when it buffers the audio, not the validator's). Verbatim, including the
    odd param (Azure-Samples/aoai-realtime-audio-sdk#95, a PCM16 session; the wording for
    G.711 sessions is not public). For an ``input_audio`` part of
    ``conversation.item.create``, ``param`` is the part's path (``item.content[0].audio``),
    also named in the message (reconstructed)."""
    name = "audio" if param == "audio.audio" else param
    return _request_error(
        "invalid_value",
        f"Invalid '{name}'. Expected base64-encoded audio bytes (mono PCM16 at 24kHz) but got "
        "an invalid value.",
        param,
    )


def truncate_beyond_audio(audio_ms: int, audio_end_ms: int) -> ApiError:
    """``conversation.item.truncate`` past the end of the item's audio. Verbatim, code
    ``invalid_value`` and no param (pipecat-ai/pipecat#2106; message also in
    pipecat-ai/pipecat#925, ReviewStage/luke#564)."""
    return _request_error(
        "invalid_value", f"Audio content of {audio_ms}ms is already shorter than {audio_end_ms}ms"
    )


def truncate_unsupported_item() -> ApiError:
    """Truncating an item that is not an assistant message with audio. Verbatim
    (livekit/agents#6157; message also in livekit/agents#1016)."""
    return _request_error(
        "unsupported_content_type", "Only model output audio messages can be truncated"
    )


ItemEvent = Literal[
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "conversation.item.create",
]

_ITEM_CODES: Final[dict[str, str]] = {
    "conversation.item.truncate": "item_truncate_invalid_item_id",
    "conversation.item.delete": "item_delete_invalid_item_id",
    "conversation.item.retrieve": "item_retrieve_invalid_item_id",
    "conversation.item.create": "item_create_invalid_previous_item_id",
}


def item_not_found(item_id: str, *, event_type: ItemEvent) -> ApiError:
    """An ``item_id`` (or, for ``conversation.item.create``, a ``previous_item_id``) that
    names no item. For truncate the code and message are as quoted in public client code
    (``item_truncate_invalid_item_id``, "Item with item_id not found: <id>", e.g. handled
    by name in several Realtime clients in the code index); the delete / retrieve / create
    codes follow the same ``<event>_invalid_<param>`` pattern and are reconstructed."""
    message = f"Item with item_id not found: {item_id}"
    if event_type == "conversation.item.create":
        message = f"Previous item with item_id not found: {item_id}"
    return _request_error(_ITEM_CODES[event_type], message)


def duplicate_item(item_id: str) -> ApiError:
    """``conversation.item.create`` with an ``id`` already in the conversation.
    Reconstructed (no public wording found)."""
    return _request_error(
        "item_create_duplicate_item_id", f"Item with item_id already exists: {item_id}", "item.id"
    )


def assistant_audio_not_allowed() -> ApiError:
    """``conversation.item.create`` of an assistant message with audio content, which the
    API documents as impossible. Reconstructed wording."""
    return _request_error(
        "invalid_value",
        "Assistant messages cannot contain audio content; only the model creates assistant audio.",
        "item.content",
    )


# --- session --------------------------------------------------------------------------------


def model_immutable() -> ApiError:
    """``session.update`` changing ``model`` on a live session (documented as not allowed).
    Reconstructed wording."""
    return _request_error(
        "invalid_value",
        "The model of a session cannot be changed once it has started.",
        "session.model",
    )


def webrtc_only(event_type: str) -> ApiError:
    """An event the API accepts only over WebRTC/SIP (``output_audio_buffer.clear``).
    Reconstructed wording."""
    return _request_error(
        "invalid_value", f"'{event_type}' is only supported for WebRTC and SIP connections.", "type"
    )


def not_supported(event_type: str) -> ApiError:
    """A valid event realtalk's embedded server does not implement (beta
    ``transcription_session.update``). Not an API error: says so in its message."""
    return _request_error(
        "not_supported_by_embedded_server",
        f"'{event_type}' is valid but realtalk's embedded server does not implement it.",
        "type",
    )


def session_expired(minutes: int = 60) -> ApiError:
    """The session hit its maximum duration (60 minutes on the live API). Verbatim
    (pollen-robotics/reachy_mini_conversation_app#134, where it is also the close reason)."""
    unit = "minute" if minutes == 1 else "minutes"
    return _request_error(
        "session_expired", f"Your session hit the maximum duration of {minutes} {unit}."
    )


def rate_limit_exceeded() -> ApiError:
    """A rate limit hit mid-session. Reconstructed: code and wording of the HTTP API's
    rate limit errors (the Realtime API reports its limits in ``rate_limits.updated``)."""
    return ApiError(
        "tokens",
        "rate_limit_exceeded",
        "Rate limit reached for gpt-realtime on tokens per min (TPM): Limit 40000, Used "
        "40000, Requested 120. Please try again in 180ms.",
    )


def server_error(session_id: str) -> ApiError:
    """A failure on the server's side. Verbatim message, type ``server_error``
    (openai/openai-realtime-console#493 and #51); no code."""
    return ApiError(
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that! You can "
        "retry your request, or contact us through our help center at help.openai.com if "
        f"the error persists. (Please include the session ID {session_id} in your message.)",
    )


# --- validation problems --------------------------------------------------------------------

ProblemKind = Literal[
    "not_an_object",
    "unknown_event_type",
    "unknown_parameter",
    "missing_required_parameter",
    "invalid_type",
    "invalid_value",
    "below_minimum",
    "above_maximum",
    "string_too_long",
    "too_many_properties",
    "property_name_too_long",
]


@dataclass(frozen=True, slots=True)
class ValidationProblem:
    """The first thing wrong with a client event, as the validator found it.

    ``param`` is the dotted path (``item.content[0].text``; ``None`` for the event
    itself); ``value`` the offending JSON value (for lengths and counts: the number);
    ``expected`` the readable expected type for ``invalid_type``; ``allowed`` the supported
    values for ``invalid_value`` / ``unknown_event_type``; ``limit`` the bound or maximum;
    ``integer`` whether a range is an integer one; ``key`` the offending map key.
    """

    kind: ProblemKind
    param: str | None = None
    value: object = None
    expected: str = ""
    allowed: tuple[str, ...] = ()
    limit: float = 0
    integer: bool = False
    key: str = ""


def problem_error(problem: ValidationProblem) -> ApiError:
    """The API's error for a validation problem."""
    kind = problem.kind
    param = problem.param or ""
    value = problem.value
    if kind == "not_an_object":
        return not_an_object(value)
    if kind == "unknown_event_type":
        return unknown_event_type(str(value), problem.allowed)
    if kind == "unknown_parameter":
        return unknown_parameter(param)
    if kind == "missing_required_parameter":
        return missing_required_parameter(param)
    if kind == "invalid_type":
        return invalid_type(param, problem.expected, value)
    if kind == "invalid_value":
        return invalid_value(param, value, problem.allowed)
    if kind in ("below_minimum", "above_maximum"):
        assert isinstance(value, int | float)
        make = value_below_minimum if kind == "below_minimum" else value_above_maximum
        return make(param, value, problem.limit, integer=problem.integer)
    if kind == "string_too_long":
        assert isinstance(value, int)
        return string_above_max_length(param, value, int(problem.limit))
    if kind == "too_many_properties":
        assert isinstance(value, int)
        return too_many_properties(param, value, int(problem.limit))
    return property_name_too_long(param, problem.key, int(problem.limit))
