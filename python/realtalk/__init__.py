"""realtalk: speech-in, speech-out conversations with the OpenAI Realtime API.

``realtalk.connect()`` opens a session (OpenAI, Azure, or any ws:// URL); the protocol
itself is sans-IO in :mod:`realtalk.protocol`. The audio hot path (sample conversion,
G.711, base64, resampling and the JSON framing of audio events) is native code in
:mod:`realtalk.core`. Speakers and microphones are in :mod:`realtalk.audio`, the embedded
offline Realtime server in :mod:`realtalk.server`, and every exception realtalk raises in
:mod:`realtalk.exceptions`.
"""

from realtalk._core import __version__
from realtalk.client import (
    AudioSink,
    GaveUp,
    Reconnect,
    Reconnected,
    Reconnecting,
    Resumed,
    Session,
    SessionStatistics,
    ToolCallFinished,
    ToolHandler,
    connect,
)
from realtalk.exceptions import (
    AudioFormatError,
    AuthenticationError,
    Base64DecodeError,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    EventParseError,
    LocalProtocolError,
    RealtalkError,
    RemoteProtocolError,
    ServerError,
    WavFormatError,
)
from realtalk.protocol import (
    FunctionTool,
    InputTranscription,
    NoiseReduction,
    SemanticVad,
    ServerVad,
    SessionConfig,
)

__all__ = [
    "AudioFormatError",
    "AudioSink",
    "AuthenticationError",
    "Base64DecodeError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionClosed",
    "EventParseError",
    "FunctionTool",
    "GaveUp",
    "InputTranscription",
    "LocalProtocolError",
    "NoiseReduction",
    "RealtalkError",
    "Reconnect",
    "Reconnected",
    "Reconnecting",
    "RemoteProtocolError",
    "Resumed",
    "SemanticVad",
    "ServerError",
    "ServerVad",
    "Session",
    "SessionConfig",
    "SessionStatistics",
    "ToolCallFinished",
    "ToolHandler",
    "WavFormatError",
    "__version__",
    "connect",
]
