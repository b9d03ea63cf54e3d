"""The trio client: endpoints, the WebSocket transport, and :class:`Session`."""

from realtalk.client._endpoint import Endpoint, resolve_endpoint
from realtalk.client._session import (
    DEFAULT_EVENT_BUFFER,
    AudioSink,
    GaveUp,
    Reconnect,
    Reconnected,
    Reconnecting,
    Resumed,
    Session,
    SessionStatistics,
    StoppingAudioSink,
    ToolCallFinished,
    ToolHandler,
    connect,
)

__all__ = [
    "DEFAULT_EVENT_BUFFER",
    "AudioSink",
    "Endpoint",
    "GaveUp",
    "Reconnect",
    "Reconnected",
    "Reconnecting",
    "Resumed",
    "Session",
    "SessionStatistics",
    "StoppingAudioSink",
    "ToolCallFinished",
    "ToolHandler",
    "connect",
    "resolve_endpoint",
]
