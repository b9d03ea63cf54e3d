"""Every error and fault of the embedded server, provoked over a real socket.

A raw trio-websocket client talks to ``open_server()`` on 127.0.0.1:0, in both dialects
where they differ: framing and schema errors, conversation and response state errors,
session expiry, refused upgrades, and each :class:`~realtalk.server.Faults` injection (also
as realtalk's own client sees it). Every ``error`` event is checked whole, and the session
is then shown to keep serving.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio_websocket

import realtalk
from realtalk.core import AudioDelta
from realtalk.protocol import (
    ConversationCreated,
    RateLimitsUpdated,
    ResponseDone,
    ServerEvent,
    SessionCreated,
    UnknownEvent,
)
from realtalk.server import Faults, RealtimeServer, ServerOptions, open_server

JSON = dict[str, Any]
Headers = Sequence[tuple[bytes, bytes]]

AUTH = (b"authorization", b"Bearer k")
BETA = (b"openai-beta", b"realtime=v1")
#: Output audio of the embedded server: PCM16 at 24 kHz.
RATE = 24000
#: How long "nothing arrives" is watched for.
QUIET_S = 0.5

both_dialects = pytest.mark.parametrize("dialect", ["ga", "beta"])

#: Beta spellings of the GA server event names these tests wait for.
_BETA_NAMES = {
    "conversation.item.added": "conversation.item.created",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_text.delta": "response.text.delta",
}


# --- the raw client -------------------------------------------------------------------------


@dataclass
class Raw:
    """A raw connection: the socket, its dialect, the ``session`` of ``session.created``
    and every event :func:`next_event` read past."""

    ws: trio_websocket.WebSocketConnection
    dialect: str
    session: JSON = field(default_factory=dict)
    skipped: list[JSON] = field(default_factory=list)

    def name(self, ga_name: str) -> str:
        """The dialect's wire name of a server event."""
        return _BETA_NAMES.get(ga_name, ga_name) if self.dialect == "beta" else ga_name


def url_of(server: RealtimeServer, path: str | None = None) -> str:
    return server.url if path is None else f"ws://127.0.0.1:{server.port}{path}"


@asynccontextmanager
async def open_raw(
    server: RealtimeServer,
    dialect: str = "ga",
    path: str | None = None,
    *,
    headers: Headers = (AUTH,),
) -> AsyncIterator[Raw]:
    """A raw connection to ``server`` (``path`` instead of its OpenAI URL), after
    ``session.created``; beta adds the ``OpenAI-Beta`` header."""
    extra = [*headers, *([BETA] if dialect == "beta" else [])]
    host = f"127.0.0.1:{server.port}"
    resource = url_of(server, path).removeprefix(f"ws://{host}")
    # trio-websocket's client (open_websocket_url) never closes its socket when the peer
    # drops the connection, which the fault tests do: the ResourceWarning would fail them.
    # So the client runs over a TCP stream of ours, closed on the way out.
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery, stream, host, resource, extra_headers=extra, max_message_size=2**31
            )
            try:
                conn = Raw(ws, dialect)
                conn.session = (await next_event(conn, "session.created"))["session"]
                yield conn
            finally:
                with trio.move_on_after(1, shield=True):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        raise group.exceptions[0] from None  # a failure in the block, as itself
    finally:
        await trio.aclose_forcefully(stream)


async def receive(conn: Raw) -> JSON:
    """The next server event, which must be a JSON object in a text frame."""
    message = await conn.ws.get_message()
    assert isinstance(message, str), "the server sent a binary frame"
    event = json.loads(message)
    assert isinstance(event, dict)
    return event


async def next_event(conn: Raw, kind: str | Iterable[str]) -> JSON:
    """Read events until one of type ``kind``; those read past go to ``conn.skipped``.
    An ``error`` nobody waits for fails the test."""
    wanted = {kind} if isinstance(kind, str) else set(kind)
    while True:
        event = await receive(conn)
        if event["type"] in wanted:
            return event
        assert event["type"] != "error", f"unexpected error event: {event}"
        conn.skipped.append(event)


async def expect_error(
    conn: Raw, code: str, *, param: str | None = None, client_event_id: str | None = None
) -> JSON:
    """Wait for the next ``error`` event, check its whole shape, and return its ``error``."""
    event = await next_event(conn, "error")
    assert set(event) == {"type", "event_id", "error"}
    assert isinstance(event["event_id"], str)
    assert event["event_id"].startswith("event_")
    error = event["error"]
    assert set(error) == {"type", "code", "message", "param", "event_id"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["param"] == param
    assert error["event_id"] == client_event_id
    return error


async def send(conn: Raw, event: JSON) -> None:
    await conn.ws.send_message(json.dumps(event))


def user_text(text: str, *, event_id: str | None = None, **fields: Any) -> JSON:
    """A ``conversation.item.create`` of a user message with ``text``."""
    event: JSON = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
        **fields,
    }
    if event_id is not None:
        event["event_id"] = event_id
    return event


def session_update(dialect: str, ga: JSON, beta: JSON, *, event_id: str = "evt_update") -> JSON:
    """A ``session.update`` with the GA or the beta ``session`` patch."""
    session = {"type": "realtime", **ga} if dialect == "ga" else beta
    return {"type": "session.update", "event_id": event_id, "session": session}


async def assert_serving(conn: Raw) -> JSON:
    """The session still answers: a user item is added. Returns the added item."""
    await send(conn, user_text("still there?", event_id="evt_alive"))
    added = await next_event(conn, conn.name("conversation.item.added"))
    assert added["item"]["content"] == [{"type": "input_text", "text": "still there?"}]
    item: JSON = added["item"]
    return item


async def spoken_response(conn: Raw, text: str = "hi") -> tuple[str, bytes]:
    """Say ``text`` as the user and read the whole response: the assistant item's id and
    all of its audio (PCM16 bytes)."""
    await send(conn, user_text(text))
    await send(conn, {"type": "response.create"})
    delta_type = conn.name("response.output_audio.delta")
    audio = bytearray()
    item_id = None
    while True:
        event = await next_event(conn, (delta_type, "response.done"))
        if event["type"] == "response.done":
            assert event["response"]["status"] == "completed"
            break
        item_id = item_id or event["item_id"]
        assert event["item_id"] == item_id
        audio += base64.b64decode(event["delta"], validate=True)
    assert item_id is not None
    assert audio
    return item_id, bytes(audio)


async def refusal(server: RealtimeServer, path: str, headers: Headers) -> tuple[int, JSON]:
    """The HTTP status and JSON body of an upgrade the server must refuse."""
    # Over a stream of our own: trio-websocket's client leaves its socket open after a
    # refusal (a ResourceWarning, so an error here).
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    host = f"127.0.0.1:{server.port}"
    try:
        # The refusal is raised by trio-websocket's reader task, so it comes in a group.
        with pytest.RaisesGroup(trio_websocket.ConnectionRejected) as caught:
            async with trio.open_nursery() as nursery:
                await trio_websocket.wrap_client_stream(
                    nursery, stream, host, path, extra_headers=list(headers)
                )
    finally:
        await trio.aclose_forcefully(stream)
    rejected = caught.value.exceptions[0]
    assert isinstance(rejected, trio_websocket.ConnectionRejected)
    content_type = dict(rejected.headers or []).get(b"content-type")
    assert content_type == b"application/json"
    assert rejected.body is not None
    body = json.loads(rejected.body)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] is None
    return rejected.status_code, body["error"]


# --- framing --------------------------------------------------------------------------------

INVALID_JSON = (
    "Invalid event: failed to parse JSON value. Please check the value to ensure it is valid "
    "JSON. (Common errors include trailing commas, missing closing brackets, missing "
    "quotation marks, etc.)"
)


@both_dialects
@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        pytest.param('{"type": "response.cancel",', "invalid_json", INVALID_JSON, id="truncated"),
        pytest.param(
            b'{"type": "response.cancel"}',
            "invalid_event",
            "Expected a text WebSocket message; binary frames are not supported.",
            id="binary",
        ),
        pytest.param(
            '[{"type": "response.cancel", "event_id": "evt_1"}]',
            "invalid_type",
            "Invalid type for event: expected an object, but got an array instead.",
            id="array",
        ),
        pytest.param(
            '"response.cancel"',
            "invalid_type",
            "Invalid type for event: expected an object, but got a string instead.",
            id="string",
        ),
        pytest.param(
            '{"type": "session.update", "event_id": "evt_1", "session": {"temperature": NaN}}',
            "invalid_json",
            INVALID_JSON,
            id="nan",
        ),
        pytest.param(
            '{"type": "response.cancel", "event_id": "evt_1", "x": -Infinity}',
            "invalid_json",
            INVALID_JSON,
            id="infinity",
        ),
        # Deeper than Python's recursion limit: json.loads raises RecursionError.
        pytest.param("[" * 100_000 + "]" * 100_000, "invalid_json", INVALID_JSON, id="deep"),
    ],
)
async def test_unreadable_frame(dialect: str, frame: str | bytes, code: str, message: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            await conn.ws.send_message(frame)
            # Nothing in the frame can be trusted, so no client event_id is echoed.
            error = await expect_error(conn, code, param=None, client_event_id=None)
            assert error["message"] == message
            await assert_serving(conn)


# --- schema validation ----------------------------------------------------------------------

TRUNCATE = {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0}

BOTH = ("ga", "beta")

#: (dialects, id, event, code, param, message); a message ending in ", " is a prefix.
SCHEMA: list[tuple[tuple[str, ...], str, JSON, str, str, str]] = [
    (
        BOTH,
        "unknown-type",
        {"type": "response.bogus"},
        "invalid_value",
        "type",
        "Invalid value: 'response.bogus'. Supported values are: 'session.update', ",
    ),
    (
        BOTH,
        "unknown-top-level",
        {"type": "response.cancel", "bogus": 1},
        "unknown_parameter",
        "bogus",
        "Unknown parameter: 'bogus'.",
    ),
    (
        BOTH,
        "missing",
        TRUNCATE,
        "missing_required_parameter",
        "audio_end_ms",
        "Missing required parameter: 'audio_end_ms'.",
    ),
    (
        BOTH,
        "invalid-type",
        {**TRUNCATE, "audio_end_ms": "5"},
        "invalid_type",
        "audio_end_ms",
        "Invalid type for 'audio_end_ms': expected an integer, but got a string instead.",
    ),
    (
        ("ga",),
        "unknown-in-session",
        {"type": "session.update", "session": {"type": "realtime", "bogus_field": 1}},
        "unknown_parameter",
        "session.bogus_field",
        "Unknown parameter: 'session.bogus_field'.",
    ),
    (
        ("ga",),
        "unknown-nested",
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detecton": None}}},
        },
        "unknown_parameter",
        "session.audio.input.turn_detecton",
        "Unknown parameter: 'session.audio.input.turn_detecton'.",
    ),
    (
        ("beta",),
        "unknown-nested",
        {"type": "session.update", "session": {"turn_detecton": None}},
        "unknown_parameter",
        "session.turn_detecton",
        "Unknown parameter: 'session.turn_detecton'.",
    ),
    (
        ("ga",),
        "missing-session-type",
        {"type": "session.update", "session": {"instructions": "x"}},
        "missing_required_parameter",
        "session.type",
        "Missing required parameter: 'session.type'.",
    ),
    (
        ("ga",),
        "enum",
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "loud_vad"}}},
            },
        },
        "invalid_value",
        "session.audio.input.turn_detection.type",
        "Invalid value: 'loud_vad'. Supported values are: 'server_vad' and 'semantic_vad'.",
    ),
    (
        ("beta",),
        "enum",
        {"type": "session.update", "session": {"input_audio_format": "mp3"}},
        "invalid_value",
        "session.input_audio_format",
        "Invalid value: 'mp3'. Supported values are: 'pcm16', 'g711_ulaw', and 'g711_alaw'.",
    ),
    (
        ("ga",),
        "above-max",
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"speed": 3}}},
        },
        "decimal_above_max_value",
        "session.audio.output.speed",
        "Invalid 'session.audio.output.speed': decimal above maximum value. "
        "Expected a value <= 1.5, but got 3 instead.",
    ),
    (
        ("beta",),
        "above-max",
        {"type": "session.update", "session": {"temperature": 5}},
        "decimal_above_max_value",
        "session.temperature",
        "Invalid 'session.temperature': decimal above maximum value. "
        "Expected a value <= 1.2, but got 5 instead.",
    ),
    (
        ("beta",),
        "below-min",
        {"type": "session.update", "session": {"temperature": 0.3}},
        "decimal_below_min_value",
        "session.temperature",
        "Invalid 'session.temperature': decimal below minimum value. "
        "Expected a value >= 0.6, but got 0.3 instead.",
    ),
]
SCHEMA_CASES = [
    pytest.param(dialect, event, code, param, message, id=f"{dialect}-{name}")
    for dialects, name, event, code, param, message in SCHEMA
    for dialect in dialects
]


@pytest.mark.parametrize(("dialect", "event", "code", "param", "message"), SCHEMA_CASES)
async def test_schema_error(dialect: str, event: JSON, code: str, param: str, message: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            await send(conn, {**event, "event_id": "evt_schema"})
            error = await expect_error(conn, code, param=param, client_event_id="evt_schema")
            if message.endswith(", "):  # the list of every event type follows
                assert error["message"].startswith(message)
                assert "'response.create', 'response.cancel'" in error["message"]
                assert error["message"].endswith("'.")
            else:
                assert error["message"] == message
            await assert_serving(conn)


async def test_refused_session_update_changes_nothing() -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, "beta") as conn:
            await send(conn, {"type": "session.update", "session": {"temperature": 5}})
            await expect_error(conn, "decimal_above_max_value", param="session.temperature")
            await send(conn, {"type": "session.update", "session": {"instructions": "x"}})
            updated = await next_event(conn, "session.updated")
            assert updated["session"]["temperature"] == conn.session["temperature"]
            assert updated["session"]["instructions"] == "x"


# --- responses and the input buffer --------------------------------------------------------


@both_dialects
async def test_response_create_while_one_is_active(dialect: str) -> None:
    with trio.fail_after(10):
        # Paced: the response streams in real time, so it is still active below.
        async with (
            open_server(options=ServerOptions(paced=True)) as server,
            open_raw(server, dialect) as conn,
        ):
            await send(conn, user_text("hi"))
            await send(conn, {"type": "response.create"})
            active = (await next_event(conn, "response.created"))["response"]["id"]
            await send(conn, {"type": "response.create", "event_id": "evt_second"})
            error = await expect_error(
                conn, "conversation_already_has_active_response", client_event_id="evt_second"
            )
            assert error["message"] == (
                f"Conversation already has an active response in progress: {active}. "
                "Wait until the response is finished before creating a new one."
            )
            await send(conn, {"type": "response.cancel"})
            done = (await next_event(conn, "response.done"))["response"]
            assert (done["id"], done["status"]) == (active, "cancelled")
            await assert_serving(conn)
            # The refused request started nothing.
            assert [e for e in conn.skipped if e["type"] == "response.created"] == []


@both_dialects
@pytest.mark.parametrize("cancel", [{}, {"response_id": "resp_nope"}], ids=["plain", "by-id"])
async def test_response_cancel_without_a_response(dialect: str, cancel: JSON) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            await send(conn, {"type": "response.cancel", "event_id": "evt_cancel", **cancel})
            error = await expect_error(
                conn, "response_cancel_not_active", client_event_id="evt_cancel"
            )
            assert error["message"] == "Cancellation failed: no active response found"
            await assert_serving(conn)


@both_dialects
async def test_commit_of_too_little_audio(dialect: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            vad_off = session_update(
                dialect, {"audio": {"input": {"turn_detection": None}}}, {"turn_detection": None}
            )
            await send(conn, vad_off)
            await next_event(conn, "session.updated")
            fifty_ms = base64.b64encode(bytes(2 * RATE * 50 // 1000)).decode()
            await send(conn, {"type": "input_audio_buffer.append", "audio": fifty_ms})
            await send(conn, {"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
            error = await expect_error(
                conn, "input_audio_buffer_commit_empty", client_event_id="evt_commit"
            )
            assert error["message"] == (
                "Error committing input audio buffer: buffer too small. Expected at least "
                "100ms of audio, but buffer only has 50.00ms of audio."
            )
            await assert_serving(conn)


@both_dialects
async def test_append_of_invalid_base64(dialect: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            bad = {"type": "input_audio_buffer.append", "audio": "!!!!", "event_id": "evt_append"}
            await send(conn, bad)
            error = await expect_error(
                conn, "invalid_value", param="audio.audio", client_event_id="evt_append"
            )
            assert error["message"].startswith("Invalid 'audio'. Expected base64-encoded audio")
            await assert_serving(conn)


# --- conversation items ---------------------------------------------------------------------


@both_dialects
async def test_truncate_past_the_audio(dialect: str) -> None:
    with trio.fail_after(10):
        async with open_server() as server, open_raw(server, dialect) as conn:
            item_id, audio = await spoken_response(conn, "hi")
            audio_ms = len(audio) // 2 * 1000 // RATE
            assert audio_ms > 200
            beyond = audio_ms + 1000
            truncate = {**TRUNCATE, "item_id": item_id, "event_id": "evt_truncate"}
            await send(conn, {**truncate, "audio_end_ms": beyond})
            error = await expect_error(conn, "invalid_value", client_event_id="evt_truncate")
            assert error["message"] == (
                f"Audio content of {audio_ms}ms is already shorter than {beyond}ms"
            )
            await assert_serving(conn)

            await send(conn, {**truncate, "audio_end_ms": 100})
            truncated = await next_event(conn, "conversation.item.truncated")
            assert truncated["item_id"] == item_id
            assert (truncated["content_index"], truncated["audio_end_ms"]) == (0, 100)
            await send(conn, {"type": "conversation.item.retrieve", "item_id": item_id})
            item = (await next_event(conn, "conversation.item.retrieved"))["item"]
            assert item["id"] == item_id
            (part,) = item["content"]
            assert part["type"] == ("output_audio" if dialect == "ga" else "audio")
            assert part["transcript"] == ""
            kept = base64.b64decode(part["audio"], validate=True)
            assert len(kept) == 2400 * 2
            assert kept == audio[: len(kept)]


@both_dialects
async def test_truncate_before_the_start(dialect: str) -> None:
    with trio.fail_after(10):
        async with open_server() as server, open_raw(server, dialect) as conn:
            item_id, audio = await spoken_response(conn, "hi")
            event = {**TRUNCATE, "item_id": item_id, "audio_end_ms": -100, "event_id": "evt_neg"}
            await send(conn, event)
            error = await expect_error(
                conn, "integer_below_min_value", param="audio_end_ms", client_event_id="evt_neg"
            )
            assert error["message"] == (
                "Invalid 'audio_end_ms': integer below minimum value. "
                "Expected a value >= 0, but got -100 instead."
            )
            # The audio is untouched.
            await send(conn, {"type": "conversation.item.retrieve", "item_id": item_id})
            item = (await next_event(conn, "conversation.item.retrieved"))["item"]
            assert base64.b64decode(item["content"][0]["audio"]) == audio
            await assert_serving(conn)


@both_dialects
async def test_truncate_of_a_user_item(dialect: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            user_item = await assert_serving(conn)
            truncate = {**TRUNCATE, "item_id": user_item["id"], "audio_end_ms": 0}
            await send(conn, {**truncate, "event_id": "evt_user"})
            error = await expect_error(conn, "unsupported_content_type", client_event_id="evt_user")
            assert error["message"] == "Only model output audio messages can be truncated"
            await assert_serving(conn)


@both_dialects
@pytest.mark.parametrize(
    ("event", "code", "message"),
    [
        (
            {**TRUNCATE, "item_id": "item_nope", "audio_end_ms": 0},
            "item_truncate_invalid_item_id",
            "Item with item_id not found: item_nope",
        ),
        (
            {"type": "conversation.item.delete", "item_id": "item_nope"},
            "item_delete_invalid_item_id",
            "Item with item_id not found: item_nope",
        ),
        (
            {"type": "conversation.item.retrieve", "item_id": "item_nope"},
            "item_retrieve_invalid_item_id",
            "Item with item_id not found: item_nope",
        ),
        (
            user_text("hello", previous_item_id="item_nope"),
            "item_create_invalid_previous_item_id",
            "Previous item with item_id not found: item_nope",
        ),
    ],
    ids=["truncate", "delete", "retrieve", "create-after"],
)
async def test_unknown_item_id(dialect: str, event: JSON, code: str, message: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            await assert_serving(conn)  # the conversation is not empty
            await send(conn, {**event, "event_id": "evt_item"})
            error = await expect_error(conn, code, client_event_id="evt_item")
            assert error["message"] == message
            await assert_serving(conn)


@both_dialects
async def test_item_create_with_undecodable_audio(dialect: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            for audio in ("abc", "!!!!"):  # bad padding; not base64 at all
                content = [{"type": "input_audio", "audio": audio}]
                item = {"type": "message", "role": "user", "content": content}
                await send(
                    conn, {"type": "conversation.item.create", "item": item, "event_id": "evt_a"}
                )
                error = await expect_error(
                    conn, "invalid_value", param="item.content[0].audio", client_event_id="evt_a"
                )
                assert "Expected base64-encoded audio bytes" in error["message"]
                await assert_serving(conn)


# --- session --------------------------------------------------------------------------------


@both_dialects
async def test_voice_change_after_audio(dialect: str) -> None:
    def voice(name: str, event_id: str) -> JSON:
        return session_update(
            dialect, {"audio": {"output": {"voice": name}}}, {"voice": name}, event_id=event_id
        )

    with trio.fail_after(10):
        async with open_server() as server, open_raw(server, dialect) as conn:
            # Before any audio the voice may change.
            await send(conn, voice("cedar", "evt_v1"))
            await next_event(conn, "session.updated")
            await spoken_response(conn, "hi")
            await send(conn, voice("ash", "evt_v2"))
            error = await expect_error(conn, "cannot_update_voice", client_event_id="evt_v2")
            assert error["message"] == (
                "Cannot update a conversation's voice if assistant audio is present."
            )
            # Naming the voice it already has is no change.
            await send(conn, voice("cedar", "evt_v3"))
            updated = (await next_event(conn, "session.updated"))["session"]
            current = updated["audio"]["output"]["voice"] if dialect == "ga" else updated["voice"]
            assert current == "cedar"
            await assert_serving(conn)


@both_dialects
@pytest.mark.parametrize("key", ["silence_duration_ms", "prefix_padding_ms"])
async def test_negative_turn_detection_duration(dialect: str, key: str) -> None:
    with trio.fail_after(5):
        async with open_server() as server, open_raw(server, dialect) as conn:
            vad = {"type": "server_vad", key: -5}
            await send(
                conn,
                session_update(
                    dialect, {"audio": {"input": {"turn_detection": vad}}}, {"turn_detection": vad}
                ),
            )
            where = "session.audio.input" if dialect == "ga" else "session"
            param = f"{where}.turn_detection.{key}"
            error = await expect_error(
                conn, "integer_below_min_value", param=param, client_event_id="evt_update"
            )
            assert error["message"] == (
                f"Invalid '{param}': integer below minimum value. "
                "Expected a value >= 0, but got -5 instead."
            )
            await assert_serving(conn)


@both_dialects
async def test_session_expiry(dialect: str) -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=ServerOptions(max_session_s=0.3)) as server,
            open_raw(server, dialect) as conn,
        ):
            opened = trio.current_time()
            error = await expect_error(conn, "session_expired")
            assert trio.current_time() - opened >= 0.25
            assert error["message"] == "Your session hit the maximum duration of 1 minute."
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await receive(conn)
            # As the live API closes: 1001 (going away), the error's message as reason.
            assert closed.value.reason.code == 1001
            assert closed.value.reason.reason == error["message"]
            assert conn.ws.closed is not None


# --- the upgrade ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "status", "code", "message"),
    [
        pytest.param(
            "/v2/realtime?model=m",
            [AUTH],
            404,
            "not_found",
            "Invalid URL (GET /v2/realtime); this server answers /openai/realtime, "
            "/openai/v1/realtime, /v1/realtime",
            id="wrong-path",
        ),
        pytest.param(
            "/v1/realtime?model=m",
            [],
            401,
            "missing_api_key",
            "You didn't provide an API key. Provide it in an Authorization header "
            "(Bearer auth) or an api-key header.",
            id="no-credentials",
        ),
        pytest.param(
            "/v1/realtime",
            [AUTH],
            400,
            "missing_required_parameter",
            "Missing required query parameter: model",
            id="no-model",
        ),
        pytest.param(
            "/openai/realtime?deployment=d",
            [(b"api-key", b"k")],
            400,
            "missing_api_version",
            "Missing required query parameter: api-version",
            id="azure-no-api-version",
        ),
        pytest.param(
            "/openai/realtime?api-version=x",
            [(b"api-key", b"k")],
            400,
            "missing_required_parameter",
            "Missing required query parameter: deployment",
            id="azure-no-deployment",
        ),
    ],
)
async def test_upgrade_refused(
    path: str, headers: Headers, status: int, code: str, message: str
) -> None:
    with trio.fail_after(5):
        async with open_server() as server:
            got_status, error = await refusal(server, path, headers)
            assert (got_status, error["code"], error["message"]) == (status, code, message)
            assert server.connections == 0
            # The server goes on accepting.
            async with open_raw(server) as conn:
                await assert_serving(conn)


async def test_wrong_api_key_is_refused_and_masked() -> None:
    wrong = "sk-wrong-0123456789abcdef"
    with trio.fail_after(5):
        async with open_server(options=ServerOptions(api_key="right")) as server:
            bearer = (b"authorization", f"Bearer {wrong}".encode())
            status, error = await refusal(server, "/v1/realtime?model=m", [bearer])
            assert (status, error["code"]) == (401, "invalid_api_key")
            # Its first and last characters only.
            assert error["message"] == f"Incorrect API key provided: sk-{'*' * 18}cdef."
            assert wrong not in error["message"]
            # A short key, here in an api-key header, is masked whole.
            status, error = await refusal(server, "/v1/realtime?model=m", [(b"api-key", b"x")])
            assert (status, error["code"]) == (401, "invalid_api_key")
            assert error["message"] == "Incorrect API key provided: ***."

            # realtalk's client says it is an authentication problem, without the key.
            with pytest.raises(realtalk.AuthenticationError) as caught:
                async with realtalk.connect(server.url, api_key=wrong):
                    pytest.fail("connected with the wrong key")
            assert caught.value.status_code == 401
            assert wrong not in str(caught.value)

            # The right key, either way.
            for header in [(b"authorization", b"Bearer right"), (b"api-key", b"right")]:
                async with open_raw(server, headers=[header]) as conn:
                    await assert_serving(conn)


@both_dialects
@pytest.mark.parametrize(
    "path", ["/openai/realtime?api-version=x&deployment=d", "/openai/v1/realtime?model=d"]
)
async def test_azure_paths_accepted(dialect: str, path: str) -> None:
    with trio.fail_after(5):
        async with (
            open_server() as server,
            open_raw(server, dialect, path, headers=[(b"api-key", b"k")]) as conn,
        ):
            session = conn.session
            assert session["model"] == "d"
            if dialect == "ga":
                assert session["type"] == "realtime"
                assert "output_modalities" in session
                assert "modalities" not in session
            else:
                assert "type" not in session
                assert session["modalities"] == ["text", "audio"]
            await assert_serving(conn)


# --- faults ---------------------------------------------------------------------------------


def faulty(**faults: Any) -> ServerOptions:
    return ServerOptions(faults=Faults(**faults))


async def read_until_dropped(conn: Raw) -> list[JSON]:
    """Every event until the connection ends, which must be without a close frame."""
    events: list[JSON] = []
    closed: trio_websocket.ConnectionClosed | None = None
    while closed is None:
        try:
            events.append(await receive(conn))
        except trio_websocket.ConnectionClosed as exc:
            closed = exc
    assert closed.reason.code == 1006  # abnormal closure: no close frame
    return events


async def test_drop_after_events_raw() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(drop_after_events=3)) as server,
            open_raw(server) as conn,  # event 1: session.created
        ):
            assert (await receive(conn))["type"] == "conversation.created"
            await send(conn, user_text("hi"))
            events = await read_until_dropped(conn)
            assert [e["type"] for e in events] == ["conversation.item.added"]


async def test_drop_after_events_realtalk() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(drop_after_events=3)) as server,
            realtalk.connect(server.url, api_key="k") as session,
        ):
            await session.send_text("hi", respond=False)
            seen = [event async for event in session.events()]  # ends with the drop
            wire = [e.type for e in seen if isinstance(e, ServerEvent)]
            assert wire == ["session.created", "conversation.created", "conversation.item.added"]
            with pytest.raises(realtalk.ConnectionClosed) as closed:
                await session.send_text("anyone?")
            assert closed.value.code == 1006


@pytest.mark.parametrize("audio", [True, False], ids=["audio", "text"])
async def test_drop_mid_response_raw(audio: bool) -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(drop_mid_response=True)) as server,
            open_raw(server) as conn,
        ):
            await send(conn, user_text("hi"))
            modalities = ["audio"] if audio else ["text"]
            await send(
                conn, {"type": "response.create", "response": {"output_modalities": modalities}}
            )
            events = await read_until_dropped(conn)
            delta = "response.output_audio.delta" if audio else "response.output_text.delta"
            types = [e["type"] for e in events]
            assert "response.created" in types
            # Right after the first delta: it is the last event, and the only delta.
            assert types[-1] == delta
            assert [t for t in types if t.endswith(".delta")] == [delta]


async def test_drop_mid_response_realtalk() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(drop_mid_response=True)) as server,
            realtalk.connect(server.url, api_key="k") as session,
        ):
            await session.send_text("hi")
            seen = [event async for event in session.events()]
            assert sum(isinstance(e, AudioDelta) for e in seen) == 1
            assert not any(isinstance(e, ResponseDone) for e in seen)
            with pytest.raises(realtalk.ConnectionClosed) as closed:
                await session.create_response()
            assert closed.value.code == 1006


async def test_delay_before_every_event() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(delay_ms=50)) as server,
            trio_websocket.open_websocket_url(server.url, extra_headers=[AUTH]) as ws,
        ):
            upgraded = trio.current_time()
            assert json.loads(await ws.get_message())["type"] == "session.created"
            created = trio.current_time()
            assert json.loads(await ws.get_message())["type"] == "conversation.created"
            assert created - upgraded >= 0.045
            assert trio.current_time() - created >= 0.045

            started = trio.current_time()
            async with realtalk.connect(server.url, api_key="k"):
                assert trio.current_time() - started >= 0.045


async def test_stall_after_events_raw() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(stall_after_events=2)) as server,
            open_raw(server) as conn,
        ):
            assert (await receive(conn))["type"] == "conversation.created"
            for n in range(20):  # more than the server's message queue holds
                await send(conn, user_text(f"hello {n}"))
            with trio.move_on_after(QUIET_S) as quiet:
                event = await receive(conn)
                pytest.fail(f"an event after the stall: {event}")
            assert quiet.cancelled_caught
            assert conn.ws.closed is None
            # The server still reads the socket: a ping is answered.
            with trio.fail_after(1):
                await conn.ws.ping(b"stalled?")
            assert conn.ws.closed is None


async def test_stall_after_events_realtalk() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(stall_after_events=2)) as server,
            realtalk.connect(server.url, api_key="k") as session,
        ):
            events = session.events()
            assert isinstance(await events.receive(), SessionCreated)
            assert isinstance(await events.receive(), ConversationCreated)
            await session.send_text("hi")
            with trio.move_on_after(QUIET_S) as quiet:
                event = await events.receive()
                pytest.fail(f"an event after the stall: {event}")
            assert quiet.cancelled_caught
            await session.send_text("still open", respond=False)  # does not raise


async def test_corrupt_audio_raw() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(corrupt_audio=True)) as server,
            open_raw(server) as conn,
        ):
            await send(conn, user_text("hi"))
            await send(conn, {"type": "response.create"})
            deltas: list[str] = []
            while True:
                event = await next_event(conn, ("response.output_audio.delta", "response.done"))
                if event["type"] == "response.done":
                    break
                deltas.append(event["delta"])
            assert event["response"]["status"] == "completed"
            assert len(deltas) > 1
            with pytest.raises(binascii.Error):
                base64.b64decode(deltas[0], validate=True)
            for later in deltas[1:]:
                assert base64.b64decode(later, validate=True)
            await assert_serving(conn)


async def test_corrupt_audio_realtalk() -> None:
    with trio.fail_after(5):
        async with (
            open_server(options=faulty(corrupt_audio=True)) as server,
            realtalk.connect(server.url, api_key="k") as session,
        ):
            await session.send_text("hi")
            seen = []
            async for event in session.events():
                seen.append(event)
                if isinstance(event, ResponseDone):
                    break
            bad = [e for e in seen if isinstance(e, UnknownEvent)]
            assert len(bad) == 1
            assert bad[0].type == "response.output_audio.delta"
            assert bad[0].problem is not None
            assert "base64" in bad[0].problem
            later = seen[seen.index(bad[0]) + 1 :]
            assert any(isinstance(e, AudioDelta) for e in later)
            assert not any(isinstance(e, AudioDelta) for e in seen[: seen.index(bad[0])])
            assert seen[-1].status == "completed"


OVERSIZED = 20_000_000


async def test_oversized_event_raw() -> None:
    with trio.fail_after(10):
        async with (
            open_server(options=faulty(oversized_event_bytes=OVERSIZED)) as server,
            open_raw(server) as conn,
        ):
            message = await conn.ws.get_message()  # right after session.created
            assert isinstance(message, str)
            assert OVERSIZED - 100 <= len(message) <= OVERSIZED
            event = json.loads(message)
            assert event["type"] == "rate_limits.updated"
            assert event["rate_limits"][0]["name"] == "requests"
            assert (await receive(conn))["type"] == "conversation.created"
            await assert_serving(conn)


async def test_oversized_event_realtalk() -> None:
    with trio.fail_after(10):
        async with (
            open_server(options=faulty(oversized_event_bytes=OVERSIZED)) as server,
            realtalk.connect(server.url, api_key="k") as session,
        ):
            events = session.events()
            assert isinstance(await events.receive(), SessionCreated)
            limits = await events.receive()
            assert isinstance(limits, RateLimitsUpdated)
            assert limits.rate_limits[0]["name"] == "requests"
            assert len(limits.raw["padding"]) > OVERSIZED - 1000
            assert isinstance(await events.receive(), ConversationCreated)
            await session.send_text("hi", respond=False)


async def drain(ws: trio_websocket.WebSocketConnection) -> None:
    """Read until the connection closes (raises ``ConnectionClosed``)."""
    while True:
        await ws.get_message()


async def test_a_bug_in_one_session_ends_only_that_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from realtalk.server._session import _HANDLERS

    async def broken(session: Any, obj: JSON, client_id: str | None) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(_HANDLERS, "input_audio_buffer.clear", broken)
    with trio.fail_after(10):
        async with open_server() as server:
            async with open_raw(server) as conn:
                await conn.ws.send_message(
                    json.dumps({"type": "input_audio_buffer.clear", "event_id": "evt_bug"})
                )
                error = await next_event(conn, "error")
                assert error["error"]["type"] == "server_error"
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await drain(conn.ws)
                assert closed.value.reason.code == 1011
            # The server goes on serving other connections.
            async with open_raw(server) as other:
                await assert_serving(other)


async def test_an_item_truncated_while_streaming_stays_cut() -> None:
    with trio.fail_after(10):
        async with (
            open_server(options=ServerOptions(paced=True, delta_ms=50)) as server,
            open_raw(server) as conn,
        ):
            await conn.ws.send_message(json.dumps(user_text("Tell me a long story, please.")))
            await conn.ws.send_message(json.dumps({"type": "response.create"}))
            delta = await next_event(conn, "response.output_audio.delta")
            truncate = {
                "type": "conversation.item.truncate",
                "item_id": delta["item_id"],
                "content_index": 0,
                "audio_end_ms": 20,
            }
            await conn.ws.send_message(json.dumps(truncate))
            await next_event(conn, "conversation.item.truncated")
            done = await next_event(conn, "response.done")
            (item,) = done["response"]["output"]
            assert item["status"] == "incomplete"
            assert item["content"][0]["transcript"] == ""
            retrieve = {"type": "conversation.item.retrieve", "item_id": delta["item_id"]}
            await conn.ws.send_message(json.dumps(retrieve))
            retrieved = await next_event(conn, "conversation.item.retrieved")
            audio = retrieved["item"]["content"][0]["audio"]
            assert len(base64.b64decode(audio)) == 20 * 24 * 2  # still 20 ms, nothing added
