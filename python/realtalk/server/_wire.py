"""Wire shapes of the embedded server: session objects, items, names per dialect.

What this module owns: the server's full effective session configuration in each
dialect's own shape (GA nested, beta flat) with the API's defaults, how a
``session.update`` patch is merged into it, and small builders for items and content
parts. What it must never do: validate client input (``_validate`` does) or perform I/O.
"""

from __future__ import annotations

import copy
import itertools
import secrets
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from realtalk import core
from realtalk.protocol import AudioFormat

Dialect = Literal["ga", "beta"]
JSON = dict[str, Any]
Int16Array = npt.NDArray[np.int16]

#: GA names of the output events beta spells differently.
BETA_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}

DEFAULT_INSTRUCTIONS = (
    "You are realtalk's embedded test server. Answers come from a local brain, not a model."
)

_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """An id in the API's style (``item_…``, ``resp_…``, ``event_…``): unique per process."""
    return f"{prefix}_{next(_counter):06d}{secrets.token_hex(5)}"


def event_name(dialect: Dialect, ga_name: str) -> str:
    """The wire name of a server event in ``dialect``."""
    return BETA_NAMES.get(ga_name, ga_name) if dialect == "beta" else ga_name


def default_session(dialect: Dialect, model: str, *, expires_at: int) -> JSON:
    """The configuration ``session.created`` announces: the API's documented defaults."""
    turn_detection: JSON = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    }
    if dialect == "ga":
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": new_id("sess"),
            "model": model,
            "expires_at": expires_at,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "include": None,
            "truncation": "auto",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {**turn_detection, "idle_timeout_ms": None},
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "marin",
                    "speed": 1.0,
                },
            },
        }
    return {
        "id": new_id("sess"),
        "object": "realtime.session",
        "model": model,
        "expires_at": expires_at,
        "modalities": ["text", "audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": turn_detection,
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
    }


# Keys whose value replaces the old one whole (objects that are one setting), rather
# than being merged key by key like the containers "audio", "input", "output".
_REPLACED = {
    "turn_detection",
    "transcription",
    "input_audio_transcription",
    "noise_reduction",
    "input_audio_noise_reduction",
    "format",
    "tools",
    "tracing",
    "prompt",
    "truncation",
    "tool_choice",
    "output_modalities",
    "modalities",
}
_VAD_DEFAULTS = {"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}


def merge_session(current: JSON, patch: Mapping[str, Any]) -> JSON:
    """``current`` with a ``session.update`` patch applied: only the keys present change;
    ``null`` turns a setting off; a turn detection object gets the defaults it omits."""
    merged = copy.deepcopy(current)
    _merge_into(merged, patch)
    return merged


def _merge_into(target: JSON, patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if key in ("turn_detection",) and isinstance(value, dict):
            filled = dict(value)
            filled.setdefault("create_response", True)
            filled.setdefault("interrupt_response", True)
            if filled.get("type") == "server_vad":
                for k, v in _VAD_DEFAULTS.items():
                    filled.setdefault(k, v)
            elif filled.get("type") == "semantic_vad":
                filled.setdefault("eagerness", "auto")
            target[key] = filled
        elif key in _REPLACED or not isinstance(value, dict):
            target[key] = copy.deepcopy(value)
        else:
            inner = target.get(key)
            if not isinstance(inner, dict):
                inner = {}
                target[key] = inner
            _merge_into(inner, value)


def to_pcm16(data: bytes, fmt: AudioFormat) -> Int16Array:
    """Client audio bytes in the session's input format as int16 samples."""
    if fmt == "g711_ulaw":
        return core.ulaw_decode(data)
    if fmt == "g711_alaw":
        return core.alaw_decode(data)
    usable = len(data) - len(data) % 2
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)


def from_pcm16(samples: Int16Array, fmt: AudioFormat) -> bytes:
    """int16 samples as bytes of the session's output format."""
    if fmt == "g711_ulaw":
        return core.ulaw_encode(samples)
    if fmt == "g711_alaw":
        return core.alaw_encode(samples)
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()


def message_item(
    item_id: str, role: str, content: list[JSON], *, status: str = "completed"
) -> JSON:
    """A ``message`` item as the server reports it."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": role,
        "status": status,
        "content": content,
    }


def assistant_part(dialect: Dialect, audio: bool, text: str = "") -> JSON:
    """An assistant content part as items carry it (GA ``output_audio``/``output_text``)."""
    if audio:
        kind = "output_audio" if dialect == "ga" else "audio"
        return {"type": kind, "transcript": text}
    kind = "output_text" if dialect == "ga" else "text"
    return {"type": kind, "text": text}


def stream_part(audio: bool, text: str = "") -> JSON:
    """The ``part`` of ``response.content_part.*`` (``audio``/``text`` in both dialects)."""
    return {"type": "audio", "transcript": text} if audio else {"type": "text", "text": text}
