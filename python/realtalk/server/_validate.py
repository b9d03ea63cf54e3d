"""Validation of one client event against the generated schema (:mod:`._schema`).

This module owns the question "is this parsed message a well-formed client event of the
dialect, and if not, what is the first thing wrong with it", answered in the order the real
API checks: a JSON object with a string ``type``; a ``type`` the dialect knows; then, object
by object from the top, unknown keys, missing required keys, and each present key in the
order the client wrote them (JSON type, enum value, documented range or size, then its
children). Discriminated unions are resolved by their tag first (GA ``session.type``, item
``type`` then ``role``, ``turn_detection.type``, audio format and tool ``type``), so a
problem is reported inside the member the client meant.

Rules: pure and side-effect free. It never mutates the event, never looks at session state
(item ids, active responses and buffer lengths are the server's business, with the
constructors in :mod:`._errors`), never raises for a client's mistake, and never copies,
decodes or scans audio: ``input_audio_buffer.append`` takes a fixed path that costs a few
dict lookups and one ``len()`` of the base64 text, whatever its size.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from realtalk.server import _schema
from realtalk.server._errors import ApiError, ValidationProblem, problem_error

__all__ = [
    "INPUT_AUDIO_BYTES_LIMIT",
    "client_event_id",
    "find_problem",
    "input_audio_bytes_limit",
    "supported_event_types",
    "validate_client_event",
]

Dialect = Literal["ga", "beta"]

#: The documented maximum of one ``input_audio_buffer.append`` (15 MiB). The docs do not say
#: whether it counts the base64 text or the decoded bytes; it is applied to the base64 text
#: (the ``audio`` string's length), which is what a schema limit on that field would see.
INPUT_AUDIO_BYTES_LIMIT: Final = 15 * 1024 * 1024

_SCHEMAS: Final[dict[str, tuple[dict[str, str], dict[str, dict[str, tuple[bool, Any]]]]]] = {
    "ga": (_schema.GA_EVENTS, _schema.GA_MODELS),
    "beta": (_schema.BETA_EVENTS, _schema.BETA_MODELS),
}
_MISSING: Final = object()
_APPEND_KEYS: Final = frozenset({"type", "audio", "event_id"})
_KINDS: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a decimal",
    "boolean": "a boolean",
    "null": "null",
    "any": "any value",
}
_PLURALS: Final = {
    "string": "strings",
    "enum": "strings",
    "integer": "integers",
    "number": "decimals",
    "boolean": "booleans",
    "array": "arrays",
}


def input_audio_bytes_limit() -> int:
    """The largest ``audio`` (base64 text, in bytes) one ``input_audio_buffer.append`` may
    carry: 15 MiB, the documented limit."""
    return INPUT_AUDIO_BYTES_LIMIT


def supported_event_types(dialect: Dialect) -> tuple[str, ...]:
    """The client event types of ``dialect``. Raises ``ValueError`` for another dialect."""
    return tuple(_schema_of(dialect)[0])


def client_event_id(obj: object) -> str | None:
    """The client's ``event_id`` of a parsed message, for ``error.event_id``: the string
    when there is one, else ``None``."""
    if isinstance(obj, dict):
        event_id = obj.get("event_id")
        if isinstance(event_id, str):
            return event_id
    return None


def validate_client_event(obj: object, dialect: Dialect) -> ApiError | None:
    """Check one parsed client message (``json.loads`` of a text frame).

    Returns ``None`` when ``obj`` is a valid client event of ``dialect`` (``"ga"`` or
    ``"beta"``), else the error the real API sends for its first problem (see
    :func:`find_problem`). Raises ``ValueError`` only for an unknown ``dialect``.
    """
    problem = find_problem(obj, dialect)
    return None if problem is None else problem_error(problem)


def find_problem(obj: object, dialect: Dialect) -> ValidationProblem | None:
    """The first problem of ``obj`` as a client event of ``dialect``, or ``None``.

    Parameter paths are dotted with array indices in brackets (``item.content[0].text``),
    as the API reports them ("Missing required parameter: 'item.content[0].text'." in
    openai/openai-agents-js#963).
    """
    events, models = _schema_of(dialect)
    if not isinstance(obj, dict):
        return ValidationProblem("not_an_object", value=obj)
    kind = obj.get("type", _MISSING)
    if kind is _MISSING:
        return ValidationProblem("missing_required_parameter", "type")
    if not isinstance(kind, str):
        return ValidationProblem("invalid_type", "type", kind, expected="a string")
    model = events.get(kind)
    if model is None:
        return ValidationProblem("unknown_event_type", "type", kind, allowed=tuple(events))
    if kind == "input_audio_buffer.append":
        return _append(obj)
    return _object(obj, models[model], "", models)


def _schema_of(dialect: str) -> tuple[dict[str, str], dict[str, dict[str, tuple[bool, Any]]]]:
    try:
        return _SCHEMAS[dialect]
    except KeyError:
        raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}") from None


def _append(obj: dict[Any, Any]) -> ValidationProblem | None:
    # The same checks, in the same order, as the generic path gives this three-field model,
    # plus the size limit; never touches the audio's contents.
    for key in obj:
        if key not in _APPEND_KEYS:
            return ValidationProblem("unknown_parameter", str(key))
    if "audio" not in obj:
        return ValidationProblem("missing_required_parameter", "audio")
    for key, value in obj.items():
        if key == "audio":
            if not isinstance(value, str):
                return ValidationProblem("invalid_type", "audio", value, expected="a string")
            if len(value) > INPUT_AUDIO_BYTES_LIMIT:
                return ValidationProblem(
                    "string_too_long", "audio", len(value), limit=INPUT_AUDIO_BYTES_LIMIT
                )
        elif key == "event_id" and not isinstance(value, str):
            return ValidationProblem("invalid_type", "event_id", value, expected="a string")
    return None


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _object(
    value: dict[Any, Any],
    fields: dict[str, tuple[bool, Any]],
    path: str,
    models: dict[str, dict[str, tuple[bool, Any]]],
) -> ValidationProblem | None:
    for key in value:
        if key not in fields:
            return ValidationProblem("unknown_parameter", _join(path, key))
    for name, (required, _) in fields.items():
        if required and name not in value:
            return ValidationProblem("missing_required_parameter", _join(path, name))
    for key, item in value.items():
        problem = _node(item, fields[key][1], _join(path, key), models)
        if problem is not None:
            return problem
    return None


def _node(
    value: object, node: Any, path: str, models: dict[str, dict[str, tuple[bool, Any]]]
) -> ValidationProblem | None:
    if isinstance(node, str):
        if _kind_ok(node, value):
            if node in _KINDS:
                return None
            assert isinstance(value, dict)
            return _object(value, models[node], path, models)
        return ValidationProblem("invalid_type", path, value, expected=describe(node))
    tag = node[0]
    if not _kind_ok(node, value) and tag != "union":
        return ValidationProblem("invalid_type", path, value, expected=describe(node))
    if tag == "enum":
        if value in node[1:]:
            return None
        return ValidationProblem("invalid_value", path, value, allowed=node[1:])
    if tag in ("integer", "number"):
        assert isinstance(value, int | float)
        integer = tag == "integer"
        if value < node[1]:
            return ValidationProblem("below_minimum", path, value, limit=node[1], integer=integer)
        if value > node[2]:
            return ValidationProblem("above_maximum", path, value, limit=node[2], integer=integer)
        return None
    if tag == "string":
        assert isinstance(value, str)
        if len(value) > node[1]:
            return ValidationProblem("string_too_long", path, len(value), limit=node[1])
        return None
    if tag == "array":
        assert isinstance(value, list)
        for i, item in enumerate(value):
            problem = _node(item, node[1], f"{path}[{i}]", models)
            if problem is not None:
                return problem
        return None
    if tag == "map":
        assert isinstance(value, dict)
        return _map(value, node, path, models)
    if tag == "tagged":
        assert isinstance(value, dict)
        return _tagged(value, node, path, models)
    return _union(value, node, path, models)


def _map(
    value: dict[Any, Any], node: Any, path: str, models: dict[str, dict[str, tuple[bool, Any]]]
) -> ValidationProblem | None:
    max_properties, max_key = (node[2], node[3]) if len(node) > 2 else (None, None)
    for key, item in value.items():
        name = str(key)
        if max_key is not None and len(name) > max_key:
            return ValidationProblem("property_name_too_long", path, key=name, limit=max_key)
        problem = _node(item, node[1], _join(path, name), models)
        if problem is not None:
            return problem
    if max_properties is not None and len(value) > max_properties:
        return ValidationProblem("too_many_properties", path, len(value), limit=max_properties)
    return None


def _tagged(
    value: dict[Any, Any], node: Any, path: str, models: dict[str, dict[str, tuple[bool, Any]]]
) -> ValidationProblem | None:
    _, field, members = node
    where = _join(path, field)
    tag = value.get(field, _MISSING)
    if tag is not _MISSING:
        if not isinstance(tag, str):
            return ValidationProblem("invalid_type", where, tag, expected=_one_of(list(members)))
        if tag not in members:
            return ValidationProblem("invalid_value", where, tag, allowed=tuple(members))
        return _node(value, members[tag], path, models)
    # No tag: only members where it is optional can match (an AudioPCM format without
    # "type", a function tool without "type"); the first that validates wins.
    optional = [m for m in _leaves(node) if not models[m][field][0]]
    if not optional:
        return ValidationProblem("missing_required_parameter", where)
    first: ValidationProblem | None = None
    for member in optional:
        problem = _object(value, models[member], path, models)
        if problem is None:
            return None
        first = first or problem
    return first


def _leaves(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    children = node[2].values() if node[0] == "tagged" else node[1:]
    return [leaf for child in children for leaf in _leaves(child)]


def _union(
    value: object, node: Any, path: str, models: dict[str, dict[str, tuple[bool, Any]]]
) -> ValidationProblem | None:
    candidates = [m for m in node[1:] if _kind_ok(m, value)]
    if not candidates:
        return ValidationProblem("invalid_type", path, value, expected=describe(node))
    first: ValidationProblem | None = None
    for member in candidates:
        problem = _node(value, member, path, models)
        if problem is None:
            return None
        first = first or problem
    if isinstance(value, str) and all(isinstance(m, tuple) and m[0] == "enum" for m in candidates):
        # Only enums take a string here: one invalid_value naming all their values.
        allowed = tuple(v for m in candidates for v in m[1:])
        return ValidationProblem("invalid_value", path, value, allowed=allowed)
    return first


def _kind_ok(node: Any, value: object) -> bool:
    """Whether ``value``'s JSON type is the one ``node`` takes (booleans are not numbers;
    integers are numbers)."""
    kind = node if isinstance(node, str) else node[0]
    if kind == "any" or kind == "union":
        return True
    if isinstance(value, str):
        return kind in ("string", "enum")
    if isinstance(value, bool):
        return kind == "boolean"
    if isinstance(value, int):
        return kind in ("integer", "number")
    if isinstance(value, float):
        return kind == "number"
    if value is None:
        return kind == "null"
    if isinstance(value, list):
        return kind == "array"
    if isinstance(value, dict):
        return kind in ("map", "tagged") or (kind not in _KINDS and kind[:1].isupper())
    return False


def describe(node: Any, *, in_union: bool = False) -> str:
    """The API's words for what ``node`` expects: ``"a decimal"``, ``"an object"``,
    ``"one of 'a', 'b', or 'c'"``, ``"one of 'inf' or an integer"``."""
    if isinstance(node, str):
        return _KINDS.get(node, "an object")
    tag = node[0]
    if tag == "enum":
        return _one_of(list(node[1:]))
    if tag in _KINDS:
        return _KINDS[tag]
    if tag == "array":
        item = node[1]
        kind = item if isinstance(item, str) else item[0]
        plural = _PLURALS.get(kind, "objects" if kind not in _KINDS else "values")
        return f"{'' if in_union else 'an '}array of {plural}"
    if tag != "union":
        return "an object"
    parts: list[str] = []
    for member in node[1:]:
        if member == "null":
            continue
        words = (
            [f"'{v}'" for v in member[1:]]
            if isinstance(member, tuple) and member[0] == "enum"
            else [describe(member, in_union=True)]
        )
        parts += [w for w in words if w not in parts]
    return parts[0] if len(parts) == 1 else "one of " + _or_list(parts)


def _one_of(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else "one of " + _or_list(quoted)


def _or_list(items: list[str]) -> str:
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + ", or " + items[-1]
