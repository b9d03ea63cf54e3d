"""The trio Session over real sockets against a scripted peer, both dialects.

Each test runs a :class:`peer.ScriptedPeer` on 127.0.0.1 that replays a realistic server
sequence (from ``scenarios``) and checks every client event against the ``openai``
package's models; the client is ``realtalk.connect`` exactly as users call it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest
import trio
from tests.session_events import next_event

import realtalk
import realtalk.core
import scenarios as sc
from peer import PeerConnection, serve
from realtalk.core import AudioDelta
from realtalk.exceptions import ConfigurationError, ConnectionClosed, ServerError
from realtalk.protocol import (
    ConfigDriftDetected,
    ErrorEvent,
    InterruptAction,
    Interrupted,
    ResponseDone,
    SessionConfig,
    UnknownEvent,
)

DIALECTS = ("ga", "beta")
E = TypeVar("E")
pytestmark = pytest.mark.parametrize("dialect", DIALECTS)


def tagged(events: list[dict[str, Any]], request: dict[str, Any]) -> list[dict[str, Any]]:
    """Echo the request's metadata in response.created/done, as the real server does."""
    metadata = request.get("response", {}).get("metadata")
    for event in events:
        if event["type"] in ("response.created", "response.done"):
            event["response"]["metadata"] = metadata
    return events


async def send_all(conn: PeerConnection, events: list[dict[str, Any]]) -> None:
    for event in events:
        await conn.send(event)


async def open_session(conn: PeerConnection, dialect: str) -> None:
    """session.created, then answer each session.update with its echo."""
    await send_all(conn, sc.session_created(dialect))  # type: ignore[arg-type]


async def answer_update(conn: PeerConnection, dialect: str, **changes: Any) -> dict[str, Any]:
    update = await conn.recv("session.update")
    session = sc.session_object(dialect)  # type: ignore[arg-type]
    echoed = json.loads(json.dumps(update["session"]))
    _deep_merge(session, echoed)
    session.update(changes)
    await conn.send(sc.event(dialect, "session.updated", session=session))  # type: ignore[arg-type]
    return update


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


async def collect_until(session: realtalk.Session, done: Callable[[object], bool]) -> list[object]:
    seen: list[object] = []
    async for event in session.events():
        seen.append(event)
        if done(event):
            return seen
    raise AssertionError("the session ended first")


class Player:
    """A stand-in for the device layer's playback buffer: the test sets what was heard."""

    def __init__(self) -> None:
        self.pushed: list[AudioDelta] = []
        self.heard = 0
        self.cleared = 0

    def push(self, delta: AudioDelta) -> None:
        self.pushed.append(delta)

    def played_samples(self, item_id: str, content_index: int) -> int:
        return self.heard

    def clear(self) -> None:
        self.cleared += 1


Script = Callable[[PeerConnection], Awaitable[None]]


# --- scenarios ------------------------------------------------------------------------------


async def test_text_turn(dialect: str) -> None:
    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        await answer_update(conn, dialect)
        item = await conn.recv("conversation.item.create")
        await send_all(
            conn, sc.user_text_item_events(dialect, "item_u1", item["item"]["content"][0]["text"])
        )  # type: ignore[arg-type]
        request = await conn.recv("response.create")
        await send_all(
            conn, tagged(sc.text_response(dialect, "resp_1", "item_a1", ["Hello", "!"]), request)
        )  # type: ignore[arg-type]

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            config = SessionConfig(instructions="Be brief.", output_modalities=("text",))
            async with realtalk.connect(
                peer.url, api_key="sk-test-key", dialect=dialect, config=config
            ) as session:  # type: ignore[arg-type]
                await session.send_text("Hi there")
                await next_event(session, ResponseDone)
                items = session.conversation.items
                assert [(i.role, i.text) for i in items] == [
                    ("user", "Hi there"),
                    ("assistant", "Hello!"),
                ]
                stats = session.statistics()
                assert stats.connection.responses_done == 1
                assert "sk-test-key" not in repr(session) + repr(stats)
            request = peer.requests[0]
            assert request.headers["authorization"] == "Bearer sk-test-key"
            assert ("openai-beta" in request.headers) == (dialect == "beta")
            update = peer.connections[0].received[0]
            assert update["type"] == "session.update"
            assert update["session"]["instructions"] == "Be brief."


async def test_audio_turn_with_server_vad(dialect: str) -> None:
    chunks = [4800, 4800, 2400]

    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        await conn.recv("input_audio_buffer.append")
        await send_all(conn, sc.vad_user_turn(dialect, "item_u1", 0, 200, transcript="hello"))  # type: ignore[arg-type]
        events = sc.audio_response_start(dialect, "resp_1", "item_a1")  # type: ignore[arg-type]
        events += sc.audio_deltas(dialect, "resp_1", "item_a1", chunks, ["Hi", "!"])  # type: ignore[arg-type]
        events += sc.audio_response_end(dialect, "resp_1", "item_a1", "Hi!")  # type: ignore[arg-type]
        await send_all(conn, events)

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(peer.url, api_key="k", dialect=dialect) as session:  # type: ignore[arg-type]
                # 200 ms of 48 kHz float32 microphone audio in 10 ms chunks.
                t = np.arange(9600) / 48000
                mic = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
                for start in range(0, 9600, 480):
                    await session.append_audio(mic[start : start + 480], sample_rate=48000)
                seen = await collect_until(session, lambda e: isinstance(e, ResponseDone))
                audio = [e for e in seen if isinstance(e, AudioDelta)]
                assert [len(a.samples) for a in audio] == chunks
                assert session.conversation["item_a1"].content[0].transcript == "Hi!"
                await session.aclose()
            appended = np.frombuffer(peer.connections[0].appended_audio(), dtype="<i2")
            # Resampled to 24 kHz on the way: 200 ms is 4800 samples, none held back.
            assert len(appended) == 4800
            delay = realtalk.core.Resampler(48000, 24000).delay  # output samples
            ref = 0.3 * 32768 * np.sin(2 * np.pi * 300 * (np.arange(4800) - delay) / 24000)
            err = appended[200:4000].astype(float) - ref[200:4000]
            assert np.sqrt(np.mean(err**2)) < 0.02 * 0.3 * 32768


async def test_function_call_round_trip_runs_the_tool(dialect: str) -> None:
    args = json.dumps({"city": "Paris"})
    calls: list[dict[str, Any]] = []

    async def get_weather(city: str) -> dict[str, Any]:
        calls.append({"city": city})
        await trio.sleep(0)
        return {"city": city, "temp_c": 21}

    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        update = await answer_update(conn, dialect)
        assert update["session"]["tools"][0]["name"] == "get_weather"
        await conn.recv("conversation.item.create")
        request = await conn.recv("response.create")
        await send_all(
            conn,
            tagged(
                sc.function_call_response(
                    dialect, "resp_1", "item_f1", "call_1", "get_weather", args
                ),
                request,
            ),
        )  # type: ignore[arg-type]
        output = await conn.recv("conversation.item.create")
        assert output["item"] == {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": json.dumps({"city": "Paris", "temp_c": 21}),
        }
        await send_all(
            conn,
            sc.function_output_item_events(dialect, "item_o1", "call_1", output["item"]["output"]),
        )  # type: ignore[arg-type]
        request = await conn.recv("response.create")
        await send_all(
            conn,
            tagged(sc.text_response(dialect, "resp_2", "item_a1", ["21 °C in Paris."]), request),
        )  # type: ignore[arg-type]

    schema = {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(
                peer.url, api_key="k", dialect=dialect, tools=[(schema, get_weather)]
            ) as session:  # type: ignore[arg-type]
                await session.send_text("Weather in Paris?")
                finished = await next_event(session, realtalk.ToolCallFinished)
                assert (finished.name, finished.error) == ("get_weather", None)
                await next_event(session, ResponseDone, lambda e: e.response_id == "resp_2")
                assert session.conversation["item_a1"].text == "21 °C in Paris."
                assert session.statistics().tool_calls == 1
            assert calls == [{"city": "Paris"}]
            assert peer.violations == []


async def test_a_failing_sync_tool_reports_its_error_to_the_model(dialect: str) -> None:
    def lookup(order_id: str) -> str:
        raise KeyError(order_id)

    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        await answer_update(conn, dialect)
        request = await conn.recv("response.create")
        await send_all(
            conn,
            tagged(
                sc.function_call_response(
                    dialect, "resp_1", "item_f1", "call_9", "lookup", '{"order_id": "A7"}'
                ),
                request,
            ),
        )  # type: ignore[arg-type]
        output = await conn.recv("conversation.item.create")
        assert json.loads(output["item"]["output"]) == {"error": "KeyError: 'A7'"}
        await conn.recv("response.create")

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(peer.url, api_key="k", dialect=dialect) as session:  # type: ignore[arg-type]
                await session.add_tool(
                    {
                        "type": "function",
                        "name": "lookup",
                        "parameters": {
                            "type": "object",
                            "properties": {"order_id": {"type": "string"}},
                        },
                    },
                    lookup,
                )
                await session.create_response()
                finished = await next_event(session, realtalk.ToolCallFinished)
                assert finished.error == "KeyError: 'A7'"
                await trio.sleep(0.05)
            assert peer.violations == []


async def test_barge_in_by_server_vad_truncates_at_the_playhead(dialect: str) -> None:
    player = Player()

    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        events = sc.audio_response_start(dialect, "resp_1", "item_a1")  # type: ignore[arg-type]
        events += sc.audio_deltas(dialect, "resp_1", "item_a1", [4800] * 5)  # type: ignore[arg-type]
        await send_all(conn, events)
        await conn.send(
            sc.event(
                dialect, "input_audio_buffer.speech_started", audio_start_ms=900, item_id="item_u2"
            )
        )  # type: ignore[arg-type]
        truncate = await conn.recv("conversation.item.truncate")
        assert (truncate["item_id"], truncate["content_index"], truncate["audio_end_ms"]) == (
            "item_a1",
            0,
            312,
        )
        await send_all(
            conn,
            sc.audio_response_end(
                dialect, "resp_1", "item_a1", "", status="cancelled", reason="turn_detected"
            ),
        )  # type: ignore[arg-type]
        await conn.send(
            sc.event(
                dialect,
                "conversation.item.truncated",
                item_id="item_a1",
                content_index=0,
                audio_end_ms=312,
            )
        )  # type: ignore[arg-type]

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(
                peer.url, api_key="k", dialect=dialect, audio_sink=player
            ) as session:  # type: ignore[arg-type]
                # The device has played 312.5 ms of the item when the user speaks.
                player.heard = 7500
                interrupted = await next_event(session, Interrupted)
                assert (
                    interrupted.action,
                    interrupted.audio_end_ms,
                    interrupted.cancelled_response,
                ) == (InterruptAction.TRUNCATE, 312, False)
                await next_event(session, ResponseDone)
                assert len(player.pushed) == 5  # audio went to the player, not the channel
                assert player.cleared == 1
            # Server VAD cancels by itself: no response.cancel went out.
            sent = [e["type"] for e in peer.connections[0].received]
            assert "response.cancel" not in sent


async def test_client_interrupt_cancels_and_truncates(dialect: str) -> None:
    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        await answer_update(
            conn, dialect, turn_detection=None
        ) if dialect == "beta" else await answer_update(conn, dialect)
        request = await conn.recv("response.create")
        events = sc.audio_response_start(dialect, "resp_1", "item_a1")  # type: ignore[arg-type]
        events += sc.audio_deltas(dialect, "resp_1", "item_a1", [4800] * 3)  # type: ignore[arg-type]
        await send_all(conn, tagged(events, request))
        await conn.recv("response.cancel")
        truncate = await conn.recv("conversation.item.truncate")
        assert truncate["audio_end_ms"] == 250
        await send_all(
            conn,
            sc.audio_response_end(
                dialect, "resp_1", "item_a1", "", status="cancelled", reason="client_cancelled"
            ),
        )  # type: ignore[arg-type]

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(
                peer.url, api_key="k", dialect=dialect, config=SessionConfig(turn_detection=False)
            ) as session:  # type: ignore[arg-type]
                await session.create_response()
                await next_event(session, AudioDelta, lambda e: e.item_id == "item_a1")
                await next_event(session, AudioDelta)
                await next_event(session, AudioDelta)
                interrupted = await session.interrupt(played_ms=250.4)
                assert (
                    interrupted.action,
                    interrupted.audio_end_ms,
                    interrupted.cancelled_response,
                ) == (InterruptAction.TRUNCATE, 250, True)
                done = await next_event(session, ResponseDone)
                assert done.status == "cancelled"
            assert peer.violations == []


async def test_server_error_mid_turn_is_an_event_and_busy_requests_wait(dialect: str) -> None:
    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        # A VAD response is running when our request arrives: refuse it, as the API does.
        vad = sc.audio_response_start(dialect, "resp_vad", "item_v1")  # type: ignore[arg-type]
        await send_all(conn, vad)
        first = await conn.recv("response.create")
        await conn.send(
            sc.error(
                dialect,
                "Conversation already has an active response",
                code="conversation_already_has_active_response",
                caused_by=first["event_id"],
            )
        )  # type: ignore[arg-type]
        await conn.recv_nothing(0.2)  # nothing is retried while the VAD response runs
        await send_all(conn, sc.audio_response_end(dialect, "resp_vad", "item_v1", "ok"))  # type: ignore[arg-type]
        again = await conn.recv("response.create")
        assert again["event_id"] == first["event_id"]
        await send_all(
            conn, tagged(sc.text_response(dialect, "resp_2", "item_a2", ["Sure."]), again)
        )  # type: ignore[arg-type]

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(peer.url, api_key="k", dialect=dialect) as session:  # type: ignore[arg-type]
                await session.create_response()
                error = await next_event(session, ErrorEvent)
                assert (error.caused_by, error.code) == (
                    "response.create",
                    "conversation_already_has_active_response",
                )
                await next_event(session, ResponseDone, lambda e: e.response_id == "resp_2")
            assert peer.violations == []


async def test_refused_update_raises_server_error_and_drift_is_reported(dialect: str) -> None:
    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        bad = await conn.recv("session.update")
        await conn.send(
            sc.error(
                dialect,
                "Invalid voice",
                code="invalid_value",
                caused_by=bad["event_id"],
                param="session.voice",
            )
        )  # type: ignore[arg-type]
        update = await conn.recv("session.update")
        session = sc.session_object(dialect)  # type: ignore[arg-type]
        session["instructions"] = "server default"  # ignores ours
        del update
        await conn.send(sc.event(dialect, "session.updated", session=session))  # type: ignore[arg-type]

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(peer.url, api_key="k", dialect=dialect) as session:  # type: ignore[arg-type]
                with pytest.raises(ServerError) as info:
                    await session.update(voice="nobody")
                assert (info.value.code, info.value.param) == ("invalid_value", "session.voice")
                with pytest.raises(ConfigurationError, match="temperature"):
                    await session.update(temperature=5.0)
                await session.update(instructions="mine")
                drift = await next_event(session, ConfigDriftDetected)
                assert [(d.path, d.kind) for d in drift.drift] == [("instructions", "changed")]
                assert session.config.instructions == "server default"
            assert peer.violations == []


async def test_unknown_events_reach_the_caller(dialect: str) -> None:
    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        await conn.send({"type": "response.hologram.delta", "event_id": "e9", "voxels": [1]})
        item = {"id": "x", "type": "message", "role": "assistant", "content": []}
        item["content"] = [{"type": "audio", "audio": "A" * 8_000_000}]  # 6 MB of audio
        await conn.send({"type": "conversation.item.retrieved", "event_id": "e10", "item": item})

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(peer.url, api_key="k", dialect=dialect) as session:  # type: ignore[arg-type]
                unknown = await next_event(session, UnknownEvent)
                assert unknown.raw == {
                    "type": "response.hologram.delta",
                    "event_id": "e9",
                    "voxels": [1],
                }
                retrieved = await next_event(session, realtalk.protocol.ItemRetrieved)
                assert len(retrieved.item["content"][0]["audio"]) == 8_000_000
            assert peer.violations == []


async def test_server_close_ends_events_and_fails_calls(dialect: str) -> None:
    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        await conn.close(1011, "internal error")

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(peer.url, api_key="k", dialect=dialect) as session:  # type: ignore[arg-type]
                async for _ in session.events():
                    pass
                with pytest.raises(ConnectionClosed) as info:
                    await session.send_text("anyone?")
                assert info.value.code == 1011
            assert peer.violations == []


async def test_push_to_talk_in_g711_resamples_and_encodes(dialect: str) -> None:
    from realtalk.core import ulaw_decode

    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)
        update = await conn.recv("session.update")
        session = sc.session_object(dialect)  # type: ignore[arg-type]
        if dialect == "ga":
            session["audio"]["input"]["format"] = {"type": "audio/pcmu"}
            session["audio"]["input"]["turn_detection"] = None
        else:
            session.update(input_audio_format="g711_ulaw", turn_detection=None)
        del update
        await conn.send(sc.event(dialect, "session.updated", session=session))  # type: ignore[arg-type]
        await conn.recv("input_audio_buffer.commit")
        await conn.send(sc.event(dialect, "input_audio_buffer.committed", item_id="item_u1"))  # type: ignore[arg-type]
        await conn.recv("input_audio_buffer.clear")
        await conn.send(sc.event(dialect, "input_audio_buffer.cleared"))  # type: ignore[arg-type]

    config = SessionConfig(input_format="g711_ulaw", turn_detection=False)
    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            async with realtalk.connect(
                peer.url, api_key="k", dialect=dialect, config=config
            ) as session:  # type: ignore[arg-type]
                assert session.config.input_format == "g711_ulaw"
                # 300 ms of 16 kHz int16 in 20 ms chunks -> 8 kHz mu-law, 2400 bytes.
                tone = (8000 * np.sin(2 * np.pi * 400 * np.arange(4800) / 16000)).astype(np.int16)
                for start in range(0, 4800, 320):
                    await session.append_audio(tone[start : start + 320], sample_rate=16000)
                await session.commit_audio()
                await session.clear_audio()
                await next_event(session, realtalk.protocol.InputAudioCleared)
                assert session.statistics().connection.audio_appended_ms == 300
            encoded = peer.connections[0].appended_audio()
            assert len(encoded) == 2400
            decoded = ulaw_decode(encoded).astype(float)
            delay = realtalk.core.Resampler(16000, 8000).delay  # output samples
            ref = 8000 * np.sin(2 * np.pi * 400 * (np.arange(2400) - delay) / 8000)
            err = decoded[200:2000] - ref[200:2000]
            assert np.sqrt(np.mean(err**2)) < 0.05 * 8000  # G.711 is ~38 dB SNR


async def test_token_provider_is_called_on_every_connect(dialect: str) -> None:
    tokens = iter(["token-one", "token-two"])

    async def provider() -> str:
        await trio.sleep(0)
        return next(tokens)

    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            for _ in range(2):
                async with realtalk.connect(peer.url, token_provider=provider, dialect=dialect):  # type: ignore[arg-type]
                    pass
            assert [r.headers["authorization"] for r in peer.requests] == [
                "Bearer token-one",
                "Bearer token-two",
            ]


async def test_bad_audio_and_arguments_are_refused_before_sending(dialect: str) -> None:
    async def script(conn: PeerConnection) -> None:
        await open_session(conn, dialect)

    with trio.fail_after(10):
        async with serve(script, dialect=dialect) as peer:
            with pytest.raises(ConfigurationError, match="event_buffer"):
                async with realtalk.connect(peer.url, event_buffer=0):
                    pass
            with pytest.raises(ConfigurationError, match="temperature"):
                async with realtalk.connect(peer.url, config=SessionConfig(temperature=0.9)):
                    pass  # GA has no temperature
            assert peer.requests == []  # refused before connecting
            async with realtalk.connect(peer.url, api_key="k", dialect=dialect) as session:  # type: ignore[arg-type]
                with pytest.raises(realtalk.AudioFormatError, match="int16 or float32"):
                    await session.append_audio(np.zeros(10, dtype=np.float64))
                with pytest.raises(realtalk.AudioFormatError, match="shape"):
                    await session.append_audio(np.zeros((2, 2, 2), dtype=np.int16))
                with pytest.raises(ConfigurationError, match="sample_rate"):
                    await session.append_audio(np.zeros(10, dtype=np.int16), sample_rate=0)
                with pytest.raises(ValueError, match="played_ms"):
                    await session.interrupt(played_ms=-5)
                # Stereo 48 kHz float32 is mixed down and resampled.
                await session.append_audio(np.zeros((480, 2), dtype=np.float32), sample_rate=48000)
                assert session.statistics().connection.audio_appended_samples == 240
            sent = [e["type"] for e in peer.connections[-1].received]
            assert sent == ["input_audio_buffer.append"]
