"""Realistic server event sequences of both dialects, shared by the sans-IO and wire tests.

Each builder returns the list of server event objects a Realtime server sends for one
situation, in the order PROTOCOL.md section 8 gives (GA names, renamed for beta). Audio
payloads are real base64 PCM16 (or G.711) of a known number of samples.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any, Literal

import numpy as np

Dialect = Literal["ga", "beta"]
JSON = dict[str, Any]

_BETA_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}

_ids = itertools.count(1)


def name(dialect: Dialect, ga_name: str) -> str:
    """The wire name of a server event in ``dialect``."""
    return _BETA_NAMES.get(ga_name, ga_name) if dialect == "beta" else ga_name


def event(dialect: Dialect, ga_name: str, **fields: Any) -> JSON:
    """One server event object with a fresh ``event_id``."""
    return {"type": name(dialect, ga_name), "event_id": f"event_{next(_ids)}", **fields}


def session_object(dialect: Dialect, **overrides: Any) -> JSON:
    """A realistic ``session`` object of ``session.created``/``updated``."""
    if dialect == "ga":
        session: JSON = {
            "type": "realtime",
            "object": "realtime.session",
            "id": "sess_001",
            "model": "gpt-realtime",
            "output_modalities": ["audio"],
            "instructions": "You are a helpful assistant.",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 200,
                        "idle_timeout_ms": None,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "marin",
                    "speed": 1.0,
                },
            },
        }
    else:
        session = {
            "id": "sess_001",
            "object": "realtime.session",
            "model": "gpt-4o-realtime-preview",
            "modalities": ["audio", "text"],
            "instructions": "You are a helpful assistant.",
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "create_response": True,
                "interrupt_response": True,
            },
            "tools": [],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
        }
    session.update(overrides)
    return session


def session_created(dialect: Dialect, **overrides: Any) -> list[JSON]:
    """``session.created`` then ``conversation.created``."""
    return [
        event(dialect, "session.created", session=session_object(dialect, **overrides)),
        event(
            dialect,
            "conversation.created",
            conversation={"id": "conv_001", "object": "realtime.conversation"},
        ),
    ]


def pcm16_payload(samples: int, *, seed: int = 0) -> str:
    """Base64 of ``samples`` PCM16 samples of a quiet tone."""
    t = np.arange(samples) + seed
    pcm = (3000 * np.sin(2 * np.pi * 440 * t / 24000)).astype("<i2")
    return base64.b64encode(pcm.tobytes()).decode()


def _message(item_id: str, role: str, status: str, content: list[JSON]) -> JSON:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": role,
        "status": status,
        "content": content,
    }


def user_text_item_events(
    dialect: Dialect, item_id: str, text: str, previous: str | None = None
) -> list[JSON]:
    """The server's answer to ``conversation.item.create`` of a user text message."""
    item = _message(item_id, "user", "completed", [{"type": "input_text", "text": text}])
    if dialect == "beta":
        return [event(dialect, "conversation.item.created", previous_item_id=previous, item=item)]
    return [
        event(dialect, "conversation.item.added", previous_item_id=previous, item=item),
        event(dialect, "conversation.item.done", previous_item_id=previous, item=item),
    ]


def response_opening(dialect: Dialect, response_id: str, item: JSON) -> list[JSON]:
    """``response.created``, ``rate_limits.updated``, then ``item`` added to the output
    and to the conversation."""
    created = {
        "id": response_id,
        "object": "realtime.response",
        "status": "in_progress",
        "output": [],
    }
    limits = [{"name": "tokens", "limit": 20000, "remaining": 19000, "reset_seconds": 1.2}]
    added = "conversation.item.added" if dialect == "ga" else "conversation.item.created"
    return [
        event(dialect, "response.created", response=created),
        event(dialect, "rate_limits.updated", rate_limits=limits),
        event(
            dialect,
            "response.output_item.added",
            response_id=response_id,
            output_index=0,
            item=item,
        ),
        event(dialect, added, previous_item_id=None, item=item),
    ]


def response_closing(
    dialect: Dialect,
    response_id: str,
    item: JSON,
    status: str = "completed",
    reason: str | None = None,
) -> list[JSON]:
    """``item`` done in the output (and, GA, in the conversation), then ``response.done``."""
    response: JSON = {"id": response_id, "object": "realtime.response", "status": status}
    response["output"] = [item]
    if reason is not None:
        response["status_details"] = {"type": status, "reason": reason}
    if status == "completed":
        response["usage"] = {"total_tokens": 20, "input_tokens": 10, "output_tokens": 10}
    events = [
        event(
            dialect, "response.output_item.done", response_id=response_id, output_index=0, item=item
        )
    ]
    if dialect == "ga":
        events.append(event(dialect, "conversation.item.done", previous_item_id=None, item=item))
    events.append(event(dialect, "response.done", response=response))
    return events


def text_response(
    dialect: Dialect, response_id: str, item_id: str, chunks: list[str]
) -> list[JSON]:
    """A whole text response: created … deltas … done (status completed)."""
    text_type = "output_text" if dialect == "ga" else "text"
    common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
    full = "".join(chunks)
    empty = _message(item_id, "assistant", "in_progress", [])
    final = _message(item_id, "assistant", "completed", [{"type": text_type, "text": full}])
    events = [
        *response_opening(dialect, response_id, empty),
        event(dialect, "response.content_part.added", **common, part={"type": "text", "text": ""}),
    ]
    events += [event(dialect, "response.output_text.delta", **common, delta=c) for c in chunks]
    events += [
        event(dialect, "response.output_text.done", **common, text=full),
        event(dialect, "response.content_part.done", **common, part={"type": "text", "text": full}),
    ]
    events += response_closing(dialect, response_id, final, "completed", None)
    return events


def audio_response_start(dialect: Dialect, response_id: str, item_id: str) -> list[JSON]:
    """The opening events of an audio response, up to the first audio delta."""
    empty = _message(item_id, "assistant", "in_progress", [])
    part_type = "audio"
    return [
        *response_opening(dialect, response_id, empty),
        event(
            dialect,
            "response.content_part.added",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            part={"type": part_type, "transcript": ""},
        ),
    ]


def audio_deltas(
    dialect: Dialect,
    response_id: str,
    item_id: str,
    chunk_samples: list[int],
    words: list[str] | None = None,
) -> list[JSON]:
    """Audio deltas of the given sizes, each followed by a transcript delta if words remain."""
    common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
    events = []
    words = list(words or [])
    for i, n in enumerate(chunk_samples):
        events.append(
            event(dialect, "response.output_audio.delta", **common, delta=pcm16_payload(n, seed=i))
        )
        if words:
            events.append(
                event(
                    dialect, "response.output_audio_transcript.delta", **common, delta=words.pop(0)
                )
            )
    return events


def audio_response_end(
    dialect: Dialect,
    response_id: str,
    item_id: str,
    transcript: str,
    status: str = "completed",
    reason: str | None = None,
) -> list[JSON]:
    """The closing events of an audio response (``status`` cancelled for a barge-in)."""
    common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
    audio_type = "output_audio" if dialect == "ga" else "audio"
    final = _message(
        item_id,
        "assistant",
        "completed" if status == "completed" else "incomplete",
        [{"type": audio_type, "transcript": transcript}],
    )
    events = [
        event(dialect, "response.output_audio.done", **common),
        event(dialect, "response.output_audio_transcript.done", **common, transcript=transcript),
        event(
            dialect,
            "response.content_part.done",
            **common,
            part={"type": "audio", "transcript": transcript},
        ),
    ]
    events += response_closing(dialect, response_id, final, status, reason)
    return events


def vad_user_turn(
    dialect: Dialect, item_id: str, start_ms: int, end_ms: int, transcript: str | None = None
) -> list[JSON]:
    """Server VAD hears the user: speech started/stopped, committed, the user item."""
    item = _message(item_id, "user", "completed", [{"type": "input_audio", "transcript": None}])
    events = [
        event(
            dialect, "input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=item_id
        ),
        event(dialect, "input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id),
        event(dialect, "input_audio_buffer.committed", previous_item_id=None, item_id=item_id),
        event(
            dialect,
            "conversation.item.created" if dialect == "beta" else "conversation.item.added",
            previous_item_id=None,
            item=item,
        ),
    ]
    if dialect == "ga":
        events.append(event(dialect, "conversation.item.done", previous_item_id=None, item=item))
    if transcript is not None:
        events.append(
            event(
                dialect,
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=transcript,
                usage={"type": "duration", "seconds": 1.0},
            )
        )
    return events


def function_call_response(
    dialect: Dialect, response_id: str, item_id: str, call_id: str, fn: str, arguments: str
) -> list[JSON]:
    """A response whose one output is a function call with ``arguments`` (JSON text)."""
    common = {"response_id": response_id, "item_id": item_id, "output_index": 0, "call_id": call_id}
    start = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "in_progress",
        "name": fn,
        "call_id": call_id,
        "arguments": "",
    }
    final = {**start, "status": "completed", "arguments": arguments}
    half = len(arguments) // 2
    done_fields: JSON = {**common, "arguments": arguments}
    if dialect == "ga":
        done_fields["name"] = fn
    events = [
        *response_opening(dialect, response_id, start),
        event(dialect, "response.function_call_arguments.delta", **common, delta=arguments[:half]),
        event(dialect, "response.function_call_arguments.delta", **common, delta=arguments[half:]),
        event(dialect, "response.function_call_arguments.done", **done_fields),
    ]
    events += response_closing(dialect, response_id, final, "completed", None)
    return events


def function_output_item_events(
    dialect: Dialect, item_id: str, call_id: str, output: str
) -> list[JSON]:
    """The server's answer to ``conversation.item.create`` of a function call output."""
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call_output",
        "status": "completed",
        "call_id": call_id,
        "output": output,
    }
    if dialect == "beta":
        return [event(dialect, "conversation.item.created", previous_item_id=None, item=item)]
    return [
        event(dialect, "conversation.item.added", previous_item_id=None, item=item),
        event(dialect, "conversation.item.done", previous_item_id=None, item=item),
    ]


def error(
    dialect: Dialect,
    message: str,
    *,
    code: str | None = None,
    caused_by: str | None = None,
    param: str | None = None,
    error_type: str = "invalid_request_error",
) -> JSON:
    """A server ``error`` event, naming the client event that caused it."""
    err: JSON = {
        "type": error_type,
        "code": code,
        "message": message,
        "param": param,
        "event_id": caused_by,
    }
    return event(dialect, "error", error=err)
