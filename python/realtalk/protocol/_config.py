"""Session configuration: one Pythonic description of a session, two wire shapes.

This module owns :class:`SessionConfig` and its parts, their rendering into the ``session``
object of a ``session.update`` event in the GA dialect (nested under ``audio.input`` and
``audio.output``, ``"type": "realtime"``) or the beta dialect (flat), the lenient parse of
the ``session`` object of ``session.created`` / ``session.updated`` back into a
:class:`SessionConfig`, and the comparison of what was sent with what the server echoed
(:func:`config_drift`).

Rules: sans-IO and pure. No sockets, no clocks, no environment, no logging, no trio. User
input is checked when it is built (ranges and types) and when it is rendered (what the
chosen dialect can express); every rejection is a
:class:`~realtalk.exceptions.ConfigurationError` whose message starts with the field path.
Server data is never range-checked and never makes this module raise: the server is the
authority on what it holds.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar, Final, Literal, NoReturn, Self, TypeVar, cast, get_args

from realtalk.exceptions import ConfigurationError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "AudioFormat",
    "ConfigDrift",
    "Dialect",
    "FunctionTool",
    "InputTranscription",
    "NoiseReduction",
    "SemanticVad",
    "ServerVad",
    "SessionConfig",
    "audio_format_rate",
    "audio_format_sample_width",
    "config_drift",
]

Dialect = Literal["ga", "beta"]
"""``"ga"``: ``openai.types.realtime``; ``"beta"``: ``openai.types.beta.realtime``."""

AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
"""Audio encodings both dialects know: 16-bit PCM at 24 kHz, G.711 mu-law, G.711 A-law."""

_Modality = Literal["text", "audio"]
_Eagerness = Literal["low", "medium", "high", "auto"]
_NoiseReductionType = Literal["near_field", "far_field"]
_ToolChoiceMode = Literal["auto", "none", "required"]

_DIALECTS: Final[tuple[str, ...]] = get_args(Dialect)
_AUDIO_FORMATS: Final[tuple[str, ...]] = get_args(AudioFormat)
_MODALITIES: Final[tuple[str, ...]] = get_args(_Modality)
_EAGERNESS: Final[tuple[str, ...]] = get_args(_Eagerness)
_NOISE_REDUCTION_TYPES: Final[tuple[str, ...]] = get_args(_NoiseReductionType)
_TOOL_CHOICE_MODES: Final[tuple[str, ...]] = get_args(_ToolChoiceMode)

# (sample rate in Hz, bytes per sample). The package states no rate for G.711; 8 kHz is
# what G.711 is everywhere else, and what the Realtime API sends over telephony.
_FORMAT_LAYOUT: Final[Mapping[str, tuple[int, int]]] = {
    "pcm16": (24000, 2),
    "g711_ulaw": (8000, 1),
    "g711_alaw": (8000, 1),
}
_GA_FORMAT_TYPE: Final[Mapping[str, str]] = {
    "pcm16": "audio/pcm",
    "g711_ulaw": "audio/pcmu",
    "g711_alaw": "audio/pcma",
}
_GA_FORMAT_FROM_TYPE: Final[Mapping[str, str]] = {v: k for k, v in _GA_FORMAT_TYPE.items()}

_TOOL_NAME: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_NAME_PATTERN: Final = "^[a-zA-Z0-9_-]{1,64}$"
_MAX_OUTPUT_TOKENS: Final = 4096
_DEFAULT_TRANSCRIPTION_MODEL: Final = "gpt-4o-mini-transcribe"

_T = TypeVar("_T")
_D = TypeVar("_D", bound="DataclassInstance")


# --- checks on user input ---------------------------------------------------------------


def _fail(path: str, message: str) -> NoReturn:
    raise ConfigurationError(f"{path}: {message}")


def _got(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _check_number(path: str, value: object, lo: float, hi: float) -> float:
    # bool is an int to Python, but True for a threshold is a bug, not 1.0.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(path, f"must be a number, got {_got(value)}")
    try:
        number = float(value)
    except (OverflowError, ValueError):
        number = math.nan
    if not lo <= number <= hi:  # also rejects NaN
        _fail(path, f"must be between {lo} and {hi}, got {value!r}")
    return number


def _check_ms(path: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(path, f"must be an integer number of milliseconds, got {_got(value)}")
    number = int(value)
    if number < 0:
        _fail(path, f"must be >= 0, got {value!r}")
    return number


def _check_bool(path: str, value: object) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"must be True or False, got {_got(value)}")
    return value


def _check_str(path: str, value: object, *, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        _fail(path, f"must be a string, got {_got(value)}")
    if non_empty and not value:
        _fail(path, "must not be empty")
    return value


def _check_choice(path: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        _fail(path, f"must be one of {allowed}, got {_got(value)}")
    return value


def _set(obj: object, name: str, value: object) -> None:
    # Normalising a field of a frozen dataclass inside __post_init__.
    object.__setattr__(obj, name, value)


def _unchecked(cls: type[_D], **values: object) -> _D:
    """Build a dataclass instance without running ``__post_init__`` (server data path)."""
    obj = object.__new__(cls)
    for f in fields(cls):
        if f.name in values:
            value = values[f.name]
        elif f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:  # pragma: no cover - every caller passes the required fields
            raise TypeError(f"missing {f.name}")
        object.__setattr__(obj, f.name, value)
    return obj


class _Null:
    """Marks "render as JSON null", since :func:`_put` reads Python ``None`` as "omit"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<null>"


_NULL: Final = _Null()


def _put(target: dict[str, object], key: str, value: object) -> None:
    if value is not None:
        target[key] = None if value is _NULL else value


# --- audio formats ----------------------------------------------------------------------


def audio_format_rate(fmt: AudioFormat) -> int:
    """Sample rate in Hz of an audio format: 24000 for ``pcm16``, 8000 for G.711.

    Raises :class:`realtalk.ConfigurationError` for an unknown format.
    """
    return _FORMAT_LAYOUT[_check_choice("audio_format", fmt, _AUDIO_FORMATS)][0]


def audio_format_sample_width(fmt: AudioFormat) -> int:
    """Bytes per mono sample of an audio format: 2 for ``pcm16``, 1 for G.711.

    Raises :class:`realtalk.ConfigurationError` for an unknown format.
    """
    return _FORMAT_LAYOUT[_check_choice("audio_format", fmt, _AUDIO_FORMATS)][1]


# --- parts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerVad:
    """Turn detection by voice activity: the turn ends after a stretch of silence.

    Every field left ``None`` is omitted, so the server keeps (or defaults) it.

    - ``threshold``: activation level, 0.0 to 1.0 (server default 0.5); higher needs
      louder speech.
    - ``prefix_padding_ms``: audio kept before detected speech, ms >= 0 (default 300).
    - ``silence_duration_ms``: silence that ends the turn, ms >= 0 (default 500).
    - ``create_response``: answer automatically when the turn ends.
    - ``interrupt_response``: cancel the response in progress when speech starts.
    - ``idle_timeout_ms``: ms >= 0 of user silence after the model's audio finished
      playing before the server prompts the user; GA dialect only (rendering for beta
      raises :class:`realtalk.ConfigurationError`).

    Raises :class:`realtalk.ConfigurationError` (path ``turn_detection.<field>``) for a value out of
    range or of the wrong type.
    """

    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None:
            _set(
                self,
                "threshold",
                _check_number("turn_detection.threshold", self.threshold, 0.0, 1.0),
            )
        for name in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _check_ms(f"turn_detection.{name}", value))
        for name in ("create_response", "interrupt_response"):
            value = getattr(self, name)
            if value is not None:
                _check_bool(f"turn_detection.{name}", value)

    def _render(self, dialect: str) -> dict[str, object]:
        if dialect == "beta" and self.idle_timeout_ms is not None:
            _fail("turn_detection.idle_timeout_ms", "not supported by the beta dialect (GA only)")
        out: dict[str, object] = {"type": "server_vad"}
        _put(out, "threshold", self.threshold)
        _put(out, "prefix_padding_ms", self.prefix_padding_ms)
        _put(out, "silence_duration_ms", self.silence_duration_ms)
        _put(out, "create_response", self.create_response)
        _put(out, "interrupt_response", self.interrupt_response)
        _put(out, "idle_timeout_ms", self.idle_timeout_ms)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SemanticVad:
    """Turn detection by a model that judges whether the user has finished speaking.

    - ``eagerness``: ``"low"``, ``"medium"``, ``"high"`` or ``"auto"`` (= ``"medium"``, the
      server default); the longest waits are about 8 s, 4 s and 2 s for low, medium and
      high.
    - ``create_response``, ``interrupt_response``: as for :class:`ServerVad`.

    ``None`` fields are omitted. Raises :class:`realtalk.ConfigurationError` (path
    ``turn_detection.<field>``) for a bad value.
    """

    eagerness: _Eagerness | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None

    def __post_init__(self) -> None:
        if self.eagerness is not None:
            _check_choice("turn_detection.eagerness", self.eagerness, _EAGERNESS)
        for name in ("create_response", "interrupt_response"):
            value = getattr(self, name)
            if value is not None:
                _check_bool(f"turn_detection.{name}", value)

    def _render(self, dialect: str) -> dict[str, object]:
        out: dict[str, object] = {"type": "semantic_vad"}
        _put(out, "eagerness", self.eagerness)
        _put(out, "create_response", self.create_response)
        _put(out, "interrupt_response", self.interrupt_response)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscription:
    """Transcription of the user's audio, run beside the model (it is guidance only).

    - ``model``: transcription model, e.g. ``"gpt-4o-mini-transcribe"`` (default),
      ``"gpt-4o-transcribe"``, ``"whisper-1"``; a non-empty string.
    - ``language``: ISO-639-1 code such as ``"en"``; ``None`` to let the model guess.
    - ``prompt``: text that guides the transcriber (keywords for ``whisper-1``).

    Raises :class:`realtalk.ConfigurationError` (path ``input_transcription.<field>``).
    """

    model: str = _DEFAULT_TRANSCRIPTION_MODEL
    language: str | None = None
    prompt: str | None = None

    def __post_init__(self) -> None:
        _check_str("input_transcription.model", self.model, non_empty=True)
        if self.language is not None:
            _check_str("input_transcription.language", self.language, non_empty=True)
        if self.prompt is not None:
            _check_str("input_transcription.prompt", self.prompt)

    def _render(self) -> dict[str, object]:
        out: dict[str, object] = {"model": self.model}
        _put(out, "language", self.language)
        _put(out, "prompt", self.prompt)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class NoiseReduction:
    """Noise filtering of input audio before VAD and the model.

    ``type`` is ``"near_field"`` (headset, close microphone) or ``"far_field"`` (laptop,
    conference room). Raises :class:`realtalk.ConfigurationError` (path ``noise_reduction.type``).
    """

    type: _NoiseReductionType

    def __post_init__(self) -> None:
        _check_choice("noise_reduction.type", self.type, _NOISE_REDUCTION_TYPES)

    def _render(self) -> dict[str, object]:
        return {"type": self.type}


def _default_parameters() -> dict[str, object]:
    return {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionTool:
    """A function the model may call.

    - ``name``: 1 to 64 characters from ``a-z A-Z 0-9 _ -``.
    - ``description``: when and how to call it, read by the model.
    - ``parameters``: JSON Schema of the arguments; a JSON-serialisable mapping whose
      ``"type"``, if present, is ``"object"``. Stored as a deep copy in JSON form (tuples
      become lists), so later changes to the caller's dict do not leak in. It does not take
      part in hashing (dicts cannot), only in equality.

    Raises :class:`realtalk.ConfigurationError` (path ``tool.<field>``).
    """

    name: str
    description: str = ""
    parameters: Mapping[str, object] = field(default_factory=_default_parameters, hash=False)

    def __post_init__(self) -> None:
        name = _check_str("tool.name", self.name)
        if not _TOOL_NAME.fullmatch(name):
            _fail("tool.name", f"must match {_TOOL_NAME_PATTERN}, got {name!r}")
        _check_str("tool.description", self.description)
        if not isinstance(self.parameters, Mapping):
            _fail(
                "tool.parameters", f"must be a mapping (a JSON Schema), got {_got(self.parameters)}"
            )
        try:
            text = json.dumps(dict(self.parameters), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            _fail("tool.parameters", f"must be JSON-serialisable: {exc}")
        parameters = json.loads(text)
        if "type" in parameters and parameters["type"] != "object":
            _fail("tool.parameters.type", f"must be 'object', got {parameters['type']!r}")
        _set(self, "parameters", parameters)

    @classmethod
    def from_schema(cls, schema: Mapping[str, object]) -> Self:
        """Build a tool from a schema dict in either common shape.

        Accepts the Realtime shape ``{"type": "function", "name", "description",
        "parameters"}`` and the Chat Completions shape ``{"type": "function", "function":
        {"name", "description", "parameters"}}``. ``"type"`` may be omitted; a missing or
        null ``description`` is ``""`` and missing or null ``parameters`` take the empty
        object schema. Other keys (such as Chat Completions' ``strict``, which the Realtime
        API lacks) are ignored. Raises :class:`realtalk.ConfigurationError` for any other tool type
        and for invalid fields.
        """
        if not isinstance(schema, Mapping):
            _fail("tool", f"must be a mapping, got {_got(schema)}")
        kind = schema.get("type", "function")
        if kind != "function":
            _fail("tool.type", f"only function tools are supported, got {kind!r}")
        body: object = schema.get("function", schema)
        if not isinstance(body, Mapping):
            _fail("tool.function", f"must be a mapping, got {_got(body)}")
        if "name" not in body:
            _fail("tool.name", "missing")
        description = body.get("description")
        parameters = body.get("parameters")
        # The types are checked by __post_init__; the casts only inform mypy.
        return cls(
            name=cast(str, body["name"]),
            description=cast(str, "" if description is None else description),
            parameters=cast(
                Mapping[str, object], _default_parameters() if parameters is None else parameters
            ),
        )

    def _render(self) -> dict[str, object]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": json.loads(json.dumps(self.parameters)),
        }


# --- the session ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """The settings of a Realtime session, independent of the wire dialect.

    ``None`` means "leave the server's value unchanged": the field is left out of the
    ``session.update``. ``False`` for ``turn_detection``, ``input_transcription`` and
    ``noise_reduction`` turns the feature off (JSON ``null``); ``turn_detection=False`` is
    push-to-talk, the client commits the audio buffer and asks for responses itself.

    - ``instructions``: system instructions; ``""`` clears them.
    - ``voice``: voice name, e.g. ``"marin"``, ``"alloy"``; non-empty. Fixed once the model
      has produced audio.
    - ``output_modalities``: a non-empty subset of ``("text", "audio")``, a list is
      accepted. GA takes exactly ``("text",)`` or ``("audio",)`` (audio always comes with
      its transcript). Beta takes ``("text",)``, ``("text", "audio")`` or
      ``("audio", "text")``; beta has no audio-only mode (its documentation offers
      ``["text"]`` to disable audio, and audio output always carries a transcript), so
      ``("audio",)`` is rendered for beta as ``["text", "audio"]``, the same behaviour GA
      gives it.
    - ``temperature``: sampling temperature, 0.6 to 1.2 (0.8 recommended); beta only.
    - ``max_output_tokens``: per response, including tool calls: 1 to 4096 or ``"inf"``.
    - ``turn_detection``: :class:`ServerVad`, :class:`SemanticVad`, or ``False``.
    - ``input_transcription``: :class:`InputTranscription`, or ``False``.
    - ``noise_reduction``: :class:`NoiseReduction`, or ``False``.
    - ``input_format``, ``output_format``: ``"pcm16"`` (24 kHz 16-bit mono LE),
      ``"g711_ulaw"``, ``"g711_alaw"``.
    - ``tools``: :class:`FunctionTool` s with distinct names; a list is accepted; ``()``
      removes all tools.
    - ``tool_choice``: ``"auto"``, ``"none"``, ``"required"``, or any other string to force
      the function tool of that name (which must be in ``tools`` when ``tools`` is set). A
      tool named like one of the three modes cannot be forced. Forcing a function is
      GA only: beta's ``session.tool_choice`` is typed as a plain mode string and the
      object form its docstrings mention is rejected by the beta model, so rendering a
      forced function for beta raises :class:`realtalk.ConfigurationError`.
    - ``speed``: playback speed multiple, 0.25 to 1.5 (default 1.0); between turns only.
    - ``model``: model name, non-empty; cannot change on a live session. Not checked
      against a list: the beta package types it as a closed set of names, but which
      models a server serves is the server's business.

    Every check failure raises :class:`realtalk.ConfigurationError` naming the field path.
    """

    instructions: str | None = None
    voice: str | None = None
    output_modalities: tuple[_Modality, ...] | None = None
    temperature: float | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    turn_detection: ServerVad | SemanticVad | Literal[False] | None = None
    input_transcription: InputTranscription | Literal[False] | None = None
    noise_reduction: NoiseReduction | Literal[False] | None = None
    input_format: AudioFormat | None = None
    output_format: AudioFormat | None = None
    tools: tuple[FunctionTool, ...] | None = None
    tool_choice: _ToolChoiceMode | str | None = None
    speed: float | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if self.instructions is not None:
            _check_str("instructions", self.instructions)
        if self.voice is not None:
            _check_str("voice", self.voice, non_empty=True)
        if self.output_modalities is not None:
            _set(self, "output_modalities", _check_modalities(self.output_modalities))
        if self.temperature is not None:
            _set(self, "temperature", _check_number("temperature", self.temperature, 0.6, 1.2))
        if self.max_output_tokens is not None:
            _set(self, "max_output_tokens", _check_max_output_tokens(self.max_output_tokens))
        _check_part("turn_detection", self.turn_detection, (ServerVad, SemanticVad))
        _check_part("input_transcription", self.input_transcription, (InputTranscription,))
        _check_part("noise_reduction", self.noise_reduction, (NoiseReduction,))
        if self.input_format is not None:
            _check_choice("input_format", self.input_format, _AUDIO_FORMATS)
        if self.output_format is not None:
            _check_choice("output_format", self.output_format, _AUDIO_FORMATS)
        if self.tools is not None:
            _set(self, "tools", _check_tools(self.tools))
        if self.tool_choice is not None:
            _check_tool_choice(self.tool_choice, self.tools)
        if self.speed is not None:
            _set(self, "speed", _check_number("speed", self.speed, 0.25, 1.5))
        if self.model is not None:
            _check_str("model", self.model, non_empty=True)

    # -- rendering --

    def render(self, dialect: Dialect) -> dict[str, object]:
        """The ``session`` object of a ``session.update`` event for ``dialect``.

        Only fields that are set appear; GA always carries ``"type": "realtime"`` and has
        ``audio`` / ``audio.input`` / ``audio.output`` only when one of their children is
        set. Returns a fresh dict each call. Raises :class:`realtalk.ConfigurationError` when the
        dialect cannot express a field: ``temperature`` and two output modalities in GA;
        ``turn_detection.idle_timeout_ms`` and a forced function ``tool_choice`` in beta.
        """
        dialect = cast(Dialect, _check_choice("dialect", dialect, _DIALECTS))
        if dialect == "ga":
            return self._render_ga()
        return self._render_beta()

    def _render_ga(self) -> dict[str, object]:
        if self.temperature is not None:
            _fail("temperature", "not supported by the GA dialect (beta only)")
        modalities = self.output_modalities
        if modalities is not None and len(modalities) != 1:
            _fail(
                "output_modalities",
                "the GA dialect takes exactly ('text',) or ('audio',) (audio always comes "
                f"with its transcript), got {modalities!r}",
            )
        session: dict[str, object] = {"type": "realtime"}
        _put(session, "model", self.model)
        _put(session, "instructions", self.instructions)
        if modalities is not None:
            session["output_modalities"] = list(modalities)
        _put(session, "max_output_tokens", self.max_output_tokens)

        audio_in: dict[str, object] = {}
        if self.input_format is not None:
            audio_in["format"] = _ga_format(self.input_format)
        _put(audio_in, "transcription", _render_part(self.input_transcription))
        _put(audio_in, "noise_reduction", _render_part(self.noise_reduction))
        _put(audio_in, "turn_detection", _render_turn_detection(self.turn_detection, "ga"))
        audio_out: dict[str, object] = {}
        if self.output_format is not None:
            audio_out["format"] = _ga_format(self.output_format)
        _put(audio_out, "voice", self.voice)
        _put(audio_out, "speed", self.speed)
        audio: dict[str, object] = {}
        if audio_in:
            audio["input"] = audio_in
        if audio_out:
            audio["output"] = audio_out
        if audio:
            session["audio"] = audio

        self._render_tools(session, "ga")
        return session

    def _render_beta(self) -> dict[str, object]:
        session: dict[str, object] = {}
        _put(session, "model", self.model)
        _put(session, "instructions", self.instructions)
        if self.output_modalities is not None:
            modalities = list(self.output_modalities)
            session["modalities"] = ["text", "audio"] if modalities == ["audio"] else modalities
        _put(session, "voice", self.voice)
        _put(session, "input_audio_format", self.input_format)
        _put(session, "output_audio_format", self.output_format)
        _put(session, "input_audio_transcription", _render_part(self.input_transcription))
        _put(session, "input_audio_noise_reduction", _render_part(self.noise_reduction))
        _put(session, "turn_detection", _render_turn_detection(self.turn_detection, "beta"))
        _put(session, "temperature", self.temperature)
        _put(session, "max_response_output_tokens", self.max_output_tokens)
        _put(session, "speed", self.speed)
        self._render_tools(session, "beta")
        return session

    def _render_tools(self, session: dict[str, object], dialect: str) -> None:
        if self.tools is not None:
            session["tools"] = [tool._render() for tool in self.tools]
        choice = self.tool_choice
        if choice is None:
            return
        if choice in _TOOL_CHOICE_MODES:
            session["tool_choice"] = choice
        elif dialect == "ga":
            session["tool_choice"] = {"type": "function", "name": choice}
        else:
            _fail(
                "tool_choice",
                f"the beta dialect cannot force the function {choice!r} (its tool_choice is "
                "'auto', 'none' or 'required'); use 'required' or the GA dialect",
            )

    # -- combining and parsing --

    def merged(self, other: SessionConfig) -> Self:
        """A config with ``other``'s set (non-``None``) fields over this one's.

        This is what the server holds after applying ``other`` as an update on top of
        ``self``. Nothing is re-checked: each side was checked when it was built, or came
        from the server, which is the authority.
        """
        if not isinstance(other, SessionConfig):
            _fail("other", f"must be a SessionConfig, got {_got(other)}")
        values: dict[str, object] = {}
        for f in fields(self):
            theirs = getattr(other, f.name)
            values[f.name] = getattr(self, f.name) if theirs is None else theirs
        return _unchecked(type(self), **values)

    @classmethod
    def from_wire(cls, session: Mapping[str, object], dialect: Dialect) -> Self:
        """Parse the ``session`` object of ``session.created`` / ``session.updated``.

        Lenient: values are not range-checked, a field whose value has an unexpected type
        or an unknown format becomes ``None``, keys the server adds (``id``, ``object``,
        ``expires_at``, ...) are ignored, ``null`` for turn detection, transcription or
        noise reduction becomes ``False``, tools other than function tools (MCP) are left
        out, and a forced function ``tool_choice`` becomes the function's name. Never raises
        on server data; raises :class:`realtalk.ConfigurationError` only for a bad ``dialect``.
        """
        _check_choice("dialect", dialect, _DIALECTS)
        if not isinstance(session, Mapping):
            return _unchecked(cls)
        if dialect == "ga":
            return _unchecked(cls, **_parse_ga(session))
        return _unchecked(cls, **_parse_beta(session))


def _check_modalities(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        _fail("output_modalities", f"must be a tuple or list of modalities, got {_got(value)}")
    if not value:
        _fail("output_modalities", "must not be empty")
    for i, item in enumerate(value):
        _check_choice(f"output_modalities[{i}]", item, _MODALITIES)
    if len(set(value)) != len(value):
        _fail("output_modalities", f"must not repeat a modality, got {value!r}")
    return tuple(value)


def _check_max_output_tokens(value: object) -> int | str:
    if value == "inf":
        return "inf"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail("max_output_tokens", f"must be an integer or 'inf', got {_got(value)}")
    number = int(value)
    if not 1 <= number <= _MAX_OUTPUT_TOKENS:
        _fail(
            "max_output_tokens",
            f"must be between 1 and {_MAX_OUTPUT_TOKENS} or 'inf', got {value!r}",
        )
    return number


def _check_part(path: str, value: object, kinds: tuple[type, ...]) -> None:
    if value is None or value is False or isinstance(value, kinds):
        return
    names = " or ".join(k.__name__ for k in kinds)
    _fail(path, f"must be {names}, False (off) or None (unchanged), got {_got(value)}")


def _check_tools(value: object) -> tuple[FunctionTool, ...]:
    if not isinstance(value, list | tuple):
        _fail("tools", f"must be a tuple or list of FunctionTool, got {_got(value)}")
    seen: set[str] = set()
    for i, tool in enumerate(value):
        if not isinstance(tool, FunctionTool):
            hint = " (use FunctionTool.from_schema for a dict)" if isinstance(tool, Mapping) else ""
            _fail(f"tools[{i}]", f"must be a FunctionTool, got {_got(tool)}{hint}")
        if tool.name in seen:
            _fail(f"tools[{i}].name", f"duplicate tool name {tool.name!r}")
        seen.add(tool.name)
    return tuple(value)


def _check_tool_choice(value: object, tools: tuple[FunctionTool, ...] | None) -> None:
    choice = _check_str("tool_choice", value)
    if choice in _TOOL_CHOICE_MODES:
        return
    if not _TOOL_NAME.fullmatch(choice):
        _fail(
            "tool_choice",
            f"must be 'auto', 'none', 'required' or a function name matching "
            f"{_TOOL_NAME_PATTERN}, got {choice!r}",
        )
    if tools is not None and all(tool.name != choice for tool in tools):
        names = ", ".join(repr(tool.name) for tool in tools) or "none"
        _fail("tool_choice", f"forces function {choice!r}, which is not in tools ({names})")


def _ga_format(fmt: str) -> dict[str, object]:
    if fmt == "pcm16":
        return {"type": "audio/pcm", "rate": _FORMAT_LAYOUT["pcm16"][0]}
    return {"type": _GA_FORMAT_TYPE[fmt]}


def _render_part(part: InputTranscription | NoiseReduction | Literal[False] | None) -> object:
    """``None`` -> omitted, ``False`` -> JSON null, else the part's object."""
    if part is None:
        return None
    if part is False:
        return _NULL
    return part._render()


def _render_turn_detection(
    part: ServerVad | SemanticVad | Literal[False] | None, dialect: str
) -> object:
    if part is None:
        return None
    if part is False:
        return _NULL
    return part._render(dialect)


# --- parsing server data ----------------------------------------------------------------


def _wire_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _wire_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _wire_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except (OverflowError, ValueError):
        return None


def _wire_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _wire_mapping(value: object) -> Mapping[str, object]:
    return cast(Mapping[str, object], value) if isinstance(value, Mapping) else {}


def _wire_choice(value: object, choices: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in choices else None


def _wire_off(
    wire: Mapping[str, object], key: str, parse: Callable[[object], _T]
) -> _T | bool | None:
    """Absent -> ``None`` (unknown), JSON null -> ``False`` (off), else ``parse``."""
    if key not in wire:
        return None
    value = wire[key]
    if value is None:
        return False
    return parse(value)


def _wire_modalities(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list | tuple) or not value:
        return None
    if not all(isinstance(m, str) and m in _MODALITIES for m in value):
        return None
    return tuple(value)


def _wire_max_tokens(value: object) -> int | str | None:
    return "inf" if value == "inf" else _wire_int(value)


def _wire_turn_detection(value: object) -> ServerVad | SemanticVad | None:
    wire = _wire_mapping(value)
    kind = wire.get("type")
    if kind == "server_vad":
        return _unchecked(
            ServerVad,
            threshold=_wire_float(wire.get("threshold")),
            prefix_padding_ms=_wire_int(wire.get("prefix_padding_ms")),
            silence_duration_ms=_wire_int(wire.get("silence_duration_ms")),
            create_response=_wire_bool(wire.get("create_response")),
            interrupt_response=_wire_bool(wire.get("interrupt_response")),
            idle_timeout_ms=_wire_int(wire.get("idle_timeout_ms")),
        )
    if kind == "semantic_vad":
        return _unchecked(
            SemanticVad,
            eagerness=_wire_choice(wire.get("eagerness"), _EAGERNESS),
            create_response=_wire_bool(wire.get("create_response")),
            interrupt_response=_wire_bool(wire.get("interrupt_response")),
        )
    return None


def _wire_transcription(value: object) -> InputTranscription | None:
    wire = _wire_mapping(value)
    model = _wire_str(wire.get("model"))
    if model is None:
        return None
    return _unchecked(
        InputTranscription,
        model=model,
        language=_wire_str(wire.get("language")),
        prompt=_wire_str(wire.get("prompt")),
    )


def _wire_noise_reduction(value: object) -> NoiseReduction | None:
    kind = _wire_choice(_wire_mapping(value).get("type"), _NOISE_REDUCTION_TYPES)
    return None if kind is None else _unchecked(NoiseReduction, type=kind)


def _wire_ga_format(value: object) -> str | None:
    wire = _wire_mapping(value)
    kind = wire.get("type")
    fmt = _GA_FORMAT_FROM_TYPE.get(kind) if isinstance(kind, str) else None
    if (
        fmt == "pcm16"
        and wire.get("rate", _FORMAT_LAYOUT["pcm16"][0]) != _FORMAT_LAYOUT["pcm16"][0]
    ):
        return None  # a rate we have no name for
    return fmt


def _json_copy(value: object) -> object:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return None


def _wire_tools(value: object) -> tuple[FunctionTool, ...] | None:
    if not isinstance(value, list | tuple):
        return None
    tools: list[FunctionTool] = []
    for item in value:
        wire = _wire_mapping(item)
        name = _wire_str(wire.get("name"))
        if wire.get("type", "function") != "function" or name is None:
            continue
        parameters = _json_copy(wire.get("parameters"))
        tools.append(
            _unchecked(
                FunctionTool,
                name=name,
                description=_wire_str(wire.get("description")) or "",
                parameters=parameters if isinstance(parameters, dict) else _default_parameters(),
            )
        )
    return tuple(tools)


def _wire_tool_choice(value: object) -> str | None:
    if isinstance(value, str):
        return value
    wire = _wire_mapping(value)
    if wire.get("type") != "function":
        return None
    # GA: {"type": "function", "name": n}; the beta docstrings' {"function": {"name": n}}.
    name = wire.get("name", _wire_mapping(wire.get("function")).get("name"))
    return _wire_str(name)


def _parse_ga(session: Mapping[str, object]) -> dict[str, object]:
    audio = _wire_mapping(session.get("audio"))
    audio_in = _wire_mapping(audio.get("input"))
    audio_out = _wire_mapping(audio.get("output"))
    return {
        "instructions": _wire_str(session.get("instructions")),
        "voice": _wire_str(audio_out.get("voice")),
        "output_modalities": _wire_modalities(session.get("output_modalities")),
        "max_output_tokens": _wire_max_tokens(session.get("max_output_tokens")),
        "turn_detection": _wire_off(audio_in, "turn_detection", _wire_turn_detection),
        "input_transcription": _wire_off(audio_in, "transcription", _wire_transcription),
        "noise_reduction": _wire_off(audio_in, "noise_reduction", _wire_noise_reduction),
        "input_format": _wire_ga_format(audio_in.get("format")),
        "output_format": _wire_ga_format(audio_out.get("format")),
        "tools": _wire_tools(session.get("tools")),
        "tool_choice": _wire_tool_choice(session.get("tool_choice")),
        "speed": _wire_float(audio_out.get("speed")),
        "model": _wire_str(session.get("model")),
    }


def _parse_beta(session: Mapping[str, object]) -> dict[str, object]:
    return {
        "instructions": _wire_str(session.get("instructions")),
        "voice": _wire_str(session.get("voice")),
        "output_modalities": _wire_modalities(session.get("modalities")),
        "temperature": _wire_float(session.get("temperature")),
        "max_output_tokens": _wire_max_tokens(session.get("max_response_output_tokens")),
        "turn_detection": _wire_off(session, "turn_detection", _wire_turn_detection),
        "input_transcription": _wire_off(session, "input_audio_transcription", _wire_transcription),
        "noise_reduction": _wire_off(session, "input_audio_noise_reduction", _wire_noise_reduction),
        "input_format": _wire_choice(session.get("input_audio_format"), _AUDIO_FORMATS),
        "output_format": _wire_choice(session.get("output_audio_format"), _AUDIO_FORMATS),
        "tools": _wire_tools(session.get("tools")),
        "tool_choice": _wire_tool_choice(session.get("tool_choice")),
        "speed": _wire_float(session.get("speed")),
        "model": _wire_str(session.get("model")),
    }


# --- drift between what was sent and what the server holds ------------------------------


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Final = _Absent()

# Servers store floats as float32 and echo 0.8 as 0.800000011920929.
_FLOAT_REL_TOL: Final = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDrift:
    """One setting the server did not take as sent.

    ``path`` locates it in the rendered ``session`` object (``audio.input.format.rate``,
    ``tools[0].name``); ``sent`` is the value sent and ``echoed`` the value in
    ``session.updated``, or :attr:`ABSENT` when the echo lacks the path.
    """

    ABSENT: ClassVar[object] = _ABSENT
    """The ``echoed`` value of a path missing from the echo."""

    path: str
    sent: object
    echoed: object

    @property
    def kind(self) -> Literal["ignored", "changed"]:
        """``"ignored"`` when the echo lacks the path, ``"changed"`` when it differs."""
        return "ignored" if self.echoed is _ABSENT else "changed"


def config_drift(sent: Mapping[str, object], echoed: Mapping[str, object]) -> list[ConfigDrift]:
    """Compare a rendered ``session`` object with the one echoed by ``session.updated``.

    The rules, applied from the root down:

    - Every key in ``sent`` must be in ``echoed``; keys only in ``echoed`` (server
      defaults, ``id``, ``expires_at``, fields a server adds to a tool) never count. A
      missing key is one ``"ignored"`` drift at the highest missing path.
    - Objects are compared key by key, recursively.
    - ``null`` sent (a feature turned off) matches an echo of ``null`` or no key at all.
    - Lists compare element by element (``tools[1].parameters``); an echo with more
      elements than sent is one ``"changed"`` drift for the whole list. Lists of strings
      only (modalities) compare as multisets: their order carries no meaning.
    - Numbers compare with a relative tolerance of 1e-6 when either is a float (servers
      echo float32); booleans only equal booleans; everything else, such as ``"inf"``
      against 4096, compares with ``==``.

    Returns the drifts in the order of ``sent``; an empty list means the server took
    everything. Never raises on an echo of unexpected shape.
    """
    drifts: list[ConfigDrift] = []
    _diff_mapping("", sent, echoed if isinstance(echoed, Mapping) else {}, drifts)
    return drifts


def _diff_mapping(
    path: str, sent: Mapping[str, object], echoed: Mapping[str, object], out: list[ConfigDrift]
) -> None:
    for key, value in sent.items():
        _diff(f"{path}.{key}" if path else str(key), value, echoed.get(key, _ABSENT), out)


def _diff(path: str, sent: object, echoed: object, out: list[ConfigDrift]) -> None:
    if sent is None:
        if echoed is not None and echoed is not _ABSENT:
            out.append(ConfigDrift(path=path, sent=sent, echoed=echoed))
    elif echoed is _ABSENT:
        out.append(ConfigDrift(path=path, sent=sent, echoed=echoed))
    elif isinstance(sent, Mapping):
        if isinstance(echoed, Mapping):
            _diff_mapping(path, sent, echoed, out)
        else:
            out.append(ConfigDrift(path=path, sent=sent, echoed=echoed))
    elif isinstance(sent, list | tuple):
        if not isinstance(echoed, list | tuple):
            out.append(ConfigDrift(path=path, sent=sent, echoed=echoed))
        elif all(isinstance(v, str) for v in sent) and all(isinstance(v, str) for v in echoed):
            if Counter(sent) != Counter(echoed):
                out.append(ConfigDrift(path=path, sent=sent, echoed=echoed))
        else:
            for i, item in enumerate(sent):
                _diff(f"{path}[{i}]", item, echoed[i] if i < len(echoed) else _ABSENT, out)
            if len(echoed) > len(sent):
                out.append(ConfigDrift(path=path, sent=sent, echoed=echoed))
    elif not _leaf_equal(sent, echoed):
        out.append(ConfigDrift(path=path, sent=sent, echoed=echoed))


def _leaf_equal(sent: object, echoed: object) -> bool:
    if isinstance(sent, bool) or isinstance(echoed, bool):
        return isinstance(sent, bool) and isinstance(echoed, bool) and sent == echoed
    if (
        isinstance(sent, numbers.Real)
        and isinstance(echoed, numbers.Real)
        and (isinstance(sent, float) or isinstance(echoed, float))
    ):
        try:
            return math.isclose(float(sent), float(echoed), rel_tol=_FLOAT_REL_TOL)
        except OverflowError:
            return False
    try:
        return bool(sent == echoed)
    except Exception:  # an echo of exotic type whose __eq__ fails is simply different
        return False
