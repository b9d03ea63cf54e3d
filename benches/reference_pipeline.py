"""Reference voice client for the latency bench (issue 10): the best existing Python parts
doing realtalk's job, run by the bench as a subprocess against the same server and devices.

Owns: one GA-dialect Realtime session over ``websockets`` (asyncio) with sounddevice
(PortAudio) callbacks at the device rate, soxr HQ streams 48k <-> 24k, numpy for the
int16 conversion, pybase64 for the base64, orjson to parse what arrives (the fastest
existing parser; appends are built by string concatenation), and the log the bench reads,
in the format shared with the realtalk client. It measures nothing itself: it stamps
every audio callback and every event of interest with ``time.monotonic_ns()``.

Paths:
  * input: the callback copies the block and posts it to the asyncio loop
    (``call_soon_threadsafe``); the loop finds burst edges on the 48 kHz signal
    (``realtalk._bench_signal.EdgeDetector``), resamples to 24 kHz, converts to int16,
    base64-encodes and sends one ``input_audio_buffer.append`` per batch of blocks that
    arrived together.
  * output: each ``response.output_audio.delta`` is decoded, resampled to the device rate
    (one soxr stream per response, flushed at its end) and queued in a lock-guarded FIFO
    that the output callback drains, zeros after it runs dry, counting the frames
    played of each response.
  * barge-in: on ``input_audio_buffer.speech_started`` the FIFO is cleared and the playing
    item truncated at what was played (device frames -> 24 kHz samples, minus the output
    resampler's measured delay). The plan can also interrupt a response locally after
    some ms of its audio has played (clear, ``response.cancel`` while it still streams,
    truncate); the output callback notices and posts the interrupt to the loop.

    python benches/reference_pipeline.py \\
        --url 'ws://127.0.0.1:PORT/v1/realtime?model=gpt-realtime' --api-key k \\
        --input-device loopback --output-device system --host-api JACK \\
        --rate 48000 --blocksize 256 --plan plan.json --log out.json \\
        [--gil none|busy|hold:MS] [--seconds-max 120]

Prints ``reference_pipeline: ready`` on stdout once both streams run. Exit 0 after the
plan's responses have finished and played out (+0.5 s) or after ``--seconds-max``; on an
error, one line on stderr and exit 1 (with the log written if the streams had started).
The audio servers' environment (``$AUDIO_DIR/env.sh`` from ``scripts/audio_up.sh``) is
loaded, without overriding variables already set, before PortAudio initialises.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pybase64
import soxr  # type: ignore[import-untyped]
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from realtalk._bench_signal import (
    EdgeDetector,
    apply_audio_env,
    parse_gil_spec,
    start_gil_pressure,
)

SOURCE_RATE = 24000  # the wire's PCM rate (GA audio/pcm: 24 kHz only)
TAIL_S = 0.5  # kept running after the last response has played out
F32 = npt.NDArray[np.float32]

DEFAULT_SESSION: dict[str, Any] = {
    "type": "realtime",
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": SOURCE_RATE},
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcm", "rate": SOURCE_RATE}},
    },
}


class Failure(Exception):
    """A reason to stop, printed as the one line on stderr."""


@dataclass
class Response:
    index: int
    response_id: str
    resampler: Any  # soxr.ResampleStream, SOURCE_RATE -> device rate
    item_id: str | None = None
    first_delta_received_ns: int | None = None
    first_push_ns: int | None = None
    speech_started_ns: int | None = None
    interrupt_call_ns: int | None = None
    truncate_audio_end_ms: int | None = None
    received_src: int = 0  # 24 kHz samples received
    audio_flushed: bool = False
    done: bool = False
    interrupted: bool = False


# -- setup -----------------------------------------------------------------------------------


def import_sounddevice() -> ModuleType:
    apply_audio_env()
    try:
        import sounddevice  # type: ignore[import-untyped]
    except OSError as exc:  # no libportaudio2
        raise Failure(f"cannot load PortAudio: {exc}") from None
    module: ModuleType = sounddevice
    return module


def find_device(sd: ModuleType, name: str, host_api: str, kind: str) -> int:
    """The one ``kind`` ("input"/"output") device whose name contains ``name`` on the host
    API whose name contains ``host_api`` (case-insensitive; an exact name wins)."""
    apis = sd.query_hostapis()
    have, matches = [], []
    for index, dev in enumerate(sd.query_devices()):
        if dev[f"max_{kind}_channels"] < 1:
            continue
        api = apis[dev["hostapi"]]["name"]
        have.append(f"{dev['name']!r} ({api})")
        if name.lower() in dev["name"].lower() and host_api.lower() in api.lower():
            matches.append((index, dev["name"]))
    exact = [m for m in matches if m[1].lower() == name.lower()]
    if len(exact) == 1:
        return int(exact[0][0])
    if len(matches) == 1:
        return int(matches[0][0])
    if not matches:
        listing = ", ".join(have) or "none"
        raise Failure(f"no {kind} device {name!r} on host API {host_api!r} (have: {listing})")
    names = ", ".join(repr(m[1]) for m in matches)
    raise Failure(f"{kind} device {name!r} on {host_api!r} is ambiguous: {names}")


def measure_delay(in_rate: int, out_rate: int) -> float:
    """The delay of a fresh soxr HQ stream, in input samples: an impulse through it (then
    flushed), the output's peak located to a fraction of a sample (parabola), mapped back."""
    n = in_rate // 10
    at = n // 2 - (n // 2) % 2
    x = np.zeros(n, dtype=np.float32)
    x[at] = 1.0
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
    y = np.concatenate(
        [stream.resample_chunk(x), stream.resample_chunk(np.zeros(0, np.float32), last=True)]
    ).astype(np.float64)
    p = int(np.argmax(y))
    frac = 0.0
    if 0 < p < len(y) - 1:
        a, b, c = y[p - 1], y[p], y[p + 1]
        if a - 2 * b + c != 0:
            frac = 0.5 * (a - c) / (a - 2 * b + c)
    return float((p + frac) * in_rate / out_rate - at)


def load_plan(path: str) -> tuple[list[float | None], dict[str, Any]]:
    try:
        plan = json.loads(Path(path).read_text())
        entries = plan["responses"]
        interrupts: list[float | None] = []
        for entry in entries:
            ms = entry.get("interrupt_after_ms")
            if ms is not None and (not isinstance(ms, int | float) or ms < 0):
                raise ValueError(f"bad interrupt_after_ms {ms!r}")
            interrupts.append(ms)
        session = plan.get("session") or DEFAULT_SESSION
        if not isinstance(session, dict):
            raise ValueError("'session' is not an object")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Failure(f"bad plan {path}: {exc!r}") from None
    return interrupts, session


# -- the pipeline ----------------------------------------------------------------------------


class Pipeline:
    def __init__(self, args: argparse.Namespace, interrupts: list[float | None]) -> None:
        self.args = args
        self.rate: int = args.rate
        self.interrupts = interrupts
        self.out_delay_src = round(measure_delay(SOURCE_RATE, self.rate), 6)  # 24 kHz samples
        self.in_delay = round(measure_delay(self.rate, SOURCE_RATE), 6)  # device-rate samples
        self.gil_hold_ms: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.captured: asyncio.Queue[tuple[int, F32]] = asyncio.Queue()
        self.detector = EdgeDetector(self.rate)
        self.edges: list[tuple[str, int]] = []
        # (monotonic ns once the append was handed to the socket, 24 kHz samples sent so far)
        self.appends: list[tuple[int, int]] = []
        self.appended = 0
        # Capture callback state.
        self.cap_records: list[tuple[int, int, int, float, float]] = []
        self.cap_frames = 0
        self.input_overflows = 0
        # Playback: the FIFO and everything the output callback touches, under `lock`.
        self.lock = threading.Lock()
        self.fifo: deque[tuple[int, F32]] = deque()  # (response index, device-rate audio)
        self.fifo_offset = 0  # frames of fifo[0] already played
        self.played: list[int] = []  # device frames played, per response index
        self.interrupt_at: list[int | None] = []  # device frames, per response index
        self.interrupt_posted: list[bool] = []
        self.streaming: int | None = None  # the response whose audio is still arriving
        self.play_records: list[tuple[int, int, int, int, int, float, float]] = []
        self.play_frames = 0
        self.underruns = 0
        # Session state (loop only).
        self.responses: list[Response] = []
        self.by_id: dict[str, Response] = {}
        self.errors: list[str] = []
        self.ignored_errors: set[str] = set()  # event ids of our response.cancel events
        self.cancels = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.ws: ClientConnection | None = None
        self.started = False  # the streams ran: there is a log to write

    # -- audio callbacks (PortAudio threads) ------------------------------------------------

    def on_input(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        entry = time.monotonic_ns()
        first = self.cap_frames
        self.cap_frames = first + frames
        self.cap_records.append(
            (first, frames, entry, time_info.currentTime, time_info.inputBufferAdcTime)
        )
        if status:
            self.input_overflows += 1
        assert self.loop is not None
        try:  # noqa: SIM105 (cheaper than contextlib.suppress in a callback)
            self.loop.call_soon_threadsafe(self.captured.put_nowait, (first, indata[:, 0].copy()))
        except RuntimeError:  # the loop has closed: shutting down
            pass

    def on_output(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        entry = time.monotonic_ns()
        out = outdata[:, 0]
        written = 0
        with self.lock:
            fifo, played = self.fifo, self.played
            while written < frames and fifo:
                index, chunk = fifo[0]
                offset = self.fifo_offset
                n = min(frames - written, len(chunk) - offset)
                out[written : written + n] = chunk[offset : offset + n]
                written += n
                played[index] += n
                if offset + n == len(chunk):
                    fifo.popleft()
                    self.fifo_offset = 0
                else:
                    self.fifo_offset = offset + n
                at = self.interrupt_at[index]
                if at is not None and played[index] >= at and not self.interrupt_posted[index]:
                    self.interrupt_posted[index] = True
                    assert self.loop is not None
                    try:  # noqa: SIM105
                        self.loop.call_soon_threadsafe(self.interrupt_due, index)
                    except RuntimeError:
                        pass
            if written < frames:
                out[written:] = 0.0
                if self.streaming is not None:
                    self.underruns += 1
        first = self.play_frames
        self.play_frames = first + frames
        self.play_records.append(
            (
                first,
                frames,
                0 if written else frames,
                written,
                entry,
                time_info.currentTime,
                time_info.outputBufferDacTime,
            )
        )

    # -- output path (loop) -----------------------------------------------------------------

    def response(self, response_id: str) -> Response:
        r = self.by_id.get(response_id)
        if r is None:
            index = len(self.responses)
            resampler = soxr.ResampleStream(
                SOURCE_RATE, self.rate, 1, dtype="float32", quality="HQ"
            )
            r = Response(index, response_id, resampler)
            self.responses.append(r)
            self.by_id[response_id] = r
            ms = self.interrupts[index] if index < len(self.interrupts) else None
            with self.lock:
                self.played.append(0)
                self.interrupt_at.append(None if ms is None else math.ceil(ms * self.rate / 1000))
                self.interrupt_posted.append(False)
        return r

    def push(self, r: Response, audio: F32) -> None:
        if len(audio):
            with self.lock:
                self.fifo.append((r.index, audio))
                self.streaming = r.index
            if r.first_push_ns is None:
                r.first_push_ns = time.monotonic_ns()

    def on_delta(self, event: dict[str, Any], received_ns: int) -> None:
        r = self.response(event["response_id"])
        if r.interrupted or r.audio_flushed:
            return
        if r.first_delta_received_ns is None:
            r.first_delta_received_ns = received_ns
        if r.item_id is None:
            r.item_id = event.get("item_id")
        pcm = np.frombuffer(pybase64.b64decode(event["delta"]), dtype="<i2")
        r.received_src += len(pcm)
        x = pcm.astype(np.float32) * np.float32(1 / 32768)
        self.push(r, r.resampler.resample_chunk(x))

    def flush(self, r: Response) -> None:
        """The end of a response's audio: the resampler's tail to the FIFO."""
        if r.audio_flushed or r.interrupted:
            return
        r.audio_flushed = True
        self.push(r, r.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        with self.lock:
            if self.streaming == r.index:
                self.streaming = None

    def queued(self) -> set[int]:
        with self.lock:
            return {index for index, _ in self.fifo}

    # -- interruptions (loop) ---------------------------------------------------------------

    def interrupt(self, r: Response, local: bool) -> None:
        """Stop ``r``'s playback now (the output callback plays zeros from its next buffer),
        then tell the server how much was heard (and cancel it if local and still going)."""
        with self.lock:
            self.fifo.clear()
            self.fifo_offset = 0
            played = self.played[r.index]
            if self.streaming == r.index:
                self.streaming = None
        r.interrupted = True
        heard_src = played * SOURCE_RATE / self.rate - self.out_delay_src
        end_ms = math.floor(max(0.0, heard_src) * 1000 / SOURCE_RATE)
        end_ms = min(end_ms, r.received_src * 1000 // SOURCE_RATE)
        messages: list[dict[str, Any]] = []
        if local and not r.done:
            self.cancels += 1
            event_id = f"evt_ref_cancel_{self.cancels}"
            self.ignored_errors.add(event_id)
            messages.append({"type": "response.cancel", "event_id": event_id})
        if r.item_id is not None:
            r.truncate_audio_end_ms = end_ms
            messages.append(
                {
                    "type": "conversation.item.truncate",
                    "item_id": r.item_id,
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                }
            )
        if messages:
            self.spawn(self.send_all(messages))

    def interrupt_due(self, index: int) -> None:
        """Posted by the output callback: response ``index`` reached its plan's point."""
        r = self.responses[index]
        if r.interrupted:
            return
        r.interrupt_call_ns = time.monotonic_ns()
        self.interrupt(r, local=True)

    def on_speech_started(self) -> None:
        now = time.monotonic_ns()
        queued = self.queued()
        active = [
            r
            for r in self.responses
            if not r.interrupted and (not r.done or r.index in queued or r.index == self.streaming)
        ]
        if not active:
            return
        r = active[-1]
        if r.speech_started_ns is None:
            r.speech_started_ns = now
        self.interrupt(r, local=False)

    # -- the session ------------------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def send_all(self, messages: list[dict[str, Any]]) -> None:
        assert self.ws is not None
        for message in messages:
            await self.ws.send(json.dumps(message))

    async def handshake(self, ws: ClientConnection, session: dict[str, Any]) -> None:
        async def expect(wanted: str) -> None:
            while True:
                event = orjson.loads(await ws.recv(decode=False))
                if event.get("type") == wanted:
                    return
                if event.get("type") == "error":
                    raise Failure(f"server error before {wanted}: {event['error'].get('message')}")

        try:
            await asyncio.wait_for(expect("session.created"), 10)
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            await asyncio.wait_for(expect("session.updated"), 10)
        except TimeoutError:
            raise Failure("no session.created/session.updated within 10 s") from None

    async def receive(self, ws: ClientConnection) -> None:
        while True:
            data = await ws.recv(decode=False)
            received_ns = time.monotonic_ns()
            event = orjson.loads(data)
            kind = event.get("type")
            if kind == "response.output_audio.delta":
                self.on_delta(event, received_ns)
            elif kind == "input_audio_buffer.speech_started":
                self.on_speech_started()
            elif kind == "response.created":
                self.response(event["response"]["id"])
            elif kind == "response.output_item.added":
                r = self.response(event["response_id"])
                item = event.get("item") or {}
                if r.item_id is None and item.get("type") == "message":
                    r.item_id = item.get("id")
            elif kind == "response.output_audio.done":
                self.flush(self.response(event["response_id"]))
            elif kind == "response.done":
                r = self.response(event["response"]["id"])
                self.flush(r)
                r.done = True
            elif kind == "error":
                error = event.get("error") or {}
                if error.get("event_id") not in self.ignored_errors:
                    self.errors.append(str(error.get("message")))

    async def send_audio(self, ws: ClientConnection) -> None:
        resampler = soxr.ResampleStream(self.rate, SOURCE_RATE, 1, dtype="float32", quality="HQ")
        while True:
            blocks = [await self.captured.get()]
            while not self.captured.empty():
                blocks.append(self.captured.get_nowait())
            for first, block in blocks:
                self.edges += self.detector.feed(first, block)
            x = blocks[0][1] if len(blocks) == 1 else np.concatenate([b for _, b in blocks])
            y = resampler.resample_chunk(x)
            if not len(y):
                continue
            pcm = np.clip(np.rint(y * 32768.0), -32768, 32767).astype("<i2")
            audio = pybase64.b64encode(pcm.tobytes()).decode("ascii")
            await ws.send('{"type":"input_audio_buffer.append","audio":"' + audio + '"}')
            self.appended += len(pcm)
            self.appends.append((time.monotonic_ns(), self.appended))

    async def finished(self) -> None:
        """Until the plan's responses are done and their audio has been played, + TAIL_S."""
        n = len(self.interrupts)
        while True:
            rs = self.responses[:n]
            if len(rs) == n and all(r.done for r in rs):
                with self.lock:
                    if not self.fifo and self.streaming is None:
                        break
            await asyncio.sleep(0.01)
        await asyncio.sleep(TAIL_S)

    async def run(self, sd: ModuleType, session: dict[str, Any]) -> bool:
        """The whole session; whether the plan completed (False: --seconds-max)."""
        args = self.args
        self.loop = asyncio.get_running_loop()
        in_dev = find_device(sd, args.input_device, args.host_api, "input")
        out_dev = find_device(sd, args.output_device, args.host_api, "output")
        self.gil_hold_ms = start_gil_pressure(args.gil)
        try:
            ws = await connect(
                args.url,
                additional_headers={"Authorization": f"Bearer {args.api_key}"},
                max_size=None,
                compression=None,
                proxy=None,
            )
        except (OSError, TimeoutError) as exc:
            raise Failure(f"cannot connect to {args.url}: {exc}") from None
        except Exception as exc:  # websockets' handshake errors (InvalidStatus, ...)
            raise Failure(f"cannot connect to {args.url}: {exc!r}") from None
        self.ws = ws
        try:
            await self.handshake(ws, session)
            common: dict[str, Any] = dict(
                samplerate=self.rate,
                blocksize=args.blocksize,
                channels=1,
                dtype="float32",
                latency="low",
            )
            try:
                out_stream = sd.OutputStream(device=out_dev, callback=self.on_output, **common)
                in_stream = sd.InputStream(device=in_dev, callback=self.on_input, **common)
                with out_stream, in_stream:
                    self.started = True
                    print("reference_pipeline: ready", flush=True)
                    return await self.converse(ws)
            except sd.PortAudioError as exc:
                raise Failure(f"audio stream: {exc}") from None
        except ConnectionClosed as exc:
            raise Failure(f"the server closed the connection: {exc}") from None
        finally:
            await ws.close()

    async def converse(self, ws: ClientConnection) -> bool:
        workers = [
            asyncio.create_task(self.receive(ws)),
            asyncio.create_task(self.send_audio(ws)),
        ]
        done_task = asyncio.create_task(self.finished())
        done, _ = await asyncio.wait(
            [done_task, *workers],
            timeout=self.args.seconds_max,
            return_when=asyncio.FIRST_COMPLETED,
        )
        pending = [done_task, *workers, *self.tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task is not done_task:
                task.result()  # raises what ended it
        return done_task in done

    # -- the log ----------------------------------------------------------------------------

    def log(self) -> dict[str, Any]:
        with self.lock:
            played = list(self.played)
        return {
            "pipeline": "reference",
            "gil": self.args.gil,
            "gil_hold_ms_measured": self.gil_hold_ms,
            "device_rate": self.rate,
            "blocksize": self.args.blocksize,
            "source_rate": SOURCE_RATE,
            "output_resampler_delay_src": self.out_delay_src,
            "input_resampler_delay_src": self.in_delay,
            "capture": {
                "callbacks": [list(c) for c in self.cap_records],
                "edges": [list(e) for e in self.edges],
                "appends": [list(a) for a in self.appends],
            },
            "playback": {"callbacks": [list(c) for c in self.play_records]},
            "responses": [
                {
                    "response_id": r.response_id,
                    "item_id": r.item_id,
                    "first_delta_received_ns": r.first_delta_received_ns,
                    "first_push_ns": r.first_push_ns,
                    "speech_started_ns": r.speech_started_ns,
                    "interrupt_call_ns": r.interrupt_call_ns,
                    "truncate_audio_end_ms": r.truncate_audio_end_ms,
                    "played_device_frames": played[r.index],
                }
                for r in self.responses
            ],
            "underruns": self.underruns,
            "input_overflows": self.input_overflows,
            "errors": self.errors,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Reference pipeline (sounddevice + soxr + numpy + pybase64 + websockets) "
        "for the latency bench; writes the bench's JSON log."
    )
    parser.add_argument("--url", required=True, help="ws://HOST:PORT/v1/realtime?model=...")
    parser.add_argument("--api-key", default="k")
    parser.add_argument("--input-device", required=True, help="device name substring")
    parser.add_argument("--output-device", required=True, help="device name substring")
    parser.add_argument("--host-api", default="", help="host API name substring, e.g. JACK")
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--blocksize", type=int, default=256)
    parser.add_argument("--plan", required=True, help="the bench's plan (JSON)")
    parser.add_argument("--log", required=True, help="where to write the JSON log")
    parser.add_argument("--gil", default="none", help="none, busy or hold:MS")
    parser.add_argument("--seconds-max", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        parse_gil_spec(args.gil)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rate <= 0 or args.blocksize <= 0 or args.seconds_max <= 0:
        parser.error("--rate, --blocksize and --seconds-max must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pipeline: Pipeline | None = None
    try:
        interrupts, session = load_plan(args.plan)
        sd = import_sounddevice()
        pipeline = Pipeline(args, interrupts)
        completed = asyncio.run(pipeline.run(sd, session))
        if not completed:
            n = sum(r.done for r in pipeline.responses)
            print(
                f"reference_pipeline: --seconds-max reached ({n} of {len(interrupts)} "
                "responses done)",
                file=sys.stderr,
            )
        status = 0
    except Failure as exc:
        print(f"reference_pipeline: {exc}", file=sys.stderr)
        status = 1
    except Exception as exc:  # a bug or an unexpected event shape: still one line
        print(f"reference_pipeline: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        status = 1
    if pipeline is not None and pipeline.started:
        Path(args.log).write_text(json.dumps(pipeline.log()))
    return status


if __name__ == "__main__":
    sys.exit(main())
