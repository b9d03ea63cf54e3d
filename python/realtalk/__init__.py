"""realtalk: speech-in, speech-out conversations with the OpenAI Realtime API.

The audio hot path (sample conversion, G.711, base64 and the JSON framing of audio events)
is native code in :mod:`realtalk.core`.
"""

from realtalk._core import __version__
from realtalk.exceptions import (
    AudioFormatError,
    Base64DecodeError,
    ConfigurationError,
    EventParseError,
    RealtalkError,
)

__all__ = [
    "AudioFormatError",
    "Base64DecodeError",
    "ConfigurationError",
    "EventParseError",
    "RealtalkError",
    "__version__",
]
