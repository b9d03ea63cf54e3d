"""The embedded Realtime API server: the real wire protocol, offline.

``open_server()`` runs it for an ``async with`` block (``realtalk serve`` runs it from the
command line). Both dialects, the OpenAI and Azure URL shapes, server VAD, responses with
the full event sequence, and the API's errors. What the assistant says comes from a
:class:`Brain`: :class:`EchoBrain` by default, :class:`ScriptedBrain` for tests.
"""

from realtalk.server._brains import (
    Brain,
    BrainError,
    CallFunction,
    EchoBrain,
    Output,
    Say,
    ScriptedBrain,
    Turn,
    TurnItem,
)
from realtalk.server._server import RealtimeServer, open_server
from realtalk.server._session import Faults, Observation, ServerOptions

__all__ = [
    "Brain",
    "BrainError",
    "CallFunction",
    "EchoBrain",
    "Faults",
    "Observation",
    "Output",
    "RealtimeServer",
    "Say",
    "ScriptedBrain",
    "ServerOptions",
    "Turn",
    "TurnItem",
    "open_server",
]
