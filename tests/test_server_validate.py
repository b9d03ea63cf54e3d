"""The embedded server's client-event validation (realtalk.server._validate) and its error
catalogue (realtalk.server._errors), and the generator of the schema they share.

Three kinds of evidence:

* everything a client may legitimately send passes: hand-written realistic events, one
  fully populated event per union member generated from the ``openai`` package's models,
  and every event realtalk's own protocol layer produces;
* a differential test against the ``openai`` models, validated strictly (no coercion, no
  unknown keys anywhere), over every mutation of those events that drops a key, adds a
  misspelled one, or swaps a value for one of another JSON type: when the models reject,
  we reject; when they accept, we accept, except for the documented differences (ranges
  and sizes the models do not encode, and ``null`` where the send-side types forbid it).
  The one thing we accept that the models reject is GA ``response.input`` item references,
  which the protocol documents and the package's types omit;
* the exact code, param and message of every error, as the live API words them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import realtime as ga_types
from openai.types.beta import realtime as beta_types

from realtalk.exceptions import ConfigurationError
from realtalk.protocol import (
    Connection,
    ConversationItemDelete,
    ConversationItemRetrieve,
    ConversationItemTruncate,
    FunctionTool,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    InputTranscription,
    NoiseReduction,
    SemanticVad,
    ServerVad,
    SessionConfig,
)
from realtalk.server import _errors, _schema, _validate
from realtalk.server._errors import ApiError, ValidationProblem
from realtalk.server._validate import (
    client_event_id,
    find_problem,
    input_audio_bytes_limit,
    supported_event_types,
    validate_client_event,
)

REPO = Path(__file__).resolve().parent.parent
PROTOCOL_DIR = REPO.parent / "shared" / "protocol"
DIALECTS = ("ga", "beta")
Event = dict[str, Any]


# --- the openai package as the reference ------------------------------------------------------


def _event_classes(union: object) -> dict[str, type[pydantic.BaseModel]]:
    inner = typing.get_args(union)[0]  # Annotated[Union[...], PropertyInfo]
    classes = {}
    for cls in typing.get_args(inner):
        (event_type,) = typing.get_args(cls.model_fields["type"].annotation)
        classes[event_type] = cls
    return classes


OPENAI = {
    "ga": _event_classes(ga_types.RealtimeClientEvent),
    "beta": _event_classes(beta_types.RealtimeClientEvent),
}


def _no_extras(value: object) -> bool:
    if isinstance(value, pydantic.BaseModel):
        if value.model_extra:
            return False
        return all(_no_extras(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, list):
        return all(_no_extras(v) for v in value)
    if isinstance(value, dict):
        return all(_no_extras(v) for v in value.values())
    return True


def openai_accepts(event: object, dialect: str) -> bool:
    """The openai model of the event's type validates it strictly, with no unknown key."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return False
    cls = OPENAI[dialect].get(event["type"])
    if cls is None:
        return False
    try:
        model = cls.model_validate(event, strict=True)
    except pydantic.ValidationError:
        return False
    return _no_extras(model)


def _example(annotation: Any, k: int, depth: int = 0) -> Any:
    """A JSON value of ``annotation``; ``k`` picks the member of every union and the value
    of every literal (``k % len``), so ``k = 0..n`` reach every member somewhere."""
    assert depth < 20, annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _example(args[0], k, depth + 1)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        return _example(members[k % len(members)], k, depth + 1)
    if origin is typing.Literal:
        return args[k % len(args)]
    if origin is list:
        return [_example(args[0], k, depth + 1)]
    if origin is dict:
        return {"key": _example(args[1], k, depth + 1)}
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return {
            field.alias or name: _example(field.annotation, k, depth + 1)
            for name, field in annotation.model_fields.items()
        }
    simple = {str: "text", bool: True, int: 1, float: 1.0, object: {"any": [1, "x", None]}}
    return simple[annotation]


def openai_examples(dialect: str) -> list[Event]:
    """Every client event class of the dialect with every field set, once per union member."""
    seen: dict[str, Event] = {}
    for cls in OPENAI[dialect].values():
        for k in range(12):
            event = _example(cls, k)
            seen.setdefault(json.dumps(event, sort_keys=True), event)
    return list(seen.values())


# --- hand-written realistic events --------------------------------------------------------------

_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
_PCM = {"type": "audio/pcm", "rate": 24000}

GA_VALID: list[Event] = [
    {
        "type": "session.update",
        "event_id": "evt_1",
        "session": {
            "type": "realtime",
            "model": "gpt-realtime",
            "instructions": "Be brief.",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {
                "input": {
                    "format": _PCM,
                    "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 500,
                        "create_response": True,
                        "interrupt_response": True,
                        "idle_timeout_ms": None,
                    },
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.5},
            },
            "tools": [
                _TOOL,
                {"type": "mcp", "server_label": "docs", "server_url": "https://example.com/mcp"},
            ],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "tracing": "auto",
            "truncation": {
                "type": "retention_ratio",
                "retention_ratio": 0.8,
                "token_limits": {"post_instructions": 8000},
            },
            "include": ["item.input_audio_transcription.logprobs"],
            "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Paris"}},
        },
    },
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "input": {"turn_detection": None, "noise_reduction": None, "transcription": None},
                "output": {"voice": {"id": "voice_123"}},
            },
            "tracing": None,
            "truncation": "disabled",
            "max_output_tokens": 4096,
            "tool_choice": "required",
        },
    },
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "input": {
                    "format": {"rate": 24000},  # no "type": the PCM member
                    "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
                }
            },
            "tools": [{"name": "f", "parameters": {}}],  # a function tool without "type"
            "reasoning": {"effort": "low"},
            "parallel_tool_calls": False,
        },
    },
    {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcma"},
                    "transcription": {"model": "gpt-4o-transcribe", "prompt": "names"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 200},
                }
            },
        },
    },
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What's the weather?"},
                {"type": "input_audio", "audio": "AAAA"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
            ],
        },
    },
    {
        "type": "conversation.item.create",
        "previous_item_id": "root",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text"}]},
    },
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi."}],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"t": 21}'},
    },
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "conversation.item.retrieve", "item_id": "item_1", "event_id": "evt_2"},
    {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 1500,
    },
    {"type": "input_audio_buffer.append", "audio": "AAAAAA=="},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear", "event_id": "evt_3"},
    {"type": "output_audio_buffer.clear"},
    {"type": "response.create"},
    {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "output_modalities": ["text"],
            "instructions": "Summarise.",
            "metadata": {"topic": "summary"},
            "max_output_tokens": 200,
            "tools": [_TOOL],
            "tool_choice": "auto",
            "audio": {"output": {"format": _PCM, "voice": "alloy"}},
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text"}]},
            ],
        },
    },
    {"type": "response.cancel"},
    {"type": "response.cancel", "response_id": "resp_1"},
]

BETA_VALID: list[Event] = [
    {
        "type": "session.update",
        "event_id": "evt_1",
        "session": {
            "model": "gpt-4o-realtime-preview",
            "modalities": ["text", "audio"],
            "instructions": "Be brief.",
            "voice": "verse",
            "input_audio_format": "pcm16",
            "output_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1", "language": "en"},
            "input_audio_noise_reduction": {"type": "far_field"},
            "turn_detection": {"type": "server_vad", "threshold": 0.6, "silence_duration_ms": 400},
            "tools": [_TOOL],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": 1024,
            "speed": 0.25,
            "tracing": {"workflow_name": "demo", "group_id": "g", "metadata": {"a": 1}},
        },
    },
    {
        "type": "session.update",
        "session": {
            "turn_detection": None,
            "input_audio_transcription": None,
            "input_audio_noise_reduction": None,
            "tracing": None,
            "max_response_output_tokens": "inf",
            "temperature": 1.2,
        },
    },
    {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "g711_alaw",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "prompt": "x"},
            "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
            "include": ["item.input_audio_transcription.logprobs"],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}, {"type": "input_audio"}],
        },
    },
    {
        "type": "conversation.item.create",
        "previous_item_id": "item_0",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
    },
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "conversation.item.retrieve", "item_id": "item_1"},
    {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 0,
    },
    {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e"},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {"type": "output_audio_buffer.clear"},
    {"type": "response.create"},
    {
        "type": "response.create",
        "response": {
            "conversation": "auto",
            "modalities": ["text"],
            "voice": "alloy",
            "output_audio_format": "pcm16",
            "temperature": 0.6,
            "max_response_output_tokens": "inf",
            "metadata": {"k": "v"},
            "tools": [_TOOL],
            "tool_choice": "none",
            "input": [
                {"type": "item_reference", "id": "item_1"},
                {"type": "message", "role": "user", "content": [{"type": "input_text"}]},
            ],
        },
    },
    {"type": "response.cancel", "response_id": "resp_1"},
]

VALID = {"ga": GA_VALID, "beta": BETA_VALID}


def _ids(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_schema_has_exactly_the_client_events_of_the_openai_package(dialect: str) -> None:
    assert set(supported_event_types(dialect)) == set(OPENAI[dialect])  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_hand_written_examples_cover_every_event_type(dialect: str) -> None:
    assert set(_ids(VALID[dialect])) == set(OPENAI[dialect])


@pytest.mark.parametrize(
    ("dialect", "event"),
    [(d, e) for d in DIALECTS for e in VALID[d]],
    ids=[f"{d}-{e['type']}" for d in DIALECTS for e in VALID[d]],
)
def test_hand_written_events_are_valid(dialect: str, event: Event) -> None:
    assert openai_accepts(event, dialect), "the example itself is wrong"
    assert validate_client_event(event, dialect) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_field_and_union_member_the_openai_models_express_is_valid(dialect: str) -> None:
    examples = openai_examples(dialect)
    assert len(examples) > 2 * len(OPENAI[dialect])
    for event in examples:
        assert openai_accepts(event, dialect), event
        assert validate_client_event(event, dialect) is None, event  # type: ignore[arg-type]


# --- realtalk's own events -------------------------------------------------------------------


def _full_config(dialect: str) -> SessionConfig:
    return SessionConfig(
        instructions="Be brief.",
        voice="alloy",
        output_modalities=("text",),
        temperature=0.7 if dialect == "beta" else None,
        max_output_tokens=4096,
        turn_detection=ServerVad(
            threshold=1.0,
            prefix_padding_ms=300,
            silence_duration_ms=500,
            create_response=True,
            interrupt_response=False,
            idle_timeout_ms=6000 if dialect == "ga" else None,
        ),
        input_transcription=InputTranscription(language="en", prompt="names"),
        noise_reduction=NoiseReduction(type="near_field"),
        input_format="g711_ulaw",
        output_format="g711_alaw",
        tools=(FunctionTool(name="get_time", description="Now."), FunctionTool(name="f-2")),
        tool_choice="get_time" if dialect == "ga" else "required",
        speed=1.5,
        model="gpt-realtime",
    )


def _realtalk_texts(dialect: str) -> list[str]:
    conn = Connection(dialect)  # type: ignore[arg-type]
    conn.update_session(_full_config(dialect))
    conn.update_session(SessionConfig(turn_detection=False, input_transcription=False))
    conn.update_session(
        SessionConfig(noise_reduction=False, turn_detection=SemanticVad(eagerness="auto"))
    )
    conn.update_session(SessionConfig(output_modalities=("audio",), tools=()))
    conn.add_user_text("hello")
    conn.add_function_output("call_1", '{"ok": true}')
    conn.add_item(
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hi"}]}
        if dialect == "beta"
        else {"type": "message", "role": "system", "content": [{"type": "input_text"}]},
        previous_item_id="root",
    )
    conn.append_audio(np.zeros(480, dtype=np.int16))
    conn.send(InputAudioBufferCommit())
    conn.send(InputAudioBufferClear(event_id="mine"))
    conn.create_response()
    conn.create_response({"conversation": "none", "instructions": "x", "metadata": {"a": "b"}})
    conn.cancel_response()
    conn.send(ConversationItemTruncate(item_id="item_1", content_index=0, audio_end_ms=1200))
    conn.send(ConversationItemDelete(item_id="item_1"))
    conn.send(ConversationItemRetrieve(item_id="item_2"))
    # Switch the input format to G.711 the way the server does, then append again.
    session = (
        {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}}
        if dialect == "ga"
        else {"input_audio_format": "g711_alaw"}
    )
    conn.receive(json.dumps({"type": "session.updated", "event_id": "e", "session": session}))
    conn.append_audio(np.arange(-800, 800, dtype=np.int16))
    return conn.data_to_send()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_event_realtalk_sends_is_valid(dialect: str) -> None:
    texts = _realtalk_texts(dialect)
    kinds = {json.loads(t)["type"] for t in texts}
    assert kinds >= {
        "session.update",
        "conversation.item.create",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "response.create",
        "response.cancel",
        "conversation.item.truncate",
        "conversation.item.delete",
        "conversation.item.retrieve",
    }
    for text in texts:
        event = json.loads(text)
        assert validate_client_event(event, dialect) is None, text  # type: ignore[arg-type]
        assert openai_accepts(event, dialect), text


_BETA_MODELS = [
    "gpt-realtime",
    "gpt-realtime-2025-08-28",
    "gpt-4o-realtime-preview",
    "gpt-4o-mini-realtime-preview-2024-12-17",
]


@st.composite
def session_configs(draw: st.DrawFn, dialect: str) -> SessionConfig:
    """Any SessionConfig realtalk can render for ``dialect``."""
    beta = dialect == "beta"
    values: dict[str, Any] = {}

    def maybe(name: str, strategy: st.SearchStrategy[Any]) -> None:
        if draw(st.booleans()):
            values[name] = draw(strategy)

    ms = st.integers(0, 10_000)
    flags = st.none() | st.booleans()
    maybe("instructions", st.text(max_size=20))
    maybe("voice", st.sampled_from(["alloy", "marin", "cedar", "verse", "custom-voice"]))
    modalities = [("text",), ("audio",)] + ([("text", "audio")] if beta else [])
    maybe("output_modalities", st.sampled_from(modalities))
    if beta:
        maybe("temperature", st.floats(0.6, 1.2))
    maybe("max_output_tokens", st.integers(1, 4096) | st.just("inf"))
    server_vad = st.builds(
        ServerVad,
        threshold=st.none() | st.floats(0.0, 1.0),
        prefix_padding_ms=st.none() | ms,
        silence_duration_ms=st.none() | ms,
        create_response=flags,
        interrupt_response=flags,
        idle_timeout_ms=st.none() if beta else st.none() | ms,
    )
    semantic_vad = st.builds(
        SemanticVad,
        eagerness=st.none() | st.sampled_from(["low", "medium", "high", "auto"]),
        create_response=flags,
        interrupt_response=flags,
    )
    maybe("turn_detection", st.just(False) | server_vad | semantic_vad)
    transcription = st.builds(
        InputTranscription,
        model=st.sampled_from(["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"]),
        language=st.none() | st.sampled_from(["en", "fr"]),
        prompt=st.none() | st.text(max_size=10),
    )
    maybe("input_transcription", st.just(False) | transcription)
    noise = st.builds(NoiseReduction, type=st.sampled_from(["near_field", "far_field"]))
    maybe("noise_reduction", st.just(False) | noise)
    formats = st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw"])
    maybe("input_format", formats)
    maybe("output_format", formats)
    names = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
    tool = st.builds(FunctionTool, name=names, description=st.text(max_size=10))
    maybe("tools", st.lists(tool, max_size=3, unique_by=lambda t: t.name))
    choices = ["auto", "none", "required"]
    if not beta and values.get("tools"):
        choices += [t.name for t in values["tools"] if t.name not in choices]
    maybe("tool_choice", st.sampled_from(choices))
    maybe("speed", st.floats(0.25, 1.5))
    maybe("model", st.sampled_from(_BETA_MODELS) if beta else st.text(min_size=1, max_size=20))
    return SessionConfig(**values)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=100)
@given(data=st.data())
def test_any_rendered_session_config_is_valid(dialect: str, data: st.DataObject) -> None:
    config = data.draw(session_configs(dialect))
    try:
        session = config.render(dialect)  # type: ignore[arg-type]
    except ConfigurationError:
        return  # realtalk refuses what the dialect cannot express; nothing is sent
    event = {"type": "session.update", "session": session}
    assert validate_client_event(event, dialect) is None, event  # type: ignore[arg-type]


# --- differential against the openai models ---------------------------------------------------

# Problems the openai models cannot see: documented ranges and sizes, and null for a field
# whose send-side type is not Optional (the response models make every field nullable).
_DOCUMENTED = {
    "decimal_below_min_value",
    "decimal_above_max_value",
    "integer_below_min_value",
    "integer_above_max_value",
    "string_above_max_length",
    "object_above_max_properties",
}
_REPLACEMENTS: tuple[object, ...] = (None, True, 7, 2.5, "bogus", [], {"zz": 1})


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def _with(obj: Any, path: tuple[Any, ...], change: Any) -> Any:
    """A copy of ``obj`` with ``change(node)`` applied at ``path``; only the containers on
    the path are copied."""
    if not path:
        return change(obj)
    head, rest = path[0], path[1:]
    copy = list(obj) if isinstance(obj, list) else dict(obj)
    copy[head] = _with(obj[head], rest, change)
    return copy


def _nodes(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _nodes(value, (*path, i))


def mutations(event: Event) -> Iterator[Event]:
    """Every single-step corruption: drop a key, add a misspelled or unknown one, or replace
    a value with one of each JSON type."""
    for path, node in _nodes(event):
        if isinstance(node, dict):
            for key in node:

                def drop(d: dict[str, Any], key: str = key) -> dict[str, Any]:
                    return {k: v for k, v in d.items() if k != key}

                def misspell(d: dict[str, Any], key: str = key) -> dict[str, Any]:
                    return {(k[:-1] if k == key else k): v for k, v in d.items()}

                yield _with(event, path, drop)
                if len(key) > 1:
                    yield _with(event, path, misspell)
            yield _with(event, path, lambda d: {**d, "zz_unknown": 1})
        if path:
            for replacement in _REPLACEMENTS:
                yield _with(event, path, lambda _, r=replacement: r)


def _bases(dialect: str) -> list[Event]:
    # The hand-written events and the generated ones (every field set, every union member).
    return VALID[dialect] + openai_examples(dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_differential_against_the_openai_models(dialect: str) -> None:
    rejected_by_both = documented = 0
    for base in _bases(dialect):
        for event in mutations(base):
            ours = validate_client_event(event, dialect)  # type: ignore[arg-type]
            if not openai_accepts(event, dialect):
                assert ours is not None, f"openai rejects, we accept: {event}"
                rejected_by_both += 1
            elif ours is not None:
                allowed = ours.code in _DOCUMENTED or ours.message.endswith("but got null instead.")
                assert allowed, f"openai accepts, we reject ({ours}): {event}"
                documented += 1
    assert rejected_by_both > 1000
    assert documented > 50


def test_ga_response_input_takes_item_references() -> None:
    # Documented (PROTOCOL.md 5.2, the field's description) but not in the package's types.
    event: Event = {
        "type": "response.create",
        "response": {"conversation": "none", "input": [{"type": "item_reference", "id": "i"}]},
    }
    assert not openai_accepts(event, "ga")
    assert validate_client_event(event, "ga") is None
    event["response"]["input"] = [{"type": "item_reference"}]
    error = validate_client_event(event, "ga")
    assert error is not None
    assert error.param == "response.input[0].id"


def test_append_fast_path_matches_the_generic_path() -> None:
    models = _schema.GA_MODELS
    fields = models[_schema.GA_EVENTS["input_audio_buffer.append"]]
    base = {"type": "input_audio_buffer.append", "event_id": "e", "audio": "AAAA"}
    for event in [base, *mutations(base), {"audio": 1, "type": "input_audio_buffer.append"}]:
        if event.get("type") != "input_audio_buffer.append":
            continue
        assert _validate._append(event) == _validate._object(event, fields, "", models), event


# --- exact errors --------------------------------------------------------------------------

LONG_KEY = "K" * 65


def case(dialect: str, event: object, code: str, param: str | None, message: str) -> Any:
    return pytest.param(dialect, event, code, param, message, id=f"{dialect}-{code}-{param}")


CASES = [  # (dialect, event, code, param, message)
    case(
        "ga",
        [],
        "invalid_type",
        None,
        "Invalid type for event: expected an object, but got an array instead.",
    ),
    case(
        "ga",
        {"event_id": "e"},
        "missing_required_parameter",
        "type",
        "Missing required parameter: 'type'.",
    ),
    case(
        "ga",
        {"type": 3},
        "invalid_type",
        "type",
        "Invalid type for 'type': expected a string, but got an integer instead.",
    ),
    case(
        "ga",
        {"type": "nope"},
        "invalid_value",
        "type",
        (
            "Invalid value: 'nope'. Supported values are: 'session.update', "
            "'input_audio_buffer.append', 'input_audio_buffer.commit', "
            "'input_audio_buffer.clear', 'conversation.item.create', "
            "'conversation.item.truncate', 'conversation.item.delete', "
            "'conversation.item.retrieve', 'response.create', 'response.cancel', and "
            "'output_audio_buffer.clear'."
        ),
    ),
    case(
        "beta",
        {"type": "nope"},
        "invalid_value",
        "type",
        (
            "Invalid value: 'nope'. Supported values are: 'session.update', "
            "'transcription_session.update', 'input_audio_buffer.append', "
            "'input_audio_buffer.commit', 'input_audio_buffer.clear', "
            "'conversation.item.create', 'conversation.item.truncate', "
            "'conversation.item.delete', 'conversation.item.retrieve', 'response.create', "
            "'response.cancel', and 'output_audio_buffer.clear'."
        ),
    ),
    case(
        "ga",
        {"type": "transcription_session.update", "session": {}},
        "invalid_value",
        "type",
        (
            "Invalid value: 'transcription_session.update'. Supported values are: "
            "'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', "
            "'input_audio_buffer.clear', 'conversation.item.create', "
            "'conversation.item.truncate', 'conversation.item.delete', "
            "'conversation.item.retrieve', 'response.create', 'response.cancel', and "
            "'output_audio_buffer.clear'."
        ),
    ),
    case(
        "ga",
        {"type": "response.create", "foo": 1},
        "unknown_parameter",
        "foo",
        "Unknown parameter: 'foo'.",
    ),
    case(
        "ga",
        {"type": "session.update", "session": {"type": "realtime", "foo": 1}},
        "unknown_parameter",
        "session.foo",
        "Unknown parameter: 'session.foo'.",
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detecton": None}}},
        },
        "unknown_parameter",
        "session.audio.input.turn_detecton",
        "Unknown parameter: 'session.audio.input.turn_detecton'.",
    ),
    case(
        "ga",
        {"type": "session.update", "session": {"type": "realtime", "voice": "alloy"}},
        "unknown_parameter",
        "session.voice",
        "Unknown parameter: 'session.voice'.",
    ),
    case(
        "ga",
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "txt": "hi"}],
            },
        },
        "unknown_parameter",
        "item.content[0].txt",
        "Unknown parameter: 'item.content[0].txt'.",
    ),
    case(
        "beta",
        {"type": "session.update", "session": {"input_audio_transcription": {"enabled": True}}},
        "unknown_parameter",
        "session.input_audio_transcription.enabled",
        "Unknown parameter: 'session.input_audio_transcription.enabled'.",
    ),
    case(
        "ga",
        {"type": "session.update", "session": {"instructions": "x", "voice": "alloy"}},
        "missing_required_parameter",
        "session.type",
        "Missing required parameter: 'session.type'.",
    ),
    case(
        "ga",
        {"type": "session.update"},
        "missing_required_parameter",
        "session",
        "Missing required parameter: 'session'.",
    ),
    case(
        "ga",
        {"type": "conversation.item.create", "item": {"role": "user", "content": []}},
        "missing_required_parameter",
        "item.type",
        "Missing required parameter: 'item.type'.",
    ),
    case(
        "ga",
        {"type": "conversation.item.create", "item": {"type": "message", "content": []}},
        "missing_required_parameter",
        "item.role",
        "Missing required parameter: 'item.role'.",
    ),
    case(
        "ga",
        {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0},
        "missing_required_parameter",
        "audio_end_ms",
        "Missing required parameter: 'audio_end_ms'.",
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"threshold": 0.5}}},
            },
        },
        "missing_required_parameter",
        "session.audio.input.turn_detection.type",
        "Missing required parameter: 'session.audio.input.turn_detection.type'.",
    ),
    case(
        "beta",
        {"type": "session.update", "session": {"temperature": "hot"}},
        "invalid_type",
        "session.temperature",
        ("Invalid type for 'session.temperature': expected a decimal, but got a string instead."),
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"format": "pcm16"}}},
        },
        "invalid_type",
        "session.audio.input.format",
        (
            "Invalid type for 'session.audio.input.format': expected an object, but got a "
            "string instead."
        ),
    ),
    case(
        "beta",
        {"type": "session.update", "session": {"output_audio_format": {}}},
        "invalid_type",
        "session.output_audio_format",
        (
            "Invalid type for 'session.output_audio_format': expected one of 'pcm16', "
            "'g711_ulaw', or 'g711_alaw', but got an object instead."
        ),
    ),
    case(
        "ga",
        {
            "type": "conversation.item.truncate",
            "item_id": "i",
            "content_index": 0,
            "audio_end_ms": 1.5,
        },
        "invalid_type",
        "audio_end_ms",
        ("Invalid type for 'audio_end_ms': expected an integer, but got a decimal number instead."),
    ),
    case(
        "ga",
        {
            "type": "conversation.item.truncate",
            "item_id": "i",
            "content_index": True,
            "audio_end_ms": 1,
        },
        "invalid_type",
        "content_index",
        ("Invalid type for 'content_index': expected an integer, but got a boolean instead."),
    ),
    case(
        "ga",
        {"type": "session.update", "session": {"type": "realtime", "instructions": None}},
        "invalid_type",
        "session.instructions",
        ("Invalid type for 'session.instructions': expected a string, but got null instead."),
    ),
    case(
        "ga",
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": "hi"},
        },
        "invalid_type",
        "item.content",
        (
            "Invalid type for 'item.content': expected an array of objects, but got a string "
            "instead."
        ),
    ),
    case(
        "ga",
        {"type": "session.update", "session": {"type": "realtime", "max_output_tokens": 1.5}},
        "invalid_type",
        "session.max_output_tokens",
        (
            "Invalid type for 'session.max_output_tokens': expected one of 'inf' or an "
            "integer, but got a decimal number instead."
        ),
    ),
    case(
        "ga",
        {"type": "response.create", "response": {"tool_choice": 5}},
        "invalid_type",
        "response.tool_choice",
        (
            "Invalid type for 'response.tool_choice': expected one of 'none', 'auto', "
            "'required', or an object, but got an integer instead."
        ),
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"voice": 5}}},
        },
        "invalid_type",
        "session.audio.output.voice",
        (
            "Invalid type for 'session.audio.output.voice': expected one of a string or an "
            "object, but got an integer instead."
        ),
    ),
    case(
        "beta",
        {"type": "session.update", "session": {"input_audio_format": "g711-ulaw"}},
        "invalid_value",
        "session.input_audio_format",
        (
            "Invalid value: 'g711-ulaw'. Supported values are: 'pcm16', 'g711_ulaw', and "
            "'g711_alaw'."
        ),
    ),
    case(
        "ga",
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "robot", "content": []},
        },
        "invalid_value",
        "item.role",
        "Invalid value: 'robot'. Supported values are: 'system', 'user', and 'assistant'.",
    ),
    case(
        "ga",
        {"type": "conversation.item.create", "item": {"type": "note"}},
        "invalid_value",
        "item.type",
        (
            "Invalid value: 'note'. Supported values are: 'message', 'function_call', "
            "'function_call_output', 'mcp_approval_response', 'mcp_list_tools', 'mcp_call', "
            "and 'mcp_approval_request'."
        ),
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "vad"}}},
            },
        },
        "invalid_value",
        "session.audio.input.turn_detection.type",
        "Invalid value: 'vad'. Supported values are: 'server_vad' and 'semantic_vad'.",
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {"type": "realtime", "max_output_tokens": "infinite"},
        },
        "invalid_value",
        "session.max_output_tokens",
        "Invalid value: 'infinite'. Supported values are: 'inf'.",
    ),
    case(
        "ga",
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["video"]}},
        "invalid_value",
        "session.output_modalities[0]",
        "Invalid value: 'video'. Supported values are: 'text' and 'audio'.",
    ),
    case(
        "beta",
        {"type": "session.update", "session": {"temperature": 0.3}},
        "decimal_below_min_value",
        "session.temperature",
        (
            "Invalid 'session.temperature': decimal below minimum value. Expected a value >= "
            "0.6, but got 0.3 instead."
        ),
    ),
    case(
        "beta",
        {"type": "response.create", "response": {"temperature": 2}},
        "decimal_above_max_value",
        "response.temperature",
        (
            "Invalid 'response.temperature': decimal above maximum value. Expected a value <= "
            "1.2, but got 2 instead."
        ),
    ),
    case(
        "ga",
        {"type": "session.update", "session": {"type": "realtime", "max_output_tokens": 0}},
        "integer_below_min_value",
        "session.max_output_tokens",
        (
            "Invalid 'session.max_output_tokens': integer below minimum value. Expected a "
            "value >= 1, but got 0 instead."
        ),
    ),
    case(
        "beta",
        {"type": "session.update", "session": {"max_response_output_tokens": 5000}},
        "integer_above_max_value",
        "session.max_response_output_tokens",
        (
            "Invalid 'session.max_response_output_tokens': integer above maximum value. "
            "Expected a value <= 4096, but got 5000 instead."
        ),
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"speed": 0.2}}},
        },
        "decimal_below_min_value",
        "session.audio.output.speed",
        (
            "Invalid 'session.audio.output.speed': decimal below minimum value. Expected a "
            "value >= 0.25, but got 0.2 instead."
        ),
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 1.5}}},
            },
        },
        "decimal_above_max_value",
        "session.audio.input.turn_detection.threshold",
        (
            "Invalid 'session.audio.input.turn_detection.threshold': decimal above maximum "
            "value. Expected a value <= 1, but got 1.5 instead."
        ),
    ),
    case(
        "ga",
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
        },
        "integer_below_min_value",
        "session.audio.input.format.rate",
        (
            "Invalid 'session.audio.input.format.rate': integer below minimum value. Expected "
            "a value >= 24000, but got 16000 instead."
        ),
    ),
    case(
        "ga",
        {"type": "response.create", "response": {"metadata": {f"k{i}": "v" for i in range(17)}}},
        "object_above_max_properties",
        "response.metadata",
        (
            "Invalid 'response.metadata': too many properties. Expected an object with at "
            "most 16 properties, but got an object with 17 properties instead."
        ),
    ),
    case(
        "ga",
        {"type": "response.create", "response": {"metadata": {"k": "v" * 513}}},
        "string_above_max_length",
        "response.metadata.k",
        (
            "Invalid 'response.metadata.k': string too long. Expected a string with maximum "
            "length 512, but got a string with length 513 instead."
        ),
    ),
    case(
        "beta",
        {"type": "response.create", "response": {"metadata": {LONG_KEY: "v"}}},
        "string_above_max_length",
        f"response.metadata.{LONG_KEY}",
        f"Invalid property name in 'response.metadata': '{LONG_KEY}' is too long. Expected a "
        "string with maximum length 64, but got a string with length 65 instead.",
    ),
    case(
        "ga",
        {"type": "input_audio_buffer.append", "audio": 5},
        "invalid_type",
        "audio",
        "Invalid type for 'audio': expected a string, but got an integer instead.",
    ),
    case(
        "ga",
        {"type": "input_audio_buffer.append"},
        "missing_required_parameter",
        "audio",
        "Missing required parameter: 'audio'.",
    ),
    case(
        "beta",
        {"type": "input_audio_buffer.append", "audio": "", "extra": 1},
        "unknown_parameter",
        "extra",
        "Unknown parameter: 'extra'.",
    ),
    case(
        "ga",
        {"type": "input_audio_buffer.append", "audio": "A" * (15 * 1024 * 1024 + 4)},
        "string_above_max_length",
        "audio",
        (
            "Invalid 'audio': string too long. Expected a string with maximum length "
            "15728640, but got a string with length 15728644 instead."
        ),
    ),
]


@pytest.mark.parametrize(("dialect", "event", "code", "param", "message"), CASES)
def test_validation_errors_are_the_apis(
    dialect: str, event: object, code: str | None, param: str | None, message: str
) -> None:
    error = validate_client_event(event, dialect)  # type: ignore[arg-type]
    assert error == ApiError("invalid_request_error", code, message, param)


def test_array_paths_use_brackets() -> None:
    # Chat/Responses report "messages[3].content"; the same validator serves Realtime.
    event = {
        "type": "response.create",
        "response": {"input": [{"type": "message", "role": "user", "content": [{}, {"t": 1}]}]},
    }
    problem = find_problem(event, "ga")
    assert problem is not None
    assert problem.param == "response.input[0].content[1].t"


def test_error_event_shape() -> None:
    error = _errors.unknown_parameter("session.foo")
    assert error.event(event_id="event_1", client_event_id="evt_9") == {
        "type": "error",
        "event_id": "event_1",
        "error": {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.foo'.",
            "param": "session.foo",
            "event_id": "evt_9",
        },
    }
    assert error.event(event_id="e", client_event_id=None)["error"]["event_id"] is None  # type: ignore[index]
    assert client_event_id({"type": "x", "event_id": "evt_1"}) == "evt_1"
    assert client_event_id({"event_id": 5}) is None
    assert client_event_id([]) is None


STATE_ERRORS = [
    (
        _errors.invalid_json(),
        "invalid_json",
        "Invalid event: failed to parse JSON value. Please check the value to ensure it is "
        "valid JSON. (Common errors include trailing commas, missing closing brackets, "
        "missing quotation marks, etc.)",
    ),
    (
        _errors.binary_frame(),
        "invalid_event",
        "Expected a text WebSocket message; binary frames are not supported.",
    ),
    (
        _errors.conversation_already_has_active_response("resp_CdulSkgwnvcvHPA8FsqBM"),
        "conversation_already_has_active_response",
        "Conversation already has an active response in progress: resp_CdulSkgwnvcvHPA8FsqBM. "
        "Wait until the response is finished before creating a new one.",
    ),
    (
        _errors.response_cancel_not_active(),
        "response_cancel_not_active",
        "Cancellation failed: no active response found",
    ),
    (
        _errors.input_audio_buffer_commit_empty(0),
        "input_audio_buffer_commit_empty",
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        "audio, but buffer only has 0.00ms of audio.",
    ),
    (
        _errors.input_audio_buffer_commit_empty(41.666),
        "input_audio_buffer_commit_empty",
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        "audio, but buffer only has 41.67ms of audio.",
    ),
    (
        _errors.truncate_beyond_audio(2450, 2535),
        "invalid_value",
        "Audio content of 2450ms is already shorter than 2535ms",
    ),
    (
        _errors.truncate_unsupported_item(),
        "unsupported_content_type",
        "Only model output audio messages can be truncated",
    ),
    (
        _errors.item_not_found("item_x", event_type="conversation.item.truncate"),
        "item_truncate_invalid_item_id",
        "Item with item_id not found: item_x",
    ),
    (
        _errors.item_not_found("item_x", event_type="conversation.item.delete"),
        "item_delete_invalid_item_id",
        "Item with item_id not found: item_x",
    ),
    (
        _errors.item_not_found("item_x", event_type="conversation.item.retrieve"),
        "item_retrieve_invalid_item_id",
        "Item with item_id not found: item_x",
    ),
    (
        _errors.item_not_found("item_x", event_type="conversation.item.create"),
        "item_create_invalid_previous_item_id",
        "Previous item with item_id not found: item_x",
    ),
    (
        _errors.cannot_update_voice(),
        "cannot_update_voice",
        "Cannot update a conversation's voice if assistant audio is present.",
    ),
    (
        _errors.session_expired(),
        "session_expired",
        "Your session hit the maximum duration of 60 minutes.",
    ),
    (
        _errors.session_expired(30),
        "session_expired",
        "Your session hit the maximum duration of 30 minutes.",
    ),
]


@pytest.mark.parametrize(("error", "code", "message"), STATE_ERRORS)
def test_state_errors_are_the_apis(error: ApiError, code: str, message: str) -> None:
    assert (error.type, error.code, error.message, error.param) == (
        "invalid_request_error",
        code,
        message,
        None,
    )


def test_invalid_audio() -> None:
    error = _errors.invalid_audio()
    assert (error.code, error.param) == ("invalid_value", "audio.audio")
    assert error.message == (
        "Invalid 'audio'. Expected base64-encoded audio bytes (mono PCM16 at 24kHz) but got an "
        "invalid value."
    )


def test_server_error() -> None:
    error = _errors.server_error("sess_1")
    assert (error.type, error.code, error.param) == ("server_error", None, None)
    assert error.message == (
        "The server had an error while processing your request. Sorry about that! You can "
        "retry your request, or contact us through our help center at help.openai.com if the "
        "error persists. (Please include the session ID sess_1 in your message.)"
    )


def test_every_problem_kind_maps_to_an_error() -> None:
    for kind in typing.get_args(_errors.ProblemKind):
        problem = ValidationProblem(kind, "p", 3, expected="a string", allowed=("a",), limit=1)
        error = _errors.problem_error(problem)
        assert error.type == "invalid_request_error"
        assert error.message


def test_bad_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="dialect"):
        validate_client_event({"type": "response.cancel"}, "v1")  # type: ignore[arg-type]


# --- input_audio_buffer.append is O(1) ----------------------------------------------------------


class _Tripwire(str):
    """A string that fails if anything reads its characters."""

    __slots__ = ()

    def _scan(self, *args: object, **kwargs: object) -> Any:
        raise AssertionError("the audio was scanned or copied")

    __iter__ = __getitem__ = __contains__ = encode = _scan
    __eq__ = __hash__ = __add__ = __mod__ = _scan


def test_append_never_reads_the_audio() -> None:
    assert input_audio_bytes_limit() == 15 * 1024 * 1024
    for dialect in DIALECTS:
        for audio in (_Tripwire("A" * 1000), _Tripwire("A" * input_audio_bytes_limit())):
            event = {"type": "input_audio_buffer.append", "event_id": "e", "audio": audio}
            assert validate_client_event(event, dialect) is None  # type: ignore[arg-type]
        too_big = {"type": "input_audio_buffer.append", "audio": _Tripwire("A" * (16 << 20))}
        error = validate_client_event(too_big, dialect)  # type: ignore[arg-type]
        assert error is not None
        assert error.code == "string_above_max_length"


def test_append_cost_does_not_grow_with_the_audio() -> None:
    small = {"type": "input_audio_buffer.append", "audio": "AAAA"}
    large = {"type": "input_audio_buffer.append", "audio": "A" * (8 << 20)}

    def cost(event: Event) -> float:
        start = time.perf_counter()
        for _ in range(2000):
            validate_client_event(event, "ga")
        return time.perf_counter() - start

    cost(small)
    assert cost(large) < 5 * cost(small) + 0.01


# --- the generator and the runtime boundary ---------------------------------------------------


@pytest.mark.skipif(
    not (PROTOCOL_DIR / "events-ga.json").exists(),
    reason="the generator's input, ../shared/protocol beside the repository, is absent "
    "(CI runs on a clean clone without it)",
)
def test_generator_reproduces_the_schema_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "_schema.py"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_server_schema.py"), "--output", str(out)],
        check=True,
        capture_output=True,
    )
    committed = REPO / "python" / "realtalk" / "server" / "_schema.py"
    assert out.read_bytes() == committed.read_bytes()


def test_server_validation_does_not_import_openai() -> None:
    code = (
        "import sys, realtalk.server._validate, realtalk.server._errors; "
        "assert 'openai' not in sys.modules and 'pydantic' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
