"""Hypothesis strategies for realtalk's audio and event formats, for tests of code built on it.

Needs ``hypothesis`` (a test-time dependency, not one of realtalk's): importing this module
without it installed raises ``ImportError``.

What it owns: generators of audio arrays and of the JSON text a Realtime server may send,
each with the values a trusted reference (numpy, ``base64``, ``json``) gives for it.
What it must never do: call realtalk's native core, so that a bug there cannot shape the
examples that are meant to find it.
"""

from __future__ import annotations

import base64
import json
from typing import Literal

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "BETA_AUDIO_DELTA",
    "GA_AUDIO_DELTA",
    "audio_delta_events",
    "event_ids",
    "float32_arrays",
    "pcm16_arrays",
]

GA_AUDIO_DELTA = "response.output_audio.delta"
BETA_AUDIO_DELTA = "response.audio.delta"

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]
AudioDeltaExample = tuple[str, dict[str, object], Int16Array]

# The fields of an audio delta event; extra fields are drawn from other names.
_DELTA_FIELDS = (
    "type",
    "event_id",
    "response_id",
    "item_id",
    "output_index",
    "content_index",
    "delta",
)

# Characters that JSON encoders and decoders get wrong most often.
_AWKWARD_CHARS = (
    '"\\/\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x9f\xa0\xe9'
    "\u2028\u2029\ufeff\uffff\U0001f600\U0010ffff"
)
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
_SHORT_ESCAPES |= {"\r": "\\r", "\t": "\\t", "/": "\\/"}
_JSON_WHITESPACE = " \t\n\r"


def pcm16_arrays(min_size: int = 0, max_size: int = 4800) -> st.SearchStrategy[Int16Array]:
    """1-D int16 arrays of ``min_size`` to ``max_size`` samples, over the full int16 range."""
    return hnp.arrays(
        np.int16,
        st.integers(min_value=min_size, max_value=max_size),
        elements=st.integers(min_value=-32768, max_value=32767),
    )


@st.composite
def float32_arrays(
    draw: st.DrawFn,
    min_size: int = 0,
    max_size: int = 4800,
    *,
    allow_nan: bool = True,
    allow_infinity: bool = True,
) -> Float32Array:
    """1-D float32 arrays, mostly in [-1.0, 1.0] but also out of range, NaN and infinite.

    Ties of the int16 conversion (``(k + 0.5) / 32768``), ``±1.0`` and subnormals are
    drawn on purpose, since those are where rounding and clipping go wrong.
    """
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    elements = st.one_of(
        st.floats(min_value=-1.0, max_value=1.0, width=32),
        st.floats(width=32, allow_nan=allow_nan, allow_infinity=allow_infinity),
        st.sampled_from([1.0, -1.0, 0.0, -0.0, 32767 / 32768, -32767 / 32768, 1e-45, 2.0]),
    )
    values = draw(hnp.arrays(np.float32, n, elements=elements))
    # Ties are drawn as integers and placed by a mask: a mapped element strategy would
    # make hypothesis draw every element one by one, which is many times slower.
    k = draw(hnp.arrays(np.int32, n, elements=st.integers(min_value=-65537, max_value=65536)))
    is_tie = draw(hnp.arrays(np.bool_, n))
    ties = ((k + 0.5) / 32768).astype(np.float32)
    return np.where(is_tie, ties, values).astype(np.float32)


def event_ids(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Arbitrary text for ids: quotes, backslashes, control and non-ASCII characters.

    Never a lone surrogate, which has no UTF-8 form and so cannot cross a WebSocket.
    """
    alphabet = st.characters(codec="utf-8") | st.sampled_from(_AWKWARD_CHARS)
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


def _u_escape(ch: str, upper: bool) -> str:
    code = ord(ch)
    if code > 0xFFFF:
        code -= 0x10000
        units = [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]
    else:
        units = [code]
    return "".join(f"\\u{u:04X}" if upper else f"\\u{u:04x}" for u in units)


@st.composite
def _json_string(draw: st.DrawFn, value: str, escapes: bool = True) -> str:
    """``value`` as a JSON string literal, escaped in one of the ways encoders do it."""
    style = draw(st.sampled_from(["minimal", "ascii", "mixed"])) if escapes else "minimal"
    if style == "minimal":
        return json.dumps(value, ensure_ascii=False)
    if style == "ascii":
        return json.dumps(value, ensure_ascii=True)
    out = ['"']
    for ch in value:
        must = ch in '"\\' or ord(ch) < 0x20
        choices = [] if must else ["literal"]
        if ch in _SHORT_ESCAPES:
            choices.append("short")
        choices += ["lower", "upper"]
        how = draw(st.sampled_from(choices))
        if how == "literal":
            out.append(ch)
        elif how == "short":
            out.append(_SHORT_ESCAPES[ch])
        else:
            out.append(_u_escape(ch, upper=how == "upper"))
    out.append('"')
    return "".join(out)


@st.composite
def _delta_literal(draw: st.DrawFn, b64: str, escapes: bool) -> str:
    """The base64 payload as a JSON string: as is, with ``\\/`` (as PHP and some Java
    encoders write it), or with a few ``\\u`` escapes. Per-character draws would make
    long payloads slow, so at most a few characters are escaped."""
    style = draw(st.sampled_from(["plain", "slash", "sparse"])) if escapes else "plain"
    if style == "plain" or not b64:
        return f'"{b64}"'
    if style == "slash":
        return '"' + b64.replace("/", "\\/") + '"'
    chars = list(b64)
    indices = draw(st.lists(st.integers(0, len(chars) - 1), max_size=4, unique=True))
    for i in indices:
        chars[i] = _u_escape(chars[i], upper=draw(st.booleans()))
    return '"' + "".join(chars) + '"'


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
_JSON_VALUES: st.SearchStrategy[object] = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _json_value_text(draw: st.DrawFn, value: object) -> str:
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :")]))
    return json.dumps(value, ensure_ascii=draw(st.booleans()), separators=separators)


@st.composite
def audio_delta_events(
    draw: st.DrawFn,
    dialect: Literal["ga", "beta"] | None = None,
    *,
    max_samples: int = 2400,
    extra_fields: bool = True,
    duplicate_keys: bool = True,
    escapes: bool = True,
    whitespace: bool = True,
) -> AudioDeltaExample:
    """The JSON text of one server audio delta event, and what it means.

    Returns ``(text, fields, samples)``: ``fields`` is the dict ``json.loads(text)`` gives
    (unknown fields included, ``delta`` still base64), and ``samples`` the int16 array that
    the base64 ``delta`` holds (PCM16 little-endian on the wire).

    ``dialect`` is ``"ga"`` (``response.output_audio.delta``), ``"beta"``
    (``response.audio.delta``) or ``None`` for either. Fields come in random order; the
    flags allow, each independently: unknown fields with arbitrary JSON values, earlier
    duplicates of known keys holding decoy values (the last one wins, as in ``json.loads``),
    escapes in keys, ids and the payload (``\\uXXXX``, ``\\/``, short escapes), and JSON
    whitespace between tokens.
    """
    if dialect is None:
        dialect = draw(st.sampled_from(["ga", "beta"]))
    samples = draw(pcm16_arrays(max_size=max_samples))
    b64 = base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii")
    fields: dict[str, object] = {
        "type": GA_AUDIO_DELTA if dialect == "ga" else BETA_AUDIO_DELTA,
        "event_id": draw(event_ids()),
        "response_id": draw(event_ids()),
        "item_id": draw(event_ids()),
        "output_index": draw(st.integers(min_value=0, max_value=2**53)),
        "content_index": draw(st.integers(min_value=0, max_value=2**53)),
        "delta": b64,
    }

    def key(name: str) -> str:
        return draw(_json_string(name, escapes))

    members: list[tuple[str, str]] = []
    for name, value in fields.items():
        if name == "delta":
            value_text = draw(_delta_literal(b64, escapes))
        elif isinstance(value, str):
            value_text = draw(_json_string(value, escapes))
        else:
            value_text = json.dumps(value)
        members.append((key(name), value_text))
    if extra_fields:
        extras = draw(
            st.dictionaries(
                st.text(max_size=12).filter(lambda k: k not in _DELTA_FIELDS),
                _JSON_VALUES,
                max_size=4,
            )
        )
        for name, value in extras.items():
            members.append((key(name), draw(_json_value_text(value))))
        fields.update(extras)
    members = draw(st.permutations(members))
    if duplicate_keys:
        decoys = draw(st.lists(st.sampled_from(_DELTA_FIELDS), max_size=3))
        for name in decoys:
            last = max(i for i, (k, _) in enumerate(members) if json.loads(k) == name)
            at = draw(st.integers(min_value=0, max_value=last))
            decoy = draw(_JSON_VALUES)
            members.insert(at, (key(name), draw(_json_value_text(decoy))))

    ws = st.text(alphabet=_JSON_WHITESPACE, max_size=3) if whitespace else st.just("")
    parts = [draw(ws), "{"]
    for i, (k, v) in enumerate(members):
        if i:
            parts.append(",")
        parts += [draw(ws), k, draw(ws), ":", draw(ws), v, draw(ws)]
    parts += ["}", draw(ws)]
    return "".join(parts), fields, samples
