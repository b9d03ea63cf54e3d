"""The relay's HTTP side: read a request head, answer plain requests, hand over upgrades.

What this module owns: reading one request head with h11 (at most 16 KiB; the caller
bounds the time), answering with h11 (the console's static files, and the JSON refusals
of WebSocket upgrades), and :class:`ReplayStream`, which gives trio-websocket the bytes
already read so it can parse the upgrade itself.

What it must never do: serve a file that is not a regular file listed in the console
directory (no path is ever joined from request text: the request path is looked up in
a listing, so ``..``, encoded or not, finds nothing), follow a symlink, keep a
connection alive after one response, or echo request text into a response.
"""

from __future__ import annotations

import http
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import h11
import trio

__all__ = [
    "CONTENT_TYPES",
    "ReplayStream",
    "RequestHead",
    "console_files",
    "read_head",
    "respond",
    "respond_error",
]

#: Largest request head read, in bytes (h11's own default limit).
MAX_HEAD_BYTES = 16 * 1024
_READ_BYTES = 64 * 1024

#: Content types by file extension; anything else is ``application/octet-stream``.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".wav": "audio/wav",
    ".woff2": "font/woff2",
}

# Sent with every response: nothing is cached (a console URL may carry a token), no
# type sniffing, and no Referer that would carry that token to another site.
_COMMON_HEADERS = [
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("connection", "close"),
]


@dataclass(frozen=True, slots=True)
class RequestHead:
    """One parsed request head; ``raw`` is every byte read from the connection so far."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    @property
    def path(self) -> str:
        """The target's path, percent-decoded; no query."""
        return urllib.parse.unquote(self.target.split("?", 1)[0].split("#", 1)[0])

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower case); repeated headers joined by ``, ``."""
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None

    def header_list(self, name: str) -> list[str]:
        """The comma-separated values of header ``name``, stripped, over all its lines."""
        return [part.strip() for k, v in self.headers if k == name for part in v.split(",")]

    @property
    def is_upgrade(self) -> bool:
        """Whether the request asks for a WebSocket."""
        upgrade = [v.lower() for v in self.header_list("upgrade")]
        return "websocket" in upgrade


class BadRequest(Exception):
    """The request head is not HTTP, or too large: answer ``status`` on ``conn``."""

    def __init__(self, status: int, conn: h11.Connection) -> None:
        super().__init__(status)
        self.status = status
        self.conn = conn


async def read_head(stream: trio.abc.Stream) -> tuple[RequestHead, h11.Connection] | None:
    """Read one request head; ``None`` if the peer closed before sending one.

    Returns the head and the h11 connection to answer it with. No timeout of its own.

    Raises:
        BadRequest: not HTTP/1.1, or a head over 16 KiB (answer it with
            :func:`respond_error`).
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    raw = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadRequest(exc.error_status_hint, conn) from None
        if isinstance(event, h11.Request):
            headers = tuple(
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in event.headers
            )
            head = RequestHead(
                method=event.method.decode("latin-1"),
                target=event.target.decode("latin-1"),
                headers=headers,
                raw=bytes(raw),
            )
            return head, conn
        if event is h11.NEED_DATA:
            data = bytes(await stream.receive_some(_READ_BYTES))
            if not data:
                return None
            raw += data
            conn.receive_data(data)
            continue
        return None  # ConnectionClosed, or something no client sends first


async def respond(
    stream: trio.abc.Stream,
    conn: h11.Connection,
    status: int,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: list[tuple[str, str]] | None = None,
    send_body: bool = True,
) -> None:
    """Send one response and mark the connection for closing.

    ``send_body=False`` (for ``HEAD``) sends the headers of ``body`` without it.
    """
    headers = [("content-length", str(len(body)))]
    if content_type is not None:
        headers.append(("content-type", content_type))
    headers += extra_headers or []
    headers += _COMMON_HEADERS
    reason = http.HTTPStatus(status).phrase.encode("ascii")
    data = conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
    assert data is not None
    if body and send_body:
        data += conn.send(h11.Data(data=body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


async def respond_error(stream: trio.abc.Stream, error: BadRequest) -> None:
    """Answer a request h11 could not parse (400, 431, ...)."""
    status = error.status
    await respond(
        stream,
        error.conn,
        status,
        body=f"{status} {http.HTTPStatus(status).phrase}\n".encode(),
        content_type="text/plain; charset=utf-8",
    )


def api_error_body(message: str, code: str, error_type: str = "invalid_request_error") -> bytes:
    """An error body shaped like the API's: ``{"error": {message, type, param, code}}``."""
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return json.dumps({"error": error}).encode()


def console_files(directory: Path) -> dict[str, Path]:
    """Regular files under ``directory`` by their ``/``-separated relative path.

    Symlinks, hidden files and hidden directories are left out; a missing directory
    has no files. Read on every request: the directory is small, and may change.
    """
    files: dict[str, Path] = {}
    if not directory.is_dir():
        return files
    for root, dirs, names in os.walk(directory, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(root)
        for name in names:
            path = base / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            files[path.relative_to(directory).as_posix()] = path
    return files


def content_type(name: str) -> str:
    """The ``Content-Type`` of a console file."""
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


class ReplayStream(trio.abc.Stream):
    """``stream`` with ``prefix`` (bytes already read from it) received first."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            return chunk
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self._prefix = b""
        await self._stream.aclose()
