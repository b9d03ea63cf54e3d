"""Waiting for a session's events in tests: the next one of a kind, or a whole response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import realtalk
from realtalk.protocol import ResponseDone

E = TypeVar("E")


async def next_event(
    session: realtalk.Session, kind: type[E], where: Callable[[E], bool] = lambda e: True
) -> E:
    """The next event of type ``kind`` (for which ``where`` holds); earlier ones are read
    and dropped."""
    async for event in session.events():
        if isinstance(event, kind) and where(event):
            return event
    raise AssertionError(f"the session ended before a {kind.__name__}")


async def until_done(session: realtalk.Session) -> tuple[ResponseDone, list[Any]]:
    """The next ``response.done`` and every event up to it."""
    seen: list[Any] = []
    async for event in session.events():
        seen.append(event)
        if isinstance(event, ResponseDone):
            return event, seen
    raise AssertionError("the session ended first")
