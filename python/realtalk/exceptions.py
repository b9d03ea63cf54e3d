"""Every exception realtalk raises on purpose.

Bad input data subclasses :class:`ValueError`, so handlers written for the standard library
(``json``, ``base64``) keep working.
"""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "Base64DecodeError",
    "ConfigurationError",
    "EventParseError",
    "RealtalkError",
]


class RealtalkError(Exception):
    """Base class of realtalk's own exceptions."""


class AudioFormatError(RealtalkError, ValueError):
    """Audio data of the wrong dtype, memory layout, byte order or length."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        #: Offset of the problem in the input, when it has one.
        self.position = position


class Base64DecodeError(AudioFormatError):
    """Base64 text that strict decoding rejects.

    ``position`` is the offset (in characters for ``str`` input, bytes otherwise) of the
    first offending character, or the length of the text for a length or padding problem.
    """


class EventParseError(RealtalkError, ValueError):
    """A server event that is not valid JSON, or an audio event with bad fields.

    ``position`` is the offset (in characters for ``str`` input, bytes otherwise) where
    the problem was found.
    """

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position


class ConfigurationError(RealtalkError, ValueError):
    """Settings that cannot work, such as a zero sample rate or no channels."""
