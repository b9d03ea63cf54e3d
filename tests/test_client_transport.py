"""WebSocketTransport against real sockets on 127.0.0.1, and the ScriptedPeer itself.

Every test runs on the real clock under ``trio.fail_after(10)`` (autojump_clock does not
mix with real sockets).
"""

import base64
import functools
import json
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio_websocket

from peer import APPEND, PeerConnection, ScriptedPeer, assert_no_extra, client_event_models, serve
from realtalk import __version__
from realtalk.client._endpoint import resolve_endpoint
from realtalk.client._transport import WebSocketTransport, connect_transport, open_transport
from realtalk.exceptions import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
)

KEY = "sk-SECRET-123"
PREVIEW = "2025-04-01-preview"


def chain_text(exc: BaseException) -> str:
    """str and repr of ``exc`` and of everything chained to or grouped in it."""
    texts: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *getattr(current, "__notes__", [])]
        stack += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            stack += list(current.exceptions)
    return "\n".join(texts)


async def idle(conn: PeerConnection) -> None:
    """A script that only lets the peer record what the client sends."""


async def tcp_server(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> int:
    """A raw TCP server on 127.0.0.1 for handshakes that go wrong; returns its port."""
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return port


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- handshake ------------------------------------------------------------------------


async def test_ga_handshake_headers() -> None:
    with trio.fail_after(10):
        async with serve(idle) as peer:
            endpoint = resolve_endpoint(peer.url, api_key=KEY, environ={})
            async with open_transport(endpoint) as transport:
                assert transport.subprotocol is None
                assert all(
                    isinstance(k, str) and isinstance(v, str) and k == k.lower()
                    for k, v in transport.handshake_headers
                )
        (request,) = peer.requests
        assert request.path == "/v1/realtime"
        assert request.query == {"model": "gpt-realtime"}
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["user-agent"] == f"realtalk/{__version__}"
        assert "openai-beta" not in request.headers
        assert "api-key" not in request.headers
        # No permessage-deflate offered.
        assert "sec-websocket-extensions" not in request.headers
        assert request.rejected_with is None


async def test_beta_handshake_sends_the_dialect_header() -> None:
    with trio.fail_after(10):
        async with serve(idle, dialect="beta") as peer:
            endpoint = resolve_endpoint(peer.url, api_key=KEY, dialect="beta", environ={})
            async with open_transport(endpoint):
                pass
        assert peer.requests[0].headers["openai-beta"] == "realtime=v1"


async def test_azure_shaped_url_uses_the_api_key_header() -> None:
    with trio.fail_after(10):
        async with serve(idle) as peer:
            url = f"{peer.base_url}/openai/realtime?api-version={PREVIEW}&deployment=my-dep"
            async with open_transport(resolve_endpoint(url, api_key=KEY, environ={})):
                pass
            # The same request built from azure_endpoint (http -> ws for a local server).
            endpoint = resolve_endpoint(
                azure_endpoint=peer.base_url.replace("ws://", "http://"),
                azure_deployment="my-dep",
                api_version=PREVIEW,
                api_key=KEY,
                environ={},
            )
            async with open_transport(endpoint):
                pass
        for request in peer.requests:
            assert request.path == "/openai/realtime"
            assert request.query == {"api-version": PREVIEW, "deployment": "my-dep"}
            assert request.headers["api-key"] == KEY
            assert "authorization" not in request.headers


async def test_token_provider_is_called_per_connection() -> None:
    tokens = iter(["entra-1", "entra-2"])
    with trio.fail_after(10):
        async with serve(idle) as peer:
            endpoint = resolve_endpoint(
                azure_endpoint=peer.base_url, token_provider=lambda: next(tokens), environ={}
            )
            for _ in range(2):
                async with open_transport(endpoint):
                    pass
        assert [r.path for r in peer.requests] == ["/openai/v1/realtime"] * 2
        assert [r.headers["authorization"] for r in peer.requests] == [
            "Bearer entra-1",
            "Bearer entra-2",
        ]


# --- messages -------------------------------------------------------------------------


async def test_twenty_mib_server_message_arrives_intact() -> None:
    big = json.dumps({"type": "conversation.item.retrieved", "blob": "ab" * (10 * 2**20)})
    assert len(big) > 20 * 2**20

    async def script(conn: PeerConnection) -> None:
        await conn.send_raw(big)
        await conn.send({"type": "after"})

    with trio.fail_after(10):
        async with (
            serve(script) as peer,
            open_transport(resolve_endpoint(peer.url, environ={})) as transport,
        ):
            assert await transport.receive() == big
            assert json.loads(await transport.receive()) == {"type": "after"}


async def test_large_client_append_reaches_the_peer() -> None:
    audio = bytes(range(256)) * (4 * 2**12)  # 4 MiB of PCM, ~5.3 MiB of base64
    event = {"type": APPEND, "audio": base64.b64encode(audio).decode()}
    with trio.fail_after(10):
        async with (
            serve(idle) as peer,
            open_transport(resolve_endpoint(peer.url, environ={})) as transport,
        ):
            await transport.send_text(json.dumps(event))
        assert peer.connections[0].appended_audio() == audio


async def test_server_close_1011_surfaces_as_connection_closed() -> None:
    async def script(conn: PeerConnection) -> None:
        await conn.send({"type": "one"})
        await conn.send({"type": "two"})
        await conn.close(1011, "internal failure")

    with trio.fail_after(10):
        async with (
            serve(script) as peer,
            open_transport(resolve_endpoint(peer.url, environ={})) as transport,
        ):
            # What the server sent before closing still arrives, in order.
            assert json.loads(await transport.receive()) == {"type": "one"}
            assert json.loads(await transport.receive()) == {"type": "two"}
            with pytest.raises(ConnectionClosed) as info:
                await transport.receive()
            assert (info.value.code, info.value.reason) == (1011, "internal failure")
            with pytest.raises(ConnectionClosed) as info:
                await transport.send_text("{}")
            assert info.value.code == 1011
            closed = transport.closed
            assert closed is not None
            assert closed.code == 1011
        conn = peer.connections[0]
        assert not conn.closed_by_client
        assert conn.close_code == 1011


async def test_client_close_code_and_reason_reach_the_peer() -> None:
    with trio.fail_after(10):
        async with (
            serve(idle) as peer,
            open_transport(resolve_endpoint(peer.url, environ={})) as transport,
        ):
            assert transport.closed is None
            await transport.aclose(4000, "bye")
            await transport.aclose()  # idempotent
            closed = transport.closed
            assert closed is not None
            assert (closed.code, closed.reason) == (4000, "bye")
            with pytest.raises(ConnectionClosed) as info:
                await transport.send_text("{}")
            assert info.value.code == 4000
            with pytest.raises(ConnectionClosed):
                await transport.receive()
        conn = peer.connections[0]
        assert conn.closed_by_client
        assert (conn.close_code, conn.close_reason) == (4000, "bye")


async def test_leaving_the_block_closes_normally() -> None:
    with trio.fail_after(10):
        async with serve(idle) as peer:
            async with open_transport(resolve_endpoint(peer.url, environ={})):
                pass
            await peer.connections[0].wait_closed()
        assert peer.connections[0].closed_by_client
        assert peer.connections[0].close_code == 1000


async def test_cancelled_block_closes_the_connection() -> None:
    with trio.fail_after(10):
        async with serve(idle) as peer:
            with trio.CancelScope() as scope:
                async with open_transport(resolve_endpoint(peer.url, environ={})) as transport:
                    scope.cancel()
                    await transport.receive()
            assert scope.cancelled_caught
            await peer.connections[0].wait_closed()
            assert peer.connections[0].closed_by_client


async def test_connect_transport_twin() -> None:
    async def script(conn: PeerConnection) -> None:
        event = await conn.recv("response.create")
        await conn.send({"type": "response.created", "echo": event["event_id"]})

    with trio.fail_after(10):
        async with serve(script) as peer:
            endpoint = resolve_endpoint(peer.url, environ={})
            async with trio.open_nursery() as nursery:
                transport = await connect_transport(nursery, endpoint)
                assert isinstance(transport, WebSocketTransport)
                await transport.send_text(json.dumps({"type": "response.create", "event_id": "c1"}))
                assert json.loads(await transport.receive())["echo"] == "c1"
                await transport.aclose()
            # The nursery finished: nothing of the connection is left running.


# --- failures: one realtalk exception each, never a group, never the key ---------------

OPENAI_401_BODY = json.dumps(
    {
        "error": {
            "message": f"Incorrect API key provided: {KEY}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
).encode()


@pytest.mark.parametrize(
    "body",
    [
        OPENAI_401_BODY,
        OPENAI_401_BODY.replace(KEY.encode(), b"sk-SECR*****-123"),
        b"",
        b"not json " + KEY.encode(),
    ],
    ids=["echoed-key", "masked-key", "no-body", "text-body"],
)
async def test_401_is_an_authentication_error_without_the_key(body: bytes) -> None:
    with trio.fail_after(10):
        async with serve(idle, reject_status=401, reject_body=body) as peer:
            endpoint = resolve_endpoint(peer.url, api_key=KEY, environ={})
            with pytest.raises(AuthenticationError) as info:
                async with open_transport(endpoint):
                    pytest.fail("connected")
        assert type(info.value) is AuthenticationError
        assert info.value.status_code == 401
        assert f"127.0.0.1:{peer.port}" in str(info.value)
        assert "SECRET" not in chain_text(info.value)
        if body.startswith(b"{"):
            assert "Incorrect API key provided: ***. You can find" in str(info.value)
            assert "(invalid_api_key)" in str(info.value)
        assert peer.requests[0].rejected_with == 401
        assert peer.connections == []


async def test_403_and_other_statuses() -> None:
    with trio.fail_after(10):
        async with serve(idle, reject_status=403) as peer:
            with pytest.raises(AuthenticationError) as auth:
                async with open_transport(resolve_endpoint(peer.url, api_key=KEY, environ={})):
                    pass
        assert auth.value.status_code == 403
        body = json.dumps({"error": {"code": "DeploymentNotFound", "message": "no such thing"}})
        async with serve(idle, reject_status=404, reject_body=body.encode()) as peer:
            with pytest.raises(ConnectError) as info:
                async with open_transport(resolve_endpoint(peer.url, api_key=KEY, environ={})):
                    pass
        assert not isinstance(info.value, AuthenticationError)
        assert info.value.status_code == 404
        assert "no such thing (DeploymentNotFound)" in str(info.value)


async def test_connection_refused() -> None:
    port = closed_port()
    endpoint = resolve_endpoint(f"ws://127.0.0.1:{port}/v1/realtime", api_key=KEY, environ={})
    with trio.fail_after(10), pytest.raises(ConnectError) as info:
        async with open_transport(endpoint):
            pytest.fail("connected")
    assert type(info.value) is ConnectError
    assert info.value.status_code is None
    assert str(info.value) == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert "SECRET" not in chain_text(info.value)


async def test_connect_transport_failure_leaves_the_nursery_alone() -> None:
    endpoint = resolve_endpoint(f"ws://127.0.0.1:{closed_port()}/x", api_key=KEY, environ={})
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(ConnectError) as info:
                await connect_transport(nursery, endpoint)
            assert type(info.value) is ConnectError
        async with serve(idle, reject_status=401) as peer, trio.open_nursery() as nursery:
            with pytest.raises(AuthenticationError):
                await connect_transport(
                    nursery, resolve_endpoint(peer.url, api_key=KEY, environ={})
                )


async def test_server_closing_during_the_handshake() -> None:
    # trio-websocket alone would wait forever here.
    async def close_at_once(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        await stream.aclose()

    async def not_http(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        await stream.send_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for handler, text in [
                (close_at_once, "closed the connection during the WebSocket handshake"),
                (not_http, "did not answer with a valid WebSocket handshake response"),
            ]:
                port = await tcp_server(nursery, handler)
                endpoint = resolve_endpoint(f"ws://127.0.0.1:{port}/v1/realtime", environ={})
                with pytest.raises(ConnectError, match=text):
                    async with open_transport(endpoint):
                        pass
            nursery.cancel_scope.cancel()


async def test_failing_token_provider_is_not_a_group() -> None:
    def provider() -> str:
        raise RuntimeError("no token")

    endpoint = resolve_endpoint(
        azure_endpoint="http://127.0.0.1:1", token_provider=provider, environ={}
    )
    with trio.fail_after(10), pytest.raises(ConfigurationError):
        async with open_transport(endpoint):
            pass


async def test_errors_in_the_block_come_out_as_themselves() -> None:
    with trio.fail_after(10):
        async with serve(idle) as peer:
            with pytest.raises(KeyError) as info:
                async with open_transport(resolve_endpoint(peer.url, environ={})):
                    raise KeyError("mine")
            assert not isinstance(info.value, BaseExceptionGroup)
            # Nothing about the group it travelled in is attached.
            assert info.value.__context__ is None
            await peer.connections[0].wait_closed()
            assert peer.connections[0].closed_by_client


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no system trust store knows."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(key), "-out", str(cert), "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a test certificate with openssl: {exc}")
    return cert, key


async def tls_websocket_server(nursery: trio.Nursery, cert: Path, key: Path) -> int:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message('{"type":"hello"}')

    server = await nursery.start(
        functools.partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, context)
    )
    port: int = server.port
    return port


async def test_tls_certificates_are_verified(self_signed: tuple[Path, Path]) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await tls_websocket_server(nursery, *self_signed)
            url = f"wss://127.0.0.1:{port}/v1/realtime"
            endpoint = resolve_endpoint(url, api_key=KEY, environ={})
            with pytest.raises(ConnectError, match="certificate verify failed") as info:
                async with open_transport(endpoint):
                    pass
            assert f"TLS handshake with 127.0.0.1:{port} failed" in str(info.value)
            assert "SECRET" not in chain_text(info.value)
            nursery.cancel_scope.cancel()


async def test_tls_with_a_trusted_certificate(
    self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, _ = self_signed
    default_context = ssl.create_default_context
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await tls_websocket_server(nursery, *self_signed)
            # The client trusts the test certificate, and still checks it (and the name).
            monkeypatch.setattr(ssl, "create_default_context", lambda: default_context(cafile=cert))
            endpoint = resolve_endpoint(f"wss://127.0.0.1:{port}/v1/realtime", environ={})
            async with open_transport(endpoint) as transport:
                assert json.loads(await transport.receive()) == {"type": "hello"}
            nursery.cancel_scope.cancel()


async def test_wss_to_a_plain_server_fails_cleanly() -> None:
    with trio.fail_after(10):
        async with serve(idle) as peer:
            url = peer.url.replace("ws://", "wss://")
            with pytest.raises(ConnectError, match=r"TLS handshake with 127\.0\.0\.1:"):
                async with open_transport(resolve_endpoint(url, environ={})):
                    pass


# --- the peer's own checks ------------------------------------------------------------


async def send_events(peer: ScriptedPeer, *events: dict[str, object], dialect: str = "ga") -> None:
    endpoint = resolve_endpoint(peer.url, dialect=dialect, environ={})  # type: ignore[arg-type]
    async with open_transport(endpoint) as transport:
        for event in events:
            await transport.send_text(json.dumps(event))


async def run_peer(
    script: Callable[[PeerConnection], Awaitable[None]],
    *events: dict[str, object],
    dialect: str = "ga",
) -> ScriptedPeer:
    """Send ``events`` to a peer and return it without asserting that it is clean."""
    peer = ScriptedPeer(script, dialect=dialect)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await peer.start(nursery)
        await send_events(peer, *events, dialect=dialect)
        await peer._drain()
        nursery.cancel_scope.cancel()
    return peer


async def test_valid_events_of_both_dialects_are_clean() -> None:
    ga = [
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
        {"type": APPEND, "audio": "AAAA"},
        {"type": "input_audio_buffer.commit", "event_id": "e1"},
        {"type": "response.create"},
    ]
    beta = [
        {"type": "session.update", "session": {"modalities": ["text"], "turn_detection": None}},
        {"type": "transcription_session.update", "session": {}},
    ]
    with trio.fail_after(10):
        async with serve(idle) as peer:
            await send_events(peer, *ga)
        assert [e["type"] for e in peer.connections[0].received] == [e["type"] for e in ga]
        async with serve(idle, dialect="beta") as peer:
            await send_events(peer, *beta, dialect="beta")


async def test_misspelled_key_is_a_violation() -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "instrucions": "hi"}}
    with trio.fail_after(10):
        peer = await run_peer(idle, event)
        (violation,) = peer.violations
        assert "session.update has keys its model does not declare: ['session.instrucions']" in (
            violation
        )
        # The event is still recorded, and serve() fails the test at exit.
        assert peer.connections[0].received == [event]
        with pytest.raises(AssertionError, match="instrucions"):
            async with serve(idle) as peer:
                await send_events(peer, event)


@pytest.mark.parametrize(
    ("event", "dialect", "text"),
    [
        ({"type": "transcription_session.update", "session": {}}, "ga", "not a ga client event"),
        ({"type": "conversation.item.added"}, "ga", "not a ga client event"),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": 0,
                "audio_end_ms": "5",
            },
            "ga",
            "does not validate",
        ),
        ({"type": "conversation.item.delete"}, "beta", "does not validate"),
        ({"no_type": 1}, "ga", "string 'type'"),
    ],
)
async def test_event_violations(event: dict[str, object], dialect: str, text: str) -> None:
    with trio.fail_after(10):
        peer = await run_peer(idle, event, dialect=dialect)
    assert len(peer.violations) == 1
    assert text in peer.violations[0]


async def test_not_json_and_binary_frames_are_violations() -> None:
    async def client(peer: ScriptedPeer) -> None:
        # WebSocketTransport sends text only; a bare trio-websocket client sends the rest.
        async with trio_websocket.open_websocket_url(peer.url) as ws:
            await ws.send_message("{not json")
            await ws.send_message(b"\x00\x01")

    with trio.fail_after(10):
        peer = ScriptedPeer(idle)
        async with trio.open_nursery() as nursery:
            await peer.start(nursery)
            await client(peer)
            await peer._drain()
            nursery.cancel_scope.cancel()
    assert len(peer.violations) == 2
    assert "not JSON" in peer.violations[0]
    assert "binary frame of 2 bytes" in peer.violations[1]


async def test_handshake_dialect_mismatch_is_a_violation() -> None:
    with trio.fail_after(10):
        peer = ScriptedPeer(idle, dialect="beta")
        async with trio.open_nursery() as nursery:
            await peer.start(nursery)
            await send_events(peer, dialect="ga")
            nursery.cancel_scope.cancel()
    assert peer.violations == ["beta peer: upgrade has OpenAI-Beta None"]


async def test_recv_skips_appends_and_rejects_other_types() -> None:
    seen: list[str] = []
    quiet_period_over = trio.Event()

    async def script(conn: PeerConnection) -> None:
        seen.append((await conn.recv())["type"])
        seen.append((await conn.recv("input_audio_buffer.commit"))["type"])
        seen.append((await conn.recv(APPEND))["type"])
        await conn.recv_nothing(0.1)
        quiet_period_over.set()
        await conn.recv("response.create")  # but the client sends response.cancel

    events = [
        {"type": APPEND, "audio": "AAAA"},
        {"type": "input_audio_buffer.clear"},
        {"type": APPEND, "audio": "AAAA"},
        {"type": "input_audio_buffer.commit"},
        {"type": APPEND, "audio": "AQID"},
        {"type": "response.cancel"},
    ]
    with trio.fail_after(10):
        peer = ScriptedPeer(script)
        async with trio.open_nursery() as nursery:
            await peer.start(nursery)
            endpoint = resolve_endpoint(peer.url, environ={})
            async with open_transport(endpoint) as transport:
                for event in events[:5]:
                    await transport.send_text(json.dumps(event))
                await quiet_period_over.wait()
                await transport.send_text(json.dumps(events[5]))
                # The failed script closes the connection with 1011.
                with pytest.raises(ConnectionClosed) as info:
                    await transport.receive()
                assert info.value.code == 1011
            nursery.cancel_scope.cancel()
    assert seen == ["input_audio_buffer.clear", "input_audio_buffer.commit", APPEND]
    (violation,) = peer.violations
    assert "script raised" in violation
    assert "peer expected 'response.create', client sent 'response.cancel'" in violation
    assert len(peer.connections[0].received) == 6
    assert peer.connections[0].appended_audio() == b"\x00\x00\x00" * 2 + b"\x01\x02\x03"


async def test_recv_nothing_fails_on_an_event() -> None:
    async def script(conn: PeerConnection) -> None:
        await conn.recv_nothing(5)

    with trio.fail_after(10):
        peer = await run_peer(script, {"type": "response.create"})
    (violation,) = peer.violations
    assert "expected no client event for 5 s" in violation


def test_assert_no_extra_and_model_tables() -> None:
    ga, beta = client_event_models("ga"), client_event_models("beta")
    assert len(ga) == 11
    assert len(beta) == 12
    assert set(beta) - set(ga) == {"transcription_session.update"}
    model = ga["response.create"].model_validate(
        {"type": "response.create", "response": {"instructions": "x", "voice_x": 1}}
    )
    with pytest.raises(AssertionError, match=r"\['response.voice_x'\]"):
        assert_no_extra(model)
    assert_no_extra(ga["response.create"].model_validate({"type": "response.create"}))
