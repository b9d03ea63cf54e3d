"""The embedded server in a background thread, for clients that run their own event loop.

realtalk's server is trio-based; the ``openai`` package's Realtime client is asyncio-based.
:class:`ServerThread` runs :func:`realtalk.server.open_server` under ``trio.run`` in a
thread of its own and publishes the port, so a test can drive any client with
``asyncio.run`` in the test thread::

    with ServerThread() as server:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        asyncio.run(talk(client))

Leaving the ``with`` stops the server (every session ends), joins the thread and re-raises
anything the server raised.

Tests import it as ``from server_thread import ServerThread`` (``tests/`` is on
``sys.path``). Nothing here uses a fixed port.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import trio

from realtalk.server import RealtimeServer, open_server

__all__ = ["ServerThread"]

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class ServerThread:
    """:func:`realtalk.server.open_server` running in a thread with its own trio loop.

    Keyword arguments (``brain``, ``options``, ``host``) go to :func:`open_server`; its
    ``log`` is always set, and the server's log lines are kept in :attr:`log_lines` (handy in
    failure messages).
    """

    def __init__(self, **server_kwargs: Any) -> None:
        self.server_kwargs = server_kwargs
        #: The server's log, one line per event in either direction.
        self.log_lines: list[str] = []
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._server: RealtimeServer | None = None
        self._error: BaseException | None = None

    @property
    def server(self) -> RealtimeServer:
        """The running server (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("ServerThread.start() has not been called")
        return self._server

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        """``ws://127.0.0.1:PORT/v1``: an OpenAI ``websocket_base_url``."""
        return self.server.base_url

    @property
    def azure_url(self) -> str:
        """``ws://127.0.0.1:PORT/openai``: an Azure ``websocket_base_url``."""
        return self.server.azure_url

    def start(self) -> ServerThread:
        """Start the thread; return once the server listens."""
        self._thread = threading.Thread(target=self._run, name="realtalk-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError(f"the server did not start within {_START_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None
            raise RuntimeError("the server failed to start") from self._error
        return self

    def stop(self) -> None:
        """Stop the server, join the thread, and re-raise what the server raised."""
        thread, token, stop = self._thread, self._token, self._stop
        if thread is None:
            return
        if token is not None and stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(_STOP_TIMEOUT_S)
        self._thread = None
        if thread.is_alive():
            raise RuntimeError(f"the server thread did not end within {_STOP_TIMEOUT_S} s")
        if self._error is not None:
            raise RuntimeError("the embedded server raised") from self._error

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with open_server(log=self.log_lines.append, **self.server_kwargs) as server:
            self._server = server
            self._ready.set()
            await self._stop.wait()
