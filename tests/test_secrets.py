"""One key, every way out: a sweep for credentials in everything realtalk shows.

Distinctive secrets (an OpenAI key, an Azure key, an Entra-style bearer token, a relay
client token and a relay signing secret) go through every path that handles credentials: endpoint
resolution, sessions over each kind of authentication (``Authorization: Bearer``, Azure's
``api-key`` header, a ``token_provider``, a browser's subprotocol), every way a connect
fails, the embedded server, the relay, and the command line (``serve``, ``relay``,
``file``, ``demo``, ``talk``) with the keys in its environment. Everything these show is
captured: reprs, messages, exceptions with their whole chain and traceback, log lines of
the server, the relay and Python's ``logging``, statistics, every event and the raw JSON
of every frame the server sent back, close reasons, refusal bodies, process output. Then
the capture is searched for each secret and for fragments of it: its random part, the
first and last eight characters of that, its base64, and the masked form the API quotes
(``sk-****...`` and the last four characters).

The tests at the end of each part pin leaks this sweep found and that were fixed: an
http:// URL's suggestion quoting its query, credentials in ``extra_query``, the API's
masked quote of a refused key, the server logging a key sent in the query, and the CLI
printing ``--url`` before it was checked.

The per-path tests stay where they are (``test_client_endpoint.py`` for reprs,
``test_client_transport.py`` for refusal bodies, ``test_relay.py`` for what the relay
hides from its clients); this file is the one place that sweeps them all with one key.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket

import realtalk
from realtalk.client._endpoint import resolve_endpoint
from realtalk.protocol import ResponseDone, ServerEvent, SessionConfig
from realtalk.relay import RelayAuth, RelayLimits, Upstream, make_token, open_relay
from realtalk.server import RealtimeServer, ServerOptions, open_server


def _secret(prefix: str) -> str:
    # 32 random characters after a readable prefix; fragments are taken from those.
    return prefix + secrets.token_urlsafe(24)


#: An OpenAI-style API key.
KEY = _secret("sk-realtalk-SECRET-")
#: A bearer token from a token provider (Entra ID tokens are JWTs: ``eyJ...``).
TOKEN = _secret("eyJyZWFsdGFsayJ9.SECRET-")
#: An Azure key: 32 hex digits.
AZURE_KEY = secrets.token_hex(16)
#: A relay's shared client token, and the secret relay tokens are signed with.
CLIENT_TOKEN = _secret("relay-client-SECRET-")
SIGNING_SECRET = _secret("relay-signing-SECRET-")
ALL_SECRETS = (KEY, TOKEN, AZURE_KEY, CLIENT_TOKEN, SIGNING_SECRET)

CLI = [sys.executable, "-m", "realtalk"]
QUESTION = Path(realtalk.__file__).parent / "data" / "question.wav"


def fragments(secret: str) -> list[str]:
    """What of ``secret`` must not show: itself, its random part, the first and last
    eight characters of that, its base64, and the API's masked form of it."""
    random = secret[-32:]
    return [
        secret,
        random,
        random[:8],
        random[-8:],
        base64.b64encode(secret.encode()).decode(),
        "****" + secret[-4:],
    ]


def exception_text(exc: BaseException) -> str:
    """Everything an exception can show: its traceback with the whole chain (causes,
    contexts, group members), and for each of those its repr, args and attributes."""
    parts = ["".join(traceback.format_exception(exc))]
    todo: list[BaseException | None] = [exc]
    done: set[int] = set()
    while todo:
        current = todo.pop()
        if current is None or id(current) in done:
            continue
        done.add(id(current))
        parts += [repr(current), str(current), repr(current.args)]
        parts.append(repr(getattr(current, "__dict__", {})))
        parts.append(repr(getattr(current, "__notes__", [])))
        todo += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            todo += current.exceptions
    return "\n".join(parts)


@dataclass
class Capture:
    """Everything shown, by where it was seen."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, shown: object) -> None:
        self.texts.append((where, shown if isinstance(shown, str) else repr(shown)))

    def lines(self, where: str, lines: list[str]) -> None:
        self.add(where, "\n".join(lines))

    def error(self, where: str, exc: BaseException) -> None:
        self.add(where, exception_text(exc))

    async def failure(self, where: str, call: Callable[[], Awaitable[object]]) -> BaseException:
        """Run ``call``, which must raise; capture what it raised."""
        try:
            await call()
        except Exception as exc:
            self.error(where, exc)
            return exc
        raise AssertionError(f"{where}: did not fail")

    def session(self, where: str, session: realtalk.Session, seen: list[Any]) -> None:
        """A session's reprs, statistics, conversation, and every event it delivered,
        with the raw JSON of every server frame."""
        self.add(f"{where}: repr", f"{session!r} {session!s} {session.config!r}")
        self.add(f"{where}: statistics", session.statistics())
        self.add(f"{where}: conversation", [(i, i.raw) for i in session.conversation])
        self.add(f"{where}: events", seen)
        raw = [json.dumps(e.raw) for e in seen if isinstance(e, ServerEvent)]
        self.add(f"{where}: raw frames", "\n".join(raw))
        self.add(f"{where}: closed", session.closed)

    def assert_clean(self, *secret_values: str) -> None:
        assert self.texts, "nothing was captured"
        found = []
        for where, text in self.texts:
            for secret in secret_values:
                for fragment in fragments(secret):
                    at = text.find(fragment)
                    if at >= 0:
                        found.append(f"{where}: ...{text[max(0, at - 60) : at + 60]}...")
        assert not found, "secrets shown:\n" + "\n".join(found)


async def a_turn(session: realtalk.Session, seen: list[Any]) -> None:
    await session.send_text("What is the key?")
    async for event in session.events():
        seen.append(event)
        if isinstance(event, ResponseDone):
            return
    raise AssertionError("the session ended first")


@asynccontextmanager
async def serving(key: str, capture: Capture, name: str) -> AsyncIterator[RealtimeServer]:
    """The embedded server requiring ``key``; its log goes to ``capture``."""
    log: list[str] = []
    try:
        async with open_server(options=ServerOptions(api_key=key), log=log.append) as server:
            yield server
    finally:
        capture.lines(f"{name} log", log)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- servers and clients ---------------------------------------------------------------------


def connect_call(url: str | None, **kwargs: Any) -> Callable[[], Awaitable[object]]:
    async def call() -> None:
        async with realtalk.connect(url, **kwargs):
            pass

    return call


async def http_get(port: int, target: str) -> str:
    """A plain HTTP GET's whole response."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
    return response.decode("utf-8", "replace")


async def serve_tcp(
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handler, listeners)


async def _request(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


async def echo_request(stream: trio.SocketStream) -> None:
    """A broken proxy: sends the upgrade request back as it came, headers and all."""
    async with stream:
        await stream.send_all(await _request(stream))


async def echo_request_as_json_401(stream: trio.SocketStream) -> None:
    """A server that quotes the whole request in a JSON 401 (as an error message)."""
    async with stream:
        request = (await _request(stream)).decode("latin-1")
        # The credential first, within what a client might quote of a message.
        lines = request.split("\r\n")
        lines.sort(key=lambda line: not line.lower().startswith(("authorization", "api-key")))
        body = json.dumps({"error": {"message": " | ".join(lines), "code": "bad"}}).encode()
        head = f"HTTP/1.1 401 Unauthorized\r\nContent-Length: {len(body)}\r\n"
        head += "Content-Type: application/json\r\n\r\n"
        await stream.send_all(head.encode() + body)


# --- the library -----------------------------------------------------------------------------


def test_endpoints_and_arguments() -> None:
    capture = Capture()
    environ = {"OPENAI_API_KEY": KEY, "AZURE_OPENAI_API_KEY": AZURE_KEY}
    endpoints = [
        resolve_endpoint(environ=environ),
        resolve_endpoint(api_key=KEY, environ={}),
        resolve_endpoint(azure_endpoint="https://r.openai.azure.com", environ=environ),
        resolve_endpoint(
            azure_endpoint="https://r.openai.azure.com",
            api_version="2025-04-01-preview",
            api_key=KEY,
            environ={},
        ),
        resolve_endpoint(
            environ={"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", **environ}
        ),
        resolve_endpoint("ws://127.0.0.1:1/v1/realtime", api_key=KEY, environ={}),
        resolve_endpoint(
            "ws://127.0.0.1:1/v1/realtime",
            extra_headers={"X-Api-Key": KEY, "Proxy-Authorization": f"Bearer {TOKEN}"},
            environ={},
        ),
        resolve_endpoint(
            azure_endpoint="https://r.openai.azure.com", token_provider=lambda: TOKEN, environ={}
        ),
    ]
    for n, endpoint in enumerate(endpoints):
        capture.add(f"endpoint {n}", f"{endpoint!r} {endpoint!s} {endpoint.url}")
        # Every field but the extra headers, whose values are the caller's to send.
        for f in dataclasses.fields(endpoint):
            if f.name != "extra_headers":
                capture.add(f"endpoint {n} {f.name}", getattr(endpoint, f.name))
    upstream = Upstream(url="ws://127.0.0.1:1/v1/realtime", api_key=KEY)
    capture.add("upstream", f"{upstream!r} {upstream.endpoint!r}")
    capture.add("relay auth", f"{RelayAuth(token=CLIENT_TOKEN)!r}")
    capture.add("relay auth", f"{RelayAuth(secret=SIGNING_SECRET)!r}")
    capture.add("config", SessionConfig(instructions="Be brief.", voice="marin"))

    # Refused arguments that carry a credential.
    refused: list[Callable[[], object]] = [
        lambda: resolve_endpoint(api_key=KEY + "\n", environ={}),
        lambda: resolve_endpoint(api_key=f"Bearer {KEY}", environ={}),
        lambda: resolve_endpoint(environ={"OPENAI_API_KEY": f" {KEY}"}),
        lambda: resolve_endpoint(api_key=KEY, token_provider=lambda: TOKEN, environ={}),
        lambda: resolve_endpoint(f"wss://user:{KEY}@api.openai.com/v1/realtime", environ={}),
        lambda: resolve_endpoint(f"wss://h/v1/realtime?api-key={KEY}", environ={}),
        lambda: resolve_endpoint(
            azure_endpoint=f"https://user:{KEY}@r.openai.azure.com", environ=environ
        ),
        lambda: resolve_endpoint(
            "ws://127.0.0.1:1/x", extra_headers={"X-Api-Key": KEY + "\r\nX: y"}, environ={}
        ),
        lambda: Upstream(url="ws://127.0.0.1:1/x", api_key=f"{KEY} "),
        lambda: RelayAuth(token=CLIENT_TOKEN + " "),
    ]
    for n, call in enumerate(refused):
        with pytest.raises(realtalk.ConfigurationError) as raised:
            call()
        capture.error(f"refused argument {n}", raised.value)
    capture.assert_clean(*ALL_SECRETS)


@pytest.mark.parametrize(
    "url",
    [f"https://api.openai.com/v1/realtime?api-key={KEY}", f"https://u:{KEY}@h/v1/realtime"],
    ids=["query", "userinfo"],
)
def test_a_credential_in_an_http_url_is_not_quoted(url: str) -> None:
    with pytest.raises(realtalk.ConfigurationError) as raised:
        resolve_endpoint(url, environ={})
    capture = Capture()
    capture.error("http url", raised.value)
    capture.assert_clean(KEY)


def test_a_credential_in_extra_query_is_refused() -> None:
    with pytest.raises(realtalk.ConfigurationError) as raised:
        resolve_endpoint("ws://127.0.0.1:1/v1/realtime", extra_query={"api-key": KEY}, environ={})
    capture = Capture()
    capture.error("extra_query", raised.value)
    capture.assert_clean(KEY)


async def test_sessions_over_every_kind_of_authentication(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    capture = Capture()

    async def session(where: str, **kwargs: Any) -> None:
        seen: list[Any] = []
        async with realtalk.connect(**kwargs) as opened:
            await a_turn(opened, seen)
            await opened.update(instructions="Be brief.")
            capture.session(where, opened, seen)

    async def async_token() -> str:
        await trio.lowlevel.checkpoint()
        return TOKEN

    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    with trio.fail_after(15):
        async with (
            serving(KEY, capture, "key server") as server,
            serving(AZURE_KEY, capture, "azure server") as azure_server,
            serving(TOKEN, capture, "token server") as token_server,
        ):
            azure = f"http://127.0.0.1:{azure_server.port}"
            await session("bearer ga", url=server.url, api_key=KEY)
            await session("bearer beta", url=server.url, api_key=KEY, dialect="beta")
            # Azure's api-key header, the key from AZURE_OPENAI_API_KEY; preview and GA.
            await session(
                "azure preview",
                azure_endpoint=azure,
                api_version="2025-04-01-preview",
                dialect="beta",
            )
            await session("azure ga", azure_endpoint=azure)
            await session("token", url=token_server.url, token_provider=lambda: TOKEN)
            await session("async token", url=token_server.url, token_provider=async_token)

            # A browser offers the key as a subprotocol.
            protocols = ["realtime", f"openai-insecure-api-key.{KEY}"]
            async with trio_websocket.open_websocket_url(server.url, subprotocols=protocols) as ws:
                assert ws.subprotocol == "realtime"
                frames = [await ws.get_message() for _ in range(2)]
                capture.add("browser handshake", (ws.subprotocol, ws.handshake_headers))
                capture.add("browser frames", frames)
    capture.add("logging", [r.getMessage() for r in caplog.records])
    capture.assert_clean(*ALL_SECRETS)


async def test_every_failed_connect(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    capture = Capture()

    def raising_provider() -> str:
        raise RuntimeError("the token service is down")

    with trio.fail_after(15):
        async with (
            serving("someone-else's-key", capture, "refusing server") as refusing,
            serving(KEY, capture, "plain server") as plain,
            trio.open_nursery() as nursery,
        ):
            echo = await nursery.start(serve_tcp, echo_request)
            echo_json = await nursery.start(serve_tcp, echo_request_as_json_401)
            azure_refusing = f"http://127.0.0.1:{refusing.port}"
            connect_error, auth_error = realtalk.ConnectError, realtalk.AuthenticationError
            bad_token = realtalk.ConfigurationError
            echo_url, echo_json_url = (
                f"ws://127.0.0.1:{port}/v1/realtime" for port in (echo, echo_json)
            )
            failures = {
                "refused port": (
                    connect_error,
                    connect_call(f"ws://127.0.0.1:{free_port()}/v1/realtime", api_key=KEY),
                ),
                "tls to plain": (
                    connect_error,
                    connect_call(f"wss://127.0.0.1:{plain.port}/v1/realtime", api_key=KEY),
                ),
                "401 bearer": (auth_error, connect_call(refusing.url, api_key=KEY)),
                "401 beta": (auth_error, connect_call(refusing.url, api_key=KEY, dialect="beta")),
                "401 azure": (
                    auth_error,
                    connect_call(None, azure_endpoint=azure_refusing, api_key=KEY),
                ),
                "echo": (connect_error, connect_call(echo_url, api_key=KEY)),
                "echo azure": (
                    connect_error,
                    connect_call(f"ws://127.0.0.1:{echo}/openai/v1/realtime", api_key=AZURE_KEY),
                ),
                "echo json": (auth_error, connect_call(echo_json_url, api_key=KEY)),
                "echo json token": (
                    auth_error,
                    connect_call(echo_json_url, token_provider=lambda: TOKEN),
                ),
                "echo json azure": (
                    auth_error,
                    connect_call(
                        f"ws://127.0.0.1:{echo_json}/openai/v1/realtime", api_key=AZURE_KEY
                    ),
                ),
                "token with a prefix": (
                    bad_token,
                    connect_call(plain.url, token_provider=lambda: f"Bearer {TOKEN}"),
                ),
                "token provider failed": (
                    bad_token,
                    connect_call(plain.url, token_provider=raising_provider),
                ),
            }
            for where, (kind, call) in failures.items():
                raised = await capture.failure(where, call)
                assert type(raised) is kind, (where, raised)
            nursery.cancel_scope.cancel()
    capture.add("logging", [r.getMessage() for r in caplog.records])
    capture.assert_clean(*ALL_SECRETS)


@pytest.mark.parametrize("credential", ["token", "azure key"])
async def test_the_masked_quote_of_a_refused_credential_is_not_shown(credential: str) -> None:
    capture = Capture()
    with trio.fail_after(5):
        async with serving("someone-else's-key", capture, "refusing server") as refusing:
            if credential == "token":
                call = connect_call(refusing.url, token_provider=lambda: TOKEN)
            else:
                azure = f"http://127.0.0.1:{refusing.port}"
                call = connect_call(None, azure_endpoint=azure, api_key=AZURE_KEY)
            await capture.failure(f"401 {credential}", call)
    capture.assert_clean(TOKEN, AZURE_KEY)


async def test_a_key_in_the_query_is_not_logged_by_the_server() -> None:
    capture = Capture()
    with trio.fail_after(5):
        async with serving(KEY, capture, "server") as server:
            path = f"/openai/realtime?api-version=x&deployment=d&api-key={KEY}"
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            try:
                with pytest.RaisesGroup(trio_websocket.ConnectionRejected):
                    async with trio.open_nursery() as nursery:
                        host = f"127.0.0.1:{server.port}"
                        await trio_websocket.wrap_client_stream(nursery, stream, host, path)
            finally:
                await trio.aclose_forcefully(stream)
    capture.assert_clean(KEY)


# --- the relay -------------------------------------------------------------------------------


async def test_the_relay(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    capture = Capture()
    relay_log: list[str] = []
    with trio.fail_after(15):
        async with (
            serving(KEY, capture, "upstream") as server,
            open_relay(
                upstream=Upstream(url=server.url, api_key=KEY),
                auth=RelayAuth(token=CLIENT_TOKEN),
                limits=RelayLimits(max_message_bytes=4096),
                log=relay_log.append,
            ) as relay,
            open_relay(
                upstream=Upstream(url=server.url, api_key=KEY),
                auth=RelayAuth(secret=SIGNING_SECRET),
                log=relay_log.append,
            ) as signed_relay,
        ):
            seen: list[Any] = []
            async with realtalk.connect(relay.url, api_key=CLIENT_TOKEN) as session:
                await a_turn(session, seen)
                capture.session("relayed", session, seen)
                # Too big for the relay: it closes the client, with a reason.
                await session.send_text("x" * 8000, respond=False)
                seen += [event async for event in session.events()]
            assert session.closed is not None
            assert session.closed.code == 1009
            capture.session("closed by the relay", session, seen)

            seen = []
            async with realtalk.connect(signed_relay.url, api_key=make_token(SIGNING_SECRET)) as s:
                await a_turn(s, seen)
                capture.session("signed", s, seen)

            # The upstream's key, or a token that is not the relay's, is refused.
            for where, token in [("key as token", KEY), ("wrong token", CLIENT_TOKEN[::-1])]:
                refused = await capture.failure(where, connect_call(relay.url, api_key=token))
                assert isinstance(refused, realtalk.AuthenticationError)
            capture.add("relay", f"{relay!r} {relay.statistics()!r}")
            console = await http_get(relay.port, f"/?token={CLIENT_TOKEN}")
            assert console.startswith("HTTP/1.1 200")
            capture.add("console", console)

        # An upstream refusing the relay's key: the client gets 502, without the key.
        async with (
            serving("someone-else's-key", capture, "refusing upstream") as refusing,
            open_relay(
                upstream=Upstream(url=refusing.url, api_key=KEY),
                auth=RelayAuth(token=CLIENT_TOKEN),
                log=relay_log.append,
            ) as relay,
        ):
            failed = await capture.failure("502", connect_call(relay.url, api_key=CLIENT_TOKEN))
            assert isinstance(failed, realtalk.ConnectError)
            assert failed.status_code == 502
    capture.lines("relay log", relay_log)
    capture.add("logging", [r.getMessage() for r in caplog.records])
    capture.assert_clean(*ALL_SECRETS)


# --- the command line ------------------------------------------------------------------------


def cli_environment() -> dict[str, str]:
    """The test's environment with every key realtalk reads set to a secret. Every
    command below is pointed at a local server (``--url``) or ``--local``: none of them
    may go to the network."""
    env = {k: v for k, v in os.environ.items() if "OPENAI" not in k and "AZURE" not in k}
    env.update(
        PYTHONUNBUFFERED="1",
        OPENAI_API_KEY=KEY,
        AZURE_OPENAI_API_KEY=AZURE_KEY,
        RT_KEY=KEY,
        RT_TOKEN=CLIENT_TOKEN,
        RT_SECRET=SIGNING_SECRET,
    )
    return env


async def run_cli(capture: Capture, args: list[str], env: dict[str, str]) -> int:
    done = await trio.run_process(
        [*CLI, *args], env=env, capture_stdout=True, capture_stderr=True, check=False
    )
    name = "realtalk " + " ".join(args[:1])
    capture.add(f"{name} stdout", done.stdout.decode())
    capture.add(f"{name} stderr", done.stderr.decode())
    return done.returncode


@dataclass
class Running:
    """A long-running command: its output so far."""

    process: trio.Process
    output: bytearray = field(default_factory=bytearray)

    async def pump(self, stream: trio.abc.ReceiveStream) -> None:
        while chunk := await stream.receive_some(65536):
            self.output += chunk

    async def wait_for(self, pattern: str) -> re.Match[str]:
        while (found := re.search(pattern, self.output.decode())) is None:
            assert self.process.poll() is None, self.output.decode()
            await trio.sleep(0.01)
        return found


@asynccontextmanager
async def running(capture: Capture, args: list[str], env: dict[str, str]) -> AsyncIterator[Running]:
    """``realtalk ARGS`` running for the block, then stopped with Ctrl-C."""
    process = await trio.lowlevel.open_process(
        [*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    run = Running(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run.pump, process.stdout)
            try:
                yield run
            finally:
                process.send_signal(signal.SIGINT)
                with trio.move_on_after(5):
                    await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        capture.add(f"realtalk {args[0]} output", run.output.decode())


async def test_the_command_line(tmp_path: Path) -> None:
    capture = Capture()
    env = cli_environment()
    with trio.fail_after(60):  # eight commands; a few seconds when the machine is idle
        async with (
            serving(KEY, capture, "good server") as good,
            serving("someone-else's-key", capture, "refusing server") as refusing,
            trio.open_nursery() as nursery,
        ):
            codes: dict[str, int] = {}

            async def run(name: str, args: list[str]) -> None:
                codes[name] = await run_cli(capture, args, env)

            key = ["--api-key-env", "RT_KEY", "--url"]
            file = ["file", str(QUESTION), "-o", str(tmp_path / "file.wav"), *key]
            demo = ["demo", "--no-play", "-o", str(tmp_path / "demo.wav"), *key]
            nursery.start_soon(run, "file", [*file, good.url])
            nursery.start_soon(run, "file 401", [*file, refusing.url])
            nursery.start_soon(run, "demo", [*demo, good.url])  # the question at real time
            nursery.start_soon(run, "demo 401", [*demo, refusing.url])
            nursery.start_soon(run, "talk 401", ["talk", *key, refusing.url])
            nursery.start_soon(run, "talk help", ["talk", "--help"])

            # The embedded server as a command, with the key it requires on its command line.
            async with running(capture, ["serve", "--port", "0", "--api-key", KEY], env) as serve:
                url = (await serve.wait_for(r"listening on (\S+)"))[1]
                seen: list[Any] = []
                async with realtalk.connect(url, api_key=KEY) as session:
                    await a_turn(session, seen)
                    capture.session("serve session", session, seen)
                # A wrong key: the command's output must not show the right one.
                await capture.failure("serve 401", connect_call(url, api_key="sk-wrong-0123456"))

            # The relay as a command: the upstream's key and the signing secret from the
            # environment; a client with a signed token.
            relay_args = ["relay", "--port", "0", "--upstream", good.url]
            relay_args += ["--upstream-key-env", "RT_KEY", "--secret-env", "RT_SECRET"]
            async with running(capture, relay_args, env) as relay:
                url = (await relay.wait_for(r"listening on (\S+)"))[1]
                await relay.wait_for(r"clients:.*\n")
                seen = []
                async with realtalk.connect(url, api_key=make_token(SIGNING_SECRET)) as session:
                    await a_turn(session, seen)
                    capture.session("relay session", session, seen)
                await capture.failure("relay 401", connect_call(url, api_key=KEY))
        assert codes == {
            "file": 0,
            "file 401": 1,
            "demo": 0,
            "demo 401": 1,
            "talk 401": codes["talk 401"],
            "talk help": 0,
        }
        assert codes["talk 401"] != 0
    capture.assert_clean(*ALL_SECRETS)


async def test_a_credential_in_the_url_option_is_not_printed(tmp_path: Path) -> None:
    capture = Capture()
    url = f"ws://127.0.0.1:{free_port()}/v1/realtime?api-key={KEY}"
    with trio.fail_after(10):
        code = await run_cli(
            capture,
            ["file", str(QUESTION), "--url", url, "-o", str(tmp_path / "r.wav")],
            cli_environment(),
        )
    assert code != 0
    capture.assert_clean(KEY)
