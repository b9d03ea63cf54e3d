"""The conversation as the client knows it: items, their streamed content, their audio.

What this module owns: the item cache (messages, function calls, function call outputs,
and any other item type kept as received), built from server events of either dialect,
and the high-level events in the spirit of OpenAI's reference client: an item was
appended, updated by a delta, completed, or removed. GA's ``conversation.item.added`` /
``done`` and beta's (and GA's) ``conversation.item.created`` are treated alike, and an item
is appended once however many events announce it.

What it must never do: send anything, read a clock, or raise on odd server data (a delta
for an unknown item creates a placeholder item; an index no server would send, negative
or far past the known parts, leaves the cache alone; a delta for an item the server
deleted does not bring it back). Audio is counted always, kept only when asked, and then
bounded per item and cut where the server truncated it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from realtalk._core import AudioDelta
from realtalk.protocol._events import (
    AudioDone,
    AudioTranscriptDelta,
    AudioTranscriptDone,
    ContentPartAdded,
    ContentPartDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    InputTranscriptionCompleted,
    InputTranscriptionDelta,
    ItemCreated,
    ItemDeleted,
    ItemDone,
    ItemRetrieved,
    ItemTruncated,
    OutputItemAdded,
    OutputItemDone,
    ServerEvent,
    TextDelta,
    TextDone,
)

__all__ = [
    "ContentPart",
    "Conversation",
    "ConversationEvent",
    "Item",
    "ItemAppended",
    "ItemCompleted",
    "ItemRemoved",
    "ItemUpdated",
]

Int16Array = npt.NDArray[np.int16]
UpdateKind = Literal["text", "transcript", "input_transcript", "arguments"]

#: Placeholder parts one event may add past the known ones (for parts whose announcement
#: was lost). A ``content_index`` further out, or negative, is not believed: it would cost
#: memory for nothing (``10**9`` would hang the client), so the event leaves the cache
#: alone.
_MAX_PART_GAP = 16
#: Committed input audio held for items the server has not announced yet.
_MAX_PENDING_INPUT = 16
#: Deleted item ids remembered, so that late deltas for them do not bring them back.
_DELETED_MEMORY = 256


@dataclass(slots=True, eq=False)
class ContentPart:
    """One content part of an item: text, or audio with its transcript.

    ``type`` is the wire type (``input_text``, ``input_audio``, ``output_text`` / beta
    ``text``, ``output_audio`` / beta ``audio``). ``audio_samples`` counts every sample
    received for the part (at the session's output rate); ``audio`` holds them only when
    the conversation keeps audio, up to its bound. For an ``input_audio`` part they are
    the microphone audio the client appended for it, at the session's input rate (see
    :meth:`Conversation.keep_input_audio`); the server never sends them.
    ``truncated_at_ms`` is set once the server confirms a truncation of this part: the
    kept audio is cut there, like the server's copy.
    """

    type: str
    text: str = ""
    transcript: str = ""
    audio_samples: int = 0
    audio_done: bool = False
    audio_chunks: list[Int16Array] = field(default_factory=list, repr=False)
    audio_dropped_samples: int = 0
    truncated_at_ms: int | None = None

    @property
    def is_audio(self) -> bool:
        """Whether the part carries audio."""
        return self.type in {"audio", "output_audio", "input_audio"} or self.audio_samples > 0

    @property
    def audio(self) -> Int16Array:
        """The kept audio samples, concatenated (empty unless audio is kept)."""
        if not self.audio_chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.audio_chunks)


@dataclass(slots=True, eq=False)
class Item:
    """One conversation item as the client knows it.

    ``type`` is ``message``, ``function_call``, ``function_call_output`` or whatever the
    server sent; ``status`` is the server's (``in_progress``, ``completed``,
    ``incomplete``) or ``None``. ``truncated_at_ms`` is set once the server confirms a
    truncation; the server then drops the transcript, and so does this copy.
    """

    id: str
    type: str
    role: str | None = None
    status: str | None = None
    content: list[ContentPart] = field(default_factory=list)
    name: str | None = None
    call_id: str | None = None
    arguments: str = ""
    output: str | None = None
    response_id: str | None = None
    truncated_at_ms: int | None = None
    completed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        """All text of the item: text parts and audio transcripts, in order."""
        return "".join(part.text or part.transcript for part in self.content)

    def part(self, content_index: int, part_type: str = "") -> ContentPart:
        """The part at ``content_index``, created (with ``part_type``) if not known yet."""
        while len(self.content) <= content_index:
            self.content.append(
                ContentPart(type=part_type if len(self.content) == content_index else "")
            )
        part = self.content[content_index]
        if not part.type and part_type:
            part.type = part_type
        return part


@dataclass(frozen=True, slots=True)
class ItemAppended:
    """An item entered the conversation (first time the client hears of it)."""

    item: Item


@dataclass(frozen=True, slots=True)
class ItemUpdated:
    """An item grew by ``delta``: text, audio transcript, the user's input transcript,
    or function call arguments. Audio deltas are not repeated here (they are events of
    their own, :class:`realtalk.core.AudioDelta`)."""

    item: Item
    kind: UpdateKind
    delta: str
    content_index: int = 0


@dataclass(frozen=True, slots=True)
class ItemCompleted:
    """The server finished an item; sent once per item."""

    item: Item


@dataclass(frozen=True, slots=True)
class ItemRemoved:
    """An item was deleted from the conversation."""

    item_id: str


ConversationEvent = ItemAppended | ItemUpdated | ItemCompleted | ItemRemoved


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Conversation:
    """The item cache of one session, in conversation order.

    Args:
        keep_audio_ms: milliseconds of audio to keep per content part (0 keeps none;
            counting is always on). Beyond the bound, later audio is counted in
            ``audio_dropped_samples`` and not kept.
        output_sample_rate: the session's output rate in Hz (24000 PCM16, 8000 G.711),
            for the bound.
    """

    def __init__(self, *, keep_audio_ms: int = 0, output_sample_rate: int = 24000) -> None:
        if keep_audio_ms < 0:
            raise ValueError(f"keep_audio_ms must not be negative, got {keep_audio_ms}")
        self.keep_audio_ms = keep_audio_ms
        self.output_sample_rate = output_sample_rate
        self._items: dict[str, Item] = {}
        self._order: list[str] = []
        # Ids the server deleted (insertion-ordered, the oldest forgotten beyond
        # _DELETED_MEMORY): only a new conversation.item.added/created brings one back.
        self._deleted: dict[str, None] = {}
        # Input audio of committed items whose input_audio part is not announced yet.
        self._input_audio: dict[str, tuple[Int16Array, int]] = {}

    # -- reading ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Item]:
        return (self._items[item_id] for item_id in self._order)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __getitem__(self, item_id: str) -> Item:
        return self._items[item_id]

    def get(self, item_id: str) -> Item | None:
        """The item with this id, or ``None``."""
        return self._items.get(item_id)

    @property
    def items(self) -> list[Item]:
        """The items in conversation order (a new list)."""
        return [self._items[item_id] for item_id in self._order]

    # -- input audio ----------------------------------------------------------------------

    def keep_input_audio(self, item_id: str, samples: Int16Array, total: int) -> None:
        """Record the microphone audio of user item ``item_id`` (what the client
        appended; the server never sends it back): ``samples`` kept of ``total`` samples
        at the session's input rate. It goes to the item's first ``input_audio`` part,
        now or when the server announces it; what was not kept counts as dropped."""
        self._input_audio[item_id] = (samples, total)
        while len(self._input_audio) > _MAX_PENDING_INPUT:
            del self._input_audio[next(iter(self._input_audio))]
        self._attach_input_audio(item_id)

    def _attach_input_audio(self, item_id: str) -> None:
        pending = self._input_audio.get(item_id)
        item = self._items.get(item_id)
        if pending is None or item is None:
            return
        for part in item.content:
            if part.type == "input_audio":
                samples, total = self._input_audio.pop(item_id)
                part.audio_chunks = [samples] if len(samples) else []
                part.audio_samples = total
                part.audio_dropped_samples = total - len(samples)
                return

    # -- applying server events ---------------------------------------------------------

    def _add(
        self,
        item_id: str,
        item_type: str,
        previous_item_id: str | None,
        out: list[ConversationEvent],
    ) -> Item:
        item = self._items.get(item_id)
        if item is not None:
            return item
        # Placed before it is stored: an item that names itself as its predecessor (no
        # server should) goes at the end.
        if previous_item_id == "root":
            self._order.insert(0, item_id)
        elif previous_item_id is not None and previous_item_id in self._items:
            self._order.insert(self._order.index(previous_item_id) + 1, item_id)
        else:
            self._order.append(item_id)
        item = Item(id=item_id, type=item_type)
        self._items[item_id] = item
        out.append(ItemAppended(item))
        return item

    def _merge(self, item: Item, data: Mapping[str, Any]) -> None:
        """Copy the fields of a wire item object into ``item`` (the wire wins)."""
        item.raw = dict(data)
        content = data.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and "audio" in p for p in content):
            # A retrieved item carries its audio as base64 (megabytes per minute): kept
            # only as far as the conversation keeps audio, never in ``raw``.
            item.raw["content"] = [
                {k: v for k, v in p.items() if k != "audio"} if isinstance(p, dict) else p
                for p in content
            ]
        item.type = _str(data.get("type")) or item.type
        item.role = _str(data.get("role")) or item.role
        item.status = _str(data.get("status")) or item.status
        item.name = _str(data.get("name")) or item.name
        item.call_id = _str(data.get("call_id")) or item.call_id
        arguments = _str(data.get("arguments"))
        if arguments:
            item.arguments = arguments
        output = _str(data.get("output"))
        if output is not None:
            item.output = output
        if isinstance(content, list):
            for index, wire_part in enumerate(content):
                if not isinstance(wire_part, dict):
                    continue
                part = item.part(index, _str(wire_part.get("type")) or "")
                text = _str(wire_part.get("text"))
                if text:
                    part.text = text
                transcript = _str(wire_part.get("transcript"))
                if transcript and item.truncated_at_ms is None:
                    part.transcript = transcript

    def _item_for(self, item_id: str, out: list[ConversationEvent]) -> Item | None:
        # Deltas for an item never announced: keep them on a placeholder, never crash.
        # A deleted item stays deleted: its late deltas change nothing.
        if item_id in self._deleted:
            return None
        return self._add(item_id, "message", None, out)

    def _part_for(
        self, item_id: str, index: int, part_type: str, out: list[ConversationEvent]
    ) -> tuple[Item, ContentPart] | None:
        """The item and its part ``index`` for a delta, or ``None`` if the event is not
        to be believed (a deleted item, an index negative or far past the known parts)."""
        known = self._items.get(item_id)
        if not 0 <= index <= (len(known.content) if known else 0) + _MAX_PART_GAP:
            return None
        item = self._item_for(item_id, out)
        return None if item is None else (item, item.part(index, part_type))

    def _complete(self, item: Item, out: list[ConversationEvent]) -> None:
        if not item.completed:
            item.completed = True
            out.append(ItemCompleted(item))

    def _kept_limit(self, part: ContentPart) -> int:
        """How many samples of ``part`` may be kept: the bound, and the truncation."""
        limit = self.keep_audio_ms * self.output_sample_rate // 1000
        if part.truncated_at_ms is not None:
            limit = min(limit, part.truncated_at_ms * self.output_sample_rate // 1000)
        return limit

    def apply(self, event: ServerEvent) -> list[ConversationEvent]:
        """Update the cache from one server event; the high-level events it caused."""
        out: list[ConversationEvent] = []
        match event:
            case (
                ItemCreated(item=data, previous_item_id=previous)
                | ItemDone(item=data, previous_item_id=previous)
            ):
                item_id = _str(data.get("id"))
                if item_id is None:
                    return out
                if item_id in self._deleted:
                    if isinstance(event, ItemDone):
                        return out  # the end of an item that is gone
                    del self._deleted[item_id]  # created anew, with the same id
                item = self._add(item_id, _str(data.get("type")) or "message", previous, out)
                self._merge(item, data)
                self._attach_input_audio(item_id)
                # conversation.item.done is final; beta (which has no .done) and GA's
                # .created/.added announce finished items with status "completed".
                if isinstance(event, ItemDone) or item.status == "completed":
                    self._complete(item, out)
            case (
                OutputItemAdded(item=data, response_id=response_id)
                | OutputItemDone(item=data, response_id=response_id)
            ):
                item_id = _str(data.get("id"))
                if item_id is None or item_id in self._deleted:
                    return out
                item = self._add(item_id, _str(data.get("type")) or "message", None, out)
                self._merge(item, data)
                item.response_id = response_id
                if isinstance(event, OutputItemDone):
                    self._complete(item, out)
            case ItemRetrieved(item=data):
                item_id = _str(data.get("id"))
                if item_id is not None and item_id not in self._deleted:
                    self._merge(
                        self._add(item_id, _str(data.get("type")) or "message", None, out), data
                    )
            case (
                ContentPartAdded(item_id=item_id, content_index=index, part=wire_part)
                | ContentPartDone(item_id=item_id, content_index=index, part=wire_part)
            ):
                found = self._part_for(item_id, index, _str(wire_part.get("type")) or "", out)
                text = _str(wire_part.get("text"))
                if found is not None and text and not found[1].text:
                    found[1].text = text
            case TextDelta(item_id=item_id, content_index=index, delta=delta):
                if (found := self._part_for(item_id, index, "text", out)) is not None:
                    found[1].text += delta
                    out.append(ItemUpdated(found[0], "text", delta, index))
            case TextDone(item_id=item_id, content_index=index, text=text):
                if (found := self._part_for(item_id, index, "text", out)) is not None:
                    found[1].text = text
            case AudioTranscriptDelta(item_id=item_id, content_index=index, delta=delta):
                if (found := self._part_for(item_id, index, "audio", out)) is not None:
                    item, part = found
                    if item.truncated_at_ms is None:
                        part.transcript += delta
                    out.append(ItemUpdated(item, "transcript", delta, index))
            case AudioTranscriptDone(item_id=item_id, content_index=index, transcript=text):
                found = self._part_for(item_id, index, "audio", out)
                if found is not None and found[0].truncated_at_ms is None:
                    found[1].transcript = text
            case AudioDone(item_id=item_id, content_index=index):
                if (found := self._part_for(item_id, index, "audio", out)) is not None:
                    found[1].audio_done = True
            case InputTranscriptionDelta(item_id=item_id, content_index=index, delta=delta):
                if (found := self._part_for(item_id, index, "input_audio", out)) is not None:
                    if found[0].truncated_at_ms is None:
                        found[1].transcript += delta
                    out.append(ItemUpdated(found[0], "input_transcript", delta, index))
            case InputTranscriptionCompleted(item_id=item_id, content_index=index, transcript=text):
                found = self._part_for(item_id, index, "input_audio", out)
                if found is not None and found[0].truncated_at_ms is not None:
                    pass  # only assistant audio is truncated: a confused server; keep none
                elif found is not None and found[1].transcript != text:
                    item, part = found
                    # Deltas may be missing (some models send none): report the rest.
                    rest = (
                        text[len(part.transcript) :] if text.startswith(part.transcript) else text
                    )
                    part.transcript = text
                    if rest:
                        out.append(ItemUpdated(item, "input_transcript", rest, index))
            case FunctionCallArgumentsDelta(item_id=item_id, call_id=call_id, delta=delta):
                if (call := self._item_for(item_id, out)) is not None:
                    call.type = "function_call" if call.type == "message" else call.type
                    call.call_id = call.call_id or call_id
                    call.arguments += delta
                    out.append(ItemUpdated(call, "arguments", delta))
            case FunctionCallArgumentsDone(
                item_id=item_id, call_id=call_id, arguments=args, name=name
            ):
                if (call := self._item_for(item_id, out)) is not None:
                    call.type = "function_call" if call.type == "message" else call.type
                    call.call_id = call.call_id or call_id
                    call.arguments = args
                    call.name = name or call.name
            case ItemTruncated(item_id=item_id, content_index=index, audio_end_ms=end_ms):
                known = self._items.get(item_id)
                if known is not None and end_ms >= 0:
                    known.truncated_at_ms = end_ms
                    if 0 <= index < len(known.content):
                        # The server drops the transcript and the audio past the cut;
                        # so does the copy here.
                        part = known.content[index]
                        part.transcript = ""
                        part.truncated_at_ms = end_ms
                        self._trim_audio(part)
            case ItemDeleted(item_id=item_id):
                self._input_audio.pop(item_id, None)
                self._deleted[item_id] = None
                if len(self._deleted) > _DELETED_MEMORY:
                    del self._deleted[next(iter(self._deleted))]
                if self._items.pop(item_id, None) is not None:
                    self._order.remove(item_id)
                    out.append(ItemRemoved(item_id))
            case _:
                pass
        return out

    def _trim_audio(self, part: ContentPart) -> None:
        """Drop kept audio of ``part`` beyond what it may keep (counted as dropped)."""
        limit = self._kept_limit(part)
        kept = 0
        for i, chunk in enumerate(part.audio_chunks):
            if kept + len(chunk) > limit:
                room = limit - kept
                cut = len(chunk) - room + sum(len(c) for c in part.audio_chunks[i + 1 :])
                part.audio_chunks[i:] = [chunk[:room]] if room else []
                part.audio_dropped_samples += cut
                return
            kept += len(chunk)

    def apply_audio(self, delta: AudioDelta) -> ContentPart | None:
        """Count (and keep, within the bound) the samples of one audio delta; the part
        they went to, or ``None`` if the delta is not to be believed (a deleted item, a
        ``content_index`` negative or far past the known parts)."""
        known = self._items.get(delta.item_id)
        found = self._part_for(delta.item_id, delta.content_index, "audio", [])
        if found is None:
            return None
        item, part = found
        if known is None:
            item.role = "assistant"
        samples = delta.samples
        part.audio_samples += len(samples)
        if self.keep_audio_ms:
            limit = self._kept_limit(part)
            kept = part.audio_samples - len(samples) - part.audio_dropped_samples
            room = max(0, limit - kept)
            if room >= len(samples):
                part.audio_chunks.append(samples)
            else:
                if room:
                    part.audio_chunks.append(samples[:room])
                part.audio_dropped_samples += len(samples) - room
        return part
