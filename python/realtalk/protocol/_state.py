"""Every state transition of a realtalk session, in two tables.

What this module owns:

* ``RESPONSE_TRANSITIONS``: whether a response is being generated in the default
  conversation, and what a request to create or cancel one does in each state. The rule
  it enforces: never send ``response.create`` while a response is active (the server
  answers ``conversation_already_has_active_response`` and peers then die or hang);
  queue the request and send it when ``response.done`` arrives.
* ``INTERRUPT_RULES``: what an interruption must send for the assistant item being
  heard: ``conversation.item.truncate`` at the played position, ``conversation.item.delete``
  when nothing audible was played, or nothing when playback already finished.

What it must never do: perform I/O, read a clock, or hold conversation data. The
connection feeds triggers in and carries out the actions that come back; tests drive
every row of both tables.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "INTERRUPT_RULES",
    "RESPONSE_TRANSITIONS",
    "InterruptAction",
    "InterruptDecision",
    "ResponseAction",
    "ResponseState",
    "ResponseTrigger",
    "decide_interrupt",
    "samples_to_ms",
]


class ResponseState(enum.Enum):
    """Whether the default conversation has a response in progress, and whether a
    ``response.create`` of ours is on its way, as far as the client has been told."""

    IDLE = "idle"
    REQUESTED = "requested"
    """Our ``response.create`` sent; the server has not answered it yet."""
    ACTIVE = "active"
    """A response is in progress (ours, or one the server started by VAD)."""
    ACTIVE_REQUESTED = "active_requested"
    """A response the server started by itself is in progress *and* our
    ``response.create`` is still unanswered (VAD raced us): ours will either be
    refused as busy or start when that response is done."""
    CANCELLING = "cancelling"
    """``response.cancel`` sent for the response in progress, its ``response.done``
    not seen yet."""


class ResponseTrigger(enum.Enum):
    """What can move the response state."""

    CREATE = "create"
    """The user asks for a response (``create_response``, a tool result, ``send_text``)."""
    CANCEL = "cancel"
    """The user asks to cancel the response in progress."""
    CREATED_OURS = "created_ours"
    """Server ``response.created`` for our request (recognised by the ``metadata`` tag
    realtalk puts on every ``response.create``)."""
    CREATED_OTHER = "created_other"
    """Server ``response.created`` for any other response (server VAD, another client)."""
    DONE = "done"
    """Server ``response.done`` (any status)."""
    CREATE_REJECTED_BUSY = "create_rejected_busy"
    """Server ``error`` naming our ``response.create`` with
    ``conversation_already_has_active_response``."""
    CREATE_FAILED = "create_failed"
    """Server ``error`` naming our ``response.create`` for any other reason."""
    CANCEL_FAILED = "cancel_failed"
    """Server ``error`` naming our ``response.cancel`` (nothing to cancel)."""


class ResponseAction(enum.Enum):
    """What the connection does after a transition."""

    NOTHING = "nothing"
    SEND_CREATE = "send_create"
    """Send ``response.create`` now."""
    QUEUE_CREATE = "queue_create"
    """Keep the request; it is sent when nothing is active or in flight."""
    REQUEUE_CREATE = "requeue_create"
    """Put the refused request back at the head of the queue (once per request)."""
    SEND_QUEUED = "send_queued"
    """Send the oldest queued request, if any (else nothing)."""
    SEND_CANCEL = "send_cancel"
    """Send ``response.cancel`` and forget queued requests (they asked for what is being
    cancelled); a request still in flight is not retried if refused."""


S, T, A = ResponseState, ResponseTrigger, ResponseAction

RESPONSE_TRANSITIONS: dict[
    tuple[ResponseState, ResponseTrigger], tuple[ResponseState, ResponseAction]
] = {
    # Idle: requests go out at once; a server-started (VAD) response makes us active.
    (S.IDLE, T.CREATE): (S.REQUESTED, A.SEND_CREATE),
    (S.IDLE, T.CREATED_OTHER): (S.ACTIVE, A.NOTHING),
    (S.IDLE, T.CREATED_OURS): (S.ACTIVE, A.NOTHING),
    # Nothing to cancel: sending would only earn an error event.
    (S.IDLE, T.CANCEL): (S.IDLE, A.NOTHING),
    # A late done changes nothing, but a request may be waiting.
    (S.IDLE, T.DONE): (S.IDLE, A.SEND_QUEUED),
    # Requested: one request in flight at a time.
    (S.REQUESTED, T.CREATE): (S.REQUESTED, A.QUEUE_CREATE),
    (S.REQUESTED, T.CREATED_OURS): (S.ACTIVE, A.NOTHING),
    (S.REQUESTED, T.CREATED_OTHER): (S.ACTIVE_REQUESTED, A.NOTHING),
    # The server processes events in order: a cancel after our create cancels it.
    (S.REQUESTED, T.CANCEL): (S.REQUESTED, A.SEND_CANCEL),
    (S.REQUESTED, T.CREATE_REJECTED_BUSY): (S.ACTIVE, A.REQUEUE_CREATE),
    (S.REQUESTED, T.CREATE_FAILED): (S.IDLE, A.SEND_QUEUED),
    # Active: queue; cancel; done releases the queue.
    (S.ACTIVE, T.CREATE): (S.ACTIVE, A.QUEUE_CREATE),
    (S.ACTIVE, T.CANCEL): (S.CANCELLING, A.SEND_CANCEL),
    (S.ACTIVE, T.DONE): (S.IDLE, A.SEND_QUEUED),
    # VAD raced our request: ours is refused, or starts once this response is done.
    (S.ACTIVE_REQUESTED, T.CREATE): (S.ACTIVE_REQUESTED, A.QUEUE_CREATE),
    (S.ACTIVE_REQUESTED, T.CANCEL): (S.ACTIVE_REQUESTED, A.SEND_CANCEL),
    (S.ACTIVE_REQUESTED, T.CREATED_OURS): (S.ACTIVE, A.NOTHING),
    (S.ACTIVE_REQUESTED, T.DONE): (S.REQUESTED, A.NOTHING),
    (S.ACTIVE_REQUESTED, T.CREATE_REJECTED_BUSY): (S.ACTIVE, A.REQUEUE_CREATE),
    (S.ACTIVE_REQUESTED, T.CREATE_FAILED): (S.ACTIVE, A.NOTHING),
    # Cancelling: requests made now wait for the cancelled response's done.
    (S.CANCELLING, T.CREATE): (S.CANCELLING, A.QUEUE_CREATE),
    (S.CANCELLING, T.DONE): (S.IDLE, A.SEND_QUEUED),
    (S.CANCELLING, T.CANCEL_FAILED): (S.IDLE, A.SEND_QUEUED),
}
"""(state, trigger) -> (next state, action). A pair not listed leaves the state as it is
and does nothing; ``test_protocol_state`` drives every pair, listed or not. Errors
naming a ``response.create`` count only for the one request in flight, so the two
error triggers appear only in the states that have one."""

del S, T, A


def samples_to_ms(samples: int, sample_rate: int) -> int:
    """Whole milliseconds in ``samples`` at ``sample_rate`` Hz, rounded down.

    Rounding down keeps ``audio_end_ms`` within what was heard: the server never keeps
    audio the listener did not hear.
    """
    return samples * 1000 // sample_rate


class InterruptAction(enum.Enum):
    """What an interruption sends for the assistant item that was playing."""

    TRUNCATE = "truncate"
    """``conversation.item.truncate`` at ``audio_end_ms``."""
    DELETE = "delete"
    """``conversation.item.delete``: the listener heard none of it (under 1 ms)."""
    NOTHING = "nothing"
    """Nothing: playback had finished, the server's copy already matches what was heard."""


@dataclass(frozen=True, slots=True)
class InterruptDecision:
    """The outcome of :func:`decide_interrupt`.

    ``audio_end_ms`` is the truncation point for :attr:`InterruptAction.TRUNCATE`, the
    item's full received length for ``NOTHING``, and 0 for ``DELETE``; ``rule`` names
    the row of :data:`INTERRUPT_RULES` that decided.
    """

    action: InterruptAction
    audio_end_ms: int
    rule: str


INTERRUPT_RULES: tuple[tuple[str, str, InterruptAction], ...] = (
    # Peers truncate at 0 ms, which the server rejects: delete the unheard item.
    ("nothing_heard", "heard == 0 ms", InterruptAction.DELETE),
    # Every received sample was played and no more audio will come: truncating now
    # would be a no-op at best and, sent late, makes the model repeat itself.
    ("playback_finished", "played >= received and audio done", InterruptAction.NOTHING),
    # Otherwise cut at what was heard, never past what was received (the server
    # rejects audio_end_ms beyond the item's audio).
    ("partly_heard", "otherwise", InterruptAction.TRUNCATE),
)
"""The rows of :func:`decide_interrupt`, in the order they are tried. ``heard`` is
``min(played, received)`` in whole ms (a device cannot play what never arrived)."""


def decide_interrupt(
    *, played_samples: int, received_samples: int, audio_done: bool, sample_rate: int
) -> InterruptDecision:
    """Decide what interrupting playback of one assistant item must send.

    Args:
        played_samples: samples of the item's audio the listener heard (from the device's
            playhead), at ``sample_rate``.
        received_samples: samples of the item's audio received from the server.
        audio_done: whether the server ended the item's audio (``response.output_audio.done``).
        sample_rate: the session's output rate in Hz: 24000 for PCM16, 8000 for G.711.

    Raises:
        ValueError: negative sample counts or a rate that is not positive.
    """
    if played_samples < 0 or received_samples < 0:
        raise ValueError(
            f"sample counts must not be negative (played {played_samples}, "
            f"received {received_samples})"
        )
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    heard_ms = samples_to_ms(min(played_samples, received_samples), sample_rate)
    if heard_ms == 0:
        return InterruptDecision(InterruptAction.DELETE, 0, INTERRUPT_RULES[0][0])
    if played_samples >= received_samples and audio_done:
        received_ms = samples_to_ms(received_samples, sample_rate)
        return InterruptDecision(InterruptAction.NOTHING, received_ms, INTERRUPT_RULES[1][0])
    return InterruptDecision(InterruptAction.TRUNCATE, heard_ms, INTERRUPT_RULES[2][0])
