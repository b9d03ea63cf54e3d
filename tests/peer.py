"""A scripted Realtime API server on 127.0.0.1 for wire-level tests.

:class:`ScriptedPeer` is a real trio-websocket server. For every accepted connection it
runs a test's *script* (``async def script(conn: PeerConnection)``), records the upgrade
request, and checks every client event against the ``openai`` package's pydantic models
of the peer's dialect: the event must be valid JSON, its ``type`` one of the dialect's
client events, the payload must validate strictly, and no object anywhere in it may carry
a key the model does not declare (openai's models accept unknown keys, so a misspelled
key would otherwise pass). Problems are collected in :attr:`ScriptedPeer.violations`;
nothing is raised inside the server, so a test fails at :meth:`ScriptedPeer.assert_clean`
(which :func:`serve` calls) with every problem listed.

Tests import it as ``from peer import ScriptedPeer, serve`` (pytest puts ``tests/`` on
``sys.path``, since ``tests`` has no ``__init__.py``).

This module must never be imported by realtalk itself, and never uses a fixed port.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import sys
import traceback
import typing
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
import trio
import trio_websocket

__all__ = [
    "HandshakeRecord",
    "PeerConnection",
    "ScriptedPeer",
    "assert_no_extra",
    "client_event_models",
    "serve",
]

PeerDialect = Literal["ga", "beta"]
Script = Callable[["PeerConnection"], Awaitable[None]]

APPEND = "input_audio_buffer.append"
# Client appends may be up to 15 MiB; the peer takes anything.
_MAX_MESSAGE_SIZE = sys.maxsize
_SHOWN_CHARS = 300


@functools.cache
def client_event_models(dialect: PeerDialect) -> dict[str, type[pydantic.BaseModel]]:
    """``type`` -> pydantic model of every client event of ``dialect`` in the openai package.

    GA: ``openai.types.realtime.RealtimeClientEvent``; beta:
    ``openai.types.beta.realtime.RealtimeClientEvent``. Both are ``Annotated[Union[...],
    ...]`` discriminated by the ``type`` literal of each member.
    """
    if dialect == "ga":
        from openai.types.realtime import RealtimeClientEvent
    else:
        from openai.types.beta.realtime import RealtimeClientEvent
    union = typing.get_args(RealtimeClientEvent)[0]
    models: dict[str, type[pydantic.BaseModel]] = {}
    for model in typing.get_args(union):
        (name,) = typing.get_args(model.model_fields["type"].annotation)
        models[name] = model
    return models


def _extra_paths(value: object, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        found.extend(f"{path}.{key}".lstrip(".") for key in value.model_extra or {})
        for name in type(value).model_fields:
            found.extend(_extra_paths(getattr(value, name), f"{path}.{name}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_extra_paths(item, f"{path}[{index}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(_extra_paths(item, f"{path}[{key!r}]"))
    return found


def assert_no_extra(model: pydantic.BaseModel) -> None:
    """Raise AssertionError if ``model`` or any model nested in it has undeclared keys.

    The message lists each such key as a dotted path (``session.audio.input.turn_detecton``).
    """
    paths = _extra_paths(model, "")
    if paths:
        raise AssertionError(f"keys the {type(model).__name__} model does not declare: {paths}")


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + f"... ({len(text)} chars)"


@dataclass
class HandshakeRecord:
    """One WebSocket upgrade request the peer saw (accepted or rejected)."""

    #: Request path without the query, e.g. ``/v1/realtime``.
    path: str
    #: Query parameters (the last value of a repeated name).
    query: dict[str, str]
    #: Request headers; names lower-case, repeated headers joined with ``", "``.
    headers: dict[str, str]
    #: The raw request target, path and query as sent.
    target: str
    #: The status the peer rejected it with, or ``None`` if it was accepted.
    rejected_with: int | None = None


@dataclass(eq=False)
class PeerConnection:
    """The peer's side of one accepted connection, handed to the script."""

    peer: ScriptedPeer
    index: int
    handshake: HandshakeRecord
    _ws: trio_websocket.WebSocketConnection = field(repr=False)
    #: Every client event (parsed JSON objects, appends included) in arrival order.
    received: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: True if the client closed (or dropped) the connection, False if the peer closed it.
    closed_by_client: bool = False
    #: Close code the client sent (1006 if it dropped the connection without one), or the
    #: code the peer closed with; ``None`` while open.
    close_code: int | None = None
    close_reason: str = ""

    def __post_init__(self) -> None:
        self._events_in, self._events_out = trio.open_memory_channel[dict[str, Any]](math.inf)
        self._done = trio.Event()
        self._closing_code: int | None = None
        self._messages = 0

    def appended_audio(self) -> bytes:
        """The decoded ``audio`` of every ``input_audio_buffer.append`` so far, joined."""
        return b"".join(
            base64.b64decode(event.get("audio", ""))
            for event in self.received
            if event.get("type") == APPEND
        )

    async def send(self, event: dict[str, Any]) -> None:
        """Send ``event`` as JSON in one text frame."""
        await self._ws.send_message(json.dumps(event))

    async def send_raw(self, text: str) -> None:
        """Send ``text`` unchanged in one text frame (for malformed or huge messages)."""
        await self._ws.send_message(text)

    async def recv(self, type: str | None = None) -> dict[str, Any]:
        """The next client event, skipping ``input_audio_buffer.append`` events.

        With ``type``, the next event must be of that type: appends before it are skipped
        (``type=APPEND`` returns the next append instead), and any other type raises
        AssertionError. Every event is recorded in :attr:`received` whether returned or
        skipped.

        Raises:
            AssertionError: an event of another type arrived, or the client closed the
                connection first.
        """
        while True:
            try:
                event = await self._events_out.receive()
            except trio.EndOfChannel:
                raise AssertionError(
                    f"client closed the connection (code {self.close_code}) while the peer "
                    f"waited for {type or 'an event'!r}"
                ) from None
            kind = event.get("type")
            if kind == type:
                return event
            if kind == APPEND:
                continue
            if type is None:
                return event
            raise AssertionError(
                f"peer expected {type!r}, client sent {kind!r}: {_shorten(json.dumps(event))}"
            )

    async def recv_nothing(self, seconds: float) -> None:
        """Assert that no client event other than an append arrives for ``seconds`` s.

        Appends that arrive meanwhile are consumed (and recorded). Returns early if the
        client closes the connection.
        """
        with trio.move_on_after(seconds):
            while True:
                try:
                    event = await self._events_out.receive()
                except trio.EndOfChannel:
                    return
                if event.get("type") != APPEND:
                    raise AssertionError(
                        f"expected no client event for {seconds} s, got "
                        f"{_shorten(json.dumps(event))}"
                    )

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with ``code`` and ``reason`` (waits for the client's reply)."""
        if self._closing_code is None:
            self._closing_code = code
            self.close_reason = reason
        await self._ws.aclose(code, reason or None)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed and every client event is recorded."""
        await self._done.wait()

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    message = await self._ws.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    if self._closing_code is not None:
                        self.close_code = self._closing_code
                    else:
                        self.closed_by_client = True
                        self.close_code = exc.reason.code if exc.reason else None
                        self.close_reason = (exc.reason.reason if exc.reason else None) or ""
                    return
                event = self.peer._check(self, message)
                if event is not None:
                    self.received.append(event)
                    self._events_in.send_nowait(event)
        finally:
            self._events_in.close()
            self._done.set()


class ScriptedPeer:
    """A Realtime API server on 127.0.0.1 that runs ``script`` for each connection.

    When the script returns, the peer keeps reading (and checking) client events until the
    client closes. If the script raises, that is recorded as a violation and the
    connection is closed with code 1011. With ``reject_status``, every upgrade is
    answered with that HTTP status and ``reject_body`` (as ``application/json``).
    """

    def __init__(
        self,
        script: Script,
        *,
        dialect: PeerDialect = "ga",
        reject_status: int | None = None,
        reject_body: bytes = b"",
    ) -> None:
        self.script = script
        self.dialect: PeerDialect = dialect
        self.reject_status = reject_status
        self.reject_body = reject_body
        self.requests: list[HandshakeRecord] = []
        self.connections: list[PeerConnection] = []
        self.violations: list[str] = []
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The TCP port the peer listens on (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("ScriptedPeer.start() has not been called")
        return self._port

    @property
    def base_url(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/v1/realtime?model=gpt-realtime``, the OpenAI shape."""
        return f"{self.base_url}/v1/realtime?model=gpt-realtime"

    async def start(self, nursery: trio.Nursery) -> None:
        """Listen on 127.0.0.1 (a free port) with the server task in ``nursery``."""
        server = await nursery.start(
            functools.partial(
                trio_websocket.serve_websocket,
                self._handle,
                "127.0.0.1",
                0,
                None,
                max_message_size=_MAX_MESSAGE_SIZE,
                message_queue_size=64,
                receive_buffer_size=64 * 1024,
            )
        )
        self._port = server.port

    def assert_clean(self) -> None:
        """Raise AssertionError listing every violation recorded so far."""
        if self.violations:
            listed = "\n".join(f"  - {v}" for v in self.violations)
            raise AssertionError(f"{len(self.violations)} peer violation(s):\n{listed}")

    def _violation(self, text: str) -> None:
        self.violations.append(text)

    def _check(self, conn: PeerConnection, message: str | bytes) -> dict[str, Any] | None:
        """Parse and check one client message; record violations; return the event."""
        where = f"connection {conn.index}, message {conn._messages}"
        conn._messages += 1
        if isinstance(message, bytes):
            self._violation(f"{where}: binary frame of {len(message)} bytes")
            return None
        try:
            event = json.loads(message)
        except ValueError as exc:
            self._violation(f"{where}: not JSON ({exc}): {_shorten(message)}")
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._violation(f"{where}: not an object with a string 'type': {_shorten(message)}")
            return None
        kind = event["type"]
        model = client_event_models(self.dialect).get(kind)
        if model is None:
            self._violation(f"{where}: {kind!r} is not a {self.dialect} client event")
            return event
        try:
            parsed = model.model_validate_json(message, strict=True)
        except pydantic.ValidationError as exc:
            self._violation(f"{where}: {kind} does not validate: {exc}")
            return event
        paths = _extra_paths(parsed, "")
        if paths:
            self._violation(f"{where}: {kind} has keys its model does not declare: {paths}")
        return event

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        try:
            record = self._record(request)
            if self.reject_status is not None:
                record.rejected_with = self.reject_status
                headers = [(b"content-type", b"application/json")] if self.reject_body else []
                await request.reject(
                    self.reject_status, extra_headers=headers, body=self.reject_body or None
                )
                return
            ws = await request.accept()
            conn = PeerConnection(self, len(self.connections), record, ws)
            self.connections.append(conn)
        except Exception:
            self._violation(f"handshake failed in the peer:\n{traceback.format_exc()}")
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn._read_loop)
            try:
                await self.script(conn)
            except Exception:
                self._violation(
                    f"connection {conn.index}: script raised:\n{traceback.format_exc()}"
                )
                with suppress(trio_websocket.ConnectionClosed):
                    await conn.close(1011, "peer script failed")

    def _record(self, request: trio_websocket.WebSocketRequest) -> HandshakeRecord:
        parts = urllib.parse.urlsplit(request.path)
        headers: dict[str, str] = {}
        for raw_name, raw_value in request.headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        record = HandshakeRecord(
            path=parts.path,
            query=dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            target=request.path,
        )
        self.requests.append(record)
        beta_header = headers.get("openai-beta")
        if self.dialect == "beta" and beta_header != "realtime=v1":
            self._violation(f"beta peer: upgrade has OpenAI-Beta {beta_header!r}")
        if self.dialect == "ga" and beta_header is not None:
            self._violation(f"GA peer: upgrade has OpenAI-Beta {beta_header!r}")
        return record

    async def _drain(self) -> None:
        # Messages trio-websocket queued before the close handshake may not be checked yet
        # when the client's aclose() returns; wait for those, not for open connections.
        for conn in self.connections:
            if conn._ws.closed is not None:
                await conn.wait_closed()


@asynccontextmanager
async def serve(script: Script, **kwargs: Any) -> AsyncIterator[ScriptedPeer]:
    """Run a :class:`ScriptedPeer` for the ``async with`` block, then check it.

    Keyword arguments go to :class:`ScriptedPeer`. On exit the server is cancelled (after
    the checks of closed connections are finished) and :meth:`ScriptedPeer.assert_clean`
    runs. An error in the block comes out as itself, with the violations as a note.
    """
    peer = ScriptedPeer(script, **kwargs)
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await peer.start(nursery)
            try:
                yield peer
                await peer._drain()
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        errors = [e for e in _leaves(group) if not isinstance(e, trio.Cancelled)]
        if len(errors) != 1:
            raise
        failure = errors[0]
    if failure is not None:
        if peer.violations:
            failure.add_note("peer violations:\n" + "\n".join(peer.violations))
        context = failure.__context__
        try:
            raise failure
        finally:
            failure.__context__ = context
    peer.assert_clean()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
