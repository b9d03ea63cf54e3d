"""Barge-in: the user talks over a long answer, and the answer is cut where it was heard.

The server sends audio faster than real time, so when the user interrupts, the client
holds far more of the answer than the listener has heard. The server's copy of the
assistant item has all of it, audio and transcript, and the model reads that transcript
as what it said. Unless the item is truncated at the heard position, the model "remembers"
sentences the user never heard and refers to them. So realtalk asks the audio sink how
much of the item was played and sends ``conversation.item.truncate`` there (or
``conversation.item.delete`` when nothing was heard, or nothing when it had all played).

A real app attaches a speaker (``realtalk.audio.open_audio``); here a small sink "plays"
by the clock. Without any sink, call ``session.interrupt(played_ms=...)`` yourself.

Runs against realtalk's embedded server (no API key, no network), with a scripted brain
that tells a long story. ``--remote`` talks to the OpenAI Realtime API instead, with the
key from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import importlib.resources
import sys
import wave

import numpy as np
import trio

import realtalk
from realtalk.core import AudioDelta
from realtalk.protocol import Interrupted, ItemTruncated, ResponseDone, SpeechStarted
from realtalk.server import ScriptedBrain, open_server

STORY = "Once upon a time, in a village by the sea, there lived an old lighthouse keeper. " * 3
SCRIPT = [{"say": STORY}, {"say": "Sorry, go ahead: what did you want to ask?"}]


class ClockSink:
    """An :class:`realtalk.AudioSink` that plays nothing: audio is "heard" at real time,
    one sample per 1/sample_rate s of trio's clock, in the order it was pushed."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._start = 0.0  # trio time at which sample 0 of the queue plays
        self._queued = 0  # samples pushed since then (minus those dropped by clear())
        self._items: dict[tuple[str, int], tuple[int, int]] = {}  # -> (first sample, samples)

    def _playhead(self) -> int:
        return min(self._queued, int((trio.current_time() - self._start) * self.sample_rate))

    def push(self, delta: AudioDelta) -> None:
        if self._playhead() >= self._queued:  # ran dry: this delta starts playing now
            self._start = trio.current_time() - self._queued / self.sample_rate
        key = (delta.item_id, delta.content_index)
        first, count = self._items.get(key, (self._queued, 0))
        self._items[key] = (first, count + len(delta.samples))
        self._queued += len(delta.samples)

    def played_samples(self, item_id: str, content_index: int) -> int:
        first, count = self._items.get((item_id, content_index), (0, 0))
        return max(0, min(count, self._playhead() - first))

    def clear(self) -> None:
        self._queued = self._playhead()  # what was not played is dropped


async def user_speaks(session: realtalk.Session, after_s: float) -> None:
    """After ``after_s`` seconds, stream the bundled spoken question at real time."""
    await trio.sleep(after_s)
    wav = importlib.resources.files("realtalk") / "data" / "question.wav"
    with wav.open("rb") as file, wave.open(file) as reader:
        rate = reader.getframerate()
        speech = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    # The microphone stays open after the question: server VAD ends the turn on silence.
    samples = np.concatenate([speech, np.zeros(rate, dtype=np.int16)])
    chunk = rate // 50  # 20 ms, like a microphone
    for start in range(0, len(samples), chunk):
        await session.append_audio(samples[start : start + chunk], sample_rate=rate)
        await trio.sleep(0.02)


async def converse(session: realtalk.Session) -> None:
    session.attach_audio_sink(ClockSink(session.output_sample_rate))
    t0 = trio.current_time()
    await session.send_text("Tell me a long story.")
    interrupted = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(user_speaks, session, 1.0)
        async for event in session.events():
            at = f"{trio.current_time() - t0:5.2f} s"
            if isinstance(event, SpeechStarted):
                print(f"{at}  the user starts talking (server VAD)")
            elif isinstance(event, Interrupted):
                # The session did this by itself: speech started while the sink played.
                interrupted = True
                print(f"{at}  interrupted: {event.action.value} at {event.audio_end_ms} ms")
                cancelled = "cancelled" if event.cancelled_response else "had already finished"
                print(f"         heard {event.played_ms} ms; the response {cancelled}")
            elif isinstance(event, ItemTruncated):
                print(f"{at}  server: the answer now ends at {event.audio_end_ms} ms")
            elif isinstance(event, ResponseDone):
                received_ms = session.statistics().connection.audio_received_ms
                print(f"{at}  response {event.status} ({received_ms} ms of audio received)")
                if interrupted and event.status == "completed":  # the spoken turn's answer
                    reply = [item for item in session.conversation if item.role == "assistant"]
                    print(f"         {reply[-1].text!r}")
                    break
        nursery.cancel_scope.cancel()


async def main() -> None:
    with trio.fail_after(60):
        if "--remote" in sys.argv[1:]:
            async with realtalk.connect() as session:  # OPENAI_API_KEY
                await converse(session)
        else:
            async with (
                open_server(brain=lambda: ScriptedBrain(SCRIPT)) as server,
                realtalk.connect(server.url, api_key="local") as session,
            ):
                await converse(session)


if __name__ == "__main__":
    trio.run(main)
