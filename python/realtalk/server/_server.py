"""The embedded server's listener: paths, dialect, authentication, one session each.

What this module owns: accepting WebSocket upgrades on the API's three paths
(``/v1/realtime?model=…``; Azure ``/openai/realtime?api-version=…&deployment=…`` and
``/openai/v1/realtime?model=…``), telling the dialect from the ``OpenAI-Beta`` header,
refusing bad upgrades with the HTTP status and JSON body the API uses, and running a
:class:`~realtalk.server._session.ServerSession` per connection in a nursery the
caller's ``async with`` owns.

What it must never do: bind anything but loopback unless asked, or outlive its
``async with``.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
import trio_websocket

from realtalk.server._brains import Brain, EchoBrain
from realtalk.server._session import ServerOptions, ServerSession
from realtalk.server._wire import Dialect

LogFn = Callable[[str], None]

#: Paths the server answers, and whether the model comes from ``model`` or
#: ``deployment`` (Azure preview).
_PATHS = {
    "/v1/realtime": "model",
    "/openai/realtime": "deployment",
    "/openai/v1/realtime": "model",
}


@dataclass(slots=True)
class RealtimeServer:
    """A running embedded server (from :func:`open_server`).

    ``url`` is the OpenAI-shaped endpoint (``ws://127.0.0.1:PORT/v1/realtime?model=…``), ready for
    ``realtalk.connect(server.url)``; ``base_url`` (``ws://127.0.0.1:PORT/v1``) is what the
    ``openai`` package takes as ``websocket_base_url``.
    """

    host: str
    port: int
    connections: int = 0
    _cancel: trio.CancelScope = field(default_factory=trio.CancelScope, repr=False)

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/v1/realtime?model=gpt-realtime``."""
        return f"ws://{self._netloc}/v1/realtime?model=gpt-realtime"

    @property
    def base_url(self) -> str:
        """``ws://HOST:PORT/v1``."""
        return f"ws://{self._netloc}/v1"

    @property
    def azure_url(self) -> str:
        """``ws://HOST:PORT/openai`` (an Azure ``websocket_base_url``)."""
        return f"ws://{self._netloc}/openai"

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def close(self) -> None:
        """Stop listening and end every session."""
        self._cancel.cancel()


def _api_error_body(
    message: str, code: str | None, error_type: str = "invalid_request_error"
) -> bytes:
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return json.dumps({"error": error}).encode()


class _Handshake:
    def __init__(self, options: ServerOptions) -> None:
        self.options = options

    def check(
        self, request: trio_websocket.WebSocketRequest
    ) -> tuple[int, bytes] | tuple[Dialect, str]:
        """(status, body) to refuse with, or (dialect, model) to accept."""
        target = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(target.query))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        model_key = _PATHS.get(target.path.rstrip("/"))
        if model_key is None:
            paths = ", ".join(sorted(_PATHS))
            return 404, _api_error_body(
                f"Invalid URL (GET {target.path}); this server answers {paths}", "not_found"
            )
        auth = headers.get("authorization", "")
        key = (
            auth[7:].strip()
            if auth.lower().startswith("bearer ")
            else headers.get("api-key", "").strip()
        )
        # Browsers cannot set headers on a WebSocket: they offer the key as a subprotocol,
        # with "realtime" (and "openai-beta.realtime-v1" for the beta dialect).
        offered = list(request.proposed_subprotocols)
        if not key:
            key = next(
                (p[len(_KEY_PROTOCOL) :] for p in offered if p.startswith(_KEY_PROTOCOL)), ""
            )
        if not key:
            return 401, _api_error_body(
                "You didn't provide an API key. Provide it in an Authorization header "
                "(Bearer auth) or an api-key header.",
                "missing_api_key",
            )
        if self.options.api_key is not None and key != self.options.api_key:
            return 401, _api_error_body(
                f"Incorrect API key provided: {_mask(key)}.", "invalid_api_key"
            )
        if target.path.startswith("/openai/realtime") and "api-version" not in query:
            return 400, _api_error_body(
                "Missing required query parameter: api-version", "missing_api_version"
            )
        model = query.get(model_key, "")
        if not model:
            return 400, _api_error_body(
                f"Missing required query parameter: {model_key}", "missing_required_parameter"
            )
        beta = headers.get("openai-beta", "").replace(" ", "")
        beta_offered = "openai-beta.realtime-v1" in offered
        dialect: Dialect = "beta" if "realtime=v1" in beta.split(",") or beta_offered else "ga"
        return dialect, model


#: The subprotocol prefix that carries a key from a browser (the API's web convention).
_KEY_PROTOCOL = "openai-insecure-api-key."


def _loggable(path: str) -> str:
    """A request path for the log: the values of credential-like query parameters (a
    browser may send Azure's ``api-key`` in the query) replaced by ``***``."""
    target = urllib.parse.urlsplit(path)
    if not target.query:
        return path
    pairs = urllib.parse.parse_qsl(target.query, keep_blank_values=True)
    shown = [(k, "***" if k.lower() in _SECRET_QUERY else v) for k, v in pairs]
    return target.path + "?" + urllib.parse.urlencode(shown, safe="*")


#: Query parameters that carry a credential.
_SECRET_QUERY = frozenset({"api-key", "api_key", "apikey", "access_token", "key", "token"})


def _mask(key: str) -> str:
    """How the API shows a wrong key: its first and last few characters."""
    return key[:3] + "*" * max(0, min(len(key) - 7, 20)) + key[-4:] if len(key) > 8 else "***"


@asynccontextmanager
async def open_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    brain: Brain | Callable[[], Brain] | None = None,
    options: ServerOptions | None = None,
    log: LogFn | None = None,
) -> AsyncIterator[RealtimeServer]:
    """Run the embedded Realtime server for the ``async with`` block.

    Args:
        host: interface to bind; loopback by default.
        port: TCP port; 0 picks a free one (read it from ``server.port``).
        brain: what answers: a :class:`Brain` shared by every connection, or a factory
            called once per connection (so each gets fresh state, e.g. a
            ``ScriptedBrain``). Default: a new :class:`EchoBrain` per connection.
        options: pacing, delta size, session length, required key, fault injection.
        log: called with one line per event, both directions, with timestamps.

    Raises:
        OSError: the address cannot be bound.
    """
    options = options or ServerOptions()
    handshake = _Handshake(options)

    def brain_for_connection() -> Brain:
        if brain is None:
            return EchoBrain()
        # A class or a function makes one brain per connection; an instance is shared.
        if isinstance(brain, type) or not hasattr(brain, "respond"):
            return brain()
        return brain  # type: ignore[return-value]

    try:
        async with trio.open_nursery() as nursery:
            server = RealtimeServer(host=host, port=0)

            async def handler(request: trio_websocket.WebSocketRequest) -> None:
                verdict = handshake.check(request)
                if isinstance(verdict[0], int):
                    status, body = verdict
                    headers = [(b"content-type", b"application/json")]
                    await request.reject(status, extra_headers=headers, body=body)
                    if log is not None:
                        log(f"refused upgrade {_loggable(request.path)}: HTTP {status}")
                    return
                dialect, model = verdict
                # A browser that offered "realtime" must get it back, or it drops the socket.
                subprotocol = "realtime" if "realtime" in request.proposed_subprotocols else None
                ws = await request.accept(subprotocol=subprotocol)
                server.connections += 1
                number = server.connections
                if log is not None:
                    log(f"connection #{number}: {_loggable(request.path)} ({dialect} dialect)")
                session = ServerSession(
                    ws,
                    dialect=dialect,
                    model=model,
                    brain=brain_for_connection(),
                    options=options,
                    log=log,
                    number=number,
                )
                try:
                    await session.run()
                except Exception as exc:  # one session's bug must not end the server
                    await session.fail(exc)
                    if log is not None:
                        log(f"connection #{number} failed: {type(exc).__name__}: {exc}")
                    return
                if log is not None:
                    log(f"connection #{number} closed")

            with server._cancel:
                listener = await nursery.start(_serve, handler, host, port)
                server.port = listener.port
                try:
                    yield server
                finally:
                    nursery.cancel_scope.cancel()

    except BaseExceptionGroup as group:
        # One error (from the block or a session) is that error, not a group.
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise


async def _serve(
    handler: Callable[[trio_websocket.WebSocketRequest], Any],
    host: str,
    port: int,
    task_status: trio.TaskStatus[trio_websocket.WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    await trio_websocket.serve_websocket(
        handler,
        host,
        port,
        ssl_context=None,
        max_message_size=sys.maxsize,
        task_status=task_status,
    )
