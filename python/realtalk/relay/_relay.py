"""The relay: a WebSocket server between clients and the upstream Realtime endpoint.

What this module owns: the listener (one TCP port for the console's files and the
WebSocket upgrade on ``/v1/realtime``), the order of the handshake checks and the
refusal of each, one upstream connection per client session (opened *before* the
client's upgrade is accepted), the two pumps of a session, the held settings' own
``session.update``, the relay's tool calls, closing both sides with the right code,
the statistics and the log lines.

What it must never do: send a credential (the upstream key, a client token, the
signing secret) to a client, a log line, a close reason or an exception message;
parse an audio delta it only forwards; let a client choose the model or the upstream;
keep a session's task outside the ``async with`` of :func:`open_relay`; or leak an
exception group for a single error.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import h11
import trio
import trio_websocket

from realtalk import _core
from realtalk._core import AudioDelta
from realtalk.client import ToolHandler
from realtalk.client._endpoint import (
    DEFAULT_MODEL,
    Dialect,
    Endpoint,
    Secret,
    TokenProvider,
    resolve_endpoint,
)
from realtalk.client._transport import WebSocketTransport, connect_transport
from realtalk.exceptions import (
    ConfigurationError,
    ConnectionClosed,
    EventParseError,
    RealtalkError,
)
from realtalk.relay._auth import (
    RelayAuth,
    is_loopback,
    normalize_origins,
    origin_allowed,
    presented_token,
)
from realtalk.relay._http import (
    BadRequest,
    ReplayStream,
    RequestHead,
    api_error_body,
    console_files,
    content_type,
    read_head,
    respond,
    respond_error,
)
from realtalk.relay._policy import (
    ClientGate,
    PolicyViolation,
    RelayLimits,
    RelayPolicy,
    redact_session_event,
)

__all__ = ["Relay", "RelayStatistics", "Upstream", "open_relay"]

LogFn = Callable[[str], None]

#: The one WebSocket path a relay answers.
RELAY_PATH = "/v1/realtime"
#: The console the relay serves by default: files next to this module.
CONSOLE_DIR = Path(__file__).parent / "console"
#: Seconds each side gets to answer the close handshake when a session ends.
CLOSE_TIMEOUT_S = 2.0
#: Upstream events held back while the relay's own session.update is answered.
_MAX_HELD_BACK = 256
#: Complete client messages trio-websocket buffers before it stops reading the socket.
_MESSAGE_QUEUE_SIZE = 16
_RECEIVE_BUFFER_SIZE = 64 * 1024
#: Longest close reason a WebSocket close frame carries, in UTF-8 bytes.
_MAX_CLOSE_REASON = 123
#: Close codes that may be sent in a close frame (1005, 1006 and 1015 may not).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
#: Audio deltas as the API writes them: forwarded without a parse.
_AUDIO_DELTA_HEADS = ('{"type":"response.output_audio.delta"', '{"type":"response.audio.delta"')
# Extra upstream headers whose values are credentials, by name.
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|cookie|password", re.IGNORECASE)
# Things that look like credentials in text from elsewhere (OpenAI keys, JWTs).
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{2,}|\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-.]*")


@dataclass(frozen=True, eq=False)
class Upstream:
    """Where the relay connects for each client: the arguments of ``realtalk.connect``.

    The fields mean what they mean for :func:`realtalk.connect` (OpenAI by default; Azure
    with ``azure_endpoint``; any ``ws(s)://`` ``url``, e.g. the embedded server). They
    are resolved when the object is built, so a missing key or a bad URL fails here.
    ``api_key`` is kept wrapped (its ``repr()`` is ``Secret('***')``; a custom URL
    upstream without one connects without credentials); ``repr()`` of the upstream
    shows the URL and the kind of authentication, never a key or header value. Keys
    from the environment (``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``) are read here.

    Raises:
        ConfigurationError: as :func:`realtalk.client.resolve_endpoint`.
    """

    url: str | None = None
    api_key: str | Secret | None = None
    model: str | None = None
    dialect: Dialect = "ga"
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str | None = None
    token_provider: TokenProvider | None = None
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, str] | None = None
    _endpoint: Endpoint = field(init=False, repr=False)

    def __post_init__(self) -> None:
        key = self.api_key
        if isinstance(key, str):
            key = Secret(key)
            object.__setattr__(self, "api_key", key)
        endpoint = resolve_endpoint(
            self.url,
            api_key=None if key is None else key.reveal(),
            model=self.model,
            dialect=self.dialect,
            azure_endpoint=self.azure_endpoint,
            azure_deployment=self.azure_deployment,
            api_version=self.api_version,
            token_provider=self.token_provider,
            extra_headers=self.extra_headers,
            extra_query=self.extra_query,
        )
        object.__setattr__(self, "_endpoint", endpoint)

    def __repr__(self) -> str:
        return f"Upstream({self._endpoint!r})"

    @property
    def endpoint(self) -> Endpoint:
        """The resolved endpoint (URL, dialect, kind; credentials kept inside)."""
        return self._endpoint

    @property
    def model_name(self) -> str:
        """The model (or Azure deployment) named in the upstream URL."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self._endpoint.url).query))
        return query.get("model") or query.get("deployment") or DEFAULT_MODEL

    def _secrets(self) -> list[str]:
        """Credential strings to scrub from text that goes to clients or logs."""
        out: list[str] = []
        key = self.api_key
        if isinstance(key, Secret):
            out.append(key.reveal())
        out += [
            value.removeprefix("Bearer ").strip()
            for name, value in self._endpoint.extra_headers
            if _CREDENTIAL_HEADER.search(name)
        ]
        return [s for s in out if len(s) >= 4]


@dataclass(frozen=True, slots=True)
class RelayStatistics:
    """A snapshot of a relay's counters (from :meth:`Relay.statistics`).

    ``refused`` counts, by reason, upgrades refused and sessions the relay closed for a
    policy or limit: ``not_found``, ``bad_request``, ``origin_not_allowed``,
    ``missing_token``, ``invalid_token``, ``expired_token``, ``dialect_mismatch``,
    ``too_many_sessions``, ``upstream_unavailable`` (HTTP refusals);
    ``message_too_big``, ``rate_limit``, ``event_not_allowed``, ``not_json``,
    ``binary_message``, ``idle_timeout``, ``upstream_refused_settings`` (closes).
    Message and byte counts are of messages *received* (bytes of their UTF-8 text).
    """

    sessions_active: int
    """Sessions open now."""
    sessions_total: int
    """Sessions accepted since the relay started."""
    refused: Mapping[str, int]
    """Refusals and policy closes by reason (read-only)."""
    messages_from_clients: int
    bytes_from_clients: int
    messages_from_upstream: int
    bytes_from_upstream: int
    client_events_filtered: int
    """Client events forwarded with held fields taken out."""
    client_events_dropped: int
    """Client events not forwarded (outputs for calls the relay answers)."""
    tool_calls: int
    """Held tools run by the relay."""
    tool_errors: int
    """Held tool runs that raised (the model was told the error)."""


@dataclass(slots=True)
class _Counters:
    sessions_active: int = 0
    sessions_total: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    messages_from_clients: int = 0
    bytes_from_clients: int = 0
    messages_from_upstream: int = 0
    bytes_from_upstream: int = 0
    client_events_filtered: int = 0
    client_events_dropped: int = 0
    tool_calls: int = 0
    tool_errors: int = 0

    def refuse(self, key: str) -> None:
        self.refused[key] = self.refused.get(key, 0) + 1


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    code: str  # the API error code, and the statistics key
    message: str
    error_type: str = "invalid_request_error"


@dataclass(frozen=True, slots=True)
class _End:
    """How a session ends: what each side is told, and the log's words."""

    why: str
    client: tuple[int, str]
    upstream: tuple[int, str] = (1000, "")
    refused: str | None = None


_SHUTDOWN = _End("relay shut down", (1001, "relay shutting down"))


def _nbytes(message: str | bytes) -> int:
    if isinstance(message, bytes) or message.isascii():
        return len(message)
    return len(message.encode("utf-8", "surrogatepass"))


def _close_reason(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= _MAX_CLOSE_REASON:
        return text
    return data[: _MAX_CLOSE_REASON - 3].decode("utf-8", "ignore") + "..."


def _peer(stream: trio.abc.Stream) -> str:
    try:
        address = stream.socket.getpeername()  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return "?"
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loads(text: str) -> dict[str, Any] | None:
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def _caused_by(event: Mapping[str, Any], prefix: str) -> bool:
    error = event.get("error")
    cause = error.get("event_id") if isinstance(error, dict) else None
    return isinstance(cause, str) and cause.startswith(prefix)


def _error_text(event: Mapping[str, Any]) -> str:
    """``message (code)`` of an ``error`` event."""
    error = event.get("error")
    if not isinstance(error, dict):
        return "no details"
    return f"{error.get('message')} ({error.get('code')})"


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


class Relay:
    """A running relay (from :func:`open_relay`).

    ``host`` and ``port`` are where it listens (``port`` is the one picked when 0 was
    asked for). ``url`` is what clients connect to
    (``ws://HOST:PORT/v1/realtime?model=…``, ready for
    ``realtalk.connect(relay.url, api_key=token)``; the model parameter is informative:
    the relay always uses its upstream's model). ``http_url`` (``http://HOST:PORT/``)
    serves the browser console.
    """

    def __init__(
        self,
        *,
        upstream: Upstream,
        host: str,
        auth: RelayAuth,
        policy: RelayPolicy,
        limits: RelayLimits,
        origins: frozenset[str] | None,
        require_origin: bool,
        console: Path | None,
        log: LogFn | None,
    ) -> None:
        self.host = host
        self.port = 0
        self._upstream = upstream
        self._auth = auth
        self._policy = policy
        self._limits = limits
        self._origins = origins
        self._require_origin = require_origin
        self._loopback = is_loopback(host)
        self._console = console
        self._log_fn = log
        self._held_update = policy.held_update(upstream.dialect)
        self._secrets = upstream._secrets()
        self._counters = _Counters()
        self._reserved = 0  # sessions connecting upstream or open
        self._sessions: set[_Session] = set()
        self._listen_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        # A message trio-websocket cuts off before it is read whole (see RelayLimits).
        self._ws_max_message = 4 * limits.max_message_bytes

    # -- public ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/v1/realtime?model=MODEL``: the WebSocket endpoint."""
        query = urllib.parse.urlencode({"model": self._upstream.model_name})
        return f"ws://{self._netloc}{RELAY_PATH}?{query}"

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT/``: the browser console."""
        return f"http://{self._netloc}/"

    @property
    def upstream(self) -> Upstream:
        """Where sessions are relayed to."""
        return self._upstream

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def statistics(self) -> RelayStatistics:
        """A frozen snapshot of the relay's counters."""
        c = self._counters
        return RelayStatistics(
            sessions_active=c.sessions_active,
            sessions_total=c.sessions_total,
            refused=MappingProxyType(dict(c.refused)),
            messages_from_clients=c.messages_from_clients,
            bytes_from_clients=c.bytes_from_clients,
            messages_from_upstream=c.messages_from_upstream,
            bytes_from_upstream=c.bytes_from_upstream,
            client_events_filtered=c.client_events_filtered,
            client_events_dropped=c.client_events_dropped,
            tool_calls=c.tool_calls,
            tool_errors=c.tool_errors,
        )

    # -- plumbing -------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        if self._log_fn is not None:
            self._log_fn(self._scrub(line))

    def _scrub(self, text: str) -> str:
        """``text`` without anything that is, or looks like, a credential."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _KEY_LIKE.sub("***", text)

    async def _serve(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        assert self._nursery is not None
        with self._listen_scope:
            await trio.serve_listeners(
                self._handle_connection,
                listeners,
                handler_nursery=self._nursery,
                task_status=task_status,
            )

    async def _shutdown(self) -> None:
        """Stop listening; close every session (1001), waiting a little for each."""
        self._listen_scope.cancel()
        sessions = list(self._sessions)
        for session in sessions:
            session.finish(_SHUTDOWN)
        with trio.move_on_after(CLOSE_TIMEOUT_S + 0.5, shield=True):
            for session in sessions:
                await session.done.wait()

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        peer = _peer(stream)
        try:
            read: tuple[RequestHead, h11.Connection] | None = None
            try:
                with trio.move_on_after(self._limits.handshake_timeout_s):
                    read = await read_head(stream)
            except BadRequest as exc:
                await respond_error(stream, exc)
                return
            if read is None:  # closed, or too slow
                return
            head, conn = read
            if head.is_upgrade:
                await self._upgrade(stream, conn, head, peer)
            else:
                await self._serve_http(stream, conn, head)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer went away
        except Exception as exc:  # one connection's failure must not end the relay
            self._log(f"connection from {peer} failed: {type(exc).__name__}: {exc}")
        finally:
            await trio.aclose_forcefully(stream)

    # -- plain HTTP -----------------------------------------------------------------------

    async def _serve_http(
        self, stream: trio.abc.Stream, conn: h11.Connection, head: RequestHead
    ) -> None:
        path = head.path
        if path.rstrip("/") == RELAY_PATH:
            body = api_error_body(f"{RELAY_PATH} takes WebSocket upgrades only", "upgrade_required")
            await respond(
                stream,
                conn,
                426,
                body=body,
                content_type="application/json",
                extra_headers=[("upgrade", "websocket")],
            )
            return
        if head.method not in ("GET", "HEAD"):
            await respond(stream, conn, 405, extra_headers=[("allow", "GET, HEAD")])
            return
        files = console_files(self._console) if self._console is not None else {}
        name = "index.html" if path == "/" else path[1:] if path.startswith("/") else ""
        found = files.get(name)
        data: bytes | None = None
        if found is not None:
            with suppress(OSError):
                data = await trio.to_thread.run_sync(found.read_bytes)
        if data is None:
            body = b"404 Not Found\n"
            await respond(stream, conn, 404, body=body, content_type="text/plain; charset=utf-8")
            return
        await respond(
            stream,
            conn,
            200,
            body=data,
            content_type=content_type(name),
            send_body=head.method == "GET",
        )

    # -- WebSocket upgrades ---------------------------------------------------------------

    def _check_upgrade(self, head: RequestHead) -> _Refusal | Literal["ok"]:
        if head.path.rstrip("/") != RELAY_PATH:
            return _Refusal(
                404, "not_found", f"this relay answers WebSocket upgrades on {RELAY_PATH} only"
            )
        connection = {v.lower() for v in head.header_list("connection")}
        if (
            head.method != "GET"
            or "upgrade" not in connection
            or not head.header("sec-websocket-key")
            or head.header("sec-websocket-version") != "13"
        ):
            return _Refusal(400, "bad_request", "invalid WebSocket upgrade request")
        if not origin_allowed(
            head.header("origin"),
            head.header("host"),
            allowed=self._origins,
            require_origin=self._require_origin,
            loopback=self._loopback,
        ):
            return _Refusal(403, "origin_not_allowed", "this Origin may not use this relay")
        offered = head.header_list("sec-websocket-protocol")
        token = presented_token(head.header("authorization"), offered)
        verdict = self._auth.check(token)
        if verdict == "missing":
            return _Refusal(
                401,
                "missing_token",
                "no token: send Authorization: Bearer <token>, or offer the subprotocol "
                "openai-insecure-api-key.<token>",
            )
        if verdict == "invalid":
            return _Refusal(401, "invalid_token", "the token is not valid for this relay")
        if verdict == "expired":
            return _Refusal(401, "expired_token", "the token has expired")
        beta_header = "realtime=v1" in [
            v.replace(" ", "").lower() for v in head.header_list("openai-beta")
        ]
        wants: Dialect = "beta" if beta_header or "openai-beta.realtime-v1" in offered else "ga"
        if wants != self._upstream.dialect:
            if wants == "beta":
                message = (
                    "this relay speaks the GA dialect: do not send OpenAI-Beta: "
                    "realtime=v1 (or the subprotocol openai-beta.realtime-v1)"
                )
            else:
                message = (
                    "this relay speaks the beta dialect: send OpenAI-Beta: realtime=v1 "
                    "(or offer the subprotocol openai-beta.realtime-v1)"
                )
            return _Refusal(400, "dialect_mismatch", message)
        if self._reserved >= self._limits.max_sessions:
            return _Refusal(
                503,
                "too_many_sessions",
                f"too many sessions: this relay serves {self._limits.max_sessions} at once",
                "server_error",
            )
        return "ok"

    async def _refuse(
        self, stream: trio.abc.Stream, conn: h11.Connection, peer: str, refusal: _Refusal
    ) -> None:
        self._counters.refuse(refusal.code)
        message = self._scrub(refusal.message)
        line = f"refused {peer}: HTTP {refusal.status} {refusal.code}"
        if refusal.status == 502:
            line += f": {message}"
        self._log(line)
        body = api_error_body(message, refusal.code, refusal.error_type)
        await respond(stream, conn, refusal.status, body=body, content_type="application/json")

    async def _upgrade(
        self, stream: trio.abc.Stream, conn: h11.Connection, head: RequestHead, peer: str
    ) -> None:
        verdict = self._check_upgrade(head)
        if verdict != "ok":
            await self._refuse(stream, conn, peer, verdict)
            return
        self._reserved += 1
        try:
            async with trio.open_nursery() as nursery:
                try:
                    with trio.fail_after(self._limits.connect_timeout_s):
                        upstream = await connect_transport(nursery, self._upstream.endpoint)
                except (RealtalkError, trio.TooSlowError) as exc:
                    if isinstance(exc, trio.TooSlowError):
                        problem = (
                            f"no connection to {self._upstream.endpoint.host} within "
                            f"{self._limits.connect_timeout_s:g} s"
                        )
                    else:
                        problem = str(exc)
                    await self._refuse(
                        stream,
                        conn,
                        peer,
                        _Refusal(
                            502,
                            "upstream_unavailable",
                            f"the relay could not connect upstream: {problem}",
                            "server_error",
                        ),
                    )
                    return
                try:
                    await self._run_session(nursery, stream, head, upstream, peer)
                finally:
                    with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                        await upstream.aclose()
                    nursery.cancel_scope.cancel()
        finally:
            self._reserved -= 1

    async def _run_session(
        self,
        nursery: trio.Nursery,
        stream: trio.abc.Stream,
        head: RequestHead,
        upstream: WebSocketTransport,
        peer: str,
    ) -> None:
        # The head was checked above; wsproto parses it again from the replayed bytes.
        ws: trio_websocket.WebSocketConnection | None = None
        with trio.move_on_after(self._limits.handshake_timeout_s):
            request = await trio_websocket.wrap_server_stream(
                nursery,
                ReplayStream(stream, head.raw),
                message_queue_size=_MESSAGE_QUEUE_SIZE,
                max_message_size=self._ws_max_message,
                receive_buffer_size=_RECEIVE_BUFFER_SIZE,
            )
            # A browser that offered "realtime" must get it back, or it drops the socket.
            offered = request.proposed_subprotocols
            ws = await request.accept(subprotocol="realtime" if "realtime" in offered else None)
        if ws is None:
            self._log(f"connection from {peer}: the WebSocket handshake did not complete")
            return
        counters = self._counters
        counters.sessions_total += 1
        counters.sessions_active += 1
        session = _Session(self, counters.sessions_total, peer, ws, upstream)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            counters.sessions_active -= 1


class _Session:
    """One client and its upstream: two pumps, the start, the relay's tool calls."""

    def __init__(
        self,
        relay: Relay,
        number: int,
        peer: str,
        ws: trio_websocket.WebSocketConnection,
        upstream: WebSocketTransport,
    ) -> None:
        self._relay = relay
        self._counters = relay._counters
        self._policy = relay._policy
        self._limits = relay._limits
        self.number = number
        self._peer = peer
        self._ws = ws
        self._upstream = upstream
        self._gate = ClientGate(relay._policy, relay._limits, trio.current_time())
        self._redacted = relay._policy.redacted_keys()
        self._inspect = bool(self._redacted) or relay._policy.holds_tools
        # Event ids of the relay's own events: errors they cause are the relay's, not
        # the client's; a random prefix, so that no client id can look like one.
        self._prefix = f"relay_{secrets.token_hex(4)}_"
        self._ids = 0
        self._held_update = relay._held_update
        self._update_id = self._next_id()
        self._created: dict[str, Any] | None = None
        self._held_back: list[str] = []
        self._ready = trio.Event()
        self.done = trio.Event()
        self._end: _End | None = None
        self._nursery: trio.Nursery | None = None
        # Function calls: names by call id (beta's arguments.done has no name), calls
        # running per response, responses done while their calls still ran.
        self._call_names: dict[str, str] = {}
        self._running: dict[str, int] = {}
        self._responses_done: set[str] = set()
        self._messages_in = self._bytes_in = self._messages_out = self._bytes_out = 0
        self._tool_calls = 0

    def _next_id(self) -> str:
        self._ids += 1
        return f"{self._prefix}{self._ids}"

    def finish(self, end: _End) -> None:
        """End the session (the first reason given wins)."""
        if self._end is None:
            self._end = end
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def run(self) -> None:
        relay = self._relay
        started = trio.current_time()
        relay._log(
            f"session #{self.number} {self._peer}: opened ({relay._upstream.dialect}, "
            f"upstream {relay._upstream.endpoint.host})"
        )
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._end is not None:
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._guard, self._from_upstream)
                nursery.start_soon(self._guard, self._from_client)
        finally:
            end = self._end or _SHUTDOWN
            with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                async with trio.open_nursery() as closing:
                    closing.start_soon(self._close_client, *end.client)
                    closing.start_soon(self._upstream.aclose, *end.upstream)
            if end.refused is not None:
                self._counters.refuse(end.refused)
            relay._log(
                f"session #{self.number} {self._peer}: ended after "
                f"{trio.current_time() - started:.1f} s: {end.why}; client sent "
                f"{self._messages_in} messages ({_kb(self._bytes_in)}), upstream sent "
                f"{self._messages_out} ({_kb(self._bytes_out)}); "
                f"{self._tool_calls} tool calls"
            )
            self.done.set()

    async def _guard(self, pump: Callable[[], Any]) -> None:
        try:
            await pump()
        except Exception as exc:  # a bug in the relay ends this session, not the relay
            self._relay._log(f"session #{self.number}: relay error: {type(exc).__name__}: {exc}")
            self.finish(_End(f"relay error ({type(exc).__name__})", (1011, "relay error")))

    async def _close_client(self, code: int, reason: str) -> None:
        with suppress(
            trio_websocket.ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            await self._ws.aclose(code, _close_reason(self._relay._scrub(reason)) or None)

    # -- client -> upstream ---------------------------------------------------------------

    async def _from_client(self) -> None:
        with trio.move_on_after(self._limits.connect_timeout_s):
            await self._ready.wait()
        if not self._ready.is_set():
            self.finish(
                _End(
                    "the upstream did not start the session in time",
                    (1011, "the upstream did not start the session in time"),
                )
            )
            return
        idle_s = self._limits.idle_timeout_s
        counters = self._counters
        gate = self._gate
        while True:
            try:
                with trio.move_on_after(math.inf if idle_s is None else idle_s) as idle:
                    message = await self._ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                self.finish(self._client_closed(exc.reason))
                return
            if idle.cancelled_caught:
                reason = f"idle timeout: no message for {idle_s:g} s"
                self.finish(_End(reason, (1000, reason), refused="idle_timeout"))
                return
            size = _nbytes(message)
            self._messages_in += 1
            self._bytes_in += size
            counters.messages_from_clients += 1
            counters.bytes_from_clients += size
            filtered, dropped = gate.filtered, gate.dropped
            try:
                text = gate.admit(message, trio.current_time())
            except PolicyViolation as violation:
                self.finish(
                    _End(
                        f"closed by the relay: {violation.code} {violation.reason}",
                        (violation.code, violation.reason),
                        refused=violation.key,
                    )
                )
                return
            counters.client_events_filtered += gate.filtered - filtered
            counters.client_events_dropped += gate.dropped - dropped
            if text is None:
                continue
            try:
                await self._upstream.send_text(text)
            except ConnectionClosed:
                return  # the other pump reports why

    def _client_closed(self, reason: trio_websocket.CloseReason | None) -> _End:
        code = None if reason is None else reason.code
        text = "" if reason is None else reason.reason or ""
        if code == 1009 and text.startswith("Exceeded maximum message size"):
            return _End(
                f"closed by the relay: 1009 message over {self._relay._ws_max_message} bytes",
                (1009, ""),
                refused="message_too_big",
            )
        return _End(f"client closed ({code})", (1000, ""))

    # -- upstream -> client ---------------------------------------------------------------

    async def _from_upstream(self) -> None:
        counters = self._counters
        while True:
            try:
                message = await self._upstream.receive()
            except ConnectionClosed as exc:
                code = exc.code
                reason = self._relay._scrub(exc.reason)
                sendable = code in _SENDABLE or (code is not None and 3000 <= code <= 4999)
                if not sendable:
                    reason = reason or "upstream connection lost"
                    client = (1011, reason)
                else:
                    assert code is not None
                    client = (code, reason)
                self.finish(_End(f"upstream closed ({code})", client))
                return
            size = _nbytes(message)
            self._messages_out += 1
            self._bytes_out += size
            counters.messages_from_upstream += 1
            counters.bytes_from_upstream += size
            out: Sequence[str | bytes] = (
                await self._on_upstream(message) if isinstance(message, str) else (message,)
            )
            for text in out:
                try:
                    await self._ws.send_message(text)
                except trio_websocket.ConnectionClosed as exc:
                    self.finish(self._client_closed(exc.reason))
                    return

    async def _on_upstream(self, text: str) -> Sequence[str]:
        """What to send the client for one upstream message (maybe nothing)."""
        if not self._ready.is_set():
            return await self._starting(text)
        if not self._inspect or text.startswith(_AUDIO_DELTA_HEADS):
            return (text,)
        try:
            parsed = _core.parse_server_event(text)
        except EventParseError:
            return (text,)  # not ours to judge: the client sees what the server sent
        if isinstance(parsed, AudioDelta):
            return (text,)
        kind = parsed.get("type")
        if kind in ("session.created", "session.updated"):
            return (redact_session_event(parsed, self._redacted) or text,)
        if not self._policy.holds_tools:
            return (text,)
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = parsed.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                call_id, name = item.get("call_id"), item.get("name")
                if isinstance(call_id, str) and isinstance(name, str):
                    self._call_names[call_id] = name
        elif kind == "response.function_call_arguments.done":
            self._call(parsed)
        elif kind == "response.done":
            response = parsed.get("response")
            response_id = response.get("id") if isinstance(response, dict) else None
            if isinstance(response_id, str):
                await self._response_done(response_id)
        elif kind == "error" and _caused_by(parsed, self._prefix):
            self._relay._log(
                f"session #{self.number}: the upstream refused an event of the relay: "
                f"{_error_text(parsed)}"
            )
            return ()
        return (text,)

    async def _starting(self, text: str) -> Sequence[str]:
        """Before the client may speak: session.created, and the held settings applied."""
        event = _loads(text)
        kind = event.get("type") if event is not None else None
        if self._created is None:
            if event is None or kind != "session.created":
                return (text,)
            if self._held_update is None:
                self._ready.set()
                return (redact_session_event(event, self._redacted) or text,)
            self._created = event
            update = {
                "type": "session.update",
                "event_id": self._update_id,
                "session": self._held_update,
            }
            with suppress(ConnectionClosed):  # the next receive says why
                await self._upstream.send_text(json.dumps(update))
            return ()
        assert event is not None or kind is None
        if event is not None and kind == "session.updated":
            # The client is shown one session.created carrying the effective settings
            # (without what is redacted), then what the upstream sent meanwhile.
            created = dict(self._created)
            created["session"] = event.get("session")
            shown = redact_session_event(created, self._redacted) or json.dumps(created)
            held_back, self._held_back = self._held_back, []
            self._ready.set()
            return (shown, *held_back)
        if event is not None and kind == "error" and _caused_by(event, self._update_id):
            self._relay._log(
                f"session #{self.number}: the upstream refused the relay's session "
                f"settings: {_error_text(event)}"
            )
            reason = "the upstream refused the relay's session settings"
            self.finish(_End(reason, (1011, reason), refused="upstream_refused_settings"))
            return ()
        self._held_back.append(text)
        if len(self._held_back) > _MAX_HELD_BACK:
            reason = "the upstream did not answer the relay's session settings"
            self.finish(_End(reason, (1011, reason)))
        return ()

    # -- the relay's tools ----------------------------------------------------------------

    def _call(self, event: Mapping[str, Any]) -> None:
        call_id = event.get("call_id")
        name = event.get("name")
        if not isinstance(name, str) and isinstance(call_id, str):
            name = self._call_names.get(call_id)
        handler = self._policy.handler(name) if isinstance(name, str) else None
        if handler is None or not isinstance(call_id, str) or not isinstance(name, str):
            return  # not held: the client answers it
        response_id = event.get("response_id")
        response_id = response_id if isinstance(response_id, str) else ""
        arguments = event.get("arguments")
        self._gate.held_call_ids.add(call_id)
        self._running[response_id] = self._running.get(response_id, 0) + 1
        assert self._nursery is not None
        self._nursery.start_soon(
            self._run_tool,
            name,
            handler,
            call_id,
            response_id,
            arguments if isinstance(arguments, str) else "{}",
        )

    async def _run_tool(
        self, name: str, handler: ToolHandler, call_id: str, response_id: str, arguments: str
    ) -> None:
        self._tool_calls += 1
        self._counters.tool_calls += 1
        try:
            parsed = json.loads(arguments or "{}")
            if not isinstance(parsed, dict):
                raise TypeError("arguments are not a JSON object")
            if inspect.iscoroutinefunction(handler):
                result = await handler(**parsed)
            else:
                result = await trio.to_thread.run_sync(
                    functools.partial(handler, **parsed), abandon_on_cancel=True
                )
                if inspect.isawaitable(result):
                    result = await result
            output = result if isinstance(result, str) else json.dumps(result, default=str)
        except Exception as exc:  # the model is told; the session goes on
            self._counters.tool_errors += 1
            self._relay._log(f"session #{self.number}: tool {name} raised {type(exc).__name__}")
            output = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        item = {
            "type": "conversation.item.create",
            "event_id": self._next_id(),
            "item": {"type": "function_call_output", "call_id": call_id, "output": output},
        }
        try:
            await self._upstream.send_text(json.dumps(item))
        except ConnectionClosed:
            return
        self._running[response_id] -= 1
        if self._running[response_id] == 0 and response_id in self._responses_done:
            await self._next_response(response_id)

    async def _response_done(self, response_id: str) -> None:
        if response_id not in self._running:
            return
        if self._running[response_id] == 0:
            await self._next_response(response_id)
        else:
            self._responses_done.add(response_id)

    async def _next_response(self, response_id: str) -> None:
        """All of a response's held calls answered: ask for the model's next response."""
        del self._running[response_id]
        self._responses_done.discard(response_id)
        with suppress(ConnectionClosed):
            await self._upstream.send_text(
                json.dumps({"type": "response.create", "event_id": self._next_id()})
            )


@asynccontextmanager
async def open_relay(
    *,
    upstream: Upstream,
    host: str = "127.0.0.1",
    port: int = 0,
    auth: RelayAuth,
    policy: RelayPolicy = RelayPolicy(),  # noqa: B008 (frozen, so a shared default is safe)
    limits: RelayLimits = RelayLimits(),  # noqa: B008
    allowed_origins: Sequence[str] | None = None,
    require_origin: bool = False,
    console: bool | str | PathLike[str] = True,
    log: LogFn | None = None,
) -> AsyncIterator[Relay]:
    """Run a relay for the ``async with`` block.

    Clients connect to ``relay.url`` (``/v1/realtime``) with a token; for each, the relay
    opens its own connection to ``upstream`` first (refusing the client with HTTP 502
    if that fails), then relays events both ways, holding the upstream's credentials so
    that no client sees them. The model is the upstream's: a client's ``model`` query
    parameter and ``session.model`` are ignored. Plain ``GET`` requests on the same port
    get the browser console. Leaving the block closes every session (code 1001).

    Handshake refusals (JSON bodies shaped like the API's errors): 404 a path other than
    ``/v1/realtime``; 400 a malformed upgrade or a client of the other dialect (the
    ``OpenAI-Beta: realtime=v1`` header, or the subprotocol ``openai-beta.realtime-v1``,
    means beta); 403 a foreign ``Origin``; 401 a missing, invalid or expired token; 503
    ``limits.max_sessions`` sessions open; 502 the upstream connection failed.

    Args:
        upstream: where sessions go, with its credentials.
        host: interface to bind; loopback by default. An address, not a name, is best:
            ``relay.url`` is built from it.
        port: TCP port; 0 picks a free one (read it from ``relay.port``).
        auth: how clients authenticate (:class:`RelayAuth`); ``RelayAuth.none()`` only
            on a loopback ``host``.
        policy: allowed events, held instructions and tools, redaction.
        limits: sessions, message size and rate, timeouts.
        allowed_origins: browser origins allowed (``"*"``: any). ``None`` (default):
            only the relay's own console (``Origin`` equal to ``http://<Host>``, and on
            a loopback relay a loopback ``Host``). Clients without an ``Origin``
            header (not browsers) are allowed unless ``require_origin``.
        require_origin: refuse upgrades without an ``Origin`` header.
        console: serve the bundled browser console (``True``), nothing (``False``: 404
            for every plain request), or the files of another directory.
        log: called with one line per session start and end and per refusal; lines
            never contain a key, token or secret.

    Raises:
        ConfigurationError: ``RelayAuth.none()`` on a non-loopback host, held settings
            the upstream's dialect cannot express, bad ``allowed_origins``.
        OSError: the address cannot be bound.
    """
    if not isinstance(upstream, Upstream):
        raise ConfigurationError(f"upstream must be an Upstream, got {type(upstream).__name__}")
    if not isinstance(auth, RelayAuth):
        raise ConfigurationError(f"auth must be a RelayAuth, got {type(auth).__name__}")
    if auth.kind == "none" and not is_loopback(host):
        raise ConfigurationError(
            f"RelayAuth.none() is only allowed on a loopback address, not {host!r}: "
            "use RelayAuth(token=...) or RelayAuth(secret=...)"
        )
    directory: Path | None
    if console is True:
        directory = CONSOLE_DIR
    elif console is False:
        directory = None
    else:
        directory = Path(console)
    relay = Relay(
        upstream=upstream,
        host=host,
        auth=auth,
        policy=policy,
        limits=limits,
        origins=normalize_origins(allowed_origins),
        require_origin=require_origin,
        console=directory,
        log=log,
    )
    listeners = await trio.open_tcp_listeners(port, host=host)
    if port == 0 and len(listeners) > 1:
        # A name like "localhost" binds several addresses, each on its own free port.
        for extra in listeners[1:]:
            await extra.aclose()
        listeners = listeners[:1]
    relay.port = listeners[0].socket.getsockname()[1]
    try:
        async with trio.open_nursery() as nursery:
            relay._nursery = nursery
            await nursery.start(relay._serve, listeners)
            try:
                yield relay
            finally:
                await relay._shutdown()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # One error (from the block or a connection) is that error, not a group.
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise
