"""Every exception realtalk raises on purpose.

Bad input data subclasses :class:`ValueError`, so handlers written for the standard library
(``json``, ``base64``) keep working.
"""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "AuthenticationError",
    "Base64DecodeError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionClosed",
    "EventParseError",
    "LocalProtocolError",
    "RealtalkError",
    "RemoteProtocolError",
    "ServerError",
    "WavFormatError",
]


class RealtalkError(Exception):
    """Base class of realtalk's own exceptions."""


class AudioFormatError(RealtalkError, ValueError):
    """Audio data of the wrong dtype, memory layout, byte order or length."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position
        """Offset of the problem in the input, when it has one."""


class WavFormatError(AudioFormatError):
    """A file that is not a WAV file realtalk reads, or is damaged.

    The message names the file, what is wrong, and what is supported. ``position`` is
    the byte offset in the file of the header field or chunk at fault, when there is one.
    """


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


class ConnectError(RealtalkError, OSError):
    """The WebSocket to the Realtime endpoint could not be opened.

    Covers name resolution, TCP, TLS and an HTTP answer other than ``101 Switching
    Protocols``. ``status_code`` is that HTTP status when the server answered, else
    ``None``. The message never contains an API key or token.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class AuthenticationError(ConnectError):
    """The endpoint refused the credentials (HTTP 401 or 403 on the upgrade request)."""


class ConnectionClosed(RealtalkError):
    """The WebSocket is closed: by the server, by the network, or by
    :meth:`realtalk.Session.aclose`.

    ``code`` is the WebSocket close code (1000 normal, 1006 abnormal, ...) and ``reason``
    the close reason the peer gave, possibly empty.
    """

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class LocalProtocolError(RealtalkError):
    """A call that breaks the protocol on our side, refused before anything is sent.

    For example appending audio after the session closed, or truncating an item that
    is not an assistant message. The session is still usable.
    """


class RemoteProtocolError(RealtalkError):
    """The server sent something the protocol does not allow (not JSON, no ``type``)."""


class ServerError(RealtalkError):
    """A server ``error`` event, raised by a call that waited for the server's answer.

    ``error_type`` (e.g. ``invalid_request_error``), ``code`` (e.g.
    ``conversation_already_has_active_response``), ``param`` and ``event_id`` (the id of
    our client event that caused it) are the fields of the event's ``error`` object.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str = "",
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.code = code
        self.param = param
        self.event_id = event_id
