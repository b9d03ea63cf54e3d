"""Reconnect and resume: a session that loses its connection comes back whole.

The network failure is real: the session talks to the embedded server through a TCP
proxy that the test cuts (both sockets closed, no close frame), so the client sees what
it would see when Wi-Fi drops.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import numpy as np
import pytest
import trio
from tests.session_events import next_event

import realtalk
from realtalk.core import AudioDelta
from realtalk.exceptions import ConfigurationError, ConnectionClosed
from realtalk.protocol import ConversationItemRetrieve, ItemRetrieved, ResponseDone
from realtalk.server import Say, ServerOptions, Turn, open_server

FAST = realtalk.Reconnect(initial_delay_s=0.05, max_delay_s=0.2, jitter=0.0)


class Proxy:
    """127.0.0.1:port → the server; :meth:`cut` drops every connection through it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._scopes: list[trio.CancelScope] = []
        self.refuse = False

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream) -> None:
        while data := await source.receive_some(65536):
            await sink.send_all(data)

    async def _handle(self, client: trio.SocketStream) -> None:
        if self.refuse:
            await client.aclose()
            return
        self.connections += 1
        with trio.CancelScope() as scope:
            self._scopes.append(scope)
            try:
                server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
                async with server, client, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pipe, client, server)
                    nursery.start_soon(self._pipe, server, client)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        # Cut or finished: close both sides without a WebSocket close frame.
        await trio.aclose_forcefully(client)

    def cut(self) -> None:
        for scope in self._scopes:
            scope.cancel()
        self._scopes.clear()


@asynccontextmanager
async def proxied_server(**server: Any) -> AsyncIterator[tuple[Proxy, str]]:
    async with open_server(**server) as real, trio.open_nursery() as nursery:
        proxy = Proxy(real.port)
        listeners = await nursery.start(partial(trio.serve_tcp, proxy._handle, 0, host="127.0.0.1"))
        proxy.port = listeners[0].socket.getsockname()[1]
        url = f"ws://127.0.0.1:{proxy.port}/v1/realtime?model=gpt-realtime"
        try:
            yield proxy, url
        finally:
            nursery.cancel_scope.cancel()


async def wait_for(
    session: realtalk.Session, kind: type[Any], seen: list[Any] | None = None
) -> Any:
    async for event in session.events():
        if seen is not None:
            seen.append(event)
        if isinstance(event, kind):
            return event
    raise AssertionError(f"events ended before {kind.__name__}")


def test_reconnect_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match=r"reconnect\.attempts: must be >= 1"):
        realtalk.Reconnect(attempts=0)
    with pytest.raises(ConfigurationError, match=r"reconnect\.jitter"):
        realtalk.Reconnect(jitter=2)
    with pytest.raises(ConfigurationError, match=r"reconnect\.initial_delay_s"):
        realtalk.Reconnect(initial_delay_s=-1)
    import random

    policy = realtalk.Reconnect(initial_delay_s=0.5, max_delay_s=4, jitter=0.25)
    rng = random.Random(1)
    delays = [policy.delay_s(n, rng) for n in range(1, 7)]
    bases = [0.5, 1, 2, 4, 4, 4]
    assert all(b * 0.75 <= d <= b * 1.25 for b, d in zip(bases, delays, strict=True))


async def test_a_dropped_connection_is_resumed_with_config_tools_and_conversation() -> None:
    calls: list[str] = []

    def get_weather(city: str) -> dict[str, Any]:
        calls.append(city)
        return {"city": city, "temp_c": 21}

    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    config = realtalk.SessionConfig(instructions="Be brief.", output_modalities=("text",))
    with trio.fail_after(20):
        async with (
            proxied_server() as (proxy, url),
            realtalk.connect(
                url, api_key="k", config=config, tools=[(weather, get_weather)], reconnect=FAST
            ) as session,
        ):
            await session.send_text("hello there")
            await next_event(session, ResponseDone)
            await session.send_text("get_weather for Paris")
            await next_event(session, realtalk.ToolCallFinished)
            await next_event(session, ResponseDone, lambda e: not e.function_calls)
            before = [(i.id, i.type, i.role, i.text) for i in session.conversation.items]
            assert len(before) == 6  # user, assistant, user, call, output, answer

            proxy.cut()
            seen: list[Any] = []
            reconnecting = await wait_for(session, realtalk.Reconnecting, seen)
            assert reconnecting.attempt == 1
            assert "closed" in reconnecting.reason or "1006" in reconnecting.reason
            await wait_for(session, realtalk.Reconnected, seen)
            resumed = await wait_for(session, realtalk.Resumed, seen)
            assert proxy.connections == 2
            assert resumed.items == len(before)
            assert resumed.skipped == 0
            assert not resumed.response_lost

            # The new server session holds the same configuration and tools ...
            assert session.config.instructions == "Be brief."
            assert session.config.tools is not None
            assert [t.name for t in session.config.tools] == ["get_weather"]
            # ... and the same conversation, with the same item ids, in order.
            await trio.sleep(0.2)
            after = [(i.id, i.type, i.role, i.text) for i in session.conversation.items]
            assert [a[:3] for a in after] == [b[:3] for b in before]
            assert [a[3] for a in after] == [b[3] for b in before]
            # And it goes on: tools still run.
            await session.send_text("get_weather for Oslo")
            await next_event(session, ResponseDone, lambda e: not e.function_calls)
            assert calls == ["get_weather for Paris", "get_weather for Oslo"]
            assert session.statistics().reconnects == 1


def voice(seconds: float, rate: int = 24000, seed: int = 0) -> np.ndarray:
    """A loud, never-silent noise (VAD hears all of it), different per seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(-12000, 12000, int(seconds * rate), dtype=np.int16)


async def server_audio(session: realtalk.Session, item_id: str) -> np.ndarray:
    """The samples the server's copy of ``item_id`` holds (conversation.item.retrieve)."""
    session._conn.send(ConversationItemRetrieve(item_id=item_id))
    await session._flush()
    event = await next_event(session, ItemRetrieved, lambda e: e.item.get("id") == item_id)
    (part,) = event.item["content"]
    return np.frombuffer(base64.b64decode(part["audio"]), dtype="<i2")


@pytest.mark.parametrize("turns", ["commit", "server_vad"])
async def test_user_audio_is_replayed_as_the_audio_itself_when_kept(turns: str) -> None:
    vad = turns == "server_vad"
    config = realtalk.SessionConfig(turn_detection=None if vad else False)
    silence = np.zeros(24000, dtype=np.int16)
    said = [voice(0.7, seed=1), voice(0.45, seed=2)]
    with trio.fail_after(20):
        async with (
            proxied_server() as (proxy, url),
            realtalk.connect(
                url, api_key="k", config=config, reconnect=FAST, keep_audio_ms=10_000
            ) as session,
        ):
            for words in said:
                mic = np.concatenate([silence[:9600], words, silence]) if vad else words
                for start in range(0, len(mic), 480):  # 20 ms appends
                    await session.append_audio(mic[start : start + 480])
                if not vad:
                    await session.commit_audio()
                    await session.create_response()
                await next_event(session, ResponseDone)
            users = [i for i in session.conversation if i.role == "user"]
            assert len(users) == 2
            # What the client kept of each turn is, sample for sample, what the server
            # committed (for VAD: the span it reported, padding and trailing silence in).
            held = [await server_audio(session, user.id) for user in users]
            for user, server_copy in zip(users, held, strict=True):
                assert np.array_equal(user.content[0].audio, server_copy)
                assert user.content[0].audio_dropped_samples == 0
            if not vad:
                assert all(np.array_equal(h, w) for h, w in zip(held, said, strict=True))

            proxy.cut()
            resumed = await wait_for(session, realtalk.Resumed)
            assert (resumed.items, resumed.skipped) == (4, 0)
            # The new server session was given the user's own audio, not a transcript.
            for user, before in zip(users, held, strict=True):
                assert np.array_equal(await server_audio(session, user.id), before)


async def test_user_audio_not_kept_is_skipped_and_counted() -> None:
    config = realtalk.SessionConfig(turn_detection=False)
    with trio.fail_after(20):
        async with (
            proxied_server() as (proxy, url),
            realtalk.connect(url, api_key="k", config=config, reconnect=FAST) as session,
        ):
            await session.append_audio(voice(0.3))
            await session.commit_audio()
            await session.create_response()
            await next_event(session, ResponseDone)
            (user,) = [i for i in session.conversation if i.role == "user"]
            # Counted (the client's own count of what the commit covered), not kept.
            assert user.content[0].audio_samples == 7200
            assert user.content[0].audio_dropped_samples == 7200
            proxy.cut()
            resumed = await wait_for(session, realtalk.Resumed)
            # No transcript either (the embedded server does not transcribe): skipped.
            assert (resumed.items, resumed.skipped) == (1, 1)


async def test_audio_appended_while_disconnected_is_sent_after_the_resume() -> None:
    policy = realtalk.Reconnect(initial_delay_s=0.3, jitter=0.0, buffer_audio_s=0.2)
    config = realtalk.SessionConfig(turn_detection=False)
    with trio.fail_after(20):
        async with (
            proxied_server() as (proxy, url),
            realtalk.connect(url, api_key="k", config=config, reconnect=policy) as session,
        ):
            chunk = np.full(2400, 1000, dtype=np.int16)  # 100 ms at 24 kHz
            await session.append_audio(chunk)
            proxy.cut()
            await wait_for(session, realtalk.Reconnecting)
            for _ in range(5):  # 500 ms while offline; 200 ms fit the buffer
                await session.append_audio(chunk)
            resumed = await wait_for(session, realtalk.Resumed)
            assert (resumed.audio_sent_ms, resumed.audio_dropped_ms) == (200, 300)
            assert session.statistics().connection.audio_appended_ms == 200
            await session.commit_audio()
            await session.create_response()
            done = await next_event(session, ResponseDone)
            assert done.status == "completed"


async def test_a_response_cut_by_the_failure_is_asked_for_again() -> None:
    class Long:
        def respond(self, turn: Turn) -> list[Say]:
            return [Say("a long answer", audio=np.full(24000 * 3, 500, dtype=np.int16))]

    options = ServerOptions(paced=True, delta_ms=100)
    with trio.fail_after(20):
        async with (
            proxied_server(brain=Long, options=options) as (proxy, url),
            realtalk.connect(url, api_key="k", reconnect=FAST) as session,
        ):
            await session.send_text("tell me a story")
            await next_event(session, AudioDelta)
            proxy.cut()
            resumed = await wait_for(session, realtalk.Resumed)
            assert resumed.response_lost
            assert resumed.response_requested
            # The partly received answer is in the new conversation as text; a new
            # response was requested and arrives.
            done = await next_event(session, ResponseDone)
            assert done.status == "completed"


async def test_it_gives_up_after_the_attempts_and_says_so() -> None:
    policy = realtalk.Reconnect(attempts=3, initial_delay_s=0.01, max_delay_s=0.02, jitter=0)
    with trio.fail_after(20):
        async with (
            proxied_server() as (proxy, url),
            realtalk.connect(url, api_key="k", reconnect=policy) as session,
        ):
            proxy.refuse = True
            proxy.cut()
            seen: list[Any] = []
            gave_up = await wait_for(session, realtalk.GaveUp, seen)
            assert gave_up.attempts == 3
            assert [type(e).__name__ for e in seen].count("Reconnecting") == 3
            # events() ends, calls raise.
            async for _ in session.events():
                raise AssertionError("no events after GaveUp")
            with pytest.raises(ConnectionClosed):
                await session.send_text("anyone?")


async def test_without_reconnect_a_drop_ends_the_session() -> None:
    with trio.fail_after(10):
        async with (
            proxied_server() as (proxy, url),
            realtalk.connect(url, api_key="k") as session,
        ):
            proxy.cut()
            async for event in session.events():
                assert not isinstance(event, realtalk.Reconnecting)
            assert session.closed is not None
            with pytest.raises(ConnectionClosed):
                await session.send_text("anyone?")


async def test_a_server_silent_during_a_response_is_taken_for_dead() -> None:
    class Silent:
        async def respond(self, turn: Turn) -> list[Say]:
            await trio.sleep_forever()
            raise AssertionError

    with trio.fail_after(10):
        async with (
            open_server(brain=Silent) as server,
            realtalk.connect(server.url, api_key="k", stall_timeout_s=0.3) as session,
        ):
            await session.send_text("hello?")
            start = trio.current_time()
            async for _ in session.events():
                pass
            assert 0.3 <= trio.current_time() - start < 5
            assert session.closed is not None
            assert "sent nothing for 0.3 s during a response" in str(session.closed)


async def test_session_expiry_is_followed_by_a_new_session() -> None:
    options = ServerOptions(max_session_s=0.5)
    policy = realtalk.Reconnect(initial_delay_s=0.05, jitter=0.0, handover_before_s=None)
    with trio.fail_after(20):
        async with (
            open_server(options=options) as server,
            realtalk.connect(server.url, api_key="k", reconnect=policy) as session,
        ):
            await session.send_text("remember me")
            await next_event(session, ResponseDone)
            resumed = await wait_for(session, realtalk.Resumed)
            assert resumed.items == 2
            await session.send_text("still there?")
            done = await next_event(session, ResponseDone)
            assert done.status == "completed"
            texts = [i.text for i in session.conversation.items]
            assert texts == [
                "remember me",
                "You said: remember me",
                "still there?",
                "You said: still there?",
            ]


async def test_connect_times_out_with_a_clear_error() -> None:
    # A listener that accepts TCP and never answers the upgrade.
    async def mute(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, mute, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            url = f"ws://127.0.0.1:{port}/v1/realtime?model=m"
            with pytest.raises(realtalk.ConnectError, match=r"within 0.3 s \(connect_timeout_s\)"):
                async with realtalk.connect(url, api_key="k", connect_timeout_s=0.3):
                    pass
            nursery.cancel_scope.cancel()


async def test_the_session_moves_to_a_new_connection_before_it_expires() -> None:
    # The server's sessions last 6 s (expires_at in whole seconds); hand over 4.5 s before.
    policy = realtalk.Reconnect(handover_before_s=4.5, prefix_ms=200)
    config = realtalk.SessionConfig(instructions="Be brief.", turn_detection=False)
    with trio.fail_after(20):
        async with (
            open_server(options=ServerOptions(max_session_s=6)) as server,
            realtalk.connect(server.url, api_key="k", config=config, reconnect=policy) as session,
        ):
            await session.send_text("remember me")
            await next_event(session, ResponseDone)
            await session.append_audio(np.full(4800, 800, dtype=np.int16))  # 200 ms
            seen: list[Any] = []
            reconnected = await wait_for(session, realtalk.Reconnected, seen)
            assert reconnected.planned
            assert reconnected.attempt == 0
            assert not any(isinstance(e, realtalk.Reconnecting) for e in seen)
            resumed = await wait_for(session, realtalk.Resumed)
            assert resumed.items == 2
            assert resumed.audio_sent_ms == 200  # the prefix went to the new connection
            assert server.connections == 2
            assert session.config.instructions == "Be brief."
            await session.commit_audio()  # the audio is in the new session's buffer
            await session.send_text("still there?")
            await next_event(session, ResponseDone)
            texts = [i.text for i in session.conversation.items]
            assert texts[:2] == ["remember me", "You said: remember me"]
            assert session.statistics().reconnects == 1


async def test_deltas_arriving_while_the_player_stops_are_not_queued_behind_the_cut() -> None:
    # A player takes time to stop (a fade, a callback period); the server keeps streaming
    # meanwhile. Those deltas belong to the cut answer: queued, they would play later.
    class SlowStop:
        def __init__(self) -> None:
            self.pushed: list[tuple[str, int, float]] = []
            self.stopping_since: float | None = None

        def push(self, delta: AudioDelta) -> None:
            self.pushed.append((delta.item_id, len(delta.samples), trio.current_time()))

        def played_samples(self, item_id: str, content_index: int) -> int:
            return 2400

        def clear(self) -> None:
            pass

        async def stop_playback(self, item_id: str | None, content_index: int = 0) -> int:
            self.stopping_since = trio.current_time()
            await trio.sleep(0.3)  # six paced 50 ms deltas arrive meanwhile
            return 2400

        def end_of_audio(self, item_id: str, content_index: int) -> None:
            pass

    class Long:
        def respond(self, turn: Turn) -> list[Say]:
            return [Say("long", audio=np.full(24000 * 3, 500, dtype=np.int16))]

    sink = SlowStop()
    options = ServerOptions(paced=True, delta_ms=50)
    with trio.fail_after(10):
        async with (
            open_server(brain=Long, options=options) as server,
            realtalk.connect(server.url, api_key="k", audio_sink=sink) as session,
        ):
            await session.send_text("a long story, please")
            while len(sink.pushed) < 4:
                await trio.sleep(0.01)
            interrupted = await session.interrupt()
            assert interrupted.audio_end_ms == 100
            await trio.sleep(0.2)
            assert sink.stopping_since is not None
            late = [p for p in sink.pushed if p[2] >= sink.stopping_since]
            assert late == []
            assert session.statistics().connection.audio_dropped_samples > 0
