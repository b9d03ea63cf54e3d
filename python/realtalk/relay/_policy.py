"""What a relay lets through: the policy, the limits, and the checks of each message.

What this module owns: :class:`RelayPolicy` (allowed client events; instructions and
tools held by the relay; redaction), :class:`RelayLimits` (sessions, message size and
rate, timeouts), and the sans-IO per-session checks: :class:`ClientGate` takes one
client message and says forward (possibly filtered), drop, or close with a code and
reason; :func:`redact_session_event` takes the held settings out of what the client
is shown.

What it must never do: I/O, read a clock (time is an argument), parse an
``input_audio_buffer.append`` in the usual compact form with the JSON parser (the
microphone sends 50 a second), or change a message it has no reason to change: what
is forwarded unfiltered is the client's own text, byte for byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from realtalk.client import ToolHandler
from realtalk.exceptions import ConfigurationError
from realtalk.protocol._config import Dialect, FunctionTool, SessionConfig
from realtalk.protocol._events import CLIENT_EVENT_TYPES

__all__ = [
    "DEFAULT_ALLOWED_EVENTS",
    "ClientGate",
    "PolicyViolation",
    "RelayLimits",
    "RelayPolicy",
    "TokenBucket",
    "redact_session_event",
]

#: The client events a relay forwards unless told otherwise: everything a voice client
#: needs, and nothing that changes the kind of session (``transcription_session.update``).
DEFAULT_ALLOWED_EVENTS: frozenset[str] = frozenset(CLIENT_EVENT_TYPES) - {
    "transcription_session.update"
}

# Close codes (RFC 6455 section 7.4.1).
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_UNSUPPORTED = 1003

# The compact form of an append, as realtalk.core.encode_append and a browser's
# JSON.stringify({type, audio}) write it: recognised without parsing.
_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_TYPE = "input_audio_buffer.append"
# Longest client event type quoted in a close reason (close reasons hold 123 bytes).
_MAX_QUOTED_TYPE = 40


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayLimits:
    """Per-relay and per-connection limits.

    - ``max_sessions``: sessions open at once; more upgrades are refused with HTTP 503.
    - ``max_message_bytes``: largest client message (UTF-8 bytes), default 1 MiB. The
      API takes appends of up to 15 MiB, but a relay for browsers wants far less: 1 MiB
      is about 16 s of 24 kHz PCM16 per append (a microphone sends 20-100 ms).
      Larger messages close the client with 1009. Messages over 4x the limit are cut
      off by the WebSocket layer before they are read whole (also 1009, with its
      reason), so a client cannot make the relay buffer more than that.
    - ``max_messages_per_s`` and ``burst``: a token bucket per connection (default 100
      per second with bursts of 200; a microphone sends about 50 appends a second).
      Exceeding it closes the client with 1008.
    - ``idle_timeout_s``: close a session whose client sent nothing for this many
      seconds (1000, "idle timeout"); ``None`` (default): never.
    - ``connect_timeout_s``: how long opening the upstream connection may take before
      the client's upgrade is refused with HTTP 502.
    - ``handshake_timeout_s``: how long a client may take to send its request head.

    Raises:
        ConfigurationError: a limit that is not a positive number.
    """

    max_sessions: int = 16
    max_message_bytes: int = 1 << 20
    max_messages_per_s: float = 100.0
    burst: int = 200
    idle_timeout_s: float | None = None
    connect_timeout_s: float = 10.0
    handshake_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_message_bytes", "burst"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("max_messages_per_s", "connect_timeout_s", "handshake_timeout_s"):
            _check_positive(name, getattr(self, name))
        if self.idle_timeout_s is not None:
            _check_positive("idle_timeout_s", self.idle_timeout_s)


def _check_positive(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayPolicy:
    """What clients may do, and the settings the relay holds for them.

    - ``allowed_events``: client event types forwarded (default
      :data:`DEFAULT_ALLOWED_EVENTS`); any other closes the client with 1008.
    - ``instructions``: held by the relay: sent upstream after ``session.created``,
      before anything from the client, and not changeable by the client: its
      ``session.update`` and ``response.create`` lose ``instructions`` and ``prompt``,
      and a system message in ``conversation.item.create`` closes it with 1008.
      ``None`` (default): the client's own instructions apply.
    - ``tools``: ``(schema, handler)`` pairs, as for ``realtalk.connect(tools=...)``,
      held and *run by the relay*: when the model calls one, the relay runs the handler
      (a plain function in a worker thread, an ``async def`` as a task), sends its
      result upstream as ``function_call_output`` and asks for a response. The client
      still sees the call's events; its own ``function_call_output`` for such a call is
      dropped. With tools held (``()`` holds "no tools"), the client's ``tools`` and
      ``tool_choice`` are removed from its updates. ``None`` (default): the client
      configures and answers its own tools.
    - ``tool_choice``: held with ``tools``: ``"auto"``, ``"none"``, ``"required"`` or a
      tool's name (GA only).
    - ``redact``: the held instructions, tools and tool choice are removed from the
      ``session.created`` / ``session.updated`` the client sees (default ``True``).

    The client's ``session.update`` is *filtered*, not refused: the held fields (and
    ``model``, which is always the relay's) are taken out and the rest applies.

    Raises:
        ConfigurationError: an invalid tool schema, a handler that is not callable, two
            tools with one name, ``tool_choice`` without ``tools``, or bad instructions.
    """

    allowed_events: frozenset[str] = DEFAULT_ALLOWED_EVENTS
    instructions: str | None = None
    tools: Sequence[tuple[FunctionTool | Mapping[str, Any], ToolHandler]] | None = None
    tool_choice: str | None = None
    redact: bool = True
    _held: SessionConfig | None = field(init=False, repr=False, compare=False, default=None)
    _handlers: Mapping[str, ToolHandler] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        events: Iterable[str] = self.allowed_events
        if isinstance(events, str) or not all(isinstance(e, str) and e for e in events):
            raise ConfigurationError("allowed_events must be a collection of event type names")
        object.__setattr__(self, "allowed_events", frozenset(events))
        tools: tuple[tuple[FunctionTool, ToolHandler], ...] | None = None
        if self.tools is not None:
            built: list[tuple[FunctionTool, ToolHandler]] = []
            for entry in self.tools:
                try:
                    schema, handler = entry
                except (TypeError, ValueError):
                    raise ConfigurationError("tools must be (schema, handler) pairs") from None
                tool = (
                    schema if isinstance(schema, FunctionTool) else FunctionTool.from_schema(schema)
                )
                if not callable(handler):
                    raise ConfigurationError(f"tools[{tool.name}]: handler is not callable")
                built.append((tool, handler))
            tools = tuple(built)
            object.__setattr__(self, "tools", tools)
        if self.tool_choice is not None and tools is None:
            raise ConfigurationError("tool_choice is held with tools: pass tools=... too")
        held = SessionConfig(
            instructions=self.instructions,
            tools=None if tools is None else tuple(t for t, _ in tools),
            tool_choice=self.tool_choice,
        )
        object.__setattr__(self, "_held", None if held == SessionConfig() else held)
        object.__setattr__(self, "_handlers", {t.name: h for t, h in tools or ()})

    @property
    def holds_instructions(self) -> bool:
        """Whether the relay holds the instructions."""
        return self.instructions is not None

    @property
    def holds_tools(self) -> bool:
        """Whether the relay holds the tools (and the tool choice)."""
        return self.tools is not None

    def held_update(self, dialect: Dialect) -> dict[str, object] | None:
        """The ``session`` of the relay's own ``session.update``, or ``None`` if it holds
        nothing. Raises :class:`ConfigurationError` if ``dialect`` cannot express it."""
        return None if self._held is None else self._held.render(dialect)

    def handler(self, name: str) -> ToolHandler | None:
        """The handler of the held tool ``name``, or ``None``."""
        return self._handlers.get(name)

    def held_keys(self) -> frozenset[str]:
        """Keys of a client's ``session`` (and ``response``) taken out before forwarding."""
        keys = {"model"}
        if self.holds_instructions:
            keys |= {"instructions", "prompt"}
        if self.holds_tools:
            keys |= {"tools", "tool_choice"}
        return frozenset(keys)

    def redacted_keys(self) -> frozenset[str]:
        """Keys of a server ``session`` object hidden from the client."""
        if not self.redact:
            return frozenset()
        keys: set[str] = set()
        if self.holds_instructions:
            keys.add("instructions")
        if self.holds_tools:
            keys |= {"tools", "tool_choice"}
        return frozenset(keys)


class PolicyViolation(Exception):
    """A client message breaks the policy: close the client with ``code`` and ``reason``.

    ``key`` names the violation in :attr:`RelayStatistics.refused`.
    """

    def __init__(self, code: int, reason: str, key: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.key = key


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; one per message."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend a token at time ``now`` (seconds); ``False`` if there is none."""
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def _quoted_type(kind: object) -> str:
    text = repr(kind) if not isinstance(kind, str) else kind
    text = "".join(c if c.isprintable() else "?" for c in text)
    if len(text) > _MAX_QUOTED_TYPE:
        text = text[: _MAX_QUOTED_TYPE - 3] + "..."
    return f"'{text}'"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class ClientGate:
    """The checks of one session's client messages, in order: size, rate, JSON, type,
    then the policy's filters. Sans-IO: :meth:`admit` takes the message and the time.

    ``held_call_ids`` are the call ids of function calls the relay answers; the session
    adds to it as the model calls held tools.
    """

    def __init__(self, policy: RelayPolicy, limits: RelayLimits, now: float) -> None:
        self._allowed = policy.allowed_events
        self._max_bytes = limits.max_message_bytes
        self._rate = limits.max_messages_per_s
        self._bucket = TokenBucket(limits.max_messages_per_s, limits.burst, now)
        self._held_keys = policy.held_keys()
        self._no_system = policy.holds_instructions
        self._append_fast = _APPEND_TYPE in self._allowed
        self.held_call_ids: set[str] = set()
        #: Messages forwarded with held fields taken out.
        self.filtered = 0
        #: Messages not forwarded (answers to calls the relay makes itself).
        self.dropped = 0

    def admit(self, message: str | bytes, now: float) -> str | None:
        """The text to forward upstream, or ``None`` to drop the message.

        Raises:
            PolicyViolation: close the client (1009 too big, 1008 rate limit or event
                not allowed, 1007 not a JSON object, 1003 a binary message).
        """
        size = len(message) if isinstance(message, bytes) or message.isascii() else None
        if size is None:
            assert isinstance(message, str)
            size = len(message.encode("utf-8", "surrogatepass"))
        if size > self._max_bytes:
            raise PolicyViolation(
                CLOSE_TOO_BIG,
                f"message too big: {size} bytes > {self._max_bytes}",
                "message_too_big",
            )
        if not self._bucket.take(now):
            raise PolicyViolation(
                CLOSE_POLICY,
                f"rate limit: more than {_number(self._rate)} messages per second",
                "rate_limit",
            )
        if isinstance(message, bytes):
            raise PolicyViolation(
                CLOSE_UNSUPPORTED, "binary messages are not supported", "binary_message"
            )
        if (
            self._append_fast
            and message.startswith(_APPEND_HEAD)
            and message.endswith('"}')
            and message.find('"', len(_APPEND_HEAD)) == len(message) - 2
            and message.find("\\", len(_APPEND_HEAD)) < 0
        ):
            return message
        try:
            event = json.loads(message)
        except (ValueError, RecursionError):
            event = None
        if not isinstance(event, dict):
            raise PolicyViolation(CLOSE_INVALID_DATA, "not a JSON object", "not_json")
        kind = event.get("type")
        if not isinstance(kind, str) or kind not in self._allowed:
            if not isinstance(kind, str):
                raise PolicyViolation(CLOSE_INVALID_DATA, "event has no type", "not_json")
            raise PolicyViolation(
                CLOSE_POLICY,
                f"event type {_quoted_type(kind)} is not allowed by this relay",
                "event_not_allowed",
            )
        if kind == "session.update":
            return self._without_held(message, event, "session")
        if kind == "response.create":
            return self._without_held(message, event, "response")
        if kind == "conversation.item.create":
            item = event.get("item")
            if isinstance(item, dict):
                if self._no_system and item.get("role") == "system":
                    raise PolicyViolation(
                        CLOSE_POLICY,
                        "system messages are not allowed by this relay",
                        "event_not_allowed",
                    )
                if (
                    item.get("type") == "function_call_output"
                    and item.get("call_id") in self.held_call_ids
                ):
                    self.dropped += 1
                    return None
        return message

    def _without_held(self, message: str, event: dict[str, Any], key: str) -> str:
        body = event.get(key)
        if not isinstance(body, dict) or not (self._held_keys & body.keys()):
            return message
        for name in self._held_keys & body.keys():
            del body[name]
        self.filtered += 1
        return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def redact_session_event(event: dict[str, Any], keys: frozenset[str]) -> str | None:
    """The JSON text of a ``session.created`` / ``session.updated`` without ``keys`` in
    its ``session``; ``None`` when there is nothing to take out (forward the original)."""
    session = event.get("session")
    if not keys or not isinstance(session, dict) or not (keys & session.keys()):
        return None
    for name in keys & session.keys():
        del session[name]
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
