"""The realtalk side of ``realtalk bench``: one client process, run by the bench.

It does what a realtalk user does: ``connect`` with server VAD, a :class:`Speaker` and a
:class:`Microphone` wired as :func:`realtalk.audio.open_audio` wires them (the session's
audio sink, and the microphone pump), and ``session.interrupt()`` when the plan says to.
What it adds is bookkeeping only, none of it on the audio threads: the native callback
logs of both streams (entry time on CLOCK_MONOTONIC and PortAudio's device timestamps,
recorded in the callbacks themselves), the edges of the user's speech in the captured
signal, and a time stamp where the library hands audio to the speaker. The log it writes
is read by :mod:`realtalk._bench`; the reference pipeline writes the same format.

    python -m realtalk._bench_client --url URL --plan plan.json --log out.json [--gil busy]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

import realtalk
from realtalk._bench_signal import EdgeDetector, start_gil_pressure
from realtalk.audio import find_device
from realtalk.audio._player import (
    SWITCH_INTERVAL_S,
    Float32Array,
    Microphone,
    Speaker,
    gil_switch_interval,
)
from realtalk.core import AudioDelta
from realtalk.protocol import ResponseCreated, ResponseDone, ServerVad

#: Callback records kept per stream: 2**16 callbacks of 256 frames are 350 s at 48 kHz.
LOG_RECORDS = 1 << 16


@dataclass
class Response:
    """One answer as the client saw it (the log's ``responses`` entries)."""

    response_id: str = ""
    item_id: str | None = None
    first_delta_received_ns: int | None = None
    first_push_ns: int | None = None
    speech_started_ns: int | None = None
    interrupt_call_ns: int | None = None
    truncate_audio_end_ms: int | None = None
    played_device_frames: int = 0


@dataclass
class Book:
    """Everything the client records, in arrival order."""

    responses: list[Response] = field(default_factory=list)
    by_item: dict[str, Response] = field(default_factory=dict)
    edges: list[tuple[str, int]] = field(default_factory=list)
    appends: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupting: bool = False

    def for_item(self, item_id: str) -> Response:
        response = self.by_item.get(item_id)
        if response is None:
            # The answer's first audio: the next response created that has no item yet.
            response = next((r for r in self.responses if r.item_id is None), None)
            if response is None:
                response = Response()
                self.responses.append(response)
            response.item_id = item_id
            self.by_item[item_id] = response
        return response


class StampedSpeaker(Speaker):
    """A :class:`Speaker` that notes when each answer's first audio reached the player,
    and when the session asked it to stop (a VAD barge-in or ``interrupt()``)."""

    book: Book

    def push(self, delta: AudioDelta) -> None:
        received = time.monotonic_ns()
        super().push(delta)
        response = self.book.for_item(delta.item_id)
        if response.first_push_ns is None:
            response.first_delta_received_ns = received
            response.first_push_ns = time.monotonic_ns()

    async def stop_playback(self, item_id: str | None, content_index: int = 0) -> int:
        called = time.monotonic_ns()
        if item_id is not None and not self.book.interrupting:
            response = self.book.by_item.get(item_id)
            if response is not None and response.speech_started_ns is None:
                response.speech_started_ns = called
        return await super().stop_playback(item_id, content_index)


class TappedMicrophone(Microphone):
    """A :class:`Microphone` whose frames also go through the speech edge detector."""

    book: Book
    detector: EdgeDetector
    frames_read: int = 0

    async def frames(self) -> AsyncIterator[Float32Array]:
        async for chunk in super().frames():
            mono = chunk if chunk.ndim == 1 else chunk.mean(axis=1)
            self.book.edges += self.detector.feed(self.frames_read, mono)
            self.frames_read += len(mono)
            yield chunk


async def _stamped_pump(session: realtalk.Session, mic: Microphone, book: Book) -> None:
    """open_audio's microphone pump, noting when each append has been handed to the
    socket and how many 24 kHz samples have gone out so far."""
    async for chunk in mic.frames():
        await session.append_audio(chunk, sample_rate=mic.sample_rate)
        sent = session.statistics().connection.audio_appended_samples
        book.appends.append((time.monotonic_ns(), sent))


async def _follow(session: realtalk.Session, book: Book, wanted: int) -> None:
    """Read the session's events: responses in order, errors, until ``wanted`` are done."""
    done = 0
    async for event in session.events():
        if isinstance(event, ResponseCreated):
            pending = next((r for r in book.responses if not r.response_id), None)
            if pending is None:
                pending = Response()
                book.responses.append(pending)
            pending.response_id = event.response_id
        elif isinstance(event, ResponseDone):
            done += 1
            if done >= wanted:
                return
        elif isinstance(event, realtalk.protocol.ErrorEvent):
            book.errors.append(event.message or "error")


async def _interrupt_as_planned(
    session: realtalk.Session, speaker: StampedSpeaker, book: Book, plan: list[dict[str, Any]]
) -> None:
    """Call ``session.interrupt()`` once answer ``i`` has played ``interrupt_after_ms``."""
    for index, entry in enumerate(plan):
        after_ms = entry.get("interrupt_after_ms")
        if after_ms is None:
            continue
        while len(book.responses) <= index or book.responses[index].item_id is None:
            await trio.sleep(0.001)
        response = book.responses[index]
        assert response.item_id is not None
        target = int(after_ms) * 24
        while speaker.played_samples(response.item_id, 0) < target:
            if response.speech_started_ns is not None:
                break  # a VAD barge-in came first
            await trio.sleep(0.001)
        if response.speech_started_ns is not None:
            continue
        book.interrupting = True
        response.interrupt_call_ns = time.monotonic_ns()
        result = await session.interrupt()
        book.interrupting = False
        response.truncate_audio_end_ms = getattr(result, "audio_end_ms", None)


def _records(log: Any) -> list[list[float]]:
    """A drained callback log (structured array) as rows of plain numbers."""
    return [[float(v) if isinstance(v, float) else int(v) for v in row] for row in log.tolist()]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = json.loads(Path(args.plan).read_text())
    entries: list[dict[str, Any]] = plan["responses"]
    hold = start_gil_pressure(args.gil)
    book = Book()
    vad = ServerVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=200)
    config = realtalk.SessionConfig(turn_detection=vad)
    output = find_device(args.output_device, args.host_api, "output")
    source = find_device(args.input_device, args.host_api, "input")
    async with realtalk.connect(args.url, api_key=args.api_key, config=config) as session:
        speaker = StampedSpeaker(
            output,
            sample_rate=args.rate,
            frames_per_buffer=args.blocksize,
            latency="low",
            callback_log=LOG_RECORDS,
        )
        speaker.book = book
        mic = TappedMicrophone(
            source,
            sample_rate=args.rate,
            frames_per_buffer=args.blocksize,
            latency="low",
            callback_log=LOG_RECORDS,
        )
        mic.book = book
        mic.detector = EdgeDetector(args.rate)
        try:
            session.attach_audio_sink(speaker)
            # As open_audio runs it: the pump, the sink, and the GIL switch interval.
            with gil_switch_interval(SWITCH_INTERVAL_S), trio.move_on_after(args.seconds_max):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_stamped_pump, session, mic, book)
                    nursery.start_soon(_interrupt_as_planned, session, speaker, book, entries)
                    print("ready", flush=True)
                    await _follow(session, book, len(entries))
                    # The last answer plays out (the speaker drains what it has).
                    while speaker.buffer.statistics()["buffered_samples"] > 0:
                        await trio.sleep(0.01)
                    await trio.sleep(0.5)
                    nursery.cancel_scope.cancel()
        finally:
            session.attach_audio_sink(None)
            capture_log = mic.buffer.drain_callback_log()
            playback_log = speaker.buffer.drain_callback_log()
            stats = speaker.buffer.statistics()
            capture_stats = mic.buffer.statistics()
            mic.close()
            speaker.close()
        for response in book.responses:
            if response.item_id is not None:
                response.played_device_frames = int(
                    speaker.played_samples(response.item_id, 0) * args.rate // 24000
                )
    return {
        "pipeline": "realtalk",
        "gil": args.gil,
        "gil_hold_ms_measured": hold,
        "device_rate": args.rate,
        "blocksize": args.blocksize,
        "source_rate": 24000,
        # The native log already places each source sample where the resampler puts it
        # (``first_audible``), so the audible span is the source played, delay included.
        "output_resampler_delay_src": 0.0,
        "input_resampler_delay_src": None,
        "capture": {
            "callbacks": _records(capture_log),
            "edges": book.edges,
            "appends": book.appends,
        },
        "playback": {"callbacks": _records(playback_log)},
        "responses": [vars(r) for r in book.responses],
        "underruns": int(stats["underruns"]),
        "input_overflows": int(capture_stats.get("overflow_frames", 0)),
        "errors": book.errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realtalk._bench_client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", default="k")
    parser.add_argument("--input-device", default="loopback")
    parser.add_argument("--output-device", default="system")
    parser.add_argument("--host-api", default="JACK")
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--blocksize", type=int, default=256)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--gil", default="none")
    parser.add_argument("--seconds-max", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        log = trio.run(run, args)
    except (realtalk.RealtalkError, OSError, ValueError) as exc:
        print(f"realtalk bench client: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    Path(args.log).write_text(json.dumps(log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
