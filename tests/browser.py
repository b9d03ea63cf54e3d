"""A headless Chromium driven over the Chrome DevTools Protocol, for the browser console tests.

What this module owns: starting Debian's ``chromium`` with a throw-away profile (and,
optionally, a WAV file as its fake microphone), finding the page target from
``DevToolsActivePort`` and ``/json``, and a small CDP client over trio-websocket:
navigate, evaluate (awaiting promises), screenshot, and every page error collected
(``Runtime.exceptionThrown``, ``console.error``, ``Log`` entries at error level).

What it must never do: download anything, touch a browser it did not start, or leave the
process or its profile behind: :func:`open_browser` kills the process group it started and
removes the profile on every exit path.

Tests import it as ``from browser import open_browser`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio
import trio_websocket

__all__ = ["BrowserError", "Page", "PageError", "WaitTimeout", "find_chromium", "open_browser"]

T = TypeVar("T")

#: Where a browser binary is looked for, in order; REALTALK_CHROMIUM overrides.
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0


class BrowserError(Exception):
    """The browser could not be started or answered a command with an error."""


class PageError(AssertionError):
    """The page raised a JavaScript error (or logged one): the test fails with it."""


class WaitTimeout(AssertionError):
    """:meth:`Page.wait_for` gave up."""


def find_chromium() -> str | None:
    """The browser to run: ``$REALTALK_CHROMIUM``, else the first of ``chromium``,
    ``chromium-browser``, ``google-chrome`` on ``PATH``; ``None`` when there is none."""
    override = os.environ.get("REALTALK_CHROMIUM")
    if override:
        return override if shutil.which(override) else None
    return next((path for name in _CANDIDATES if (path := shutil.which(name))), None)


@dataclass(eq=False)
class Page:
    """One page target and its DevTools connection (from :func:`open_browser`)."""

    ws: trio_websocket.WebSocketConnection
    #: Page errors, one line each: uncaught exceptions, ``console.error``, error log entries.
    errors: list[str] = field(default_factory=list)
    #: Every console message and log entry, ``"<level>: <text>"`` (for failure messages).
    console: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[int, trio.MemorySendChannel[dict[str, Any]]] = field(default_factory=dict)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one CDP command and return its ``result``.

        Raises:
            BrowserError: the browser answered with an error.
        """
        call_id = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._pending[call_id] = send
        try:
            await self.ws.send_message(
                json.dumps({"id": call_id, "method": method, "params": params})
            )
            reply = await receive.receive()
        finally:
            self._pending.pop(call_id, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (a promise is awaited).

        Raises:
            PageError: the expression threw (or its promise rejected).
        """
        result = await self.send(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            userGesture=True,
        )
        if "exceptionDetails" in result:
            raise PageError(f"{expression[:200]!r} threw: {_describe(result['exceptionDetails'])}")
        return result.get("result", {}).get("value")

    async def navigate(self, url: str) -> None:
        """Open ``url`` and wait until the document has loaded."""
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        await self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    async def wait_for(
        self, expression: str, *, what: str, timeout_s: float = 10.0, interval_s: float = 0.05
    ) -> Any:
        """Poll ``expression`` until it is truthy and return its value.

        Raises:
            PageError: the page reported an error meanwhile (the wait ends at once).
            WaitTimeout: ``timeout_s`` passed first; the message says ``what`` was awaited.
        """
        with trio.move_on_after(timeout_s):
            while True:
                self.raise_errors()
                value = await self.evaluate(expression)
                if value:
                    return value
                await trio.sleep(interval_s)
        raise WaitTimeout(f"waited {timeout_s:g} s for {what} ({expression[:300]})")

    async def screenshot(self, *paths: Path) -> None:
        """Save a PNG of the viewport to each of ``paths``."""
        data = base64.b64decode((await self.send("Page.captureScreenshot", format="png"))["data"])
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def raise_errors(self) -> None:
        """Raise :class:`PageError` if the page has reported any error so far."""
        if self.errors:
            raise PageError("the page reported errors:\n" + "\n".join(self.errors))

    async def _read(self) -> None:
        while True:
            try:
                message = json.loads(await self.ws.get_message())
            except trio_websocket.ConnectionClosed:
                for waiting in self._pending.values():
                    waiting.send_nowait({"error": "the DevTools connection closed"})
                return
            if "id" in message:
                reply_to = self._pending.get(message["id"])
                if reply_to is not None:
                    reply_to.send_nowait(message)
                continue
            self._on_event(message.get("method", ""), message.get("params", {}))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            line = f"uncaught: {_describe(params.get('exceptionDetails', {}))}"
            self.errors.append(line)
            self.console.append(line)
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(arg) for arg in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                self.errors.append(f"console.{params.get('type')}: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            line = f"log {entry.get('level')}: {entry.get('text')} ({entry.get('url', '')})"
            self.console.append(line)
            if entry.get("level") == "error":
                self.errors.append(line)


def _remote_text(arg: dict[str, Any]) -> str:
    if "value" in arg:
        return str(arg["value"])
    return str(arg.get("description") or arg.get("unserializableValue") or arg.get("type"))


def _describe(details: dict[str, Any]) -> str:
    exception = details.get("exception") or {}
    text = exception.get("description") or details.get("text") or "error"
    where = f" at {details.get('url', '')}:{details.get('lineNumber', 0) + 1}"
    return f"{text}{where if details.get('url') else ''}"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """End the browser's process group (it was started as a session leader, so the group
    is the browser and its helpers only), politely first."""
    for sig, wait_s in ((signal.SIGTERM, _STOP_TIMEOUT_S), (signal.SIGKILL, _STOP_TIMEOUT_S)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


async def _retry(what: str, attempt: Callable[[], Awaitable[T | None]]) -> T:
    """Poll ``attempt`` until it returns a value; :class:`BrowserError` after 20 s."""
    with trio.move_on_after(_START_TIMEOUT_S):
        while True:
            value = await attempt()
            if value is not None:
                return value
            await trio.sleep(0.05)
    raise BrowserError(f"chromium did not start within {_START_TIMEOUT_S:.0f} s: {what}")


@contextlib.asynccontextmanager
async def open_browser(
    *, fake_audio: Path | None = None, viewport: tuple[int, int] = (1280, 900)
) -> AsyncIterator[Page]:
    """A headless Chromium with one blank page, for the ``async with`` block.

    Args:
        fake_audio: a WAV file the browser uses as its microphone (looped), with the
            permission prompt answered "allow".
        viewport: the page's size in CSS pixels (and the screenshots').

    Raises:
        BrowserError: no browser is installed, or it did not start within 20 s.
    """
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no chromium on PATH")
    profile = Path(tempfile.mkdtemp(prefix="realtalk-chromium-"))
    args = [
        binary,
        "--headless=new",
        "--no-sandbox",  # required when running as root (CI containers)
        "--disable-gpu",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if fake_audio is not None:
        args += [
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_audio}",
        ]
    args.append("about:blank")
    log = (profile / "chromium.log").open("wb")
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    try:
        port_file = profile / "DevToolsActivePort"

        async def read_port() -> int | None:
            if proc.poll() is not None:
                raise BrowserError(f"chromium exited with {proc.returncode}: {_tail(profile)}")
            text = port_file.read_text() if port_file.exists() else ""
            return int(text.split()[0]) if text.strip() else None

        port = await _retry("no DevToolsActivePort", read_port)

        async def page_target() -> str | None:
            def fetch() -> list[dict[str, Any]]:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as r:
                    targets: list[dict[str, Any]] = json.load(r)
                    return targets

            targets = await trio.to_thread.run_sync(fetch)
            pages = [t for t in targets if t.get("type") == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        url = await _retry("no page target", page_target)
        try:
            async with (
                trio_websocket.open_websocket_url(url, max_message_size=256 * 1024 * 1024) as ws,
                trio.open_nursery() as nursery,
            ):
                page = Page(ws)
                nursery.start_soon(page._read)
                for domain in ("Runtime", "Page", "Log"):
                    await page.send(f"{domain}.enable")
                width, height = viewport
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield page
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # One error (from the block or the reader) is that error, not a group.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise
    finally:
        _kill(proc)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _tail(profile: Path) -> str:
    with contextlib.suppress(OSError):
        return (profile / "chromium.log").read_text(errors="replace")[-2000:]
    return ""
