"""Session configuration: rendering for both dialects, checks, wire parsing and drift.

The rendered ``session`` objects are checked differentially against the ``openai``
package's pydantic models for ``session.update``; those models allow unknown keys, so
:func:`assert_no_extra` walks the validated model and fails on any extra field.
"""

from __future__ import annotations

import copy
import math
import struct
from collections.abc import Callable, Iterator
from typing import Any, get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.beta.realtime import SessionUpdatedEvent as BetaSessionUpdatedEvent
from openai.types.beta.realtime import SessionUpdateEvent as BetaSessionUpdateEvent
from openai.types.beta.realtime.session_update_event import Session as BetaSession
from openai.types.realtime import RealtimeSessionCreateRequest
from openai.types.realtime import SessionUpdatedEvent as GaSessionUpdatedEvent
from openai.types.realtime import SessionUpdateEvent as GaSessionUpdateEvent
from pydantic import BaseModel

from realtalk.exceptions import ConfigurationError
from realtalk.protocol._config import (
    ConfigDrift,
    FunctionTool,
    InputTranscription,
    NoiseReduction,
    SemanticVad,
    ServerVad,
    SessionConfig,
    audio_format_rate,
    audio_format_sample_width,
    config_drift,
)

DIALECTS = ("ga", "beta")
FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
# The beta model types `model` as a closed Literal; GA takes any string.
BETA_MODELS: tuple[str, ...] = get_args(get_args(BetaSession.model_fields["model"].annotation)[0])


# --- differential check against the openai models ---------------------------------------


def assert_no_extra(value: object, path: str = "$") -> None:
    """Fail if any pydantic model reachable from ``value`` holds fields it does not declare.

    Walks models (their declared fields), lists, tuples and dicts; unions need nothing
    special because validation has already picked the concrete member.
    """
    if isinstance(value, BaseModel):
        extra = value.model_extra or {}
        assert not extra, f"{path}: undeclared fields {sorted(extra)}"
        for name in type(value).model_fields:
            assert_no_extra(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            assert_no_extra(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_no_extra(item, f"{path}.{key}")


def assert_valid_session_update(rendered: dict[str, object], dialect: str) -> None:
    """``rendered`` is a valid ``session.update`` session for ``dialect``, key for key."""
    event = {"type": "session.update", "session": rendered}
    model: BaseModel
    if dialect == "ga":
        model = GaSessionUpdateEvent.model_validate(event)
        assert isinstance(model.session, RealtimeSessionCreateRequest)
    else:
        model = BetaSessionUpdateEvent.model_validate(event)
    assert_no_extra(model)
    # Nothing coerced or dropped on the way through the model.
    assert model.model_dump(mode="json", exclude_unset=True)["session"] == rendered


def test_assert_no_extra_catches_a_misspelled_nested_key() -> None:
    event = GaSessionUpdateEvent.model_validate(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "treshold": 0.5}}},
            },
        }
    )
    with pytest.raises(AssertionError, match=r"turn_detection: undeclared fields \['treshold'\]"):
        assert_no_extra(event)


def test_assert_no_extra_catches_a_misspelled_tool_key() -> None:
    event = BetaSessionUpdateEvent.model_validate(
        {"type": "session.update", "session": {"tools": [{"type": "function", "nmae": "f"}]}}
    )
    with pytest.raises(AssertionError, match=r"tools\[0\]: undeclared fields \['nmae'\]"):
        assert_no_extra(event)


# --- rendering, field by field -----------------------------------------------------------


class Raises:
    """Expected outcome: rendering raises ConfigurationError for ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"Raises({self.path!r})"


WEATHER = FunctionTool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
WEATHER_WIRE = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

HANG_UP_WIRE = {
    "type": "function",
    "name": "hang_up",
    "description": "",
    "parameters": {"type": "object", "properties": {}},
}


def ga(**fields: object) -> dict[str, object]:
    return {"type": "realtime", **fields}


def ga_in(**fields: object) -> dict[str, object]:
    return ga(audio={"input": fields})


def ga_out(**fields: object) -> dict[str, object]:
    return ga(audio={"output": fields})


GA_PCM = {"type": "audio/pcm", "rate": 24000}
GA_FORMAT = {
    "pcm16": GA_PCM,
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
FULL_VAD = ServerVad(
    threshold=0.6,
    prefix_padding_ms=250,
    silence_duration_ms=400,
    create_response=True,
    interrupt_response=False,
)
FULL_VAD_WIRE = {
    "type": "server_vad",
    "threshold": 0.6,
    "prefix_padding_ms": 250,
    "silence_duration_ms": 400,
    "create_response": True,
    "interrupt_response": False,
}
SEMANTIC = SemanticVad(eagerness="high", create_response=False, interrupt_response=True)
SEMANTIC_WIRE = {
    "type": "semantic_vad",
    "eagerness": "high",
    "create_response": False,
    "interrupt_response": True,
}
TRANSCRIPTION = InputTranscription(model="whisper-1", language="de", prompt="Fachbegriffe")
TRANSCRIPTION_WIRE = {"model": "whisper-1", "language": "de", "prompt": "Fachbegriffe"}

# (id, config, GA session, beta session)
FIELD_CASES: list[tuple[str, SessionConfig, object, object]] = [
    ("empty", SessionConfig(), ga(), {}),
    (
        "instructions",
        SessionConfig(instructions="Be brief."),
        ga(instructions="Be brief."),
        {"instructions": "Be brief."},
    ),
    (
        "instructions-clear",
        SessionConfig(instructions=""),
        ga(instructions=""),
        {"instructions": ""},
    ),
    ("voice", SessionConfig(voice="marin"), ga_out(voice="marin"), {"voice": "marin"}),
    (
        "modalities-text",
        SessionConfig(output_modalities=("text",)),
        ga(output_modalities=["text"]),
        {"modalities": ["text"]},
    ),
    (
        "modalities-audio",
        SessionConfig(output_modalities=("audio",)),
        ga(output_modalities=["audio"]),
        {"modalities": ["text", "audio"]},
    ),
    (
        "modalities-both",
        SessionConfig(output_modalities=("audio", "text")),
        Raises("output_modalities"),
        {"modalities": ["audio", "text"]},
    ),
    (
        "temperature",
        SessionConfig(temperature=0.8),
        Raises("temperature"),
        {"temperature": 0.8},
    ),
    (
        "max-tokens",
        SessionConfig(max_output_tokens=1024),
        ga(max_output_tokens=1024),
        {"max_response_output_tokens": 1024},
    ),
    (
        "max-tokens-inf",
        SessionConfig(max_output_tokens="inf"),
        ga(max_output_tokens="inf"),
        {"max_response_output_tokens": "inf"},
    ),
    (
        "server-vad-bare",
        SessionConfig(turn_detection=ServerVad()),
        ga_in(turn_detection={"type": "server_vad"}),
        {"turn_detection": {"type": "server_vad"}},
    ),
    (
        "server-vad-full",
        SessionConfig(turn_detection=FULL_VAD),
        ga_in(turn_detection=FULL_VAD_WIRE),
        {"turn_detection": FULL_VAD_WIRE},
    ),
    (
        "server-vad-idle-timeout",
        SessionConfig(turn_detection=ServerVad(idle_timeout_ms=6000)),
        ga_in(turn_detection={"type": "server_vad", "idle_timeout_ms": 6000}),
        Raises("turn_detection.idle_timeout_ms"),
    ),
    (
        "semantic-vad",
        SessionConfig(turn_detection=SEMANTIC),
        ga_in(turn_detection=SEMANTIC_WIRE),
        {"turn_detection": SEMANTIC_WIRE},
    ),
    (
        "semantic-vad-bare",
        SessionConfig(turn_detection=SemanticVad()),
        ga_in(turn_detection={"type": "semantic_vad"}),
        {"turn_detection": {"type": "semantic_vad"}},
    ),
    (
        "push-to-talk",
        SessionConfig(turn_detection=False),
        ga_in(turn_detection=None),
        {"turn_detection": None},
    ),
    (
        "transcription-default",
        SessionConfig(input_transcription=InputTranscription()),
        ga_in(transcription={"model": "gpt-4o-mini-transcribe"}),
        {"input_audio_transcription": {"model": "gpt-4o-mini-transcribe"}},
    ),
    (
        "transcription-full",
        SessionConfig(input_transcription=TRANSCRIPTION),
        ga_in(transcription=TRANSCRIPTION_WIRE),
        {"input_audio_transcription": TRANSCRIPTION_WIRE},
    ),
    (
        "transcription-off",
        SessionConfig(input_transcription=False),
        ga_in(transcription=None),
        {"input_audio_transcription": None},
    ),
    (
        "noise-reduction",
        SessionConfig(noise_reduction=NoiseReduction(type="far_field")),
        ga_in(noise_reduction={"type": "far_field"}),
        {"input_audio_noise_reduction": {"type": "far_field"}},
    ),
    (
        "noise-reduction-off",
        SessionConfig(noise_reduction=False),
        ga_in(noise_reduction=None),
        {"input_audio_noise_reduction": None},
    ),
    *(
        (
            f"input-format-{fmt}",
            SessionConfig(input_format=fmt),
            ga_in(format=GA_FORMAT[fmt]),
            {"input_audio_format": fmt},
        )
        for fmt in FORMATS
    ),
    *(
        (
            f"output-format-{fmt}",
            SessionConfig(output_format=fmt),
            ga_out(format=GA_FORMAT[fmt]),
            {"output_audio_format": fmt},
        )
        for fmt in FORMATS
    ),
    ("tools", SessionConfig(tools=(WEATHER,)), ga(tools=[WEATHER_WIRE]), {"tools": [WEATHER_WIRE]}),
    (
        "tool-default-parameters",
        SessionConfig(tools=[FunctionTool(name="hang_up")]),
        ga(tools=[HANG_UP_WIRE]),
        {"tools": [HANG_UP_WIRE]},
    ),
    ("tools-clear", SessionConfig(tools=()), ga(tools=[]), {"tools": []}),
    *(
        (
            f"tool-choice-{mode}",
            SessionConfig(tool_choice=mode),
            ga(tool_choice=mode),
            {"tool_choice": mode},
        )
        for mode in ("auto", "none", "required")
    ),
    (
        "tool-choice-forced",
        SessionConfig(tools=(WEATHER,), tool_choice="get_weather"),
        ga(tools=[WEATHER_WIRE], tool_choice={"type": "function", "name": "get_weather"}),
        Raises("tool_choice"),
    ),
    ("speed", SessionConfig(speed=1.25), ga_out(speed=1.25), {"speed": 1.25}),
    (
        "model",
        SessionConfig(model="gpt-realtime"),
        ga(model="gpt-realtime"),
        {"model": "gpt-realtime"},
    ),
    (
        "input-and-output-together",
        SessionConfig(input_format="g711_ulaw", output_format="g711_ulaw", voice="cedar"),
        ga(
            audio={
                "input": {"format": {"type": "audio/pcmu"}},
                "output": {"format": {"type": "audio/pcmu"}, "voice": "cedar"},
            }
        ),
        {"input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw", "voice": "cedar"},
    ),
]

RENDER_CASES = [
    pytest.param(config, dialect, expected, id=f"{name}-{dialect}")
    for name, config, ga_expected, beta_expected in FIELD_CASES
    for dialect, expected in (("ga", ga_expected), ("beta", beta_expected))
]


@pytest.mark.parametrize(("config", "dialect", "expected"), RENDER_CASES)
def test_render_field(config: SessionConfig, dialect: str, expected: object) -> None:
    if isinstance(expected, Raises):
        with pytest.raises(ConfigurationError) as info:
            config.render(dialect)
        assert str(info.value).startswith(f"{expected.path}: ")
    else:
        rendered = config.render(dialect)
        assert rendered == expected
        assert_valid_session_update(rendered, dialect)


FULL_GA = SessionConfig(
    instructions="You are a helpful assistant.",
    voice="marin",
    output_modalities=["audio"],
    max_output_tokens=2048,
    turn_detection=ServerVad(threshold=0.7, silence_duration_ms=350, idle_timeout_ms=9000),
    input_transcription=InputTranscription(language="en"),
    noise_reduction=NoiseReduction(type="near_field"),
    input_format="pcm16",
    output_format="g711_alaw",
    tools=[WEATHER],
    tool_choice="get_weather",
    speed=0.9,
    model="gpt-realtime",
)

FULL_BETA = SessionConfig(
    instructions="You are a helpful assistant.",
    voice="alloy",
    output_modalities=("text", "audio"),
    temperature=0.9,
    max_output_tokens="inf",
    turn_detection=SemanticVad(eagerness="low"),
    input_transcription=InputTranscription(model="gpt-4o-transcribe"),
    noise_reduction=False,
    input_format="g711_ulaw",
    output_format="pcm16",
    tools=[WEATHER],
    tool_choice="required",
    speed=1.5,
    model="gpt-4o-realtime-preview-2024-12-17",
)


def test_render_everything_ga() -> None:
    rendered = FULL_GA.render("ga")
    assert rendered == {
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "You are a helpful assistant.",
        "output_modalities": ["audio"],
        "max_output_tokens": 2048,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                "noise_reduction": {"type": "near_field"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.7,
                    "silence_duration_ms": 350,
                    "idle_timeout_ms": 9000,
                },
            },
            "output": {"format": {"type": "audio/pcma"}, "voice": "marin", "speed": 0.9},
        },
        "tools": [WEATHER_WIRE],
        "tool_choice": {"type": "function", "name": "get_weather"},
    }
    assert_valid_session_update(rendered, "ga")


def test_render_everything_beta() -> None:
    rendered = FULL_BETA.render("beta")
    assert rendered == {
        "model": "gpt-4o-realtime-preview-2024-12-17",
        "instructions": "You are a helpful assistant.",
        "modalities": ["text", "audio"],
        "voice": "alloy",
        "input_audio_format": "g711_ulaw",
        "output_audio_format": "pcm16",
        "input_audio_transcription": {"model": "gpt-4o-transcribe"},
        "input_audio_noise_reduction": None,
        "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
        "temperature": 0.9,
        "max_response_output_tokens": "inf",
        "speed": 1.5,
        "tools": [WEATHER_WIRE],
        "tool_choice": "required",
    }
    assert_valid_session_update(rendered, "beta")


def test_render_returns_fresh_objects() -> None:
    expected = copy.deepcopy(FULL_GA.render("ga"))
    first: Any = FULL_GA.render("ga")
    first["tools"][0]["parameters"]["properties"].clear()
    first["audio"]["input"]["format"]["rate"] = 8000
    assert FULL_GA.render("ga") == expected
    assert FULL_GA.tools is not None
    assert FULL_GA.tools[0].parameters == WEATHER_WIRE["parameters"]


# --- hypothesis strategies ---------------------------------------------------------------

tool_names = st.from_regex(r"[a-zA-Z0-9_-]{1,20}", fullmatch=True).filter(
    lambda name: name not in ("auto", "none", "required")
)
json_schemas = st.one_of(
    st.just({"type": "object", "properties": {}}),
    st.just({}),
    st.dictionaries(
        st.text("abcdefghij_", min_size=1, max_size=8),
        st.sampled_from(["string", "number", "integer", "boolean"]),
        max_size=3,
    ).map(
        lambda props: {
            "type": "object",
            "properties": {key: {"type": kind} for key, kind in props.items()},
            "required": sorted(props),
        }
    ),
)
function_tools = st.builds(
    FunctionTool, name=tool_names, description=st.text(max_size=30), parameters=json_schemas
)
maybe_bool = st.none() | st.booleans()
maybe_ms = st.none() | st.integers(0, 60_000)
semantic_vads = st.builds(
    SemanticVad,
    eagerness=st.none() | st.sampled_from(["low", "medium", "high", "auto"]),
    create_response=maybe_bool,
    interrupt_response=maybe_bool,
)
transcriptions = st.builds(
    InputTranscription,
    model=st.sampled_from(["gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1"]),
    language=st.none() | st.sampled_from(["en", "de", "ja"]),
    prompt=st.none() | st.text(max_size=20),
)


def server_vads(dialect: str) -> st.SearchStrategy[ServerVad]:
    return st.builds(
        ServerVad,
        threshold=st.none() | st.floats(0.0, 1.0),
        prefix_padding_ms=maybe_ms,
        silence_duration_ms=maybe_ms,
        create_response=maybe_bool,
        interrupt_response=maybe_bool,
        idle_timeout_ms=maybe_ms if dialect == "ga" else st.none(),
    )


@st.composite
def session_configs(draw: st.DrawFn, dialect: str) -> SessionConfig:
    """Valid configs that ``dialect`` can render and parse back to an equal config."""
    is_ga = dialect == "ga"
    tools = draw(st.none() | st.lists(function_tools, max_size=3, unique_by=lambda t: t.name))
    choices = st.none() | st.sampled_from(["auto", "none", "required"])
    if is_ga and tools:
        choices |= st.sampled_from([tool.name for tool in tools])
    modalities = (
        [("text",), ("audio",)] if is_ga else [("text",), ("text", "audio"), ("audio", "text")]
    )
    models = st.text(min_size=1, max_size=20) if is_ga else st.sampled_from(BETA_MODELS)
    return SessionConfig(
        instructions=draw(st.none() | st.text(max_size=40)),
        voice=draw(st.none() | st.sampled_from(["alloy", "marin", "cedar", "verse"])),
        output_modalities=draw(st.none() | st.sampled_from(modalities)),
        temperature=None if is_ga else draw(st.none() | st.floats(0.6, 1.2)),
        max_output_tokens=draw(st.none() | st.just("inf") | st.integers(1, 4096)),
        turn_detection=draw(st.none() | st.just(False) | server_vads(dialect) | semantic_vads),
        input_transcription=draw(st.none() | st.just(False) | transcriptions),
        noise_reduction=draw(
            st.none()
            | st.just(False)
            | st.builds(NoiseReduction, type=st.sampled_from(["near_field", "far_field"]))
        ),
        input_format=draw(st.none() | st.sampled_from(FORMATS)),
        output_format=draw(st.none() | st.sampled_from(FORMATS)),
        tools=tools,
        tool_choice=draw(choices),
        speed=draw(st.none() | st.floats(0.25, 1.5)),
        model=draw(st.none() | models),
    )


dialect_and_config = st.sampled_from(DIALECTS).flatmap(
    lambda d: st.tuples(st.just(d), session_configs(d))
)


@settings(max_examples=50)
@given(dialect_and_config)
def test_generated_configs_render_to_valid_session_updates(case: tuple[str, SessionConfig]) -> None:
    dialect, config = case
    assert_valid_session_update(config.render(dialect), dialect)


@settings(max_examples=50)
@given(dialect_and_config)
def test_from_wire_round_trip(case: tuple[str, SessionConfig]) -> None:
    dialect, config = case
    rendered = config.render(dialect)
    assert SessionConfig.from_wire(rendered, dialect) == config


@pytest.mark.parametrize(("name", "config", "ga_expected", "beta_expected"), FIELD_CASES)
def test_hand_made_configs_round_trip(
    name: str, config: SessionConfig, ga_expected: object, beta_expected: object
) -> None:
    for dialect, expected in (("ga", ga_expected), ("beta", beta_expected)):
        if isinstance(expected, Raises):
            continue
        back = SessionConfig.from_wire(config.render(dialect), dialect)
        if name == "modalities-audio" and dialect == "beta":
            # Beta has no audio-only mode; ("audio",) goes out as ["text", "audio"].
            assert back == SessionConfig(output_modalities=("text", "audio"))
        else:
            assert back == config


# --- checks on user input -----------------------------------------------------------------

NAN = float("nan")
NOT_A_STRING = (5, ["a"], b"a")
NOT_A_BOOL = (1, 0, "yes", [True])

# (class, field, path in the message, bad values): each built with only that field set
# (plus ``name`` for tools). Bools are rejected wherever numbers are expected.
FIELD_ERRORS: list[tuple[type, str, str, tuple[object, ...]]] = [
    (ServerVad, "threshold", "turn_detection.threshold", (1.5, -0.01, NAN, math.inf, 10**400)),
    (ServerVad, "threshold", "turn_detection.threshold", ("0.5", True, [0.5])),
    (ServerVad, "prefix_padding_ms", "turn_detection.prefix_padding_ms", (-1, 300.0, True, "300")),
    (ServerVad, "silence_duration_ms", "turn_detection.silence_duration_ms", (-5, [500], 1.5)),
    (ServerVad, "idle_timeout_ms", "turn_detection.idle_timeout_ms", (-1, False)),
    (ServerVad, "create_response", "turn_detection.create_response", NOT_A_BOOL),
    (ServerVad, "interrupt_response", "turn_detection.interrupt_response", NOT_A_BOOL),
    (SemanticVad, "eagerness", "turn_detection.eagerness", ("fast", "Low", 2, True)),
    (SemanticVad, "create_response", "turn_detection.create_response", NOT_A_BOOL),
    (SemanticVad, "interrupt_response", "turn_detection.interrupt_response", NOT_A_BOOL),
    (InputTranscription, "model", "input_transcription.model", ("", None, *NOT_A_STRING)),
    (InputTranscription, "language", "input_transcription.language", ("", *NOT_A_STRING)),
    (InputTranscription, "prompt", "input_transcription.prompt", NOT_A_STRING),
    (NoiseReduction, "type", "noise_reduction.type", ("medium", None, 1)),
    (FunctionTool, "name", "tool.name", ("", "get weather", "x" * 65, "f\n", "caf\u00e9", 5)),
    (FunctionTool, "description", "tool.description", (None, *NOT_A_STRING)),
    (FunctionTool, "parameters", "tool.parameters", ([], "{}", {"x": object()}, {"x": NAN})),
    (FunctionTool, "parameters", "tool.parameters.type", ({"type": "array"},)),
    (SessionConfig, "instructions", "instructions", NOT_A_STRING),
    (SessionConfig, "voice", "voice", ("", *NOT_A_STRING)),
    (SessionConfig, "output_modalities", "output_modalities", ((), "audio", ("audio", "audio"), 5)),
    (SessionConfig, "output_modalities", "output_modalities[0]", (["video"], [1])),
    (SessionConfig, "temperature", "temperature", (0.5, 1.3, "0.8", True)),
    (
        SessionConfig,
        "max_output_tokens",
        "max_output_tokens",
        (0, -1, 4097, "infinite", 100.0, True),
    ),
    (SessionConfig, "turn_detection", "turn_detection", (True, 0, "server_vad", {"type": "x"})),
    (SessionConfig, "input_transcription", "input_transcription", (True, "whisper-1", {})),
    (SessionConfig, "noise_reduction", "noise_reduction", (True, "near_field", ServerVad())),
    (SessionConfig, "input_format", "input_format", ("pcm", "PCM16", 16)),
    (SessionConfig, "output_format", "output_format", ("opus", b"pcm16")),
    (SessionConfig, "tools", "tools", ("get_weather", WEATHER, 5)),
    (SessionConfig, "tools", "tools[0]", ([WEATHER_WIRE], [None])),
    (SessionConfig, "tools", "tools[1].name", ([WEATHER, WEATHER],)),
    (SessionConfig, "tool_choice", "tool_choice", (5, ["auto"], "get weather!", "")),
    (SessionConfig, "speed", "speed", (0.2, 1.6, "1.0", True)),
    (SessionConfig, "model", "model", ("", *NOT_A_STRING)),
]

FIELD_ERROR_CASES = [
    pytest.param(cls, field, value, path, id=f"{cls.__name__}.{field}={value!r:.20}")
    for cls, field, path, values in FIELD_ERRORS
    for value in values
]


@pytest.mark.parametrize(("cls", "field", "value", "path"), FIELD_ERROR_CASES)
def test_bad_field_raises_configuration_error_naming_it(
    cls: type, field: str, value: object, path: str
) -> None:
    kwargs: dict[str, object] = {"name": "f"} if cls is FunctionTool else {}
    kwargs[field] = value
    with pytest.raises(ConfigurationError) as info:
        cls(**kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{path}: "), str(info.value)


# Errors that involve more than one field, rendering, parsing tools and the helpers.
OTHER_ERRORS: list[tuple[str, Callable[[], object], str]] = [
    ("choice-not-in-tools", lambda: SessionConfig(tools=[WEATHER], tool_choice="x"), "tool_choice"),
    ("choice-no-tools", lambda: SessionConfig(tools=(), tool_choice="x"), "tool_choice"),
    ("schema-not-mapping", lambda: FunctionTool.from_schema("f"), "tool"),
    ("schema-mcp", lambda: FunctionTool.from_schema({"type": "mcp"}), "tool.type"),
    ("schema-no-name", lambda: FunctionTool.from_schema({"type": "function"}), "tool.name"),
    ("schema-function-str", lambda: FunctionTool.from_schema({"function": "f"}), "tool.function"),
    (
        "schema-parameters",
        lambda: FunctionTool.from_schema({"name": "f", "parameters": 5}),
        "tool.parameters",
    ),
    ("ga-temperature", lambda: SessionConfig(temperature=0.8).render("ga"), "temperature"),
    (
        "ga-two-modalities",
        lambda: SessionConfig(output_modalities=["text", "audio"]).render("ga"),
        "output_modalities",
    ),
    (
        "beta-idle-timeout",
        lambda: SessionConfig(turn_detection=ServerVad(idle_timeout_ms=1)).render("beta"),
        "turn_detection.idle_timeout_ms",
    ),
    ("beta-forced-function", lambda: SessionConfig(tool_choice="f").render("beta"), "tool_choice"),
    ("render-dialect", lambda: SessionConfig().render("v1"), "dialect"),
    ("render-dialect-none", lambda: SessionConfig().render(None), "dialect"),
    ("from-wire-dialect", lambda: SessionConfig.from_wire({}, "GA"), "dialect"),
    ("merged-dict", lambda: SessionConfig().merged({"voice": "alloy"}), "other"),
    ("format-rate", lambda: audio_format_rate("mp3"), "audio_format"),
    ("format-width", lambda: audio_format_sample_width(16), "audio_format"),
]


@pytest.mark.parametrize(
    ("make", "path"), [pytest.param(make, path, id=name) for name, make, path in OTHER_ERRORS]
)
def test_bad_use_raises_configuration_error_naming_the_field(
    make: Callable[[], object], path: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{path}: "), str(info.value)


def test_error_messages_read_well() -> None:
    with pytest.raises(ConfigurationError) as info:
        ServerVad(threshold=1.5)
    assert str(info.value) == "turn_detection.threshold: must be between 0.0 and 1.0, got 1.5"
    with pytest.raises(ConfigurationError) as info:
        SessionConfig(temperature=0.8).render("ga")
    assert str(info.value) == "temperature: not supported by the GA dialect (beta only)"
    with pytest.raises(ConfigurationError) as info:
        ServerVad(prefix_padding_ms=True)
    assert "got bool True" in str(info.value)


def test_edges_of_ranges_are_accepted() -> None:
    for threshold in (0, 0.0, 1, 1.0):
        assert ServerVad(threshold=threshold).threshold == float(threshold)
    vad = ServerVad(prefix_padding_ms=0, silence_duration_ms=0, idle_timeout_ms=0)
    assert SessionConfig(turn_detection=vad).render("ga")["audio"] == {
        "input": {
            "turn_detection": {
                "type": "server_vad",
                "prefix_padding_ms": 0,
                "silence_duration_ms": 0,
                "idle_timeout_ms": 0,
            }
        }
    }
    for tokens in (1, 4096, "inf"):
        assert SessionConfig(max_output_tokens=tokens).max_output_tokens == tokens
    for temperature in (0.6, 1.2):
        assert SessionConfig(temperature=temperature).temperature == temperature
    for speed in (0.25, 1.5):
        assert SessionConfig(speed=speed).speed == speed
    assert FunctionTool(name="x" * 64).name == "x" * 64


# --- normalisation, immutability --------------------------------------------------------


def test_lists_become_tuples_and_configs_are_hashable() -> None:
    config = SessionConfig(output_modalities=["text"], tools=[WEATHER])
    assert config.output_modalities == ("text",)
    assert config.tools == (WEATHER,)
    assert hash(config) == hash(SessionConfig(output_modalities=("text",), tools=(WEATHER,)))


def test_numbers_are_normalised_to_python_types() -> None:
    vad = ServerVad(
        threshold=np.float32(0.5), prefix_padding_ms=np.int64(300), silence_duration_ms=1
    )
    assert type(vad.threshold) is float
    assert type(vad.prefix_padding_ms) is int
    assert vad.threshold == 0.5
    assert type(ServerVad(threshold=1).threshold) is float
    config = SessionConfig(temperature=1, speed=1, max_output_tokens=np.int16(10))
    assert (type(config.temperature), type(config.speed), type(config.max_output_tokens)) == (
        float,
        float,
        int,
    )


def test_configs_are_frozen() -> None:
    config = SessionConfig(voice="alloy")
    with pytest.raises(AttributeError):
        config.voice = "ash"


def test_function_tool_copies_parameters_in_json_form() -> None:
    parameters: dict[str, Any] = {"type": "object", "properties": {"n": {"enum": (1, 2)}}}
    tool = FunctionTool(name="pick", parameters=parameters)
    parameters["properties"]["n"]["enum"] = (3,)
    assert tool.parameters == {"type": "object", "properties": {"n": {"enum": [1, 2]}}}
    assert hash(tool) == hash(FunctionTool(name="pick", parameters={"other": 1}))
    assert tool != FunctionTool(name="pick", parameters={"other": 1})


def test_function_tool_from_schema_shapes() -> None:
    realtime = FunctionTool.from_schema(WEATHER_WIRE)
    chat = FunctionTool.from_schema(
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER_WIRE["parameters"],
                "strict": True,
            },
        }
    )
    assert realtime == chat == WEATHER
    assert FunctionTool.from_schema({"name": "hang_up"}) == FunctionTool(name="hang_up")
    bare = FunctionTool.from_schema(
        {"type": "function", "name": "x", "description": None, "parameters": None}
    )
    assert bare == FunctionTool(name="x")


def test_audio_format_helpers() -> None:
    assert [audio_format_rate(f) for f in FORMATS] == [24000, 8000, 8000]
    assert [audio_format_sample_width(f) for f in FORMATS] == [2, 1, 1]


# --- merged -----------------------------------------------------------------------------


def test_merged_takes_the_other_configs_set_fields() -> None:
    base = SessionConfig(voice="alloy", instructions="a", turn_detection=ServerVad(), speed=1.0)
    update = SessionConfig(instructions="b", turn_detection=False, tools=[WEATHER])
    assert base.merged(update) == SessionConfig(
        voice="alloy", instructions="b", turn_detection=False, speed=1.0, tools=(WEATHER,)
    )
    assert base.merged(SessionConfig()) == base
    assert SessionConfig().merged(base) == base


def test_merged_does_not_recheck_server_values() -> None:
    # The server is the authority: a value outside our ranges survives a merge.
    echoed = SessionConfig.from_wire({"temperature": 0.3, "speed": 4.0}, "beta")
    assert echoed.merged(SessionConfig(voice="ash")).temperature == 0.3


# --- from_wire on server data ------------------------------------------------------------

GA_SERVER_SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_CAhJkqQ4c1Yb0example",
    "expires_at": 0,
    "model": "gpt-realtime-2025-08-28",
    "output_modalities": ["audio"],
    "instructions": "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI.",
    "tools": [
        WEATHER_WIRE,
        {"type": "mcp", "server_label": "docs", "server_url": "https://example.com/mcp"},
    ],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "include": None,
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
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
    },
}

BETA_SERVER_SESSION: dict[str, Any] = {
    "id": "sess_001",
    "object": "realtime.session",
    "model": "gpt-4o-realtime-preview-2024-12-17",
    "expires_at": 1734626400,
    "modalities": ["text", "audio"],
    "instructions": "Your knowledge cutoff is 2023-10.",
    "voice": "alloy",
    "input_audio_format": "pcm16",
    "output_audio_format": "g711_alaw",
    "input_audio_transcription": {"model": "whisper-1", "language": None, "prompt": None},
    "input_audio_noise_reduction": {"type": "near_field"},
    "turn_detection": {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    },
    "tools": [],
    "tool_choice": "auto",
    "temperature": 0.800000011920929,
    "max_response_output_tokens": 4096,
    "speed": 1.100000023841858,
    "tracing": None,
    "client_secret": None,
}


def test_server_session_fixtures_are_realistic() -> None:
    GaSessionUpdatedEvent.model_validate(
        {"type": "session.updated", "event_id": "event_1", "session": GA_SERVER_SESSION}
    )
    BetaSessionUpdatedEvent.model_validate(
        {"type": "session.updated", "event_id": "event_1", "session": BETA_SERVER_SESSION}
    )


def test_from_wire_ga_server_session() -> None:
    assert SessionConfig.from_wire(GA_SERVER_SESSION, "ga") == SessionConfig(
        instructions=GA_SERVER_SESSION["instructions"],
        voice="marin",
        output_modalities=("audio",),
        max_output_tokens="inf",
        turn_detection=ServerVad(
            threshold=0.5,
            prefix_padding_ms=300,
            silence_duration_ms=200,
            create_response=True,
            interrupt_response=True,
        ),
        input_transcription=False,
        noise_reduction=False,
        input_format="pcm16",
        output_format="pcm16",
        tools=(WEATHER,),  # the MCP tool is left out
        tool_choice="auto",
        speed=1.0,
        model="gpt-realtime-2025-08-28",
    )


def test_from_wire_beta_server_session() -> None:
    config = SessionConfig.from_wire(BETA_SERVER_SESSION, "beta")
    assert config == SessionConfig(
        instructions="Your knowledge cutoff is 2023-10.",
        voice="alloy",
        output_modalities=("text", "audio"),
        temperature=0.800000011920929,
        max_output_tokens=4096,
        turn_detection=SemanticVad(eagerness="auto", create_response=True, interrupt_response=True),
        input_transcription=InputTranscription(model="whisper-1"),
        noise_reduction=NoiseReduction(type="near_field"),
        input_format="pcm16",
        output_format="g711_alaw",
        tools=(),
        tool_choice="auto",
        speed=1.100000023841858,
        model="gpt-4o-realtime-preview-2024-12-17",
    )


def test_from_wire_maps_unknown_values_to_none() -> None:
    session = copy.deepcopy(GA_SERVER_SESSION)
    session["audio"]["input"]["format"] = {"type": "audio/pcm", "rate": 16000}
    session["audio"]["output"]["format"] = {"type": "audio/opus"}
    session["audio"]["output"]["voice"] = {"id": "voice_1234"}
    session["audio"]["input"]["turn_detection"] = {"type": "push_to_talk"}
    session["audio"]["input"]["noise_reduction"] = {"type": "studio", "strength": 0.5}
    session["audio"]["input"]["transcription"] = {"language": "en"}
    session["tool_choice"] = {"type": "mcp", "server_label": "docs", "name": "search"}
    session["output_modalities"] = ["audio", "video"]
    session["max_output_tokens"] = 12.5
    session["model"] = None
    config = SessionConfig.from_wire(session, "ga")
    assert config.input_format is None
    assert config.output_format is None
    assert config.voice is None
    assert config.turn_detection is None
    assert config.noise_reduction is None
    assert config.input_transcription is None
    assert config.tool_choice is None
    assert config.output_modalities is None
    assert config.max_output_tokens is None
    assert config.model is None


def test_from_wire_reads_forced_function_choices() -> None:
    assert (
        SessionConfig.from_wire(
            {"tool_choice": {"type": "function", "name": "f"}}, "ga"
        ).tool_choice
        == "f"
    )
    assert (
        SessionConfig.from_wire(
            {"tool_choice": {"type": "function", "function": {"name": "f"}}}, "beta"
        ).tool_choice
        == "f"
    )


def test_from_wire_keeps_missing_fields_unset() -> None:
    assert SessionConfig.from_wire({"type": "realtime"}, "ga") == SessionConfig()
    assert SessionConfig.from_wire({}, "beta") == SessionConfig()
    assert SessionConfig.from_wire({"audio": {"input": {}}}, "ga") == SessionConfig()


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "session", [None, [], "session", 42, {"audio": 5}, {"audio": {"input": []}}]
)
def test_from_wire_tolerates_garbage(session: Any, dialect: str) -> None:
    assert isinstance(SessionConfig.from_wire(session, dialect), SessionConfig)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "name", "model", "rate", "x"]), children, max_size=3
        )
    ),
    max_leaves=12,
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


@st.composite
def garbled_sessions(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    dialect = draw(st.sampled_from(DIALECTS))
    session = copy.deepcopy(GA_SERVER_SESSION if dialect == "ga" else BETA_SERVER_SESSION)
    paths = list(_paths(session))
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4)):
        parent: Any = session
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed this path
    return dialect, session


@settings(max_examples=50)
@given(garbled_sessions())
def test_from_wire_never_raises_on_garbled_server_sessions(
    case: tuple[str, dict[str, Any]],
) -> None:
    dialect, session = case
    config = SessionConfig.from_wire(session, dialect)
    # Whatever was parsed has the declared types.
    assert config.voice is None or isinstance(config.voice, str)
    assert config.speed is None or isinstance(config.speed, float)
    assert config.tools is None or all(isinstance(t, FunctionTool) for t in config.tools)
    assert config.turn_detection in (None, False) or isinstance(
        config.turn_detection, ServerVad | SemanticVad
    )


# --- config drift -----------------------------------------------------------------------


def drift(path: str, sent: object, echoed: object = ConfigDrift.ABSENT) -> ConfigDrift:
    return ConfigDrift(path=path, sent=sent, echoed=echoed)


def test_drift_none_when_echo_equals_sent_plus_server_fields() -> None:
    sent = FULL_GA.render("ga")
    echoed = copy.deepcopy(sent)
    echoed.update(id="sess_1", object="realtime.session", expires_at=0, tracing=None)
    echoed["audio"]["input"]["turn_detection"]["prefix_padding_ms"] = 300
    echoed["tools"][0]["strict"] = False
    echoed["tools"][0]["parameters"]["additionalProperties"] = False
    assert config_drift(sent, echoed) == []


def test_drift_ignored_field() -> None:
    [only] = config_drift({"type": "realtime", "instructions": "x"}, {"type": "realtime"})
    assert only == drift("instructions", "x")
    assert only.kind == "ignored"


def test_drift_changed_nested_field() -> None:
    sent = SessionConfig(voice="marin").render("ga")
    echoed = {"type": "realtime", "audio": {"output": {"voice": "alloy", "speed": 1.0}}}
    [only] = config_drift(sent, echoed)
    assert only == drift("audio.output.voice", "marin", "alloy")
    assert only.kind == "changed"


def test_drift_reports_a_missing_subtree_once() -> None:
    sent = SessionConfig(turn_detection=FULL_VAD).render("ga")
    assert config_drift(sent, {"type": "realtime", "audio": {"input": {}}}) == [
        drift("audio.input.turn_detection", FULL_VAD_WIRE)
    ]
    assert config_drift(sent, {"type": "realtime"}) == [
        drift("audio", {"input": {"turn_detection": FULL_VAD_WIRE}})
    ]


def test_drift_floats_compare_with_relative_tolerance() -> None:
    sent = SessionConfig(turn_detection=ServerVad(threshold=0.8)).render("beta")
    assert (
        config_drift(
            sent, {"turn_detection": {"type": "server_vad", "threshold": 0.800000011920929}}
        )
        == []
    )
    assert config_drift(sent, {"turn_detection": {"type": "server_vad", "threshold": 0.81}}) == [
        drift("turn_detection.threshold", 0.8, 0.81)
    ]
    assert config_drift({"speed": 1.0}, {"speed": 1}) == []
    assert (
        config_drift({"max_response_output_tokens": 1}, {"max_response_output_tokens": 1.0}) == []
    )


def test_drift_exact_values() -> None:
    assert config_drift({"max_output_tokens": "inf"}, {"max_output_tokens": 4096}) == [
        drift("max_output_tokens", "inf", 4096)
    ]
    assert config_drift({"x": {"create_response": True}}, {"x": {"create_response": 1}}) == [
        drift("x.create_response", True, 1)
    ]
    assert config_drift({"prefix_padding_ms": 300}, {"prefix_padding_ms": 301}) == [
        drift("prefix_padding_ms", 300, 301)
    ]


def test_drift_null_sent() -> None:
    sent = SessionConfig(turn_detection=False).render("ga")
    assert (
        config_drift(sent, {"type": "realtime", "audio": {"input": {"turn_detection": None}}}) == []
    )
    assert config_drift(sent, {"type": "realtime", "audio": {"input": {}}}) == []
    assert config_drift(sent, {"type": "realtime"}) == [
        drift("audio", {"input": {"turn_detection": None}})
    ]
    on = {"type": "server_vad", "threshold": 0.5}
    [only] = config_drift(sent, {"type": "realtime", "audio": {"input": {"turn_detection": on}}})
    assert only == drift("audio.input.turn_detection", None, on)
    assert only.kind == "changed"


def test_drift_object_sent_null_echoed() -> None:
    sent = {"input_audio_transcription": {"model": "whisper-1"}}
    assert config_drift(sent, {"input_audio_transcription": None}) == [
        drift("input_audio_transcription", {"model": "whisper-1"}, None)
    ]


def test_drift_tools() -> None:
    hang_up = FunctionTool(name="hang_up")
    sent = SessionConfig(tools=[WEATHER, hang_up]).render("ga")
    renamed = copy.deepcopy(sent)
    renamed["tools"][0]["name"] = "weather"
    assert config_drift(sent, renamed) == [drift("tools[0].name", "get_weather", "weather")]

    retyped = copy.deepcopy(sent)
    retyped["tools"][0]["parameters"]["properties"]["city"]["type"] = "number"
    assert config_drift(sent, retyped) == [
        drift("tools[0].parameters.properties.city.type", "string", "number")
    ]

    shorter = copy.deepcopy(sent)
    del shorter["tools"][1]
    [only] = config_drift(sent, shorter)
    assert (only.path, only.kind) == ("tools[1]", "ignored")

    longer = copy.deepcopy(sent)
    longer["tools"].append({"type": "function", "name": "extra"})
    [only] = config_drift(sent, longer)
    assert (only.path, only.kind) == ("tools", "changed")


def test_drift_lists() -> None:
    assert config_drift({"modalities": ["text", "audio"]}, {"modalities": ["audio", "text"]}) == []
    assert config_drift({"output_modalities": ["audio"]}, {"output_modalities": ["text"]}) == [
        drift("output_modalities", ["audio"], ["text"])
    ]
    assert config_drift({"output_modalities": ["audio"]}, {"output_modalities": "audio"}) == [
        drift("output_modalities", ["audio"], "audio")
    ]
    assert config_drift({"tools": []}, {"tools": []}) == []


def test_drift_tolerates_a_strange_echo() -> None:
    assert config_drift({"voice": "alloy"}, None) == [drift("voice", "alloy")]
    assert config_drift({"audio": {"output": {"voice": "x"}}}, {"audio": [1, 2]}) == [
        drift("audio", {"output": {"voice": "x"}}, [1, 2])
    ]


def _float32(value: object) -> object:
    if isinstance(value, float):
        return struct.unpack("<f", struct.pack("<f", value))[0]
    if isinstance(value, dict):
        return {key: _float32(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32(item) for item in value]
    return value


@settings(max_examples=40)
@given(dialect_and_config)
def test_drift_none_for_a_float32_echo_with_server_fields(case: tuple[str, SessionConfig]) -> None:
    dialect, config = case
    sent = config.render(dialect)
    echoed = _float32(sent)
    assert isinstance(echoed, dict)
    echoed.update(id="sess_1", object="realtime.session", expires_at=1700000000)
    assert config_drift(sent, echoed) == []


def _dotted(path: tuple[object, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else str(step)
    return text


@settings(max_examples=40)
@given(dialect_and_config, st.data())
def test_drift_finds_a_dropped_key(case: tuple[str, SessionConfig], data: st.DataObject) -> None:
    dialect, config = case
    sent = config.render(dialect)
    keys = [path for path in _paths(sent) if isinstance(path[-1], str)]
    if not keys:
        return
    path = data.draw(st.sampled_from(keys))
    echoed = copy.deepcopy(sent)
    parent: Any = echoed
    for step in path[:-1]:
        parent = parent[step]
    dropped = parent.pop(path[-1])
    drifts = config_drift(sent, echoed)
    if dropped is None:
        assert drifts == []  # null sent, absent echoed: no drift
    else:
        assert drifts == [drift(_dotted(path), dropped)]
        assert drifts[0].kind == "ignored"
