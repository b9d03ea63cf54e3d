"""Benchmarks of realtalk's codec hot paths against the Python stacks they replace.

Owns: the receive path (audio delta event text -> int16 samples), the send path (samples ->
``input_audio_buffer.append`` text) and G.711, each timed side by side with the Python
stacks in one process, and the goals from DESIGN.md "Targets" judged on this run.

Rules: every contender's output is checked against an independently computed expected
value before anything is timed, and a contender that fails the check is reported as
wrong and never timed. Timing never fails a run; a wrong output always does (exit 1).
Goals are printed as measured, PASS or MISS, with no adjustment.

    python benches/bench_codec.py                   # full run, < 2 minutes
    python benches/bench_codec.py --check           # checks + short timing pass (CI)
    python benches/bench_codec.py --json out.json --markdown
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

import realtalk
from _harness import Profile, optional, print_table, speech_like, time_contenders
from realtalk import core

RATE = 24_000
TELEPHONY_RATE = 8_000
BATCH_CALLS = 100
N_INPUTS = 20  # distinct inputs per case, timed in rotation (divides BATCH_CALLS)
APPEND_TYPE = "input_audio_buffer.append"
DELTA_TYPE = "response.output_audio.delta"


# --- optional contenders -------------------------------------------------------------------


orjson, ORJSON_MISSING = optional("orjson")
pybase64, PYBASE64_MISSING = optional("pybase64")
msgspec, MSGSPEC_MISSING = optional("msgspec")
audioop, AUDIOOP_MISSING = optional("audioop")


def _openai_paths() -> tuple[dict[str, Any] | None, str]:
    """The pieces of openai-python's realtime connection that handle one event.

    Receive (``RealtimeConnection.recv`` / ``parse_event``)::

        construct_type_unchecked(value=json.loads(data), type_=cast(Any, RealtimeServerEvent))

    Send (``connection.input_audio_buffer.append(audio=...)`` -> ``connection.send``)::

        json.dumps(maybe_transform(strip_not_given({"type": ..., "audio": audio,
                   "event_id": omit}), Union[RealtimeClientEventParam,
                   ResponseCreateEventWithReferencesParam]))
    """
    try:
        import openai
        from openai._models import construct_type_unchecked
        from openai._types import omit
        from openai._utils import maybe_transform, strip_not_given
        from openai.types.realtime import (
            RealtimeClientEventParam,
            RealtimeServerEvent,
            ResponseCreateEventWithReferencesParam,
        )
    except ImportError as exc:
        return None, f"openai unavailable or changed ({exc})"
    client_event = cast(Any, RealtimeClientEventParam | ResponseCreateEventWithReferencesParam)
    return {
        "version": openai.__version__,
        "construct_type_unchecked": construct_type_unchecked,
        "server_event_type": cast(Any, RealtimeServerEvent),
        "maybe_transform": maybe_transform,
        "strip_not_given": strip_not_given,
        "omit": omit,
        "client_event_type": client_event,
    }, ""


OPENAI, OPENAI_MISSING = _openai_paths()


# --- test signals ---------------------------------------------------------------------------


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """realtalk's documented float -> int16 conversion, in float64 (the expected values).

    Multiply by 32768, round half to even, clip to [-32768, 32767], NaN -> 0.
    """
    y = np.rint(np.asarray(x, dtype=np.float64) * 32768.0)
    y = np.where(np.isnan(y), 0.0, y)
    return np.clip(y, -32768.0, 32767.0).astype(np.int16)


def random_id(rng: np.random.Generator, prefix: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 21))


# --- G.711 reference (CPython's audioop.c, scalar; independent of realtalk and audioop) -------

_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    return next((i for i, end in enumerate(ends) if value <= end), len(ends))


def _lin2ulaw(sample: int) -> int:
    value = sample >> 2  # audioop feeds st_14linear2ulaw a 14-bit sample
    mask = 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, 8159) + (0x84 >> 2)
    seg = _segment(value, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((value >> (seg + 1)) & 0xF)) ^ mask


def _lin2alaw(sample: int) -> int:
    value = sample >> 3  # audioop feeds st_linear2alaw a 13-bit sample
    mask = 0xD5
    if value < 0:
        value, mask = -value - 1, 0x55
    seg = _segment(value, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    quant = (value >> 1) if seg < 2 else (value >> seg)
    return ((seg << 4) | (quant & 0xF)) ^ mask


def _ulaw2lin(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return (0x84 - t) if code & 0x80 else (t - 0x84)


def _alaw2lin(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    t += 8 if seg == 0 else 0x108
    if seg > 1:
        t <<= seg - 1
    return t if code & 0x80 else -t


def g711_tables() -> dict[str, np.ndarray]:
    """Encode tables indexed by the int16 sample viewed as uint16; decode tables by code."""
    as_uint16 = np.arange(65536, dtype=np.uint16)
    samples = as_uint16.view(np.int16).tolist()
    return {
        "ulaw_enc": np.array([_lin2ulaw(s) for s in samples], dtype=np.uint8),
        "alaw_enc": np.array([_lin2alaw(s) for s in samples], dtype=np.uint8),
        "ulaw_dec": np.array([_ulaw2lin(c) for c in range(256)], dtype=np.int16),
        "alaw_dec": np.array([_alaw2lin(c) for c in range(256)], dtype=np.int16),
    }


# --- contenders and timing -----------------------------------------------------------------


@dataclass
class Contender:
    """One way of doing a case's job: ``stmt`` is the timed code, run once per call.

    The statement reads the case's input from one variable (``text``, ``frame`` or
    ``codes``), bound in turn to each of the case's inputs. The names in ``env`` become
    local variables (keyword defaults, as timeit does), so every contender pays the same
    loop and lookup overhead. ``result`` is an expression over the statement's variables
    that only the check evaluates.
    """

    name: str
    stmt: str
    env: dict[str, Any]
    result: str = "out"
    realtalk: bool = False
    skip: str = ""
    status: str = "ok"  # ok | wrong | error | skipped
    detail: str = ""
    per_call_ns: list[float] = field(default_factory=list)
    once: Callable[..., Any] = field(init=False, repr=False)
    timed: Callable[[list[Any]], int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.skip:
            self.status, self.detail = "skipped", self.skip

    def compile(self, var: str, first: Any) -> None:
        if self.status == "skipped":
            return
        body = textwrap.dedent(self.stmt).strip()
        params = [f"{name}={name}" for name in self.env]
        source = (
            f"def _once(*, {var}=_first, {', '.join(params)}):\n"
            f"{textwrap.indent(body, ' ' * 4)}\n"
            f"    return {self.result}\n"
            f"def _timed(_inputs, *, _clock=_clock, {', '.join(params)}):\n"
            "    _t0 = _clock()\n"
            f"    for {var} in _inputs:\n"
            f"{textwrap.indent(body, ' ' * 8)}\n"
            "    return _clock() - _t0\n"
        )
        namespace = dict(self.env, _clock=time.perf_counter_ns, _first=first)
        exec(compile(source, f"<contender {self.name}>", "exec"), namespace)
        self.once, self.timed = namespace["_once"], namespace["_timed"]

    def median_us(self) -> float:
        return float(np.median(self.per_call_ns)) / 1000.0

    def p99_us(self) -> float:
        return float(np.percentile(self.per_call_ns, 99)) / 1000.0


FULL = Profile(rounds=10, round_s=0.07, max_batches=400, min_batches=2, warmup_s=0.03)
CHECK = Profile(rounds=2, round_s=0.003, max_batches=20, min_batches=1, warmup_s=0.001)


# --- cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    """One job at one size: N_INPUTS distinct inputs, timed in rotation like a stream.

    Rotating defeats anything that would only help a repeated input (a cache keyed on the
    text, branch predictors trained on one frame); the ids that repeat within a response
    (``response_id``, ``item_id``) repeat here too.
    """

    group: str
    title: str
    params: dict[str, Any]
    var: str
    inputs: list[Any]
    expected: list[Any]
    compare: Callable[[Any, Any], str | None]
    contenders: list[Contender]
    # Inputs that are checked but not timed: (label, input, expected).
    extra_checks: list[tuple[str, Any, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for c in self.contenders:
            c.compile(self.var, self.inputs[0])
        self.batch = [self.inputs[i % len(self.inputs)] for i in range(BATCH_CALLS)]

    def check(self) -> None:
        checks = [
            (f"input {i}", value, expected)
            for i, (value, expected) in enumerate(zip(self.inputs, self.expected, strict=True))
        ] + self.extra_checks
        for c in self.contenders:
            if c.status != "ok":
                continue
            for label, value, expected in checks:
                try:
                    problem = self.compare(c.once(**{self.var: value}), expected)
                except Exception as exc:
                    c.status, c.detail = "error", f"{label}: {type(exc).__name__}: {exc}"
                    break
                if problem:
                    c.status, c.detail = "wrong", f"{label}: {problem}"
                    break

    def reference(self) -> Contender:
        return next(c for c in self.contenders if c.realtalk)


def _first_difference(got: np.ndarray, expected: np.ndarray) -> str | None:
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    if not np.array_equal(got, expected):
        i = int(np.flatnonzero(got != expected)[0])
        return f"differs at index {i}: {got[i]!r}, expected {expected[i]!r}"
    return None


def compare_delta(result: Any, expected: Any) -> str | None:
    ids, samples = result
    expected_ids, expected_samples = expected
    if tuple(ids) != expected_ids:
        return f"ids {ids!r}, expected {expected_ids!r}"
    if not isinstance(samples, np.ndarray) or samples.dtype != np.int16:
        return f"samples are {type(samples).__name__} {getattr(samples, 'dtype', '')}, not int16"
    return _first_difference(samples, expected_samples)


def compare_append(result: Any, expected: bytes) -> str | None:
    if not isinstance(result, str):
        return f"{type(result).__name__}, not str"
    event = json.loads(result)
    if not isinstance(event, dict) or set(event) != {"type", "audio"}:
        return f"keys {sorted(event)}, expected ['audio', 'type']"
    if event["type"] != APPEND_TYPE:
        return f"type {event['type']!r}"
    audio = base64.b64decode(event["audio"], validate=True)
    if audio != expected:
        got, want = np.frombuffer(audio, np.int16), np.frombuffer(expected, np.int16)
        return "audio " + (_first_difference(got, want) or "differs")
    return None


def compare_codes(result: Any, expected: np.ndarray) -> str | None:
    if isinstance(result, np.ndarray) and result.dtype != np.uint8:
        return f"dtype {result.dtype}, expected uint8 codes"
    return _first_difference(np.frombuffer(bytes(result), np.uint8), expected)


def compare_samples(result: Any, expected: np.ndarray) -> str | None:
    if isinstance(result, bytes):  # audioop returns PCM16 bytes, not an array
        result = np.frombuffer(result, np.int16)
    if not isinstance(result, np.ndarray) or result.dtype != np.int16:
        return f"{type(result).__name__} {getattr(result, 'dtype', '')}, not int16"
    return _first_difference(result, expected)


def _chunks(signal: np.ndarray, offset: int, n: int) -> list[np.ndarray]:
    """N_INPUTS consecutive chunks of n samples, starting at offset."""
    return [signal[offset + i * n : offset + (i + 1) * n] for i in range(N_INPUTS)]


def receive_cases(signal: np.ndarray) -> list[Case]:
    """One response's stream of deltas: same response and item, a new event id each."""
    rng = np.random.default_rng(7)
    response_id, item_id = random_id(rng, "resp_"), random_id(rng, "item_")
    event_ids = [random_id(rng, "event_") for _ in range(N_INPUTS)]
    stdlib_env = {"json_loads": json.loads, "b64decode": base64.b64decode}
    base = {"frombuffer": np.frombuffer, "int16": np.int16}
    fast_b64 = {"b64decode": pybase64.b64decode} if pybase64 else {}
    dict_ids = (
        '(ev["type"], ev["event_id"], ev["response_id"], ev["item_id"], '
        'ev["output_index"], ev["content_index"])'
    )
    attr_ids = (
        "(ev.type, ev.event_id, ev.response_id, ev.item_id, ev.output_index, ev.content_index)"
    )
    msgspec_decode: Any = None
    if msgspec is not None:

        class ServerAudioDelta(msgspec.Struct, gc=False):
            type: str
            event_id: str
            response_id: str
            item_id: str
            output_index: int
            content_index: int
            delta: str

        msgspec_decode = msgspec.json.Decoder(ServerAudioDelta).decode

    cases = []
    for ms in (20, 50, 100, 200):
        n = RATE * ms // 1000
        texts, expected = [], []
        for event_id, chunk in zip(event_ids, _chunks(signal, RATE // 4, n), strict=True):
            samples = to_pcm16(chunk)
            ids = (DELTA_TYPE, event_id, response_id, item_id, 0, 0)
            event = {
                "type": DELTA_TYPE,
                "event_id": event_id,
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(samples.tobytes()).decode("ascii"),
            }
            texts.append(json.dumps(event, separators=(",", ":")))
            expected.append((ids, samples))
        contenders = [
            Contender(
                "realtalk",
                "ev = parse_server_event(text)\nout = ev.samples",
                {"parse_server_event": core.parse_server_event},
                f"({attr_ids}, out)",
                realtalk=True,
            ),
            Contender(
                "json + base64 (stdlib)",
                'ev = json_loads(text)\nout = frombuffer(b64decode(ev["delta"]), int16)',
                base | stdlib_env,
                f"({dict_ids}, out)",
            ),
            Contender(
                "orjson + pybase64",
                'ev = loads(text)\nout = frombuffer(b64decode(ev["delta"], validate=True), int16)',
                base | fast_b64 | {"loads": orjson.loads if orjson else None},
                f"({dict_ids}, out)",
                skip=ORJSON_MISSING or PYBASE64_MISSING,
            ),
            Contender(
                "msgspec Struct + pybase64",
                "ev = decode(text)\nout = frombuffer(b64decode(ev.delta, validate=True), int16)",
                base | fast_b64 | {"decode": msgspec_decode},
                f"({attr_ids}, out)",
                skip=MSGSPEC_MISSING or PYBASE64_MISSING,
            ),
            Contender(
                "openai-python parse + base64",
                "ev = construct(value=json_loads(text), type_=server_event)\n"
                "out = frombuffer(b64decode(ev.delta), int16)",
                base
                | stdlib_env
                | {
                    "construct": OPENAI["construct_type_unchecked"] if OPENAI else None,
                    "server_event": OPENAI["server_event_type"] if OPENAI else None,
                },
                f"({attr_ids}, out)",
                skip=OPENAI_MISSING,
            ),
        ]
        chars = len(texts[0])
        cases.append(
            Case(
                "receive",
                f"receive {ms} ms ({n} samples, {chars:,}-char event)",
                {"ms": ms, "samples": n, "chars": chars},
                "text",
                texts,
                expected,
                compare_delta,
                contenders,
            )
        )
    return cases


def compare_object(result: Any, expected: Any) -> str | None:
    if type(result) is not dict or result != expected:
        return f"{type(result).__name__} {str(result)[:80]!r}, expected the dict json.loads gives"
    return None


def other_event_cases() -> list[Case]:
    """Events that are not audio: the dict json.loads gives, for the session to read."""
    rng = np.random.default_rng(11)
    response_id, item_id = random_id(rng, "resp_"), random_id(rng, "item_")
    words = ["Sure", ",", " here", " is", " the", " weather", " for", " today", "."]

    def transcript_delta(i: int) -> dict[str, Any]:
        return {
            "type": "response.output_audio_transcript.delta",
            "event_id": random_id(rng, "event_"),
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": words[i % len(words)],
        }

    def response_done(i: int) -> dict[str, Any]:
        return {
            "type": "response.done",
            "event_id": random_id(rng, "event_"),
            "response": {
                "object": "realtime.response",
                "id": response_id,
                "status": "completed",
                "status_details": None,
                "output": [
                    {
                        "id": item_id,
                        "object": "realtime.item",
                        "type": "message",
                        "status": "completed",
                        "role": "assistant",
                        "content": [
                            {"type": "output_audio", "transcript": "".join(words) * (1 + i % 3)}
                        ],
                    }
                ],
                "conversation_id": "conv_" + response_id[5:],
                "output_modalities": ["audio"],
                "max_output_tokens": "inf",
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}},
                "usage": {
                    "total_tokens": 345 + i,
                    "input_tokens": 120,
                    "output_tokens": 225 + i,
                    "input_token_details": {"text_tokens": 100, "audio_tokens": 20},
                    "output_token_details": {"text_tokens": 45, "audio_tokens": 180 + i},
                },
                "metadata": None,
            },
        }

    cases = []
    for label, make in (
        ("transcript delta", transcript_delta),
        ("response.done", response_done),
    ):
        events = [make(i) for i in range(N_INPUTS)]
        texts = [json.dumps(e, separators=(",", ":")) for e in events]
        contenders = [
            Contender(
                "realtalk",
                "out = parse_server_event(text)",
                {"parse_server_event": core.parse_server_event},
                realtalk=True,
            ),
            Contender("json.loads (stdlib)", "out = json_loads(text)", {"json_loads": json.loads}),
            Contender(
                "orjson",
                "out = loads(text)",
                {"loads": orjson.loads if orjson else None},
                skip=ORJSON_MISSING,
            ),
            Contender(
                "msgspec (generic)",
                "out = decode(text)",
                {"decode": msgspec.json.decode if msgspec else None},
                skip=MSGSPEC_MISSING,
            ),
        ]
        cases.append(
            Case(
                "other",
                f"{label} ({len(texts[0]):,}-char event)",
                {"event": label, "chars": len(texts[0])},
                "text",
                texts,
                events,
                compare_object,
                contenders,
            )
        )
    return cases


# Conversion steps of the numpy stacks (the fastest correct numpy spelling we found: in
# place into a scratch buffer, minimum/maximum rather than np.clip). No NaN -> 0 step:
# the signal has no NaN, and leaving it out only makes the Python side faster.
NUMPY_F32_TO_PCM16 = """
multiply(frame, 32768.0, out=scratch)
rint(scratch, out=scratch)
minimum(scratch, 32767.0, out=scratch)
maximum(scratch, -32768.0, out=scratch)
pcm = scratch.astype(int16)
"""


def send_cases(signal: np.ndarray) -> list[Case]:
    cases = []
    for dtype in ("int16", "float32"):
        for ms in (10, 20, 100):
            n = RATE * ms // 1000
            chunks = _chunks(signal, RATE // 2, n)
            if dtype == "int16":
                frames = [to_pcm16(chunk) for chunk in chunks]
                edge = frames[0].copy()
                edge[:6] = [-32768, 32767, 0, -1, 1, -32767]
            else:
                frames = [chunk.astype(np.float32) for chunk in chunks]
                edge = frames[0].copy()
                ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 32766.5, 32767.5, -32767.5])
                extremes = np.array([1.0, -1.0, 1.5, -1.5, 1e9, -1e9, 0.0, -0.0])
                special = np.concatenate([ties / 32768.0, extremes]).astype(np.float32)
                edge[: len(special)] = special
            env = {
                "int16": np.int16,
                "scratch": np.empty(n, np.float32),
                "multiply": np.multiply,
                "rint": np.rint,
                "minimum": np.minimum,
                "maximum": np.maximum,
            }
            convert = NUMPY_F32_TO_PCM16 if dtype == "float32" else "pcm = frame\n"
            stdlib = env | {"b64encode": base64.b64encode, "json_dumps": json.dumps}
            openai_env = {
                k: OPENAI[k] if OPENAI else None
                for k in ("maybe_transform", "strip_not_given", "omit")
            }
            contenders = [
                Contender(
                    "realtalk",
                    "out = encode_append(frame)",
                    {"encode_append": core.encode_append},
                    realtalk=True,
                ),
                Contender(
                    "numpy + pybase64 + str concat",
                    convert
                    + 'out = f\'{{"type":"input_audio_buffer.append","audio":"{b64(pcm)}"}}\'',
                    env | {"b64": pybase64.b64encode_as_string if pybase64 else None},
                    skip=PYBASE64_MISSING,
                ),
                Contender(
                    "numpy + base64 + json.dumps (stdlib)",
                    convert + "out = json_dumps({'type': 'input_audio_buffer.append', "
                    "'audio': b64encode(pcm).decode('ascii')})",
                    stdlib,
                ),
                Contender(
                    "numpy + openai-python send",
                    convert + "out = json_dumps(maybe_transform(strip_not_given({"
                    "'type': 'input_audio_buffer.append', "
                    "'audio': b64encode(pcm).decode('utf-8'), 'event_id': omit}), client_event))",
                    stdlib
                    | openai_env
                    | {"client_event": OPENAI["client_event_type"] if OPENAI else None},
                    skip=OPENAI_MISSING,
                ),
            ]
            if dtype == "int16":
                for c in contenders[1:]:
                    c.name = c.name.removeprefix("numpy + ")
            cases.append(
                Case(
                    "send",
                    f"send {ms} ms {dtype} ({n} samples)",
                    {"ms": ms, "dtype": dtype, "samples": n},
                    "frame",
                    frames,
                    [to_pcm16(f).tobytes() if dtype != "int16" else f.tobytes() for f in frames],
                    compare_append,
                    contenders,
                    [
                        (
                            "edge frame",
                            edge,
                            (to_pcm16(edge) if dtype != "int16" else edge).tobytes(),
                        )
                    ],
                )
            )
    return cases


def g711_cases(signals: dict[int, np.ndarray], tables: dict[str, np.ndarray]) -> list[Case]:
    every_sample = np.arange(65536, dtype=np.uint16).view(np.int16)
    every_code = bytes(range(256))
    skip_audioop = AUDIOOP_MISSING and f"{AUDIOOP_MISSING}: skipped"
    cases = []
    for rate in (TELEPHONY_RATE, RATE):
        n = rate // 50
        frames = [to_pcm16(chunk) for chunk in _chunks(signals[rate], rate // 4, n)]
        for law in ("ulaw", "alaw"):
            enc, dec = tables[f"{law}_enc"], tables[f"{law}_dec"]
            codes = [enc[frame.view(np.uint16)].tobytes() for frame in frames]
            params = {"rate": rate, "samples": n, "law": law}
            encode = [
                Contender(
                    "realtalk",
                    "out = encode(frame)",
                    {"encode": getattr(core, f"{law}_encode")},
                    realtalk=True,
                ),
                Contender(
                    "audioop (stdlib)",
                    "out = encode(frame, 2)",
                    {"encode": getattr(audioop, f"lin2{law}", None)},
                    skip=skip_audioop,
                ),
                Contender(
                    "numpy table (uint8 array out)",
                    "out = table[frame.view(uint16)]",
                    {"table": enc, "uint16": np.uint16},
                ),
            ]
            decode = [
                Contender(
                    "realtalk",
                    "out = decode(codes)",
                    {"decode": getattr(core, f"{law}_decode")},
                    realtalk=True,
                ),
                Contender(
                    "audioop (stdlib, bytes out)",
                    "out = decode(codes, 2)",
                    {"decode": getattr(audioop, f"{law}2lin", None)},
                    skip=skip_audioop,
                ),
                Contender(
                    "numpy table",
                    "out = table[frombuffer(codes, uint8)]",
                    {"table": dec, "frombuffer": np.frombuffer, "uint8": np.uint8},
                ),
            ]
            khz = f"{rate // 1000} kHz"
            cases.append(
                Case(
                    "g711",
                    f"G.711 {law} encode, 20 ms at {khz} ({n} samples)",
                    params | {"op": "encode"},
                    "frame",
                    frames,
                    [np.frombuffer(c, np.uint8) for c in codes],
                    compare_codes,
                    encode,
                    [("all 65536 samples", every_sample, enc)],
                )
            )
            cases.append(
                Case(
                    "g711",
                    f"G.711 {law} decode, 20 ms at {khz} ({n} codes)",
                    params | {"op": "decode"},
                    "codes",
                    codes,
                    [dec[np.frombuffer(c, np.uint8)] for c in codes],
                    compare_samples,
                    decode,
                    [("all 256 codes", every_code, dec)],
                )
            )
    return cases


# --- goals ---------------------------------------------------------------------------------


@dataclass
class Goal:
    name: str
    measured: str
    target: str
    passed: bool


def judge(cases: list[Case]) -> list[Goal]:
    """The goals of the issue, judged on this run's medians."""
    goals = []

    def realtalk_us(case: Case) -> float | None:
        ref = case.reference()
        return ref.median_us() if ref.status == "ok" and ref.per_call_ns else None

    for case in cases:
        ours = realtalk_us(case)
        p = case.params
        if case.group == "receive":
            rivals = [c for c in case.contenders if not c.realtalk and c.status == "ok"]
            if not rivals:
                continue
            best = min(rivals, key=Contender.median_us)
            speedup = best.median_us() / ours if ours else 0.0
            goals.append(
                Goal(
                    f"receive {p['ms']} ms: realtalk vs best Python ({best.name})",
                    f"{speedup:.2f}x ({best.median_us():.3f} / {ours or float('nan'):.3f} µs)",
                    ">= 5x",
                    speedup >= 5.0,
                )
            )
        elif case.group == "send" and p["ms"] == 10 and p["dtype"] == "int16":
            goals.append(
                Goal(
                    "send 10 ms int16 frame (240 samples)",
                    f"{ours:.3f} µs" if ours else "no valid timing",
                    "<= 0.2 µs",
                    ours is not None and ours <= 0.2,
                )
            )
        elif case.group == "g711" and p["rate"] == TELEPHONY_RATE:
            limit = 0.1 if p["op"] == "decode" else 0.2
            goals.append(
                Goal(
                    f"G.711 {p['law']} {p['op']}, 20 ms at 8 kHz (160 samples)",
                    f"{ours:.3f} µs" if ours else "no valid timing",
                    f"<= {limit} µs",
                    ours is not None and ours <= limit,
                )
            )
    return goals


# --- output --------------------------------------------------------------------------------


def fmt_us(value: float) -> str:
    if value < 10:
        return f"{value:.3f}"
    return f"{value:.2f}" if value < 100 else f"{value:.1f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def rows(case: Case) -> list[list[str]]:
    ref = case.reference()
    ref_us = ref.median_us() if ref.status == "ok" and ref.per_call_ns else None
    out = []
    for c in case.contenders:
        if c.status == "ok" and c.per_call_ns:
            ratio = fmt_ratio(c.median_us() / ref_us) if ref_us else "—"
            out.append([c.name, fmt_us(c.median_us()), fmt_us(c.p99_us()), ratio])
        else:
            out.append([c.name, f"{c.status.upper()}: {c.detail}"])
    return out


HEADER = ["contender", "median µs", "p99 µs", "ratio"]


GROUP_NOTES = {
    "receive": (
        "Receive",
        "GA response.output_audio.delta JSON text (str) -> int16 samples + ids, one "
        "response's deltas in rotation. Python stacks end in np.frombuffer (a read-only "
        "view; realtalk returns an owned array); pybase64 with validate=True (its fast "
        "path), stdlib base64.b64decode with its defaults. openai-python: json.loads + "
        "construct_type_unchecked(RealtimeServerEvent), as RealtimeConnection.recv does.",
    ),
    "other": (
        "Other events",
        "any event that is not audio -> the dict json.loads gives (realtalk validates the "
        "text, then builds the dict natively). Not a goal of the issue; shown because every "
        "event of a session takes this path.",
    ),
    "send": (
        "Send",
        "one frame at 24 kHz -> input_audio_buffer.append JSON text, no event_id. float32 "
        "is converted x*32768, rint, clip (numpy, in place into a scratch buffer; no NaN "
        "step). pybase64 via b64encode_as_string. openai-python: what "
        "connection.input_audio_buffer.append(audio=...) runs: strip_not_given + "
        "maybe_transform + json.dumps; the base64 (stdlib, as in its examples) and the "
        "float conversion are the caller's.",
    ),
    "g711": (
        "G.711",
        "20 ms frames; the goals are judged at 8 kHz (160 samples, G.711's native rate), "
        "24 kHz is shown for reference. audioop decode returns bytes, not an array; the "
        "numpy encode returns a uint8 array, not bytes. Every contender was also checked "
        "on all 65536 samples / all 256 codes against a scalar port of audioop.c.",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="checks and a short timing pass")
    parser.add_argument("--json", metavar="PATH", help="write all results to PATH as JSON")
    parser.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    args = parser.parse_args(argv)
    profile = CHECK if args.check else FULL
    started = time.perf_counter()

    loop = Contender("empty loop", "pass", {})
    loop.compile("x", None)
    loop_profile = CHECK if args.check else Profile(3, 0.02, 200, 2, 0.01)
    time_contenders([loop], [None] * BATCH_CALLS, loop_profile)
    meta = {
        "mode": "check" if args.check else "full",
        "realtalk": realtalk.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "openai": OPENAI["version"] if OPENAI else None,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "batch_calls": BATCH_CALLS,
        "loop_overhead_ns": round(loop.median_us() * 1000.0, 1),
        "skipped": sorted(
            {
                m
                for m in (
                    ORJSON_MISSING,
                    PYBASE64_MISSING,
                    MSGSPEC_MISSING,
                    AUDIOOP_MISSING,
                    OPENAI_MISSING,
                )
                if m
            }
        ),
    }
    print(
        f"realtalk {meta['realtalk']} | Python {meta['python']} | numpy {meta['numpy']} | "
        f"openai {meta['openai']} | {meta['cpu']} | mode: {meta['mode']}"
    )
    print(
        f"Per call: median and p99 over means of {BATCH_CALLS}-call batches, contenders "
        f"interleaved over {profile.rounds} rounds, gc off; ratio = contender median / "
        f"realtalk median (> 1: slower than realtalk). Each case rotates through "
        f"{N_INPUTS} distinct inputs. Loop overhead ({meta['loop_overhead_ns']} ns per call) "
        "is included in every figure."
    )
    for missing in meta["skipped"]:
        print(f"note: {missing}; its contenders are skipped")

    signals = {
        RATE: speech_like(5.0, RATE, 2024),
        TELEPHONY_RATE: speech_like(1.0, TELEPHONY_RATE, 2025),
    }
    cases = [
        *receive_cases(signals[RATE]),
        *other_event_cases(),
        *send_cases(signals[RATE]),
        *g711_cases(signals, g711_tables()),
    ]
    group = None
    for case in cases:
        if case.group != group:
            group = case.group
            heading, note = GROUP_NOTES[group]
            print(f"\n### {heading}\n\n{note}" if args.markdown else f"\n== {heading}: {note}")
        case.check()
        time_contenders(case.contenders, case.batch, profile)
        print_table(case.title, HEADER, rows(case), args.markdown)
        sys.stdout.flush()

    failures = [
        f"{case.title}: {c.name}: {c.status}: {c.detail}"
        for case in cases
        for c in case.contenders
        if c.status in ("wrong", "error")
    ]
    goals = judge(cases)
    print(
        "\n### Goals (from the issue; judged on this run's medians)\n"
        if args.markdown
        else "\nGoals (from the issue; judged on this run's medians)"
    )
    if args.markdown:
        print("| goal | measured | target | result |\n|---|---|---|---|")
    for g in goals:
        verdict = "PASS" if g.passed else "MISS"
        if args.markdown:
            print(f"| {g.name} | {g.measured} | {g.target} | {verdict} |")
        else:
            print(f"  {verdict}  {g.name}: {g.measured} (goal {g.target})")
    if args.check:
        print("(check mode: timings come from a very short pass and are only indicative)")

    elapsed = time.perf_counter() - started
    if failures:
        print(f"\n{len(failures)} correctness check(s) FAILED:")
        for failure in failures:
            print(f"  {failure}")
    else:
        print(f"\nAll correctness checks passed ({elapsed:.1f} s).")

    if args.json:
        report = {
            "meta": meta | {"elapsed_s": round(elapsed, 2), "profile": asdict(profile)},
            "cases": [
                {
                    "group": case.group,
                    "title": case.title,
                    "params": case.params,
                    "contenders": [_contender_json(c, case.reference()) for c in case.contenders],
                }
                for case in cases
            ],
            "goals": [asdict(g) for g in goals],
            "failures": failures,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
            f.write("\n")
    return 1 if failures else 0


def _contender_json(c: Contender, ref: Contender) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": c.name, "status": c.status, "detail": c.detail}
    if c.status == "ok" and c.per_call_ns:
        entry |= {
            "median_us": round(c.median_us(), 4),
            "p99_us": round(c.p99_us(), 4),
            "batches": len(c.per_call_ns),
            "ratio": round(c.median_us() / ref.median_us(), 3) if ref.per_call_ns else None,
        }
    return entry


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
