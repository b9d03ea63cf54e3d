"""The microphone audio behind each committed user item, kept so that a new connection can
be given the user's own words again (not only their transcript).

The server never sends input audio back. What a committed item holds is worked out on the
client from what it appended, in samples of the session's input rate counted from the
start of the connection (the server's clock for ``audio_start_ms``/``audio_end_ms``):

- server VAD: ``speech_started.audio_start_ms`` (prefix padding included) to
  ``speech_stopped.audio_end_ms``, for the ``item_id`` both name;
- a commit the client sent: from the previous commit or clear (or the start) to the last
  sample appended before it; one the server refused leaves its audio for the next.

The last ``keep_ms`` (or a little more: whole appends) of appended audio is held in a ring.
An item longer than ``keep_ms``, or whose start the ring no longer holds, is counted but
not kept (never half an item), and is then replayed from its transcript, if any.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]

#: Speech spans remembered while waiting for their commit (a server that never commits
#: must not grow the client).
_SPANS_MEMORY = 64


class InputAudioKeeper:
    """Appended input audio, and the span of each commit in it (sans-IO; see module)."""

    def __init__(self, keep_ms: int, sample_rate: int) -> None:
        self.keep_ms = keep_ms
        self.sample_rate = sample_rate
        self._ring: deque[tuple[int, Int16Array]] = deque()  # (first sample index, samples)
        self._ring_samples = 0
        self._appended = 0
        self._buffer_start = 0  # where the server's buffer starts, as the client sent it
        self._commits: deque[tuple[str, int, int]] = deque()  # (event_id, start, end)
        self._spans: OrderedDict[str, list[int | None]] = OrderedDict()

    @property
    def capacity(self) -> int:
        """Samples the ring holds at most."""
        return self.keep_ms * self.sample_rate // 1000

    def _samples(self, ms: int) -> int:
        return ms * self.sample_rate // 1000

    def appended(self, samples: Int16Array) -> None:
        """``samples`` went out in an ``input_audio_buffer.append`` (copied: callers may
        reuse their arrays)."""
        if self.capacity and len(samples):
            self._ring.append((self._appended, np.array(samples, dtype=np.int16, copy=True)))
            self._ring_samples += len(samples)
            while self._ring_samples - len(self._ring[0][1]) >= self.capacity:
                self._ring_samples -= len(self._ring.popleft()[1])
        self._appended += len(samples)

    def commit_sent(self, event_id: str) -> None:
        """An ``input_audio_buffer.commit`` went out: it covers the buffer up to here."""
        self._commits.append((event_id, self._buffer_start, self._appended))
        self._buffer_start = self._appended

    def clear_sent(self) -> None:
        """An ``input_audio_buffer.clear`` went out: the buffer starts again here."""
        self._buffer_start = self._appended

    def commit_refused(self, event_id: str) -> None:
        """The server refused commit ``event_id``: its audio stays in the server's buffer
        and belongs to the next commit."""
        for index, (pending_id, start, _) in enumerate(self._commits):
            if pending_id == event_id:
                del self._commits[index]
                if index < len(self._commits):
                    later_id, _, later_end = self._commits[index]
                    self._commits[index] = (later_id, start, later_end)
                else:
                    self._buffer_start = start
                return

    def speech_started(self, item_id: str, audio_start_ms: int) -> None:
        self._spans[item_id] = [self._samples(audio_start_ms), None]
        while len(self._spans) > _SPANS_MEMORY:
            self._spans.popitem(last=False)

    def speech_stopped(self, item_id: str, audio_end_ms: int) -> None:
        span = self._spans.get(item_id)
        if span is not None:
            span[1] = self._samples(audio_end_ms)

    def committed(self, item_id: str) -> tuple[Int16Array, int] | None:
        """The server committed ``item_id``: (the samples kept of it, its length in
        samples), or ``None`` when its span is not known."""
        span = self._spans.pop(item_id, None)
        if span is not None and span[1] is not None:
            start, end = span[0], span[1]
            assert start is not None
            # What VAD committed is no longer in the buffer a client commit would take.
            self._buffer_start = max(self._buffer_start, min(end, self._appended))
        elif self._commits:
            _, start, end = self._commits.popleft()
        else:
            return None
        end = min(end, self._appended)
        start = min(max(start, 0), end)
        if end - start > self.capacity:  # longer than the bound: counted, not kept
            return np.zeros(0, dtype=np.int16), end - start
        return self._slice(start, end), end - start

    def _slice(self, start: int, end: int) -> Int16Array:
        """The samples in [start, end) still in the ring, from ``start`` on: empty when the
        ring no longer holds ``start`` (a part without its beginning is not worth
        keeping)."""
        if not self._ring or self._ring[0][0] > start:
            return np.zeros(0, dtype=np.int16)
        pieces = []
        for first, chunk in self._ring:
            last = first + len(chunk)
            if last <= start:
                continue
            if first >= end:
                break
            pieces.append(chunk[max(0, start - first) : min(len(chunk), end - first)])
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
