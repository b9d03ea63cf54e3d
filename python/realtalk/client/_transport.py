"""The WebSocket to the Realtime endpoint: open it, send text, receive frames, close it.

This module is the one edge where errors of trio, trio-websocket, ``ssl`` and the OS are
translated into realtalk's exceptions (:class:`~realtalk.exceptions.ConnectError`,
:class:`~realtalk.exceptions.AuthenticationError`,
:class:`~realtalk.exceptions.ConnectionClosed`). Nothing above it sees a trio-websocket
type, and nothing it raises for a single failure is an exception group.

It never logs, never puts a credential into a message (only ``host:port`` is named, and
the body of a refusal is redacted), never disables TLS verification, never sets a
timeout (callers own timeouts: wrap calls in ``trio.fail_after``), and never parses the
events it carries.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import sys
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import h11
import trio
import trio_websocket
import wsproto.utilities

from realtalk.client._endpoint import Endpoint
from realtalk.exceptions import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
)

__all__ = ["WebSocketTransport", "connect_transport", "open_transport"]

# trio-websocket compares len() of each reassembled message with this and closes with
# 1009 above it. The Realtime API has no documented limit on server messages
# (conversation.item.retrieved carries a whole audio item), so there is none here.
MAX_MESSAGE_SIZE = sys.maxsize
# Complete messages trio-websocket buffers before its reader stops reading the socket;
# beyond that, backpressure goes to TCP.
MESSAGE_QUEUE_SIZE = 16
# Bytes per socket read; trio-websocket's 4 KiB default makes a 20 MiB message 5,000 reads.
RECEIVE_BUFFER_SIZE = 64 * 1024

# A refusal body is quoted only if it is this small and JSON with an error message.
_MAX_QUOTED_BODY = 4096
_MAX_QUOTED_MESSAGE = 300
# Things in a server's error text that look like credentials (OpenAI keys, JWTs), and
# the API's masked quotes of a refused one ("sk-ab****wxyz": its ends are still its own).
_KEY_LIKE = re.compile(
    r"\bsk-[A-Za-z0-9_\-*]{2,}|\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-.]*|[^\s'\"]*\*{3,}[^\s'\".,;)]*"
)


class WebSocketTransport:
    """An open WebSocket: text frames out, frames in.

    Get one from :func:`open_transport` or :func:`connect_transport`. Once the connection
    is closed, whoever closed it, :meth:`send_text` and :meth:`receive` raise
    :class:`~realtalk.exceptions.ConnectionClosed` with the close ``code`` and ``reason``.
    """

    def __init__(
        self,
        connection: trio_websocket.WebSocketConnection,
        host: str,
        stream: trio.abc.Stream | None = None,
    ) -> None:
        self._ws = connection
        self._host = host
        # The socket under ``connection``, closed by aclose() once the close handshake is
        # over: trio-websocket leaves it to the server to close, and its reader (and so the
        # nursery it runs in) would wait for a server that never does.
        self._stream = stream
        # (code, reason) of our own close frame, once aclose() was called on an open socket.
        self._local_close: tuple[int, str] | None = None

    @property
    def host(self) -> str:
        """``host:port`` of the server, as named in messages."""
        return self._host

    @property
    def closed(self) -> ConnectionClosed | None:
        """Why the connection is closed (or closing), or ``None`` while it is open.

        After :meth:`aclose` this carries the code and reason we sent.
        """
        reason = self._ws.closed
        if reason is None and self._local_close is None:
            return None
        return self._closed_error(reason)

    @property
    def handshake_headers(self) -> tuple[tuple[str, str], ...]:
        """The headers of the server's ``101`` response; names are lower-case."""
        return tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in self._ws.handshake_headers
        )

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or ``None`` (the Realtime API uses none)."""
        return self._ws.subprotocol

    async def send_text(self, text: str) -> None:
        """Send ``text`` as one text frame; returns once it is handed to the OS.

        Raises:
            ConnectionClosed: the connection is closed or breaks while sending.
        """
        try:
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed_error(exc.reason) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._closed_error(self._ws.closed) from None

    async def receive(self) -> str | bytes:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one.

        Messages the server sent before closing are delivered first.

        Raises:
            ConnectionClosed: no more messages; ``code`` and ``reason`` say why.
        """
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed_error(exc.reason) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._closed_error(self._ws.closed) from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with ``code`` and ``reason``; safe to call more than once.

        Sends a close frame and waits for the server's (or for the connection to drop).
        Bound the wait with ``trio.move_on_after``; if cancelled, the TCP connection is
        closed at once. Messages not yet received are discarded. Never raises for a
        connection that is already closed or broken.
        """
        if self._local_close is None and self._ws.closed is None:
            self._local_close = (code, reason)
        with suppress(
            trio_websocket.ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            await self._ws.aclose(code, reason or None)
        if self._stream is not None:
            await trio.aclose_forcefully(self._stream)

    def _closed_error(self, reason: trio_websocket.CloseReason | None) -> ConnectionClosed:
        if self._local_close is not None:
            code, text = self._local_close
            return ConnectionClosed(f"WebSocket to {self._host} closed by us", code, text)
        if reason is None:
            return ConnectionClosed(f"WebSocket to {self._host} is closed", None, "")
        text = reason.reason or ""
        message = f"WebSocket to {self._host} closed: code {reason.code} ({reason.name})"
        if text:
            message += f": {text}"
        return ConnectionClosed(message, reason.code, text)


@asynccontextmanager
async def open_transport(endpoint: Endpoint) -> AsyncIterator[WebSocketTransport]:
    """Open a WebSocket to ``endpoint``; close it (code 1000) when the block exits.

    No timeout of its own: wrap in ``trio.fail_after`` to bound the connect. TLS is
    verified against the system's trust store; no compression is negotiated; incoming
    messages have no size limit.

    Raises:
        AuthenticationError: the server answered the upgrade with HTTP 401 or 403.
        ConnectError: name resolution, TCP, TLS or the upgrade failed (``status_code`` is
            the HTTP status if the server answered). Messages name ``host:port``, never
            a credential.
        ConfigurationError: the endpoint's token provider failed.

    An error raised inside the block comes out as itself, never as an exception group.
    """
    failure: BaseException
    try:
        async with trio.open_nursery() as nursery:
            transport = await connect_transport(nursery, endpoint)
            try:
                yield transport
            finally:
                await transport.aclose()
    except BaseExceptionGroup as group:
        sole = _sole_error(group)
        if sole is None:
            raise
        failure = sole
    else:
        return
    _reraise(failure)


async def connect_transport(nursery: trio.Nursery, endpoint: Endpoint) -> WebSocketTransport:
    """Open a WebSocket to ``endpoint`` whose background reader runs in ``nursery``.

    For callers with their own nursery; the caller must :meth:`~WebSocketTransport.aclose`
    the transport, and the nursery does not finish before the connection is closed. A
    failed connect raises here (as one exception) and leaves ``nursery`` untouched.

    Raises:
        AuthenticationError, ConnectError, ConfigurationError: as :func:`open_transport`.
    """
    target = _Target.parse(endpoint.url)
    headers = await endpoint.headers()
    raw_headers = [(name.encode("ascii"), value.encode("ascii")) for name, value in headers]
    secrets = [
        value.removeprefix("Bearer ").strip()
        for name, value in headers
        if name.lower() in ("authorization", "api-key", "proxy-authorization")
    ]
    failure: BaseException
    try:
        transport = await nursery.start(_run_connection, target, raw_headers)
    except BaseException as exc:
        failure = exc
    else:
        return cast(WebSocketTransport, transport)
    sole = _sole_error(failure)
    if sole is None:
        raise failure
    translated = _connect_error(sole, target.display, secrets)
    if translated is None:
        _reraise(sole)
    error, cause = translated
    raise error from cause


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    tls: bool
    host_header: str
    resource: str
    display: str  # host:port, for messages

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urllib.parse.urlsplit(url)
        tls = parts.scheme.lower() == "wss"
        host = parts.hostname
        if parts.scheme.lower() not in ("ws", "wss") or not host:
            # resolve_endpoint already refuses these; an Endpoint built by hand might not.
            raise ConfigurationError("endpoint URL must be ws:// or wss:// with a host")
        default_port = 443 if tls else 80
        port = parts.port or default_port
        name = f"[{host}]" if ":" in host else host
        host_header = name if port == default_port else f"{name}:{port}"
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(host, port, tls, host_header, resource, f"{name}:{port}")


class _HandshakeAborted(Exception):
    """trio-websocket's reader stopped before the 101 response arrived."""


class _ReaderWatch:
    """Stands in for the nursery trio-websocket starts its reader task in.

    trio-websocket 0.12 waits for the opening handshake without watching its reader: if
    the server closes the socket or sends something that is not HTTP before answering,
    the reader ends and the wait never does. The reader here raises in that case, which
    cancels the wait.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.connected = False

    def start_soon(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: object = None
    ) -> None:
        self._nursery.start_soon(self._watch, async_fn, *args, name=name)

    async def _watch(self, async_fn: Callable[..., Awaitable[object]], *args: object) -> None:
        await async_fn(*args)
        # A handshake that completed woke the connecting task before the reader's last
        # read returned; one more checkpoint lets that task record it. Losing this race
        # would only report a connection that the server closed at once as failed.
        await trio.lowlevel.checkpoint()
        if not self.connected:
            raise _HandshakeAborted


async def _run_connection(
    target: _Target,
    headers: list[tuple[bytes, bytes]],
    *,
    task_status: trio.TaskStatus[WebSocketTransport] = trio.TASK_STATUS_IGNORED,
) -> None:
    # TCP and TLS are opened here rather than by trio-websocket so that their errors keep
    # their cause (trio-websocket reports a failed TLS handshake as a bare close).
    stream = await _open_stream(target)
    try:
        async with trio.open_nursery() as reader_nursery:
            watch = _ReaderWatch(reader_nursery)
            connection = await trio_websocket.wrap_client_stream(
                cast(trio.Nursery, watch),
                stream,
                target.host_header,
                target.resource,
                extra_headers=headers,
                message_queue_size=MESSAGE_QUEUE_SIZE,
                max_message_size=MAX_MESSAGE_SIZE,
                receive_buffer_size=RECEIVE_BUFFER_SIZE,
            )
            watch.connected = True
            task_status.started(WebSocketTransport(connection, target.display, stream))
    finally:
        # trio-websocket leaves the socket open after a refusal or a server-side close.
        await trio.aclose_forcefully(stream)


async def _open_stream(target: _Target) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
    if not target.tls:
        return await trio.open_tcp_stream(target.host, target.port)
    context = ssl.create_default_context()
    stream = await trio.open_ssl_over_tcp_stream(
        target.host, target.port, ssl_context=context, https_compatible=True
    )
    try:
        await stream.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


def _connect_error(
    exc: BaseException, where: str, secrets: list[str]
) -> tuple[ConnectError, BaseException | None] | None:
    """The realtalk error for a failed connect, and the exception to chain it to."""
    if isinstance(exc, trio_websocket.ConnectionRejected):
        status = exc.status_code
        message = f"{where} refused the WebSocket upgrade with HTTP {status}"
        detail = _error_detail(exc.body, secrets)
        if detail:
            message += f": {detail}"
        error_type = AuthenticationError if status in (401, 403) else ConnectError
        # Not chained: the rejection carries the raw body and headers.
        return error_type(message, status), None
    if isinstance(exc, _HandshakeAborted):
        return ConnectError(f"{where} closed the connection during the WebSocket handshake"), None
    if isinstance(exc, trio_websocket.HandshakeError):
        return ConnectError(f"WebSocket handshake with {where} failed"), exc
    if isinstance(exc, wsproto.utilities.ProtocolError | h11.ProtocolError):
        # The reader chokes on a response that is not HTTP, or answers it with an error.
        return ConnectError(
            f"{where} did not answer with a valid WebSocket handshake response"
        ), _find_cause(exc, wsproto.utilities.RemoteProtocolError, h11.RemoteProtocolError)
    ssl_error = _find_cause(exc, ssl.SSLError)
    if isinstance(ssl_error, ssl.SSLCertVerificationError):
        reason = f"certificate verify failed: {ssl_error.verify_message}"
        return ConnectError(f"TLS handshake with {where} failed: {reason}"), ssl_error
    if isinstance(ssl_error, ssl.SSLError):
        reason = ssl_error.reason or str(ssl_error)
        return ConnectError(f"TLS handshake with {where} failed: {reason}"), ssl_error
    if isinstance(exc, trio.BrokenResourceError):
        return ConnectError(f"connection to {where} broke during the handshake"), exc
    if isinstance(exc, OSError):
        return ConnectError(f"cannot connect to {where}: {_os_reason(exc)}"), exc
    return None


def _find_cause(exc: BaseException, *kinds: type[BaseException]) -> BaseException | None:
    """The first exception of one of ``kinds`` in the chain of causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_reason(exc: OSError) -> str:
    # trio's open_tcp_stream raises "all attempts to connect to h:p failed" from a group of
    # the per-address errors; their strerror ("Connection refused") is the useful part.
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup):
        reasons = {_os_text(e) for e in _leaves(cause) if isinstance(e, OSError)}
        if reasons:
            return "; ".join(sorted(reasons))
    return _os_text(exc)


def _os_text(exc: OSError) -> str:
    # trio words a refused connect as "Error connecting to (host, port): ...", which would
    # repeat the address; errno alone gives "Connection refused". getaddrinfo errors have
    # negative codes whose text only their strerror carries.
    if isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)


def _error_detail(body: bytes | None, secrets: list[str]) -> str:
    """The error message of a small JSON refusal body, with anything key-like removed."""
    if not body or len(body) > _MAX_QUOTED_BODY:
        return ""
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message, code = error.get("message"), error.get("code")
    elif isinstance(payload, dict):
        message, code = payload.get("message"), None
    else:
        return ""
    if not isinstance(message, str) or not message:
        return ""
    text = message[:_MAX_QUOTED_MESSAGE]
    if isinstance(code, str | int) and str(code) and str(code) not in text:
        text = f"{text} ({code})"
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out


def _sole_error(exc: BaseException) -> BaseException | None:
    """The one exception an exception group stands for, or ``None`` if it is several.

    ``Cancelled`` that comes with another error is only the nursery tearing down; a group
    of nothing but ``Cancelled`` stands for one of them.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = _leaves(exc)
    errors = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if len(errors) == 1:
        return errors[0]
    if not errors and leaves:
        return leaves[0]
    return None


def _reraise(exc: BaseException) -> NoReturn:
    # Raising inside an ``except`` block would make the group this came from its
    # __context__, and the traceback would show the error twice.
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context
