"""The relay: browsers (or any client) talk to the Realtime API without seeing its key.

``open_relay()`` runs a WebSocket server for an ``async with`` block (``realtalk relay``
runs it from the command line). Each client session gets its own connection to the
:class:`Upstream` (OpenAI, Azure, any URL, or the embedded server); the relay holds the
credentials, authenticates clients with its own tokens (:class:`RelayAuth`,
:func:`make_token`), enforces a :class:`RelayPolicy` and :class:`RelayLimits`, can hold
the instructions and run tools itself, and serves a browser console on the same port.
"""

from realtalk.relay._auth import RelayAuth, TokenCheck, make_token
from realtalk.relay._policy import DEFAULT_ALLOWED_EVENTS, RelayLimits, RelayPolicy
from realtalk.relay._relay import Relay, RelayStatistics, Upstream, open_relay

__all__ = [
    "DEFAULT_ALLOWED_EVENTS",
    "Relay",
    "RelayAuth",
    "RelayLimits",
    "RelayPolicy",
    "RelayStatistics",
    "TokenCheck",
    "Upstream",
    "make_token",
    "open_relay",
]
