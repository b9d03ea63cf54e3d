"""realtalk's client against every fault of the embedded server, both dialects.

Each test runs ``open_server()`` in-process with one :class:`~realtalk.server.Faults`
injection (or a short ``max_session_s``) and talks to it through ``realtalk.connect`` as
users do. Three things are checked every time: the client raised nothing but its
documented typed errors (``ConnectionClosed``, the caller's own ``TooSlowError``); it
reported the fault as a typed event or exception; and its books balance afterwards
(:func:`assert_balanced`): the counters of ``session.statistics()`` agree with the
events it delivered and with the frames the server logged, and ``session.conversation``
holds exactly the items the server announced, with their text and their audio.

``test_server_errors.py`` checks the wire side of the older faults and of expiry with a
raw client; the faults added since are pinned here, through the client's typed view of
every frame (and the server's log of what it sent).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest
import trio
import trio.testing

import realtalk
from realtalk.core import AudioDelta
from realtalk.protocol import (
    AudioTranscriptDelta,
    Dialect,
    ErrorEvent,
    FunctionCallArgumentsDone,
    ItemCreated,
    ItemDone,
    OutputItemAdded,
    OutputItemDone,
    RateLimitsUpdated,
    ResponseCreated,
    ResponseDone,
    ResponseState,
    ServerEvent,
    SessionConfig,
    SessionCreated,
    TextDelta,
    UnknownEvent,
)
from realtalk.server import Brain, Faults, ScriptedBrain, ServerOptions, open_server

E = TypeVar("E")
both_dialects = pytest.mark.parametrize("dialect", ["ga", "beta"])

#: The server event that is a text turn's ``response.created`` (after session.created,
#: conversation.created and the user item's one or two events): a fault placed after
#: this many events lands inside the response.
RESPONSE_CREATED_AT: Mapping[str, int] = {"ga": 5, "beta": 4}
#: The wire name of an audio delta.
AUDIO_DELTA: Mapping[str, str] = {
    "ga": "response.output_audio.delta",
    "beta": "response.audio.delta",
}
#: Output audio of the embedded server: PCM16 at 24 kHz.
RATE = 24000

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def faulty(**faults: Any) -> ServerOptions:
    return ServerOptions(faults=Faults(**faults))


# --- a session and everything it delivered ---------------------------------------------------


@dataclass
class Run:
    """A session under test, the server's log lines, and every event read so far."""

    session: realtalk.Session
    log: list[str]
    seen: list[Any] = field(default_factory=list)

    async def until(self, done: Callable[[Any], bool]) -> Any:
        """Read events until one for which ``done`` holds; return it."""
        async for event in self.session.events():
            self.seen.append(event)
            if done(event):
                return event
        raise AssertionError("the session ended first")

    async def turn(self, text: str) -> ResponseDone:
        """A text turn: the user's message, and the response to it."""
        await self.session.send_text(text)
        done: ResponseDone = await self.until(lambda e: isinstance(e, ResponseDone))
        return done

    async def to_the_end(self) -> None:
        """Read until :meth:`Session.events` ends (the connection closed)."""
        async for event in self.session.events():
            self.seen.append(event)

    async def quiet(self, seconds: float = 0.05) -> None:
        """Read until nothing has come for ``seconds`` (the server is idle)."""
        while True:
            with trio.move_on_after(seconds) as waited:
                try:
                    self.seen.append(await self.session.events().receive())
                except trio.EndOfChannel:
                    return
            if waited.cancelled_caught:
                return

    def of(self, kind: type[E]) -> list[E]:
        """The events of one kind read so far."""
        return [e for e in self.seen if isinstance(e, kind)]

    def wire(self) -> list[ServerEvent | AudioDelta]:
        """The server events read so far (high-level events aside)."""
        return [e for e in self.seen if isinstance(e, ServerEvent | AudioDelta)]


@asynccontextmanager
async def serving(
    dialect: Dialect,
    options: ServerOptions,
    *,
    brain: Callable[[], Brain] | None = None,
    config: SessionConfig | None = None,
    tools: Sequence[tuple[Mapping[str, Any], realtalk.ToolHandler]] = (),
) -> AsyncIterator[Run]:
    log: list[str] = []
    async with (
        open_server(options=options, brain=brain, log=log.append) as server,
        realtalk.connect(
            server.url, api_key="k", dialect=dialect, config=config, tools=tools
        ) as session,
    ):
        yield Run(session, log)


# --- the books ---------------------------------------------------------------------------------

_SENT = re.compile(r" #1 -> (\S+)")


def server_sent(log: Sequence[str]) -> Counter[str]:
    """The events the server logged sending, by type (frames that are not JSON as "",
    the type the session counts them under)."""
    return Counter(
        "" if "-> (not JSON)" in line else m.group(1) for line in log if (m := _SENT.search(line))
    )


def not_json(event: object) -> bool:
    """The session's report of a frame that is not a JSON object."""
    return isinstance(event, UnknownEvent) and event.type == "" and event.problem is not None


def _wire_text(item: Mapping[str, Any]) -> str:
    content = item.get("content") or []
    return "".join(str(p.get("text") or p.get("transcript") or "") for p in content)


def assert_balanced(run: Run) -> None:
    """The session's counters and conversation agree with what it delivered, and with
    what the server logged sending (call it once the server has nothing more to send)."""
    session, seen = run.session, run.seen
    # What is waiting in the channel joins `seen`, and the snapshot is taken in the same
    # synchronous stretch: the reader cannot slip an event in between.
    channel = session.events()
    while True:
        try:
            seen.append(channel.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    snapshot = session.statistics()
    stats = snapshot.connection
    assert snapshot.events_waiting == 0

    # Counters add up, and count every server event delivered, by type.
    assert stats.events_received == sum(stats.received_by_type.values())
    wire = [e for e in seen if isinstance(e, ServerEvent | AudioDelta)]
    assert Counter(e.type for e in wire) == Counter(stats.received_by_type)
    assert stats.errors == len(run.of(ErrorEvent))
    assert stats.responses_created == len(run.of(ResponseCreated))
    assert stats.responses_done == len(run.of(ResponseDone))
    assert stats.responses_done <= stats.responses_created
    assert Counter(stats.received_by_type) == server_sent(run.log)

    # Audio: everything received was delivered (no sink attached, nothing interrupted).
    deltas: list[AudioDelta] = run.of(AudioDelta)
    assert stats.audio_received_samples == sum(len(d.samples) for d in deltas)
    assert stats.audio_dropped_samples == 0
    assert stats.audio_received_ms == stats.audio_received_samples * 1000 // RATE

    # The conversation: exactly the items announced, in order, with their content.
    announced: list[str] = []
    last_wire: dict[str, Mapping[str, Any]] = {}
    for event in wire:
        if isinstance(event, ItemCreated | ItemDone | OutputItemAdded | OutputItemDone):
            item_id = event.item["id"]
            if item_id not in announced:
                announced.append(item_id)
            last_wire[item_id] = event.item
    items = session.conversation.items
    assert [item.id for item in items] == announced
    for item in items:
        audio = sum(len(d.samples) for d in deltas if d.item_id == item.id)
        assert sum(part.audio_samples for part in item.content) == audio, item.id
        if item.type == "function_call":
            calls = [e for e in run.of(FunctionCallArgumentsDone) if e.item_id == item.id]
            if calls:
                assert item.arguments == calls[-1].arguments
        elif item.type == "message":
            streamed = "".join(
                e.delta
                for e in wire
                if isinstance(e, AudioTranscriptDelta | TextDelta) and e.item_id == item.id
            )
            # The server's final word when it gave one, else what streamed.
            assert item.text == (_wire_text(last_wire[item.id]) or streamed), item.id


# --- dropped connections -------------------------------------------------------------------


@both_dialects
@pytest.mark.parametrize("modality", ["audio", "text"])
async def test_dropped_mid_response(dialect: Dialect, modality: str) -> None:
    text_only = SessionConfig(output_modalities=("text",))
    config = text_only if modality == "text" else None
    with trio.fail_after(5):
        async with serving(dialect, faulty(drop_mid_response=True), config=config) as run:
            session = run.session
            await session.send_text("hi")
            await run.to_the_end()  # events() ends with the connection

            closed = session.closed
            assert closed is not None
            assert closed.code == 1006  # no close frame
            # The response's first delta was the last thing to arrive.
            deltas: list[AudioDelta | TextDelta] = [*run.of(AudioDelta), *run.of(TextDelta)]
            assert len(deltas) == 1
            delta = deltas[0]
            assert run.wire()[-1] is delta
            stats = session.statistics().connection
            assert (stats.responses_created, stats.responses_done) == (1, 0)
            user, assistant = session.conversation.items
            assert (user.role, user.text) == ("user", "hi")
            assert (assistant.role, assistant.status, assistant.completed) == (
                "assistant",
                "in_progress",
                False,
            )
            if modality == "audio":
                assert isinstance(delta, AudioDelta)
                assert assistant.content[0].audio_samples == len(delta.samples) > 0
                assert not assistant.content[0].audio_done
            else:
                assert isinstance(delta, TextDelta)
                assert assistant.text == "You"
            assert_balanced(run)

            with pytest.raises(realtalk.ConnectionClosed) as raised:
                await session.send_text("anyone there?")
            assert raised.value.code == 1006


@both_dialects
async def test_dropped_mid_append(dialect: Dialect) -> None:
    chunk = np.zeros(RATE // 10, np.int16)  # 100 ms of silence
    with trio.fail_after(5):
        async with serving(dialect, faulty(drop_mid_append=3)) as run:
            session = run.session
            appended = 0

            async def microphone() -> None:
                nonlocal appended
                while True:
                    await session.append_audio(chunk)
                    appended += 1
                    await trio.sleep(0.01)  # a microphone's pace, faster

            with pytest.raises(realtalk.ConnectionClosed) as raised:
                await microphone()
            assert raised.value.code == 1006
            assert appended >= 3  # the server read three before it dropped
            await run.to_the_end()

            assert session.closed is not None
            assert session.closed.code == 1006
            stats = session.statistics().connection
            # Every append that returned is counted as sent. The one that raised is counted
            # too when it got past the session's check before the reader saw the drop: the
            # protocol counts what enters its outbox, and the write is what failed.
            counted = stats.sent_by_type["input_audio_buffer.append"]
            assert counted in (appended, appended + 1)
            assert stats.sent_by_type == {"input_audio_buffer.append": counted}
            assert stats.audio_appended_samples == counted * len(chunk)
            assert stats.audio_appended_ms == counted * 100
            assert [e.type for e in run.wire()] == ["session.created", "conversation.created"]
            assert len(session.conversation) == 0
            assert_balanced(run)
            with pytest.raises(realtalk.ConnectionClosed):
                await session.commit_audio()


@both_dialects
async def test_dropped_during_a_tool_call(dialect: Dialect) -> None:
    def brain() -> ScriptedBrain:
        return ScriptedBrain(
            [
                {"call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"say": "Mild."},
            ]
        )

    release = trio.Event()
    cities: list[str] = []

    async def get_weather(city: str) -> dict[str, Any]:
        cities.append(city)
        await release.wait()  # answers only once the connection is gone
        return {"temp_c": 14}

    faults = faulty(drop_during_tool_call=True)
    with trio.fail_after(5):
        async with serving(dialect, faults, brain=brain, tools=[(WEATHER, get_weather)]) as run:
            session = run.session
            await session.send_text("What's the weather in Paris?")
            await run.to_the_end()

            assert session.closed is not None
            assert session.closed.code == 1006
            (call,) = run.of(FunctionCallArgumentsDone)
            assert run.wire()[-1] is call
            assert call.arguments == '{"city": "Paris"}'
            assert cities == ["Paris"]  # the handler was started

            release.set()
            await trio.testing.wait_all_tasks_blocked()
            snapshot = session.statistics()
            assert (snapshot.tool_calls, snapshot.tool_errors) == (1, 0)
            stats = snapshot.connection
            # The result had nowhere to go: nothing was sent, nothing was reported.
            assert stats.sent_by_type["conversation.item.create"] == 1  # the question only
            assert not run.of(realtalk.ToolCallFinished)
            assert (stats.responses_created, stats.responses_done) == (1, 0)
            user, function_call = session.conversation.items
            assert (user.role, user.text) == ("user", "What's the weather in Paris?")
            assert (function_call.type, function_call.name) == ("function_call", "get_weather")
            assert function_call.call_id == call.call_id
            assert function_call.status == "in_progress"
            assert_balanced(run)


# --- a stalled server ------------------------------------------------------------------------


@both_dialects
async def test_a_stalled_server_and_the_callers_timeouts(dialect: Dialect) -> None:
    faults = faulty(stall_after_events=RESPONSE_CREATED_AT[dialect])
    with trio.fail_after(5):
        async with serving(dialect, faults) as run:
            session = run.session
            await session.send_text("hi")
            await run.until(lambda e: isinstance(e, ResponseCreated))

            # Nothing more comes; the caller's deadlines end the waits, cleanly.
            with trio.move_on_after(0.2) as waited:
                await run.until(lambda e: isinstance(e, ResponseDone))
            assert waited.cancelled_caught
            with pytest.raises(trio.TooSlowError), trio.fail_after(0.2):
                await session.update(instructions="Be brief.")

            # The session is open and still takes calls.
            assert session.closed is None
            await session.send_text("still there?", respond=False)
            stats = session.statistics().connection
            assert (stats.responses_created, stats.responses_done) == (1, 0)
            assert stats.response_state is ResponseState.ACTIVE
            assert stats.sent_by_type["session.update"] == 1
            assert_balanced(run)
            leaving = trio.current_time()
        # Leaving closes at once: the stalled server still answers the close handshake.
        assert trio.current_time() - leaving < 1
        closed = session.closed
        assert closed is not None
        assert closed.code == 1000
        assert [e async for e in session.events()] == []  # the channel ended
        with pytest.raises(realtalk.ConnectionClosed):
            await session.send_text("bye")


@both_dialects
async def test_connect_to_a_stalled_server_times_out_cleanly(dialect: Dialect) -> None:
    # session.created arrives, session.updated never does.
    config = SessionConfig(instructions="Be brief.")
    with trio.fail_after(5):
        async with open_server(options=faulty(stall_after_events=1)) as server:
            with pytest.raises(trio.TooSlowError), trio.fail_after(0.3):  # not a group
                async with realtalk.connect(
                    server.url, api_key="k", dialect=dialect, config=config
                ):
                    pytest.fail("connected without session.updated")
            # The server goes on serving.
            async with realtalk.connect(server.url, api_key="k", dialect=dialect) as session:
                assert session.closed is None


# --- odd frames ------------------------------------------------------------------------------


@both_dialects
async def test_a_frame_that_is_not_json(dialect: Dialect) -> None:
    faults = faulty(malformed_json_after_events=RESPONSE_CREATED_AT[dialect])
    with trio.fail_after(5):
        async with serving(dialect, faults) as run:
            done = await run.turn("hi")
            assert done.status == "completed"
            (bad,) = run.of(UnknownEvent)
            # Reported where it came, and the response it cut into went on.
            assert isinstance(run.seen[run.seen.index(bad) - 1], ResponseCreated)
            assert (bad.type, bad.event_id, bad.raw) == ("", None, {})
            assert bad.problem is not None
            assert "unusable event" in bad.problem

            assert (await run.turn("again")).status == "completed"
            texts = [item.text for item in run.session.conversation.items]
            assert texts == ["hi", "You said: hi", "again", "You said: again"]
            await run.quiet()
            assert_balanced(run)


async def test_a_frame_that_is_not_json_is_counted() -> None:
    with trio.fail_after(5):
        async with serving("ga", faulty(malformed_json_after_events=2)) as run:
            await run.turn("hi")
            await run.quiet()
            stats = run.session.statistics().connection
            delivered = run.wire()
            assert Counter(e.type for e in delivered) == Counter(stats.received_by_type)
            frames = sum(" #1 -> " in line for line in run.log)
            assert stats.events_received == frames


@both_dialects
async def test_corrupt_audio(dialect: Dialect) -> None:
    delta_type = AUDIO_DELTA[dialect]
    with trio.fail_after(5):
        async with serving(dialect, faulty(corrupt_audio=True)) as run:
            session = run.session
            for n, text in enumerate(["hi", "once more"]):
                done = await run.turn(text)
                assert done.status == "completed"
                assistant = session.conversation.items[-1]
                assert assistant.text == f"You said: {text}"
                bad = run.of(UnknownEvent)[n]  # the first delta of every response
                assert bad.type == delta_type
                assert bad.problem is not None
                assert "base64" in bad.problem
                assert bad.raw["item_id"] == assistant.id
                # The rest of the response played, and only the bad delta is missing.
                assert len(run.of(AudioDelta)) == server_sent(run.log)[delta_type] - (n + 1)
                deltas = [d for d in run.of(AudioDelta) if d.item_id == assistant.id]
                part = assistant.content[0]
                assert part.audio_done
                assert part.audio_samples == sum(len(d.samples) for d in deltas) > RATE // 2
            stats = session.statistics().connection
            # The bad deltas are counted as received events, their audio is not.
            assert stats.received_by_type[delta_type] == server_sent(run.log)[delta_type]
            assert len(run.of(AudioDelta)) == stats.received_by_type[delta_type] - 2
            await run.quiet()
            assert_balanced(run)


@both_dialects
async def test_an_oversized_event(dialect: Dialect) -> None:
    size = 9_000_000
    with trio.fail_after(10):
        async with serving(dialect, faulty(oversized_event_bytes=size)) as run:
            assert (await run.turn("hi")).status == "completed"
            big, _ = run.of(RateLimitsUpdated)  # and the response's own
            assert size - 1000 < len(big.raw["padding"]) < size
            assert big.rate_limits[0]["name"] == "requests"
            assert run.session.conversation.items[-1].text == "You said: hi"
            assert_balanced(run)


@both_dialects
async def test_unknown_events(dialect: Dialect) -> None:
    with trio.fail_after(5):
        async with serving(dialect, faulty(unknown_events=4)) as run:
            assert (await run.turn("hi")).status == "completed"
            assert (await run.turn("again")).status == "completed"
            await run.quiet()
            unknown = run.of(UnknownEvent)
            assert len(unknown) >= 3
            assert {e.type for e in unknown} == {
                "session.heartbeat",
                "response.output_audio.metrics",
                "conversation.item.annotated",
            }
            assert all(e.problem is None for e in unknown)  # unknown, not malformed
            (created,) = run.of(SessionCreated)
            heartbeat = next(e for e in unknown if e.type == "session.heartbeat")
            assert heartbeat.raw["session_id"] == created.session["id"]
            texts = [item.text for item in run.session.conversation.items]
            assert texts == ["hi", "You said: hi", "again", "You said: again"]
            assert_balanced(run)


# --- server errors ---------------------------------------------------------------------------

BURST_CODES = [None, "rate_limit_exceeded", "conversation_already_has_active_response"]


@both_dialects
@pytest.mark.parametrize("when", ["start", "mid-response"])
async def test_a_burst_of_errors(dialect: Dialect, when: str) -> None:
    # At the start the burst meets connect()'s session.update in flight; mid-response it
    # meets a running response (one of its codes says a response is already active).
    after = 2 if when == "start" else RESPONSE_CREATED_AT[dialect]
    config = SessionConfig(instructions="Be brief.") if when == "start" else None
    faults = faulty(error_burst=6, error_burst_after_events=after)
    with trio.fail_after(5):
        async with serving(dialect, faults, config=config) as run:
            session = run.session
            assert (await run.turn("hi")).status == "completed"
            errors = run.of(ErrorEvent)
            assert [e.code for e in errors] == BURST_CODES * 2
            first = run.seen.index(errors[0])
            assert run.seen[first : first + 6] == errors  # in a row
            if when == "mid-response":
                assert isinstance(run.seen[first - 1], ResponseCreated)
            for error in errors:
                assert error.caused_by is None  # unsolicited
                assert error.client_event_id is None
                assert error.message
                assert error.error["type"] in ("server_error", "tokens", "invalid_request_error")

            # Nothing was fooled: the next turn completes, nothing waits in a queue.
            assert (await run.turn("again")).status == "completed"
            stats = session.statistics().connection
            assert stats.errors == 6
            assert (stats.responses_created, stats.responses_done) == (2, 2)
            assert stats.responses_queued == 0
            assert stats.response_state is ResponseState.IDLE
            texts = [item.text for item in session.conversation.items]
            assert texts == ["hi", "You said: hi", "again", "You said: again"]
            assert_balanced(run)


@both_dialects
@pytest.mark.parametrize("when", ["idle", "mid-response"])
async def test_session_expired(dialect: Dialect, when: str) -> None:
    # Paced, the answer streams at real time and the expiry cuts into it.
    options = ServerOptions(max_session_s=0.5, paced=when == "mid-response")
    with trio.fail_after(5):
        async with serving(dialect, options) as run:
            session = run.session
            if when == "idle":
                assert (await run.turn("hi")).status == "completed"
            else:
                await session.send_text("Tell me a long story, please, with many words in it.")
            await run.to_the_end()

            (expired,) = run.of(ErrorEvent)
            assert expired.code == "session_expired"
            assert expired.caused_by is None
            assert expired.message == "Your session hit the maximum duration of 1 minute."
            assert run.wire()[-1] is expired
            # Closed as the API closes it: 1001, the error's message as the reason.
            closed = session.closed
            assert closed is not None
            assert (closed.code, closed.reason) == (1001, expired.message)
            with pytest.raises(realtalk.ConnectionClosed) as raised:
                await session.create_response()
            assert (raised.value.code, raised.value.reason) == (1001, expired.message)

            stats = session.statistics().connection
            assert stats.errors == 1
            if when == "idle":
                assert (stats.responses_created, stats.responses_done) == (1, 1)
            else:
                assert (stats.responses_created, stats.responses_done) == (1, 0)
                assert run.of(AudioDelta)  # some of the answer was heard
                assert not session.conversation.items[-1].completed
            assert_balanced(run)
