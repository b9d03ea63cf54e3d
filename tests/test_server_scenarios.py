"""realtalk's own client against the embedded server, both dialects: the session
issue's scenarios (text turn, audio turn with server VAD, function call round trip,
barge-in with truncate, server error mid-turn) plus G.711 and out-of-band responses."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import numpy as np
import pytest
import trio
from tests.session_events import next_event, until_done

import realtalk
from realtalk.core import AudioDelta
from realtalk.protocol import (
    ConversationItemRetrieve,
    InterruptAction,
    Interrupted,
    ItemRetrieved,
    ItemTruncated,
    ResponseDone,
    SessionConfig,
    SpeechStarted,
    SpeechStopped,
)
from realtalk.server import ScriptedBrain, ServerOptions, open_server
from realtalk.server._speech import synthesize

E = TypeVar("E")
pytestmark = pytest.mark.parametrize("dialect", ["ga", "beta"])


def audio_samples(events: list[Any]) -> int:
    return sum(len(e.samples) for e in events if isinstance(e, AudioDelta))


class Player:
    """Stands in for the device layer: the test says how much was heard."""

    def __init__(self) -> None:
        self.heard = 0
        self.received = 0

    def push(self, delta: AudioDelta) -> None:
        self.received += len(delta.samples)

    def played_samples(self, item_id: str, content_index: int) -> int:
        return self.heard

    def clear(self) -> None:
        pass


async def test_text_turn(dialect: str) -> None:
    with trio.fail_after(20):
        async with (
            open_server() as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect) as session,  # type: ignore[arg-type]
        ):
            await session.send_text("Hi there")
            done, events = await until_done(session)
            assert done.status == "completed"
            assistant = session.conversation.items[-1]
            assert (assistant.role, assistant.text) == ("assistant", "You said: Hi there")
            # Spoken at 24 kHz, faster than real time, and counted exactly.
            assert audio_samples(events) == assistant.content[0].audio_samples > 24000 // 2
            assert session.statistics().connection.responses_done == 1


async def test_text_only_session(dialect: str) -> None:
    config = SessionConfig(output_modalities=("text",))
    with trio.fail_after(20):
        async with (
            open_server() as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect, config=config) as session,  # type: ignore[arg-type]
        ):
            await session.send_text("ping")
            _, events = await until_done(session)
            assert audio_samples(events) == 0
            assert session.conversation.items[-1].text == "You said: ping"


async def test_audio_turn_with_server_vad(dialect: str) -> None:
    speech = synthesize("What is the weather like today?", sample_rate=48000)
    silence = np.zeros(48000, dtype=np.int16)
    mic = np.concatenate([silence[:19200], speech, silence])  # 0.4 s lead-in
    with trio.fail_after(20):
        async with (
            open_server() as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect) as session,  # type: ignore[arg-type]
        ):
            for start in range(0, len(mic), 960):  # 20 ms of 48 kHz microphone audio
                await session.append_audio(mic[start : start + 960], sample_rate=48000)
            started = await next_event(session, SpeechStarted)
            stopped = await next_event(session, SpeechStopped)
            loud = np.flatnonzero(np.abs(speech) > 1000)
            first_ms, last_ms = (400 + loud[[0, -1]] * 1000 // 48000).tolist()
            # audio_start_ms includes the 300 ms of prefix padding...
            assert abs(started.audio_start_ms - (first_ms - 300)) <= 40
            # ...and audio_end_ms the 500 ms of silence that ended the turn.
            assert abs(stopped.audio_end_ms - (last_ms + 500)) <= 40
            done, events = await until_done(session)
            assert done.status == "completed"
            user = session.conversation[started.item_id]
            assert user.role == "user"
            # The item is the audio between the two (as the API commits it: what came
            # before the padding is dropped); the echo brain plays it back at 24 kHz.
            committed_ms = stopped.audio_end_ms - started.audio_start_ms
            assert abs(audio_samples(events) / 24 - committed_ms) <= 40


async def test_function_call_round_trip(dialect: str) -> None:
    brain = ScriptedBrain(
        [
            {"expect": "weather", "call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"say": "It is 21 degrees in Paris."},
        ]
    )
    calls: list[str] = []

    def get_weather(city: str) -> dict[str, Any]:
        calls.append(city)
        return {"city": city, "temp_c": 21}

    schema = {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with trio.fail_after(20):
        async with (
            open_server(brain=lambda: brain) as server,
            realtalk.connect(
                server.url,
                api_key="k",
                dialect=dialect,
                tools=[(schema, get_weather)],  # type: ignore[arg-type]
            ) as session,
        ):
            await session.send_text("What's the weather in Paris?")
            first, _ = await until_done(session)
            assert first.function_calls[0]["name"] == "get_weather"
            second, _ = await until_done(session)
            assert second.status == "completed"
            kinds = [(i.type, i.role) for i in session.conversation]
            assert kinds == [
                ("message", "user"),
                ("function_call", None),
                ("function_call_output", None),
                ("message", "assistant"),
            ]
            assert session.conversation.items[-1].text == "It is 21 degrees in Paris."
            assert calls == ["Paris"]
            assert brain.remaining == 0


async def test_client_barge_in_truncates_what_was_heard(dialect: str) -> None:
    options = ServerOptions(paced=True, delta_ms=50)
    with trio.fail_after(20):
        async with (
            open_server(options=options) as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect) as session,  # type: ignore[arg-type]
        ):
            await session.send_text("Tell me a long story about the sea and the wind.")
            received = 0
            async for event in session.events():
                if isinstance(event, AudioDelta):
                    received += len(event.samples)
                    if received >= 24000 * 3 // 10:  # 300 ms arrived (paced: real time)
                        break
            interrupted = await session.interrupt(played_ms=250)
            assert (interrupted.action, interrupted.audio_end_ms) == (InterruptAction.TRUNCATE, 250)
            assert interrupted.cancelled_response
            done = await next_event(session, ResponseDone)
            assert done.status == "cancelled"
            assert done.response["status_details"]["reason"] == "client_cancelled"
            truncated = await next_event(session, ItemTruncated)
            assert truncated.audio_end_ms == 250
            # The server's copy now holds exactly what was heard.
            session._conn.send(ConversationItemRetrieve(item_id=truncated.item_id))
            await session._flush()
            retrieved = await next_event(session, ItemRetrieved)
            (part,) = retrieved.item["content"]
            assert len(base64.b64decode(part["audio"])) == 250 * 24 * 2
            assert part["transcript"] == ""


async def test_server_vad_barge_in_uses_the_playhead(dialect: str) -> None:
    player = Player()
    options = ServerOptions(paced=True, delta_ms=50)
    speech = synthesize("Stop please", sample_rate=24000)
    with trio.fail_after(20):
        async with (
            open_server(options=options) as server,
            realtalk.connect(
                server.url, api_key="k", dialect=dialect, audio_sink=player
            ) as session,  # type: ignore[arg-type]
        ):
            await session.send_text("Tell me a long story about the sea and the wind.")
            while player.received < 24000 // 2:  # half a second arrived
                await trio.sleep(0.05)
            player.heard = 7_212  # the device has played 300.5 ms
            await session.append_audio(np.concatenate([speech, np.zeros(12000, np.int16)]))
            interrupted = await next_event(session, Interrupted)
            # Server VAD cancels by itself: realtalk only truncates, at the playhead.
            assert (interrupted.action, interrupted.audio_end_ms) == (InterruptAction.TRUNCATE, 300)
            assert not interrupted.cancelled_response
            done = await next_event(session, ResponseDone, lambda e: e.status == "cancelled")
            assert done.response["status_details"]["reason"] == "turn_detected"
            truncated = await next_event(session, ItemTruncated)
            assert truncated.audio_end_ms == 300


async def test_brain_failure_mid_turn_fails_the_response_not_the_session(dialect: str) -> None:
    brain = ScriptedBrain([{"say": "first"}])
    with trio.fail_after(20):
        async with (
            open_server(brain=lambda: brain) as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect) as session,  # type: ignore[arg-type]
        ):
            await session.send_text("one")
            first, _ = await until_done(session)
            await session.send_text("two")
            second, _ = await until_done(session)
            assert (first.status, second.status) == ("completed", "failed")
            assert "script exhausted" in second.response["status_details"]["error"]["message"]
            await session.update(instructions="still here")
            assert session.config.instructions == "still here"


async def test_g711_formats(dialect: str) -> None:
    config = SessionConfig(input_format="g711_alaw", output_format="g711_ulaw")
    with trio.fail_after(20):
        async with (
            open_server() as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect, config=config) as session,  # type: ignore[arg-type]
        ):
            assert (session.config.input_format, session.config.output_format) == (
                "g711_alaw",
                "g711_ulaw",
            )
            await session.send_text("hello")
            _, events = await until_done(session)
            reference = synthesize("You said: hello", sample_rate=8000)
            assert audio_samples(events) == len(reference)  # 8 kHz, one byte a sample


async def test_out_of_band_response_runs_beside_the_default_one(dialect: str) -> None:
    options = ServerOptions(paced=True, delta_ms=100)
    with trio.fail_after(20):
        async with (
            open_server(options=options) as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect) as session,  # type: ignore[arg-type]
        ):
            await session.send_text("Tell me something long, please, about trains.")
            await next_event(session, AudioDelta)
            key = "output_modalities" if dialect == "ga" else "modalities"
            await session.create_response(
                {"conversation": "none", key: ["text"], "metadata": {"purpose": "classify"}}
            )
            statuses: dict[str, str] = {}
            async for event in session.events():
                if isinstance(event, ResponseDone):
                    statuses[event.response.get("metadata", {}).get("purpose", "default")] = (
                        event.status
                    )
                    if len(statuses) == 2:
                        break
            assert statuses == {"classify": "completed", "default": "completed"}
            # Out-of-band output is not part of the conversation.
            assert [i.role for i in session.conversation] == ["user", "assistant"]


async def test_a_browser_authenticates_with_subprotocols(dialect: str) -> None:
    # Browsers cannot set WebSocket headers; the API takes the key as a subprotocol.
    import json

    import trio_websocket

    offered = ["realtime", "openai-insecure-api-key.sk-browser"]
    if dialect == "beta":
        offered.append("openai-beta.realtime-v1")
    with trio.fail_after(10):
        async with open_server(options=ServerOptions(api_key="sk-browser")) as server:
            async with trio_websocket.open_websocket_url(server.url, subprotocols=offered) as ws:
                assert ws.subprotocol == "realtime"
                created = json.loads(await ws.get_message())
                assert created["type"] == "session.created"
                # The beta session object has flat audio formats; GA nests them.
                assert ("input_audio_format" in created["session"]) == (dialect == "beta")
            # A wrong key is refused (over a stream of our own: trio-websocket's client
            # leaves its socket open after a refusal).
            wrong = [p.replace("sk-browser", "sk-wrong") for p in offered]
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            try:
                with pytest.RaisesGroup(trio_websocket.ConnectionRejected) as caught:
                    async with trio.open_nursery() as nursery:
                        await trio_websocket.wrap_client_stream(
                            nursery,
                            stream,
                            f"127.0.0.1:{server.port}",
                            "/v1/realtime?model=gpt-realtime",
                            subprotocols=wrong,
                        )
            finally:
                await trio.aclose_forcefully(stream)
            rejected = caught.value.exceptions[0]
            assert isinstance(rejected, trio_websocket.ConnectionRejected)
            assert rejected.status_code == 401


async def test_the_observer_sees_every_event_both_ways_stamped_in_order(dialect: str) -> None:
    import time

    from realtalk.server import Observation

    seen: list[Observation] = []
    before = time.monotonic_ns()
    with trio.fail_after(20):
        async with (
            open_server(options=ServerOptions(observer=seen.append)) as server,
            realtalk.connect(server.url, api_key="k", dialect=dialect) as session,  # type: ignore[arg-type]
        ):
            await session.update(turn_detection=False)
            chunk = (np.arange(4800) % 200).astype(np.int16)
            await session.append_audio(chunk)
            await session.commit_audio()
            await session.create_response()
            done, _ = await until_done(session)
    after = time.monotonic_ns()
    sent = session.statistics().connection
    incoming = [o for o in seen if o.direction == "in"]
    outgoing = [o for o in seen if o.direction == "out"]
    # Every client event the server took in, and every server event the client got.
    assert len(incoming) == sent.events_sent
    assert len(outgoing) == sent.events_received
    assert {o.connection for o in seen} == {1}
    assert all(before <= o.t_ns <= after for o in seen)
    assert [o.t_ns for o in seen] == sorted(o.t_ns for o in seen)
    # Appends keep their audio: what the server took in is what was sent.
    (append,) = [o for o in incoming if o.event["type"] == "input_audio_buffer.append"]
    assert np.array_equal(np.frombuffer(base64.b64decode(append.event["audio"]), "<i2"), chunk)
    assert outgoing[-1].event["type"] == "response.done"
    assert outgoing[-1].event["response"]["id"] == done.response_id
