"""Brains: what the embedded server's assistant says.

What this module owns: the small interface between the server and whatever decides a
response (:class:`Brain`: one call per response, given a :class:`Turn`, returning
:class:`Say` and :class:`CallFunction` outputs), the default :class:`EchoBrain`, and
:class:`ScriptedBrain` for tests. What it must never do: know about the wire protocol,
sockets or timing; the server turns outputs into events (and text into speech).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from realtalk import core

__all__ = [
    "Brain",
    "BrainError",
    "CallFunction",
    "EchoBrain",
    "Output",
    "Say",
    "ScriptedBrain",
    "Turn",
    "TurnItem",
    "run_brain",
]

Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class TurnItem:
    """One conversation item as a brain sees it.

    ``type`` is ``message``, ``function_call`` or ``function_call_output``; ``text`` is
    the item's text (user text, assistant text or transcript, a call's arguments, or an
    output); ``audio`` the user's audio (int16 at the session's input rate) when the
    item is spoken input.
    """

    id: str
    type: str
    role: str | None = None
    text: str = ""
    audio: Int16Array | None = None
    name: str | None = None
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """What a brain is asked to answer: the conversation and the session's settings.

    ``items`` is the conversation in order. ``tools`` are the function tools' wire
    objects. ``audio`` says whether the response is spoken. ``input_sample_rate`` is the
    rate (Hz) of user audio in ``items``; ``output_sample_rate`` the rate :class:`Say`
    audio must have. ``response`` holds the ``response.create`` settings.
    """

    items: Sequence[TurnItem]
    instructions: str
    tools: Sequence[Mapping[str, Any]]
    audio: bool
    input_sample_rate: int
    output_sample_rate: int
    response: Mapping[str, Any] = field(default_factory=dict)

    @property
    def last(self) -> TurnItem | None:
        """The most recent item, or ``None`` in an empty conversation."""
        return self.items[-1] if self.items else None


@dataclass(frozen=True, slots=True)
class Say:
    """Speak (or write, in a text session) ``text``. ``audio`` (int16 at the turn's
    ``output_sample_rate``) is played instead of synthesised speech when given; ``text``
    is then its transcript."""

    text: str
    audio: Int16Array | None = None


@dataclass(frozen=True, slots=True)
class CallFunction:
    """Call function tool ``name`` with ``arguments`` (a dict, or JSON text)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        """The arguments as the JSON text the wire carries."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(", ", ": "))


Output = Say | CallFunction


class BrainError(Exception):
    """A brain could not answer; the response ends with status ``failed`` and this
    message in ``status_details.error``."""


class Brain(Protocol):
    """Decides each response. ``respond`` may be a plain or an ``async`` method; it
    returns the response's outputs in order (an empty sequence is an empty response)."""

    def respond(self, turn: Turn) -> Sequence[Output] | Awaitable[Sequence[Output]]:
        """The outputs of one response to ``turn``."""
        ...


async def run_brain(brain: Brain, turn: Turn) -> list[Output]:
    """Call ``brain.respond`` whether it is sync or async; check what it returned.

    Raises:
        BrainError: the brain raised, or returned something other than outputs.
    """
    try:
        result = brain.respond(turn)
        if inspect.isawaitable(result):
            result = await result
    except BrainError:
        raise
    except Exception as exc:
        raise BrainError(f"{type(brain).__name__} failed: {type(exc).__name__}: {exc}") from exc
    outputs = list(result)
    for output in outputs:
        if not isinstance(output, Say | CallFunction):
            raise BrainError(f"{type(brain).__name__} returned {output!r}, not Say/CallFunction")
    return outputs


def _tool_argument(tool: Mapping[str, Any], text: str) -> dict[str, Any]:
    """Arguments for ``tool`` from a user's sentence: the whole text in its one string
    parameter, when it has exactly one; else none."""
    params = tool.get("parameters")
    props = params.get("properties") if isinstance(params, Mapping) else None
    if isinstance(props, Mapping):
        strings = [
            k for k, v in props.items() if isinstance(v, Mapping) and v.get("type") == "string"
        ]
        if len(strings) == 1 and len(props) == 1:
            return {strings[0]: text}
    return {}


class EchoBrain:
    """The default brain: answers with what it was given.

    - user text ``X`` → says "You said: X";
    - user text naming a configured function tool (its name, or its name with spaces for
      underscores, case-insensitive) → calls it; with exactly one string parameter, the
      user's text is passed in it;
    - a function call output → says "<tool> returned <output>";
    - user audio → plays that audio back (transcript: "(your words, played back)").
    """

    def respond(self, turn: Turn) -> list[Output]:
        last = turn.last
        if last is None:
            return [Say("Hello from realtalk's embedded server.")]
        if last.type == "function_call_output":
            name = next(
                (
                    i.name
                    for i in turn.items
                    if i.type == "function_call" and i.call_id == last.call_id
                ),
                None,
            )
            return [Say(f"{name or 'The tool'} returned {last.text}")]
        if last.role == "user" and last.audio is not None and len(last.audio):
            audio = last.audio
            if turn.input_sample_rate != turn.output_sample_rate:
                resampler = core.Resampler(turn.input_sample_rate, turn.output_sample_rate)
                audio = np.concatenate([resampler.process(audio), resampler.flush()])
            return [Say("(your words, played back)", audio=audio)]
        if last.role == "user":
            lowered = last.text.lower()
            for tool in turn.tools:
                name = str(tool.get("name", ""))
                if name and (name.lower() in lowered or name.lower().replace("_", " ") in lowered):
                    return [CallFunction(name, _tool_argument(tool, last.text))]
            return [Say(f"You said: {last.text}")]
        return [Say("You said nothing I could echo.")]


class ScriptedBrain:
    """Answers from a script: one entry per response, in order.

    Each entry is a mapping with an optional ``"expect"`` (a substring the latest user
    text must contain; else the response fails, naming both) and the outputs: ``"say"``
    (text), ``"call"`` (``{"name": ..., "arguments": {...}}``), or ``"outputs"`` (a list
    of such mappings). A JSON file holding a list of entries can be given instead.
    After the last entry, responses fail with "script exhausted".

    Example: ``[{"expect": "weather", "call": {"name": "get_weather", "arguments":
    {"city": "Paris"}}}, {"say": "It is 21 degrees."}]``
    """

    def __init__(self, script: Sequence[Mapping[str, Any]] | str | Path) -> None:
        if isinstance(script, str | Path):
            loaded = json.loads(Path(script).read_text(encoding="utf-8"))
            if not isinstance(loaded, list):
                raise ValueError(f"{script}: a scripted brain's file must hold a JSON list")
            script = loaded
        self._entries = [self._check(i, entry) for i, entry in enumerate(script)]
        self._next = 0

    @staticmethod
    def _check(index: int, entry: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(entry, Mapping):
            raise ValueError(f"script[{index}]: expected an object, got {type(entry).__name__}")
        if not ({"say", "call", "outputs"} & set(entry)):
            raise ValueError(f"script[{index}]: needs 'say', 'call' or 'outputs'")
        return entry

    @property
    def remaining(self) -> int:
        """Entries not used yet."""
        return len(self._entries) - self._next

    def respond(self, turn: Turn) -> list[Output]:
        if self._next >= len(self._entries):
            raise BrainError(f"script exhausted after {len(self._entries)} responses")
        entry = self._entries[self._next]
        self._next += 1
        expect = entry.get("expect")
        if expect is not None:
            said = next((i.text for i in reversed(turn.items) if i.role == "user"), "")
            if str(expect).lower() not in said.lower():
                raise BrainError(
                    f"script[{self._next - 1}] expected {expect!r}, user said {said!r}"
                )
        parts = entry.get("outputs") or [entry]
        outputs: list[Output] = []
        for part in parts:
            if "say" in part:
                outputs.append(Say(str(part["say"])))
            if "call" in part:
                call = part["call"]
                outputs.append(CallFunction(str(call["name"]), call.get("arguments", {})))
        return outputs
