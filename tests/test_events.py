"""encode_append and parse_server_event against json and base64 from the standard library.

parse_server_event is checked as h11 checks its parsers: valid events whole and generated
in every shape the JSON grammar allows, every strict prefix, trailing data, a battery of
malformed events, and fuzzed text and bytes, where ``json.loads`` is the oracle. G.711
payloads (``audio_format="g711_ulaw"`` / ``"g711_alaw"``) are checked against audioop.
"""

import base64
import json
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtalk import AudioFormatError, ConfigurationError, EventParseError
from realtalk.core import (
    AudioDelta,
    alaw_decode,
    encode_append,
    f32_to_pcm16,
    parse_server_event,
    ulaw_decode,
)
from realtalk.testing import (
    BETA_AUDIO_DELTA,
    GA_AUDIO_DELTA,
    audio_delta_events,
    event_ids,
    float32_arrays,
    pcm16_arrays,
)

AUDIO_TYPES = (GA_AUDIO_DELTA, BETA_AUDIO_DELTA)
AS_STR: Callable[[str], Any] = str
AS_BYTES: Callable[[str], Any] = str.encode
INPUT_FORMS = pytest.mark.parametrize("form", [AS_STR, AS_BYTES], ids=["str", "bytes"])


def pcm_bytes(x: npt.NDArray[np.int16]) -> bytes:
    return x.astype("<i2").tobytes()


# --- encode_append ----------------------------------------------------------------------


def decode_append(text: str) -> tuple[dict[str, Any], bytes]:
    assert isinstance(text, str)
    event = json.loads(text)
    assert event["type"] == "input_audio_buffer.append"
    return event, base64.b64decode(event["audio"], validate=True)


@given(pcm16_arrays(), st.none() | event_ids())
def test_encode_append_int16_round_trips(x: npt.NDArray[np.int16], event_id: str | None) -> None:
    text = encode_append(x, event_id=event_id)
    event, audio = decode_append(text)
    assert audio == pcm_bytes(x)
    if event_id is None:
        assert list(event) == ["type", "audio"]
    else:
        assert list(event) == ["type", "event_id", "audio"]
        assert event["event_id"] == event_id


@given(float32_arrays())
def test_encode_append_float32_is_converted_like_f32_to_pcm16(x: npt.NDArray[np.float32]) -> None:
    _, audio = decode_append(encode_append(x))
    assert audio == pcm_bytes(f32_to_pcm16(x))


@given(pcm16_arrays())
def test_encode_append_bytes_are_sent_as_they_are(x: npt.NDArray[np.int16]) -> None:
    raw = pcm_bytes(x)
    for data in (raw, bytearray(raw), memoryview(raw), np.frombuffer(raw, dtype=np.uint8)):
        _, audio = decode_append(encode_append(data))
        assert audio == raw


def test_encode_append_exact_text() -> None:
    x = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    audio = base64.b64encode(pcm_bytes(x)).decode("ascii")
    assert encode_append(x) == f'{{"type":"input_audio_buffer.append","audio":"{audio}"}}'
    assert encode_append(x, event_id="evt_1") == (
        f'{{"type":"input_audio_buffer.append","event_id":"evt_1","audio":"{audio}"}}'
    )


@pytest.mark.parametrize(
    "event_id",
    [
        "",
        'say "hi"',
        "back\\slash",
        "\\u0041 is not an escape here",
        "new\nline\ttab\r\b\f",
        "\x00\x01\x1f\x7f",
        "</script>/",
        "caf\u00e9 \u2028\u2029 \ufeff",
        "\U0001f600\U0010ffff",
        "\x80\x9f",
    ],
)
def test_encode_append_escapes_event_id(event_id: str) -> None:
    event, audio = decode_append(encode_append(b"\x01\x02", event_id=event_id))
    assert event["event_id"] == event_id
    assert audio == b"\x01\x02"


def test_encode_append_two_dimensional_array_is_sent_flat() -> None:
    x = np.arange(12, dtype=np.int16).reshape(6, 2)
    _, audio = decode_append(encode_append(x))
    assert audio == pcm_bytes(x.ravel())


def test_encode_append_empty() -> None:
    for empty in (b"", np.empty(0, dtype=np.int16), np.empty(0, dtype=np.float32)):
        event, audio = decode_append(encode_append(empty))
        assert event["audio"] == ""
        assert audio == b""


def test_encode_append_misaligned_float32_is_right_or_an_error(
    misaligned: Callable[[Any], Any],
) -> None:
    # Right values or an AudioFormatError; never silently empty audio.
    x = np.linspace(-1, 1, 6, dtype=np.float32)
    try:
        text = encode_append(misaligned(x))
    except AudioFormatError:
        return
    assert decode_append(text)[1] == pcm_bytes(f32_to_pcm16(x))


@pytest.mark.parametrize(
    ("samples", "kwargs", "error"),
    [
        pytest.param(b"\x00", {}, AudioFormatError, id="1-byte"),
        pytest.param(bytearray(3), {}, AudioFormatError, id="3-bytes"),
        pytest.param(np.zeros(5, dtype=np.uint8), {}, AudioFormatError, id="odd-uint8"),
        pytest.param(np.zeros(4, dtype=np.float64), {}, AudioFormatError, id="float64"),
        pytest.param(np.zeros(4, dtype=np.int32), {}, AudioFormatError, id="int32"),
        pytest.param(np.zeros(8, dtype=np.int16)[::2], {}, AudioFormatError, id="strided"),
        pytest.param(
            np.zeros(4, dtype=np.dtype(np.int16).newbyteorder("S")),
            {},
            AudioFormatError,
            id="byte-swapped",
        ),
        pytest.param([0, 1], {}, TypeError, id="list"),
        pytest.param("AAAA", {}, TypeError, id="str"),
        pytest.param(None, {}, TypeError, id="None"),
        pytest.param(b"", {"event_id": 5}, TypeError, id="event_id-int"),
        pytest.param(b"", {"event_id": b"id"}, TypeError, id="event_id-bytes"),
        pytest.param(b"", {"event_id": "\ud800"}, UnicodeEncodeError, id="lone-surrogate"),
    ],
)
def test_encode_append_rejects(samples: object, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        encode_append(samples, **kwargs)


def test_encode_append_event_id_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        encode_append(b"", "evt_1")


# --- parse_server_event: audio deltas -------------------------------------------------

PAYLOAD = "AAECAw=="  # bytes 00 01 02 03: samples 0x0100 and 0x0302 (PCM16 little-endian)
PAYLOAD_SAMPLES = [256, 770]
MISSING = object()


def delta_event(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "type": GA_AUDIO_DELTA,
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": PAYLOAD,
    }
    event.update(fields)
    return event


def event_text(**raw_values: object) -> str:
    """A compact audio delta event whose values are given as raw JSON text, or MISSING."""
    values: dict[str, object] = {k: json.dumps(v) for k, v in delta_event().items()}
    values.update(raw_values)
    members = [f'"{k}":{v}' for k, v in values.items() if v is not MISSING]
    return "{" + ",".join(members) + "}"


BASE = event_text()


def assert_delta_matches(delta: object, fields: dict[str, Any], samples: list[int] | Any) -> None:
    assert isinstance(delta, AudioDelta)
    assert delta.type == fields["type"]
    assert delta.event_id == fields["event_id"]
    assert delta.response_id == fields["response_id"]
    assert delta.item_id == fields["item_id"]
    assert delta.output_index == fields["output_index"]
    assert delta.content_index == fields["content_index"]
    assert type(delta.output_index) is int
    assert type(delta.content_index) is int
    got = delta.samples
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.int16
    assert got.ndim == 1
    np.testing.assert_array_equal(got, np.asarray(samples, dtype=np.int16))


@INPUT_FORMS
def test_parse_minimal_ga_event(form: Callable[[str], Any]) -> None:
    delta = parse_server_event(form(BASE))
    assert_delta_matches(delta, json.loads(BASE), PAYLOAD_SAMPLES)


@INPUT_FORMS
def test_parse_minimal_beta_event(form: Callable[[str], Any]) -> None:
    text = json.dumps(delta_event(type=BETA_AUDIO_DELTA))
    delta = parse_server_event(form(text))
    assert isinstance(delta, AudioDelta)
    assert delta.type == "response.audio.delta"
    assert_delta_matches(delta, json.loads(text), PAYLOAD_SAMPLES)


@given(audio_delta_events())
def test_parse_generated_audio_deltas(example: tuple[str, dict[str, Any], Any]) -> None:
    text, fields, samples = example
    assert json.loads(text) == fields  # the strategy's own promise
    assert_delta_matches(parse_server_event(text), fields, samples)
    data = text.encode("utf-8")
    assert_delta_matches(parse_server_event(data), fields, samples)
    assert_delta_matches(parse_server_event(bytearray(data)), fields, samples)
    assert_delta_matches(parse_server_event(memoryview(data)), fields, samples)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
@given(data=st.data())
def test_parse_generated_audio_deltas_of_each_dialect(dialect: str, data: st.DataObject) -> None:
    text, fields, samples = data.draw(audio_delta_events(dialect))
    assert fields["type"] == (GA_AUDIO_DELTA if dialect == "ga" else BETA_AUDIO_DELTA)
    assert_delta_matches(parse_server_event(text), fields, samples)


@given(audio_delta_events(max_samples=50, extra_fields=False, duplicate_keys=False))
def test_generated_events_are_valid_for_the_openai_models(
    example: tuple[str, dict[str, Any], Any],
) -> None:
    # The event shapes are the openai package's, so the generated events are ones a
    # server sends (pydantic validates field names and types).
    realtime = pytest.importorskip("openai.types.realtime")
    beta = pytest.importorskip("openai.types.beta.realtime")
    text, fields, _ = example
    model = realtime.ResponseAudioDeltaEvent if fields["type"] == GA_AUDIO_DELTA else None
    model = model or beta.ResponseAudioDeltaEvent
    assert model.model_validate_json(text).model_dump() == fields


def test_parse_ten_seconds_of_audio() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(-32768, 32768, size=480_000, dtype=np.int16)
    text = json.dumps(delta_event(delta=base64.b64encode(pcm_bytes(x)).decode("ascii")))
    for arg in (text, text.encode()):
        delta = parse_server_event(arg)
        assert isinstance(delta, AudioDelta)
        assert delta.samples.shape == (480_000,)
        np.testing.assert_array_equal(delta.samples, x)


@INPUT_FORMS
def test_parse_delta_with_escaped_slashes(form: Callable[[str], Any]) -> None:
    # -1 is ff ff, whose base64 is all slashes; some JSON encoders write "/" as "\/".
    x = np.concatenate([np.full(300, -1, dtype=np.int16), np.arange(-300, 300, dtype=np.int16)])
    b64 = base64.b64encode(pcm_bytes(x)).decode("ascii")
    assert "/" in b64
    text = json.dumps(delta_event(delta=b64)).replace("/", "\\/")
    assert "\\/" in text
    assert_delta_matches(parse_server_event(form(text)), json.loads(text), x)


@INPUT_FORMS
def test_parse_escaped_keys_type_and_delta(form: Callable[[str], Any]) -> None:
    text = (
        '{"typ\\u0065":"response.output\\u005Faudio.delta","event_\\u0069d":"e\\u00e9\\ud83d'
        '\\ude00","response_id":"r","item_id":"i\\"t\\\\","output_index":1,"content_index":2,'
        '"delta":"\\u0041AECAw=="}'
    )
    assert_delta_matches(parse_server_event(form(text)), json.loads(text), PAYLOAD_SAMPLES)


def test_parse_escaped_lone_surrogate_in_an_id_is_kept_like_json() -> None:
    # JSON can escape a lone surrogate; json.loads keeps it in the str, and so must we.
    text = event_text(event_id='"ev\\ud83d"', item_id='"\\udc00x"')
    assert_delta_matches(parse_server_event(text), json.loads(text), PAYLOAD_SAMPLES)
    assert_delta_matches(parse_server_event(text.encode()), json.loads(text), PAYLOAD_SAMPLES)


@INPUT_FORMS
def test_parse_empty_delta_gives_no_samples(form: Callable[[str], Any]) -> None:
    delta = parse_server_event(form(json.dumps(delta_event(delta=""))))
    assert isinstance(delta, AudioDelta)
    assert delta.samples.shape == (0,)
    assert delta.samples.dtype == np.int16


def test_parse_deep_nesting_in_an_unknown_field_of_an_audio_delta() -> None:
    depth = 100_000
    text = BASE[:-1] + ',"x":' + "[" * depth + "]" * depth + "}"
    assert_delta_matches(parse_server_event(text), json.loads(BASE), PAYLOAD_SAMPLES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            BASE[:-1] + ',"type":"response.done"}',
            "dict",
            id="type-audio-then-other",
        ),
        pytest.param(
            '{"type":"response.done",' + BASE[1:],
            "delta",
            id="type-other-then-audio",
        ),
        pytest.param(BASE[:-1] + ',"item_id":"item_2"}', "delta", id="item_id-twice"),
        pytest.param(
            event_text(delta='"!!!!","delta":' + json.dumps(PAYLOAD)),
            "delta",
            id="bad-delta-then-good",
        ),
        pytest.param(
            event_text(output_index='"x","output_index":3'), "delta", id="output_index-twice"
        ),
        pytest.param(
            event_text(event_id='5,"event_id":"event_2"'), "delta", id="event_id-number-then-str"
        ),
        pytest.param(BASE[:-1] + ',"delta":5}', "error", id="good-delta-then-number"),
        pytest.param(
            BASE[:-1] + ',"delta":"\x01","delta":"AAECAw=="}',
            "error",
            id="raw-control-char-in-a-superseded-delta",
        ),
    ],
)
def test_parse_duplicate_keys_last_wins_like_json(text: str, expected: str) -> None:
    if expected == "error":
        # Either the last value is of the wrong type, or the text is not valid JSON.
        with pytest.raises(EventParseError):
            parse_server_event(text)
        return
    reference = json.loads(text)
    got = parse_server_event(text)
    if expected == "dict":
        assert got == reference
    else:
        assert_delta_matches(got, reference, PAYLOAD_SAMPLES)


def test_audio_delta_repr_names_type_and_item() -> None:
    text = json.dumps(delta_event(type=BETA_AUDIO_DELTA, item_id="item_Zq9"))
    r = repr(parse_server_event(text))
    assert "AudioDelta" in r
    assert "response.audio.delta" in r
    assert "item_Zq9" in r


def test_audio_delta_is_read_only() -> None:
    delta = parse_server_event(BASE)
    assert isinstance(delta, AudioDelta)
    with pytest.raises(AttributeError):
        delta.item_id = "other"


# --- parse_server_event: other events ---------------------------------------------------

SESSION_CREATED = {
    "type": "session.created",
    "event_id": "event_C9G5RJeJ2gF77mV7f2B1j",
    "session": {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_C9G5QPteg4UIbotdKLoYQ",
        "model": "gpt-realtime-2025-08-28",
        "output_modalities": ["audio"],
        "instructions": 'Be "helpful" \u2014 and brief.\n',
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "expires_at": 1756324625,
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
        "include": None,
    },
}
RESPONSE_DONE = {
    "type": "response.done",
    "event_id": "event_CCXHxcMy86rrKhBLDdqCh",
    "response": {
        "object": "realtime.response",
        "id": "resp_CCXHw0UJld10EzIUXQCNh",
        "status": "completed",
        "status_details": None,
        "output": [
            {
                "id": "item_CCXHwGjjDUfOXbiySlK7i",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_audio", "transcript": "Loud and clear!"}],
            }
        ],
        "conversation_id": "conv_CCXHsurMKcaVxIZvaCI5m",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
        "usage": {
            "total_tokens": 253,
            "input_tokens": 132,
            "output_tokens": 121,
            "input_token_details": {
                "text_tokens": 119,
                "audio_tokens": 13,
                "image_tokens": 0,
                "cached_tokens": 64,
                "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": 30, "audio_tokens": 91},
        },
        "metadata": None,
    },
}
TRANSCRIPT_DELTA = {
    "type": "response.output_audio_transcript.delta",
    "event_id": "event_CCXGRxsAimPAs8kS2Wc7Z",
    "response_id": "resp_CCXGRLbwKfP2xU3HzXzrH",
    "item_id": "item_CCXGRxbY0n6WE4EszhF5J",
    "output_index": 0,
    "content_index": 0,
    "delta": "Loud",
}
ERROR = {
    "type": "error",
    "event_id": "event_890",
    "error": {
        "type": "invalid_request_error",
        "code": "invalid_event",
        "message": "The 'type' field is missing.",
        "param": None,
        "event_id": "event_567",
    },
}
AUDIO_DONE = {
    "type": "response.output_audio.done",
    "event_id": "event_CCXHxcMy86rrKhBLDdqCi",
    "response_id": "resp_CCXHw0UJld10EzIUXQCNh",
    "item_id": "item_CCXHwGjjDUfOXbiySlK7i",
    "output_index": 0,
    "content_index": 0,
}
SPEECH_STARTED = {
    "type": "input_audio_buffer.speech_started",
    "event_id": "event_1516",
    "audio_start_ms": 1000,
    "item_id": "msg_003",
}
RATE_LIMITS = {
    "type": "rate_limits.updated",
    "event_id": "event_5758",
    "rate_limits": [
        {"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 60},
        {"name": "tokens", "limit": 50000, "remaining": 49950, "reset_seconds": 60.5},
    ],
}
SERVER_EVENTS = {
    "session.created": SESSION_CREATED,
    "response.done": RESPONSE_DONE,
    "transcript-delta": TRANSCRIPT_DELTA,
    "error": ERROR,
    "audio-done": AUDIO_DONE,
    "speech-started": SPEECH_STARTED,
    "rate-limits": RATE_LIMITS,
}
# Events that look like audio deltas but are not: they come back as dicts.
LOOKALIKES = {
    "beta-transcript-delta": dict(TRANSCRIPT_DELTA, type="response.audio_transcript.delta"),
    "type-with-space": delta_event(type=GA_AUDIO_DELTA + " "),
    "type-upper-case": delta_event(type=GA_AUDIO_DELTA.upper()),
    "type-number": delta_event(type=5),
    "type-null": delta_event(type=None),
    "no-type": {k: v for k, v in delta_event().items() if k != "type"},
    "type-nested": {"x": delta_event()},
}


@pytest.mark.parametrize(
    "text",
    [json.dumps([delta_event()]), "1", " null ", '"response.output_audio.delta"', "[]"],
    ids=["delta-in-a-list", "number", "null", "string", "empty-list"],
)
@pytest.mark.parametrize("form", [str, str.encode], ids=["str", "bytes"])
def test_valid_json_that_is_not_an_object_is_refused(text: str, form: Callable[[str], Any]) -> None:
    with pytest.raises(EventParseError, match="a server event is a JSON object") as info:
        parse_server_event(form(text))
    assert info.value.position == len(text) - len(text.lstrip())


def test_server_event_samples_are_valid_for_the_openai_models() -> None:
    pydantic = pytest.importorskip("pydantic")
    realtime = pytest.importorskip("openai.types.realtime")
    adapter = pydantic.TypeAdapter(realtime.RealtimeServerEvent)
    for name, event in SERVER_EVENTS.items():
        model = adapter.validate_python(event)
        assert model.type == event["type"], name


@INPUT_FORMS
@pytest.mark.parametrize(
    "event", [*SERVER_EVENTS.values(), *LOOKALIKES.values()], ids=[*SERVER_EVENTS, *LOOKALIKES]
)
@pytest.mark.parametrize(
    "dump",
    [
        lambda e: json.dumps(e),
        lambda e: json.dumps(e, separators=(",", ":"), ensure_ascii=False),
        lambda e: json.dumps(e, indent=2).replace("/", "\\/"),
    ],
    ids=["default", "compact-utf8", "indented"],
)
def test_other_events_are_what_json_loads_gives(
    form: Callable[[str], Any], event: object, dump: Callable[[object], str]
) -> None:
    text = dump(event)
    got = parse_server_event(form(text))
    assert type(got) is type(json.loads(text))
    assert got == json.loads(text)
    assert got == event


# --- parse_server_event: prefixes and trailing data -------------------------------------

PREFIX_SOURCES = {
    "ga-delta": BASE,
    "beta-delta-spaced": json.dumps(delta_event(type=BETA_AUDIO_DELTA), indent=1),
    "error": json.dumps(ERROR),
    "rate-limits": json.dumps(RATE_LIMITS, separators=(",", ":")),
}


@INPUT_FORMS
@pytest.mark.parametrize("text", PREFIX_SOURCES.values(), ids=PREFIX_SOURCES.keys())
def test_every_strict_prefix_is_an_error(form: Callable[[str], Any], text: str) -> None:
    parse_server_event(form(text))  # the whole text parses
    for n in range(len(text)):
        with pytest.raises(EventParseError) as info:
            parse_server_event(form(text[:n]))
        assert 0 <= info.value.position <= n, text[:n]


@INPUT_FORMS
@pytest.mark.parametrize(
    ("trailer", "offset"),
    [("x", 0), (" x", 1), ("\n" + BASE, 1), ("{}", 0), ("}", 0), (",", 0), ("\x00", 0), ("0", 0)],
)
@pytest.mark.parametrize("text", [BASE, json.dumps(ERROR)], ids=["ga-delta", "error"])
def test_trailing_data_is_an_error(
    form: Callable[[str], Any], text: str, trailer: str, offset: int
) -> None:
    with pytest.raises(EventParseError) as info:
        parse_server_event(form(text + trailer))
    assert info.value.position == len(text) + offset


@INPUT_FORMS
def test_trailing_whitespace_is_allowed(form: Callable[[str], Any]) -> None:
    assert_delta_matches(
        parse_server_event(form(" \t\r\n" + BASE + " \t\r\n")), json.loads(BASE), PAYLOAD_SAMPLES
    )


# --- parse_server_event: malformed events -----------------------------------------------


def value_at(text: str, key: str) -> int:
    """Offset of the value of the last ``"key":`` in a compact text."""
    return text.rindex(f'"{key}":') + len(key) + 3


def wrong_type(key: str, raw: str) -> Any:
    text = event_text(**{key: raw})
    return pytest.param(text, value_at(text, key), id=f"{key}={raw}")


def marked(id_: str, marker: str, **raw_values: object) -> Any:
    text = event_text(**raw_values)
    return pytest.param(text, text.index(marker), id=id_)


MALFORMED = [
    pytest.param("", 0, id="empty"),
    pytest.param("   ", 3, id="only-whitespace"),
    pytest.param(BASE[:-1], len(BASE) - 1, id="no-closing-brace"),
    pytest.param(BASE[:40], None, id="cut-in-a-string"),
    pytest.param(BASE.replace(":", " ", 1), None, id="no-colon"),
    pytest.param(BASE.replace(",", "", 1), None, id="no-comma"),
    pytest.param(BASE[:-1] + ",}", len(BASE), id="trailing-comma"),
    pytest.param("{'type':'x'}", 1, id="single-quotes"),
    pytest.param('{"type":"response.done",}', None, id="non-audio-trailing-comma"),
    pytest.param('{"type":"response.done","x":[1,2}', None, id="non-audio-bad-bracket"),
    pytest.param('{"type":"response.done","x":NaN}', None, id="non-audio-nan"),
    pytest.param('{"type":"response.done","x":01}', None, id="non-audio-leading-zero"),
    pytest.param('{"type":"response.done","x":tru}', None, id="non-audio-bad-literal"),
    wrong_type("event_id", "5"),
    wrong_type("event_id", "null"),
    wrong_type("response_id", '{"id":"resp_1"}'),
    wrong_type("response_id", "true"),
    wrong_type("item_id", "null"),
    wrong_type("item_id", '["item_1"]'),
    wrong_type("output_index", '"0"'),
    wrong_type("output_index", "true"),
    wrong_type("output_index", "null"),
    wrong_type("output_index", "0.5"),
    wrong_type("content_index", "0.0"),
    wrong_type("content_index", "1e0"),
    wrong_type("content_index", "[0]"),
    wrong_type("delta", "5"),
    wrong_type("delta", '["AAECAw=="]'),
    wrong_type("delta", "null"),
    wrong_type("delta", "{}"),
    *[
        pytest.param(event_text(**{key: MISSING}), None, id=f"no-{key}")
        for key in ("event_id", "response_id", "item_id", "output_index", "content_index", "delta")
    ],
    marked("delta-bad-char", "!", delta='"AAEC!w=="'),
    marked("delta-space", " ", delta='"AAEC Aw=="'),
    marked("delta-url-safe", "-", delta='"AAEC-w=="'),
    marked("delta-non-canonical", 'x=="', delta='"AAECAx=="'),
    marked("delta-non-ascii", "\u00e9", delta='"AAEC\u00e9w=="'),
    pytest.param(event_text(delta='"AAECAw="'), None, id="delta-bad-padding"),
    pytest.param(event_text(delta='"AAECAw"'), None, id="delta-no-padding"),
    pytest.param(event_text(delta='"AAEC"'), None, id="delta-odd-byte-count"),
    pytest.param(event_text(delta='"AA=="'), None, id="delta-one-byte"),
    pytest.param(event_text(delta='"AAECAw==\\n"'), None, id="delta-escaped-newline"),
    marked("raw-control-in-item_id", "\x01", item_id='"item\x01"'),
    marked("raw-newline-in-event_id", "\n", event_id='"ev\nent"'),
    marked("raw-tab-in-response_id", "\t", response_id='"re\tsp"'),
    marked("raw-nul-in-type-key", "\x00", type='"response.output_audio.delta\x00"'),
    pytest.param(
        '{"type":"response.output_audio_transcript.delta","delta":"Lo\tud"}',
        60,
        id="raw-tab-in-a-transcript-delta",
    ),
    marked("invalid-escape", "\\q", item_id='"it\\qem"'),
    marked("short-unicode-escape", "\\u12", item_id='"it\\u12"'),
    marked("hex-escape", "\\x", event_id='"\\x41"'),
]


@INPUT_FORMS
@pytest.mark.parametrize(("text", "position"), MALFORMED)
def test_malformed_events(form: Callable[[str], Any], text: str, position: int | None) -> None:
    arg = form(text)
    with pytest.raises(EventParseError) as info:
        parse_server_event(arg)
    e = info.value
    assert isinstance(e, ValueError)
    assert type(e.position) is int
    assert 0 <= e.position <= len(arg)
    if position is not None:
        assert e.position == (len(text[:position].encode()) if form is AS_BYTES else position)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        (event_text(event_id='"\u00e9\U0001f600\u00fc"', delta='"AAEC!w=="'), "!"),
        (event_text(event_id='"\U0001f600"', item_id='"x\x02"'), "\x02"),
        (event_text(response_id='"\u4e2d\u6587"', output_index='"1"'), '"1"'),
    ],
    ids=["bad-base64", "control-char", "wrong-type"],
)
def test_positions_count_characters_for_str_and_bytes_for_bytes(text: str, bad: str) -> None:
    with pytest.raises(EventParseError) as info:
        parse_server_event(text)
    assert text[info.value.position :].startswith(bad)
    data = text.encode()
    with pytest.raises(EventParseError) as info:
        parse_server_event(data)
    assert data[info.value.position :].startswith(bad.encode())


def first_invalid_utf8(data: bytes) -> int | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start
    return None


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"response.done","x":"\xff"}',
        BASE.encode().replace(b"item_1", b"item\xc3"),
        BASE.encode().replace(b"item_1", b"\xed\xa0\x80"),  # an encoded surrogate
        BASE.encode().replace(b"event_1", b"\xf4\x90\x80\x80"),  # above U+10FFFF
        BASE.encode().replace(b"event_1", b"\xc0\xaf"),  # overlong
        b"\xef\xbb\xbf" + BASE.encode(),  # a BOM is not JSON whitespace
        BASE.encode() + b"\x80",
    ],
    ids=["lone-ff", "truncated-sequence", "surrogate", "too-high", "overlong", "bom", "tail"],
)
def test_invalid_utf8_bytes(data: bytes) -> None:
    with pytest.raises(EventParseError) as info:
        parse_server_event(data)
    first_bad = first_invalid_utf8(data)
    # A BOM is valid UTF-8, but JSON cannot start with it.
    assert info.value.position == (0 if first_bad is None else first_bad)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"response.done","x":' + "[" * 100_000 + "]" * 100_000 + "}",
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"type":"response.done","x":' + "[" * 100_000,
        "[" * 1_000_000,
    ],
    ids=["in-a-field", "top-level", "objects", "unclosed", "a-million-unclosed"],
)
def test_deep_nesting_is_an_error_not_a_crash(text: str) -> None:
    with pytest.raises(EventParseError) as info:
        parse_server_event(text)
    assert isinstance(info.value.position, int)


@pytest.mark.parametrize(
    "text",
    [5, None, 1.5, ["{}"], {"type": "x"}, np.zeros(4, dtype=np.int16), np.zeros(2, np.float32)],
    ids=["int", "None", "float", "list", "dict", "int16-array", "float32-array"],
)
def test_parse_rejects_other_types(text: object) -> None:
    with pytest.raises(TypeError):
        parse_server_event(text)


# --- parse_server_event: G.711 output formats -------------------------------------------

AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
G711Law = Literal["g711_ulaw", "g711_alaw"]
# audio_format -> (realtalk's decoder, audioop's)
G711_LAWS: dict[G711Law, tuple[Callable[[bytes], npt.NDArray[np.int16]], str]] = {
    "g711_ulaw": (ulaw_decode, "ulaw2lin"),
    "g711_alaw": (alaw_decode, "alaw2lin"),
}
LAWS = pytest.mark.parametrize("law", G711_LAWS)


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    # Deprecated in 3.11-3.12 and gone in 3.13, where the audioop-lts package provides it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip(
                f"no audioop on Python {sys.version_info[0]}.{sys.version_info[1]}; "
                "install audioop-lts for the G.711 reference"
            )
    return audioop


def g711_samples(law: G711Law, payload: object) -> npt.NDArray[np.int16]:
    """What a G.711 payload (base64 str) decodes to, by realtalk's standalone decoder."""
    assert isinstance(payload, str)
    decode = G711_LAWS[law][0]
    return decode(base64.b64decode(payload, validate=True))


def audioop_samples(audioop: ModuleType, law: G711Law, codes: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(getattr(audioop, G711_LAWS[law][1])(codes, 2), dtype=np.int16)


@LAWS
@pytest.mark.parametrize("dialect", AUDIO_TYPES)
@given(codes=st.binary(max_size=1000))
def test_g711_payload_decodes_like_audioop(
    audioop: ModuleType, law: G711Law, dialect: str, codes: bytes
) -> None:
    # One byte per sample: every length is whole samples, 0 and odd ones included.
    fields = delta_event(type=dialect, delta=base64.b64encode(codes).decode("ascii"))
    text = json.dumps(fields)
    expected = audioop_samples(audioop, law, codes)
    np.testing.assert_array_equal(g711_samples(law, fields["delta"]), expected)
    for arg in (text, text.encode()):
        assert_delta_matches(parse_server_event(arg, audio_format=law), fields, expected)


@LAWS
@pytest.mark.parametrize("ncodes", [0, 1, 2, 3, 15, 16, 17, 33, 160, 4095, 4096, 4097, 80_000])
def test_g711_payload_lengths(audioop: ModuleType, law: G711Law, ncodes: int) -> None:
    # Both sides of the decoders' 16-code blocks, and of the 4096-code stack buffer that
    # base64 is decoded into before the heap takes over (80,000 codes: 10 s at 8 kHz).
    codes = bytes(np.random.default_rng(ncodes).integers(0, 256, ncodes, dtype=np.uint8))
    fields = delta_event(delta=base64.b64encode(codes).decode("ascii"))
    delta = parse_server_event(json.dumps(fields), audio_format=law)
    assert_delta_matches(delta, fields, audioop_samples(audioop, law, codes))


@LAWS
@pytest.mark.parametrize("dialect", ["ga", "beta"])
@given(data=st.data())
def test_g711_generated_audio_deltas(
    law: G711Law, dialect: Literal["ga", "beta"], data: st.DataObject
) -> None:
    # Every JSON shape the strategy makes (escaped payloads, duplicate keys, extra fields).
    text, fields, _ = data.draw(audio_delta_events(dialect))
    expected = g711_samples(law, fields["delta"])
    assert_delta_matches(parse_server_event(text, audio_format=law), fields, expected)
    assert_delta_matches(parse_server_event(text.encode(), audio_format=law), fields, expected)


@pytest.mark.parametrize(
    ("audio_format", "described"),
    [
        ("pcm16", "<240 int16 samples, 10.0 ms at 24 kHz>"),
        ("g711_ulaw", "<480 int16 samples, 60.0 ms at 8 kHz>"),
        ("g711_alaw", "<480 int16 samples, 60.0 ms at 8 kHz>"),
    ],
)
def test_audio_delta_repr_gives_the_format_rate(audio_format: AudioFormat, described: str) -> None:
    text = json.dumps(delta_event(delta=base64.b64encode(bytes(480)).decode("ascii")))
    r = repr(parse_server_event(text, audio_format=audio_format))
    assert f"samples={described})" in r, r


def test_pcm16_is_the_default() -> None:
    for text in (BASE, json.dumps(delta_event(type=BETA_AUDIO_DELTA))):
        assert_delta_matches(
            parse_server_event(text, audio_format="pcm16"), json.loads(text), PAYLOAD_SAMPLES
        )


@LAWS
@pytest.mark.parametrize("delta", ['"AA=="', '"AAEC"', '"AAECAwQ="'])
def test_g711_takes_payloads_that_are_not_whole_pcm16_samples(law: G711Law, delta: str) -> None:
    text = event_text(delta=delta)
    with pytest.raises(EventParseError, match="not a whole number of 2-byte samples"):
        parse_server_event(text)
    expected = g711_samples(law, json.loads(delta))
    assert_delta_matches(parse_server_event(text, audio_format=law), json.loads(text), expected)


ODD_BYTE_COUNTS = {"delta-odd-byte-count", "delta-one-byte"}


@INPUT_FORMS
@LAWS
@pytest.mark.parametrize(
    ("text", "position"), [p for p in MALFORMED if p.id not in ODD_BYTE_COUNTS]
)
def test_g711_malformed_events(
    form: Callable[[str], Any], law: G711Law, text: str, position: int | None
) -> None:
    # The same errors at the same positions as for PCM16, invalid base64 included.
    arg = form(text)
    with pytest.raises(EventParseError) as info:
        parse_server_event(arg, audio_format=law)
    with pytest.raises(EventParseError) as pcm16_info:
        parse_server_event(arg)
    assert info.value.position == pcm16_info.value.position
    assert str(info.value) == str(pcm16_info.value)
    if position is not None:
        assert info.value.position == (
            len(text[:position].encode()) if form is AS_BYTES else position
        )


@LAWS
def test_g711_invalid_base64_position_counts_characters(law: G711Law) -> None:
    text = event_text(event_id='"\u00e9\U0001f600\u00fc"', delta='"AAE!"')
    with pytest.raises(EventParseError, match="invalid base64") as info:
        parse_server_event(text, audio_format=law)
    assert text[info.value.position :].startswith("!")
    data = text.encode()
    with pytest.raises(EventParseError, match="invalid base64") as info:
        parse_server_event(data, audio_format=law)
    assert data[info.value.position :].startswith(b"!")


@INPUT_FORMS
@LAWS
@pytest.mark.parametrize(
    "event", [*SERVER_EVENTS.values(), *LOOKALIKES.values()], ids=[*SERVER_EVENTS, *LOOKALIKES]
)
def test_g711_leaves_other_events_alone(
    form: Callable[[str], Any], law: G711Law, event: dict[str, Any]
) -> None:
    text = json.dumps(event)
    got = parse_server_event(form(text), audio_format=law)
    assert type(got) is dict
    assert got == json.loads(text) == event


@pytest.mark.parametrize(
    "audio_format", ["", "pcm", "PCM16", "g711_ulaw ", "ulaw", "audio/pcmu", "g711_ulaw\x00"]
)
@pytest.mark.parametrize(
    "text", [BASE, json.dumps(ERROR), "not json"], ids=["delta", "other", "malformed"]
)
def test_unknown_audio_format_is_a_configuration_error(text: str, audio_format: str) -> None:
    # Checked before the text is looked at, whatever the text.
    with pytest.raises(ConfigurationError, match="audio_format must be") as info:
        parse_server_event(text, audio_format=audio_format)
    assert isinstance(info.value, ValueError)
    if audio_format.isprintable():
        assert f'not "{audio_format}"' in str(info.value)


@pytest.mark.parametrize("audio_format", [None, b"pcm16", 16])
def test_audio_format_must_be_a_str(audio_format: object) -> None:
    with pytest.raises(TypeError):
        parse_server_event(BASE, audio_format=audio_format)


def test_audio_format_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        parse_server_event(BASE, "pcm16")


# --- parse_server_event: fuzzing with json.loads as the oracle --------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def strict_loads(text: str) -> Any:
    """json.loads without the NaN and Infinity extensions that RFC 8259 does not allow."""
    return json.loads(text, parse_constant=_reject_constant)


def audio_delta_oracle(event: dict[str, Any], audio_format: AudioFormat = "pcm16") -> bytes | None:
    """The payload bytes of a valid audio delta event, or None if a field is invalid."""
    if not all(isinstance(event.get(k), str) for k in ("event_id", "response_id", "item_id")):
        return None
    for key in ("output_index", "content_index"):
        value = event.get(key)
        # Ints beyond 64 bits are out of scope: the server's indexes are small.
        if type(value) is not int or not -(2**63) <= value < 2**63:
            return None
    delta = event.get("delta")
    if not isinstance(delta, str):
        return None
    try:
        raw = base64.b64decode(delta, validate=True)
    except ValueError:
        return None
    if base64.b64encode(raw).decode("ascii") != delta:
        return None
    if audio_format == "pcm16" and len(raw) % 2:
        return None
    return raw


def assert_parses_like_json(
    arg: str | bytes, text: str | None, audio_format: AudioFormat = "pcm16"
) -> None:
    """``text`` is ``arg`` as a str, or None when ``arg`` is not UTF-8."""
    rejected = False
    expected: Any = None
    try:
        if text is None:
            rejected = True
        else:
            expected = strict_loads(text)
    except (ValueError, RecursionError):
        rejected = True
    is_audio = isinstance(expected, dict) and expected.get("type") in AUDIO_TYPES
    # A server event is an object: other valid JSON (' 1 ', '[]') must be refused.
    not_object = not rejected and not isinstance(expected, dict)
    error: EventParseError | None = None
    try:
        got = parse_server_event(arg, audio_format=audio_format)
    except EventParseError as e:
        error = e
    if error is not None:
        assert type(error.position) is int
        assert 0 <= error.position <= len(arg)
        assert (
            rejected
            or not_object
            or (is_audio and audio_delta_oracle(expected, audio_format) is None)
        ), f"json.loads accepts {arg!r} as {expected!r}, but parse_server_event raised {error!r}"
        return
    assert not rejected, f"json.loads rejects {arg!r}, but parse_server_event gave {got!r}"
    assert not not_object, f"{arg!r} is not a JSON object, but parse_server_event gave {got!r}"
    if is_audio:
        raw = audio_delta_oracle(expected, audio_format)
        assert raw is not None, f"{arg!r} has an invalid field, yet gave {got!r}"
        if audio_format == "pcm16":
            assert_delta_matches(got, expected, np.frombuffer(raw, dtype="<i2"))
        else:
            assert_delta_matches(got, expected, G711_LAWS[audio_format][0](raw))
    else:
        assert type(got) is type(expected)
        assert got == expected


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_JSON_TEXTS = st.builds(
    json.dumps,
    _JSON_VALUES,
    ensure_ascii=st.booleans(),
    indent=st.none() | st.integers(min_value=0, max_value=2),
)
_SEED_TEXTS = st.one_of(
    _JSON_TEXTS,
    audio_delta_events(max_samples=8).map(lambda e: e[0]),
    st.sampled_from(
        [BASE, json.dumps(delta_event(type=BETA_AUDIO_DELTA))]
        + [json.dumps(e) for e in SERVER_EVENTS.values()]
    ),
)
_NASTY_CHARS = st.sampled_from(
    list('{}[]":,\\/ \t\n\r0-1.eE+tfnul\x00\x1f\x7f\u00e9\U0001f600=A')
) | st.characters(codec="utf-8")


@st.composite
def json_like_texts(draw: st.DrawFn) -> str:
    """Valid JSON, audio deltas and real events, with a few random edits."""
    text = draw(_SEED_TEXTS)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if not text and op != "insert":
            continue
        i = draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))
        if op == "insert":
            text = text[:i] + draw(_NASTY_CHARS) + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        elif op == "replace":
            text = text[:i] + draw(_NASTY_CHARS) + text[i + 1 :]
        else:
            text = text[:i]
    return text


@given(st.text())
def test_fuzz_arbitrary_text(text: str) -> None:
    assert_parses_like_json(text, text)


@given(json_like_texts())
def test_fuzz_json_like_text(text: str) -> None:
    assert_parses_like_json(text, text)


@LAWS
@given(json_like_texts())
def test_fuzz_json_like_text_g711(law: G711Law, text: str) -> None:
    assert_parses_like_json(text, text, law)


def _utf8_or_none(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@given(st.binary())
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    assert_parses_like_json(data, _utf8_or_none(data))


@given(json_like_texts(), st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=3))))
def test_fuzz_json_like_bytes(text: str, edits: list[tuple[int, bytes]]) -> None:
    data = text.encode("utf-8")
    for at, insert in edits[:2]:
        at %= len(data) + 1
        data = data[:at] + insert + data[at:]
    assert_parses_like_json(data, _utf8_or_none(data))


# --- the native builder of non-audio events -------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        r'{"type":"x","v":"\ud800"}',  # lone surrogate escape: Python builds it
        r'{"type":"x","\udfff":1}',  # ... in a key
        r'{"type":"x","v":"\ud83d\ude00 \u00e9 \u0000 \/ \" \\ \n"}',  # pairs and escapes
        '{"type":"x","v":"é😀","ké":"ü"}',  # raw non-ASCII
        '{"type":"x","big":123456789012345678901234567890,"neg":-98765432109876543210}',
        '{"type":"x","i":[0,-0,9223372036854775807,-9223372036854775808,9223372036854775808]}',
        '{"type":"x","f":[1e400,-1e400,1.5e-320,-0.0,0.1,2.5E+3,1E-7,123.456e-2]}',
        '{"type":"x","e":[{},[],"",[[]],[{}],{"a":{}}],"t":true,"f":false,"n":null}',
        '{"a":1,"a":2,"b":{"c":3,"c":[4]}}',  # duplicate keys: the last wins
        ' \n\t{"type" : "x" , "v" : [ 1 , 2 ] } \r\n',
    ],
)
def test_builder_gives_what_json_loads_gives(text: str) -> None:
    got = parse_server_event(text)
    expected = json.loads(text)
    assert got == expected
    assert repr(got) == repr(expected)  # -0.0, inf and key order too
    assert parse_server_event(text.encode()) == expected


def test_builder_key_cache_keeps_distinct_keys_apart() -> None:
    # Far more distinct keys than the cache has slots, so slots collide and are reused.
    keys = [f"k{i}" for i in range(2000)] + ["é" * 3, "x" * 40, "y" * 41]
    event = {"type": "x", **{k: i for i, k in enumerate(keys)}}
    text = json.dumps(event)
    for _ in range(2):
        got = parse_server_event(text)
        assert got == event
        assert list(got) == list(event)


@pytest.mark.parametrize("depth", [510, 511, 512, 513, 2000])
def test_builder_depth_limit(depth: int) -> None:
    # The event object is one level; the value under "v" adds `depth`.
    text = '{"type":"x","v":' + "[" * depth + "]" * depth + "}"
    if depth < 512:
        assert parse_server_event(text) == json.loads(text)
    else:
        with pytest.raises(EventParseError, match="nested deeper than 512 levels"):
            parse_server_event(text)
