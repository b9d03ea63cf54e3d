"""The embedded server against the official ``openai`` package's Realtime clients.

Four ways in, as PROTOCOL.md §2.3 describes them: ``AsyncOpenAI.realtime`` (GA),
``AsyncOpenAI.beta.realtime`` (beta, ``OpenAI-Beta: realtime=v1``), and the same two on
``AsyncAzureOpenAI`` (``/openai/realtime?api-version=…&deployment=…``). The server runs
under trio in a thread (:class:`server_thread.ServerThread`); the client runs under
``asyncio.run`` in the test thread.

Every server event the client receives is checked: the SDK must parse it into the model
class of its ``type`` in the dialect, the raw JSON must validate strictly against that
model (the SDK itself only constructs, without validation), and no object in it may carry
a key the model does not declare, except the few in :data:`ALLOWED_EXTRA`. Problems are
collected and reported together at the end of each test. The SDK's own transport is
used: ``websockets``, from the ``openai[realtime]`` extra in the dev lock.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import typing
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pydantic
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

from peer import _extra_paths
from realtalk.server import ServerOptions
from realtalk.server._speech import synthesize
from server_thread import ServerThread

Dialect = Literal["ga", "beta"]

TIMEOUT_S = 20.0
RATE = 24000
CHUNK_MS = 20
AZURE_API_VERSION = "2025-04-01-preview"

# The server VAD's documented defaults (PROTOCOL.md §4.4) and its level threshold.
PREFIX_PADDING_MS = 300
SILENCE_DURATION_MS = 500
VAD_THRESHOLD_DBFS = -35.0
VAD_TOLERANCE_MS = 150

#: Undeclared keys the server may send, per (dialect, event type): dotted paths.
#: GA ``session.created``/``session.updated`` carry the *request* model
#: (``RealtimeSessionCreateRequest``), which has no ``id``/``object``/``expires_at``; the
#: real API sends them anyway, as its REST response model (``RealtimeSessionCreateResponse``)
#: does (PROTOCOL.md §3, "Note on session.created/updated payloads"). Beta's ``Session``
#: model declares ``id`` only; the beta API's own session examples carry
#: ``"object": "realtime.session"`` and an ``expires_at`` as well.
_SESSION_EXTRAS = frozenset({"session.id", "session.object", "session.expires_at"})
ALLOWED_EXTRA: dict[tuple[Dialect, str], frozenset[str]] = {
    (dialect, kind): _SESSION_EXTRAS
    for dialect in ("ga", "beta")
    for kind in ("session.created", "session.updated")
}

#: GA event names that beta spells differently (PROTOCOL.md §7.1).
_BETA_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}

#: What the server sends first on every connection.
_GREETING = ("session.created", "conversation.created")


def types_of(events: list[tuple[Any, dict[str, Any]]]) -> list[str]:
    """The ``type`` of each (parsed, raw) event."""
    return [raw["type"] for _, raw in events]


@dataclass(frozen=True)
class Route:
    """One way the openai package connects."""

    name: str
    dialect: Dialect
    azure: bool

    def client(self, server: ServerThread) -> AsyncOpenAI:
        if self.azure:
            return AsyncAzureOpenAI(
                api_key="k",
                api_version=AZURE_API_VERSION,
                azure_endpoint="https://example.openai.azure.com",
                websocket_base_url=server.azure_url,
            )
        return AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)

    def connect(self, client: AsyncOpenAI) -> Any:
        realtime: Any = client.beta.realtime if self.dialect == "beta" else client.realtime
        return realtime.connect(model="my-dep" if self.azure else "gpt-realtime")


ROUTES = [
    Route("openai-ga", "ga", azure=False),
    Route("openai-beta", "beta", azure=False),
    Route("azure-ga", "ga", azure=True),
    Route("azure-beta", "beta", azure=True),
]
route_param = pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])


@functools.cache
def server_event_models(dialect: Dialect) -> dict[str, type[pydantic.BaseModel]]:
    """``type`` -> model of every server event of ``dialect`` in the openai package."""
    if dialect == "ga":
        from openai.types.realtime import RealtimeServerEvent
    else:
        from openai.types.beta.realtime import RealtimeServerEvent
    union = typing.get_args(RealtimeServerEvent)[0]
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in typing.get_args(union):
        (name,) = typing.get_args(model.model_fields["type"].annotation)
        models[name] = model
    return models


@functools.cache
def server_event_adapter(dialect: Dialect) -> pydantic.TypeAdapter[Any]:
    """The dialect's ``RealtimeServerEvent`` union, discriminated by ``type`` for pydantic.

    (The SDK marks the discriminator with its own ``PropertyInfo``, which pydantic does not
    read; as a plain union, a failure would list every member's errors.)
    """
    members = tuple(server_event_models(dialect).values())
    union = typing.Union[members]  # noqa: UP007 (built at runtime from a tuple)
    return pydantic.TypeAdapter(typing.Annotated[union, pydantic.Field(discriminator="type")])


#: Beta's ``Session.model`` is a closed ``Literal`` of OpenAI model names (GA's is
#: ``str | Literal``). The server reports an Azure deployment name there, which the beta
#: model cannot hold; for Azure beta sessions the raw event is validated with a model name
#: in its place (a known deviation, left unchecked here).
_BETA_MODEL_STANDIN = "gpt-4o-realtime-preview"


@dataclass(eq=False)
class Conversation:
    """An open openai connection whose every received event is checked."""

    conn: Any
    dialect: Dialect
    #: An Azure deployment name the beta ``session.model`` may carry (see above).
    deployment: str | None = None
    problems: list[str] = field(default_factory=list)
    #: Every event received: (parsed by the SDK, raw JSON object).
    received: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    def name(self, ga_name: str) -> str:
        """The wire name of a server event in this dialect."""
        return _BETA_NAMES.get(ga_name, ga_name) if self.dialect == "beta" else ga_name

    async def recv(self) -> tuple[Any, dict[str, Any]]:
        """The next event as the SDK parses it (``recv_bytes`` + ``parse_event``, which is
        what ``recv()`` and ``async for`` do), and its raw JSON."""
        data = await self.conn.recv_bytes()
        event = self.conn.parse_event(data)
        raw = json.loads(data)
        self._check(event, raw, data)
        self.received.append((event, raw))
        return event, raw

    async def until(self, ga_name: str) -> list[tuple[Any, dict[str, Any]]]:
        """Events up to and including the next one of type ``ga_name`` (dialect-mapped)."""
        wanted = self.name(ga_name)
        events = []
        while True:
            event, raw = await self.recv()
            events.append((event, raw))
            if raw.get("type") == wanted:
                return events

    def _check(self, event: Any, raw: dict[str, Any], data: bytes | str) -> None:
        index = len(self.received)
        kind = raw.get("type")
        where = f"event {index} ({kind})"
        model = server_event_models(self.dialect).get(kind) if isinstance(kind, str) else None
        if model is None:
            self.problems.append(f"{where}: not a {self.dialect} server event type")
            return
        if type(event) is not model:
            self.problems.append(
                f"{where}: the SDK parsed it as {type(event).__name__}, not {model.__name__}"
            )
        if (
            self.deployment is not None
            and kind in ("session.created", "session.updated")
            and isinstance(raw.get("session"), dict)
            and raw["session"].get("model") == self.deployment
        ):
            data = json.dumps({**raw, "session": {**raw["session"], "model": _BETA_MODEL_STANDIN}})
        try:
            validated = server_event_adapter(self.dialect).validate_json(data, strict=True)
        except pydantic.ValidationError as exc:
            self.problems.append(f"{where}: does not validate strictly: {exc}")
            return
        allowed = ALLOWED_EXTRA.get((self.dialect, kind), frozenset())
        extra = [p for p in _extra_paths(validated, "") if p not in allowed]
        if extra:
            self.problems.append(f"{where}: keys its model does not declare: {extra}")

    # -- steps shared by the tests -----------------------------------------------------------

    async def update_session(self, **settings: Any) -> dict[str, Any]:
        """``session.update`` with ``settings`` (plus GA's ``type``); the ``session`` of
        the ``session.updated`` answer."""
        session = {"type": "realtime", **settings} if self.dialect == "ga" else settings
        await self.conn.session.update(session=session)
        events = await self.until("session.updated")
        assert not [t for t in types_of(events[:-1]) if t not in _GREETING], types_of(events)
        session_out: dict[str, Any] = events[-1][1]["session"]
        return session_out

    async def text_only(self) -> None:
        key = "output_modalities" if self.dialect == "ga" else "modalities"
        session = await self.update_session(**{key: ["text"]})
        assert session[key] == ["text"]

    async def say(self, text: str) -> None:
        await self.conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            }
        )

    async def text_turn(self, text: str) -> tuple[str, dict[str, Any]]:
        """Say ``text`` and ask for a response: (the joined text deltas, ``response.done``'s
        ``response``). The session must be text-only."""
        await self.say(text)
        await self.conn.response.create()
        events = await self.until("response.done")
        delta = self.name("response.output_text.delta")
        joined = "".join(raw["delta"] for _, raw in events if raw["type"] == delta)
        response: dict[str, Any] = events[-1][1]["response"]
        return joined, response


Talk = Callable[[Conversation], Awaitable[None]]


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """The embedded server (default EchoBrain), in a thread, stopped after the test."""
    with ServerThread() as running:
        yield running


@pytest.fixture
def paced_server() -> Iterator[ServerThread]:
    """The embedded server streaming audio in real time, so a response stays active."""
    with ServerThread(options=ServerOptions(paced=True)) as running:
        yield running


def run(server: ServerThread, route: Route, talk: Talk, *, errors: int = 0) -> Conversation:
    """Connect ``route``'s client to ``server`` and run ``talk`` (timed out after
    :data:`TIMEOUT_S`); then fail with every problem the event checks found, or if the
    server sent other than ``errors`` ``error`` events."""
    found: list[Conversation] = []

    async def main() -> None:
        client = route.client(server)
        try:
            async with route.connect(client) as conn:
                deployment = "my-dep" if route.azure and route.dialect == "beta" else None
                conversation = Conversation(conn, route.dialect, deployment)
                found.append(conversation)
                await talk(conversation)
        finally:
            await client.close()

    async def bounded() -> None:
        await asyncio.wait_for(main(), TIMEOUT_S)

    try:
        asyncio.run(bounded())
    except BaseException as exc:
        if found and found[0].problems:
            exc.add_note("event problems:\n" + "\n".join(found[0].problems))
        exc.add_note("server log (last 40 lines):\n" + "\n".join(server.log_lines[-40:]))
        raise
    (conversation,) = found
    sent = [raw["error"] for _, raw in conversation.received if raw["type"] == "error"]
    if len(sent) != errors:
        conversation.problems.append(f"expected {errors} error event(s), got {sent}")
    assert not conversation.problems, (
        f"{len(conversation.problems)} problem(s) in the server's events:\n"
        + "\n".join(f"  - {p}" for p in conversation.problems)
    )
    return conversation


# -- 1a. a text turn ---------------------------------------------------------------------


@route_param
def test_text_turn(server: ServerThread, route: Route) -> None:
    async def talk(c: Conversation) -> None:
        created, raw = await c.recv()
        assert raw["type"] == "session.created"
        assert created.session.model == ("my-dep" if route.azure else "gpt-realtime")
        await c.text_only()
        text, response = await c.text_turn("hello")
        assert text == "You said: hello"
        assert response["status"] == "completed"
        key = "output_modalities" if c.dialect == "ga" else "modalities"
        assert response[key] == ["text"]
        (item,) = response["output"]
        part_type = "output_text" if c.dialect == "ga" else "text"
        assert item["content"] == [{"type": part_type, "text": "You said: hello"}]

    conversation = run(server, route, talk)
    kinds = types_of(conversation.received)
    assert kinds[:2] == ["session.created", "conversation.created"]
    assert server.server.connections == 1
    # The URL the SDK built, and the dialect the server read from the OpenAI-Beta header.
    if route.azure:
        target = f"/openai/realtime?api-version={AZURE_API_VERSION}&deployment=my-dep"
    else:
        target = "/v1/realtime?model=gpt-realtime"
    (accepted,) = [line for line in server.log_lines if line.startswith("connection #1:")]
    assert target in accepted
    assert f"({route.dialect} dialect)" in accepted


# -- 1b. an audio turn with server VAD -------------------------------------------------------


@functools.cache
def spoken_input() -> tuple[np.ndarray, int, int]:
    """0.4 s silence + the sentence + 1 s silence at 24 kHz; and where the speech is
    (first and last sample of a frame above the VAD level, 10 ms frames)."""
    speech = synthesize("What is the weather like today?", sample_rate=RATE)
    lead, tail = np.zeros(RATE * 4 // 10, np.int16), np.zeros(RATE, np.int16)
    audio = np.concatenate([lead, speech, tail])
    frame = RATE // 100
    frames = audio[: len(audio) // frame * frame].astype(np.float64).reshape(-1, frame)
    level = 10 * np.log10(np.mean(frames * frames, axis=1) / 32768.0**2 + 1e-20)
    voiced = np.flatnonzero(level > VAD_THRESHOLD_DBFS)
    assert voiced.size, "the synthesised speech is silent"
    return audio, int(voiced[0]) * frame, int(voiced[-1] + 1) * frame


@route_param
def test_audio_turn(server: ServerThread, route: Route) -> None:
    audio, speech_from, speech_to = spoken_input()
    chunk = RATE * CHUNK_MS // 1000

    async def talk(c: Conversation) -> None:
        await c.until("conversation.created")
        for start in range(0, len(audio), chunk):
            payload = base64.b64encode(audio[start : start + chunk].astype("<i2").tobytes())
            await c.conn.input_audio_buffer.append(audio=payload.decode())
        await c.until("response.done")

    conversation = run(server, route, talk)
    events = [raw for _, raw in conversation.received]
    kinds = [e["type"] for e in events]

    def first(ga_name: str) -> tuple[int, dict[str, Any]]:
        name = conversation.name(ga_name)
        assert name in kinds, f"no {name} in {kinds}"
        return kinds.index(name), events[kinds.index(name)]

    i_started, started = first("input_audio_buffer.speech_started")
    i_stopped, stopped = first("input_audio_buffer.speech_stopped")
    i_committed, committed = first("input_audio_buffer.committed")
    i_item, item_event = first("conversation.item.added")
    i_created, _ = first("response.created")
    i_done, done = first("response.done")
    assert i_started < i_stopped < i_committed < i_item < i_created < i_done, kinds

    start_ms, end_ms = started["audio_start_ms"], stopped["audio_end_ms"]
    assert start_ms < end_ms
    expected_start = max(0, speech_from * 1000 // RATE - PREFIX_PADDING_MS)
    expected_end = speech_to * 1000 // RATE + SILENCE_DURATION_MS
    assert abs(start_ms - expected_start) <= VAD_TOLERANCE_MS, (start_ms, expected_start)
    assert abs(end_ms - expected_end) <= VAD_TOLERANCE_MS, (end_ms, expected_end)

    item_id = started["item_id"]
    assert stopped["item_id"] == item_id
    assert committed["item_id"] == item_id
    user_item = item_event["item"]
    assert user_item["id"] == item_id
    assert user_item["role"] == "user"
    assert [p["type"] for p in user_item["content"]] == ["input_audio"]

    # The echo brain plays the committed audio back: from the padded start of the speech
    # to the end of the silence that ended it, as the API commits a VAD turn.
    delta = conversation.name("response.output_audio.delta")
    played = sum(len(base64.b64decode(e["delta"])) // 2 for e in events if e["type"] == delta)
    committed_samples = (end_ms - start_ms) * RATE // 1000
    assert played == committed_samples, (played, committed_samples)
    assert played <= len(audio)

    transcript = conversation.name("response.output_audio_transcript.delta")
    spoken = "".join(e["delta"] for e in events if e["type"] == transcript)
    assert spoken == "(your words, played back)"
    response = done["response"]
    assert response["status"] == "completed"
    (answer,) = response["output"]
    assert answer["role"] == "assistant"
    assert answer["status"] == "completed"


# -- 2. function calls -----------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@route_param
@pytest.mark.parametrize("modality", ["text", "audio"])
def test_function_call_round_trip(server: ServerThread, route: Route, modality: str) -> None:
    question = "what is the get_weather for Paris"
    result = '{"temperature_c": 21}'
    outputs: dict[str, Any] = {}

    async def talk(c: Conversation) -> None:
        key = "output_modalities" if c.dialect == "ga" else "modalities"
        modalities = ["text"] if modality == "text" else ["audio"]
        if c.dialect == "beta" and modality == "audio":
            modalities = ["text", "audio"]
        session = await c.update_session(tools=[WEATHER_TOOL], **{key: modalities})
        assert session["tools"] == [WEATHER_TOOL]

        await c.say(question)
        await c.conn.response.create()
        call_events = await c.until("response.done")

        kinds = types_of(call_events)
        done_event, done_raw = call_events[kinds.index("response.function_call_arguments.done")]
        call_id = done_raw["call_id"]
        assert done_event.call_id == call_id
        assert json.loads(done_raw["arguments"]) == {"city": question}
        if c.dialect == "ga":
            assert done_raw["name"] == "get_weather"
            assert done_event.name == "get_weather"
        deltas = [raw["delta"] for _, raw in call_events if raw["type"].endswith("arguments.delta")]
        assert "".join(deltas) == done_raw["arguments"]
        response = call_events[-1][1]["response"]
        assert response["status"] == "completed"
        (call_item,) = response["output"]
        assert call_item["type"] == "function_call"
        assert call_item["name"] == "get_weather"
        assert call_item["call_id"] == call_id
        assert call_item["arguments"] == done_raw["arguments"]

        await c.conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call_id, "output": result}
        )
        await c.conn.response.create()
        outputs["answer"] = await c.until("response.done")

    conversation = run(server, route, talk)
    answer = outputs["answer"]
    if modality == "text":
        delta = conversation.name("response.output_text.delta")
    else:
        delta = conversation.name("response.output_audio_transcript.delta")
    said = "".join(raw["delta"] for _, raw in answer if raw["type"] == delta)
    assert said == f"get_weather returned {result}"
    assert answer[-1][1]["response"]["status"] == "completed"
    if modality == "audio":
        audio_delta = conversation.name("response.output_audio.delta")
        assert any(raw["type"] == audio_delta for _, raw in answer)
    # The function_call_output item was announced before the answer started.
    item_added = conversation.name("conversation.item.added")
    announced = [raw["item"] for _, raw in answer if raw["type"] == item_added]
    assert announced[0]["type"] == "function_call_output"
    assert announced[0]["output"] == result


# -- 3. errors ----------------------------------------------------------------------------


def error_of(events: list[tuple[Any, dict[str, Any]]]) -> tuple[Any, dict[str, Any]]:
    """The one ``error`` in ``events``."""
    errors = [(event, raw) for event, raw in events if raw["type"] == "error"]
    assert len(errors) == 1, types_of(events)
    return errors[0]


def only_error(events: list[tuple[Any, dict[str, Any]]]) -> tuple[Any, dict[str, Any]]:
    """``events`` (from :meth:`Conversation.until`) are the greeting and one ``error``."""
    assert [t for t in types_of(events) if t not in _GREETING] == ["error"], types_of(events)
    return events[-1]


@route_param
def test_second_response_create_is_refused(paced_server: ServerThread, route: Route) -> None:
    # A spoken answer streamed in real time (paced) is still active when the second
    # response.create arrives; a text answer could be over before it is read.
    async def talk(c: Conversation) -> None:
        await c.say("hello")
        await c.conn.response.create(event_id="evt_first_create")
        await c.conn.response.create(event_id="evt_second_create")
        events = await c.until("error")
        event, raw = error_of(events)
        assert raw["error"]["code"] == "conversation_already_has_active_response"
        assert raw["error"]["event_id"] == "evt_second_create"
        assert event.error.code == "conversation_already_has_active_response"
        assert event.error.event_id == "evt_second_create"

        # The first response was not disturbed: it is still running, and can be cancelled.
        await c.conn.response.cancel()
        events += await c.until("response.done")
        assert types_of(events).count("response.created") == 1
        response = events[-1][1]["response"]
        assert response["status"] == "cancelled"
        assert response["status_details"]["reason"] == "client_cancelled"

        await c.text_only()
        text, response = await c.text_turn("still there?")
        assert text == "You said: still there?"
        assert response["status"] == "completed"

    run(paced_server, route, talk, errors=1)


@route_param
def test_commit_of_an_empty_buffer_is_refused(server: ServerThread, route: Route) -> None:
    async def talk(c: Conversation) -> None:
        await c.text_only()
        await c.conn.input_audio_buffer.commit(event_id="evt_empty_commit")
        event, raw = only_error(await c.until("error"))
        assert raw["error"]["code"] == "input_audio_buffer_commit_empty"
        assert raw["error"]["event_id"] == "evt_empty_commit"
        assert event.error.type == "invalid_request_error"

        text, response = await c.text_turn("hello again")
        assert text == "You said: hello again"
        assert response["status"] == "completed"

    run(server, route, talk, errors=1)


@route_param
def test_misspelled_session_key_is_refused(server: ServerThread, route: Route) -> None:
    async def talk(c: Conversation) -> None:
        misspelled = "output_modalites" if c.dialect == "ga" else "modalites"
        session: dict[str, Any] = {misspelled: ["text"]}
        if c.dialect == "ga":
            session = {"type": "realtime", **session}
        # The SDK sends TypedDicts as given, so the typo reaches the server.
        await c.conn.session.update(session=session, event_id="evt_typo")
        event, raw = only_error(await c.until("error"))
        assert raw["error"]["code"] == "unknown_parameter"
        assert raw["error"]["param"] == f"session.{misspelled}"
        assert raw["error"]["event_id"] == "evt_typo"
        assert event.error.param == f"session.{misspelled}"

        await c.text_only()
        text, response = await c.text_turn("hello once more")
        assert text == "You said: hello once more"
        assert response["status"] == "completed"

    run(server, route, talk, errors=1)
