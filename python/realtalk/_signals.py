"""Ctrl-C and SIGTERM for the command-line tools, taken as a cancellation.

Trio's default turns SIGINT into a ``KeyboardInterrupt`` raised in whichever task happens
to run. With the embedded server in the same process that task may be the server's
connection handler: the client then sees a closed connection (exit 1 instead of 130) or
the unwinding stalls. :func:`until_signalled` instead cancels everything in order (files
closed, sockets closed, the server stopped) and then raises :class:`Interrupted`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import outcome
import trio

T = TypeVar("T")


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; every task of the run has been unwound."""


async def until_signalled(run: Callable[[], Awaitable[T]]) -> T:
    """``await run()``, cancelled by SIGINT or SIGTERM, after which :class:`Interrupted`
    is raised (whatever else the unwinding raised is chained to it).

    Off the main thread signals cannot be received; ``run()`` is awaited as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        return await run()
    interrupted = False
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def cancel_on_signal() -> None:
                nonlocal interrupted
                async for _ in signals:
                    interrupted = True
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(cancel_on_signal)
            # Captured rather than raised in the nursery: an error of run() comes out
            # as itself, not wrapped in the nursery's group.
            result = await outcome.acapture(run)
            nursery.cancel_scope.cancel()
    if interrupted:
        error = getattr(result, "error", None)
        raise Interrupted from (None if isinstance(error, trio.Cancelled) else error)
    return result.unwrap()
