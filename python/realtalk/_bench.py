"""``realtalk bench``: the latency budget, end to end, on real (virtual) audio devices.

What it measures, per turn, against the embedded server (an instant brain: every answer
is the same 1.2 s of audio, sent at once) over the JACK loopback testbed
(``scripts/audio_up.sh``):

- input: the user's end of speech in the captured signal (its ADC time) → the append that
  carries it arriving at the server; split into the device's share (ADC → the input
  callback that delivered it) and the client's (that callback → the server);
- output: the answer's first audio delta leaving the server → its first sample at the
  output device (DAC time); split into the client's share (→ in the player), the wait for
  the next output callback, and the device's (callback → DAC);
- barge-in: a local ``interrupt()`` call, or the user's speech start (its ADC time), →
  the output silent at the DAC; with the client's share (→ the audio stopping in the
  output stream);
- truncation error: the ``audio_end_ms`` the server received vs the audio the output
  callbacks actually played (24 kHz samples);
- callback timeliness: how late each output/input callback ran against the previous one's
  period.

Times come from one clock: the callbacks stamp CLOCK_MONOTONIC on entry and keep
PortAudio's device timestamps (realtalk's in native code, the reference pipeline's in its
Python callbacks); the server stamps ``time.monotonic_ns()`` as events arrive and leave.
The "user" is this process: it plays speech into the loopback device, whose capture side
is each client's microphone; each client's speaker plays into JACK's ``system`` device
(real-time paced, heard by nobody, so no echo). Each client runs in its own process, with
or without a Python thread there competing for the GIL; the reference pipeline (the best
existing Python parts: sounddevice callbacks, soxr, numpy, pybase64, json, websockets) runs
the same turns in the same run.
"""

from __future__ import annotations

import base64
import json
import math
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import trio

from realtalk._bench_signal import EdgeDetector, apply_audio_env
from realtalk.server import Observation, Say, ServerOptions, Turn, open_server

RATE = 48000
SOURCE_RATE = 24000
BLOCKSIZE = 256
#: The answer every turn gets: 1.2 s at 24 kHz.
ANSWER_S = 1.2
#: The reference pipeline's client script (repository checkouts only).
REFERENCE = Path(__file__).resolve().parents[2] / "benches" / "reference_pipeline.py"


# -- the instant brain and the user's voice ---------------------------------------------


def _noise(seconds: float, rate: int, amplitude: float, seed: int) -> np.ndarray:
    """Band-limited noise with a syllable-like envelope: never below the edge threshold
    for long inside, a clean edge at both ends."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = rng.standard_normal(n)
    x = np.convolve(x, np.ones(4) / 4, mode="same")  # soften the top octave a little
    x *= amplitude / max(1e-9, float(np.max(np.abs(x))))
    # Keep every sample well above the 0.05 threshold at the edges: a square-ish envelope.
    x = np.sign(x) * np.maximum(np.abs(x), 0.12)
    return (x * 32767).astype(np.int16)


class InstantBrain:
    """Answers every turn at once with the same :data:`ANSWER_S` of audio."""

    answer = _noise(ANSWER_S, SOURCE_RATE, 0.3, seed=99)

    def respond(self, turn: Turn) -> list[Say]:
        return [Say("answer", audio=self.answer)]


# -- the turn plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One answer: played out (``full``), cut by the client (``local``: ``interrupt()``
    after ``after_ms`` of it), or cut by the user speaking again (``vad``: the barge-in
    is the next turn's question)."""

    kind: str
    after_ms: int | None = None


def make_plan(turns: int, seed: int = 7) -> list[Step]:
    rng = random.Random(seed)
    kinds = ("full", "local", "vad")
    plan = []
    for i in range(turns):
        kind = kinds[i % 3]
        after = rng.randint(250, 700) if kind != "full" else None
        plan.append(Step(kind, after))
    if plan and plan[-1].kind == "vad":
        plan[-1] = Step("full")  # the last barge-in would have no answer after it
    return plan


# -- one run --------------------------------------------------------------------------------


@dataclass
class Run:
    """One pipeline under one GIL condition: its log, the server's view, and the numbers."""

    pipeline: str
    gil: str
    log: dict[str, Any] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    utterances: list[str] = field(default_factory=list)  # "question" | "barge-in"
    metrics: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.pipeline}, GIL {self.gil}"


def _client_command(pipeline: str, url: str, plan: Path, log: Path, gil: str) -> list[str]:
    common = [
        "--url",
        url,
        "--api-key",
        "k",
        "--input-device",
        "loopback",
        "--output-device",
        "system",
        "--host-api",
        "JACK",
        "--rate",
        str(RATE),
        "--blocksize",
        str(BLOCKSIZE),
        "--plan",
        str(plan),
        "--log",
        str(log),
        "--gil",
        gil,
    ]
    if pipeline == "realtalk":
        return [sys.executable, "-m", "realtalk._bench_client", *common]
    return [sys.executable, str(REFERENCE), *common]


class Voice:
    """The user: plays utterances into the loopback device (native playback)."""

    def __init__(self, seed: int) -> None:
        from realtalk.audio import Speaker, find_device

        device = find_device("loopback", "JACK", "output")
        self.speaker = Speaker(
            device,
            sample_rate=RATE,
            source_rate=RATE,
            start_threshold_ms=10,
            frames_per_buffer=BLOCKSIZE,
            latency="low",
        )
        self.rng = random.Random(seed)
        self.count = 0

    def say(self) -> float:
        """Start one utterance (0.5-0.9 s); its length in seconds."""
        self.count += 1
        seconds = self.rng.uniform(0.5, 0.9)
        self.speaker.buffer.push(f"u{self.count}", 0, _noise(seconds, RATE, 0.3, self.count))
        self.speaker.buffer.end_of_stream()
        return seconds

    def close(self) -> None:
        self.speaker.close()


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    with trio.move_on_after(timeout) as scope:
        while not predicate():
            await trio.sleep(0.005)
    if scope.cancelled_caught:
        raise TimeoutError(f"no {what} within {timeout:g} s")


class Observer:
    """The server's observer: keeps every observation, and (cheaply, as they come) the
    responses in the order their first audio delta left and those that are done."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.audio_responses: list[str] = []
        self.done: set[str] = set()

    def __call__(self, o: Observation) -> None:
        self.observations.append(o)
        if o.direction != "out":
            return
        kind = o.event.get("type")
        if kind == "response.output_audio.delta":
            rid = o.event.get("response_id")
            if isinstance(rid, str) and rid not in self.audio_responses[-1:]:
                self.audio_responses.append(rid)
        elif kind == "response.done":
            response = o.event.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.done.add(response["id"])


async def run_one(
    pipeline: str, gil: str, plan: list[Step], voice: Voice, workdir: Path, out: TextIO
) -> Run:
    run = Run(pipeline, gil)
    observer = Observer()
    run.observations = observer.observations
    options = ServerOptions(observer=observer)
    plan_file = workdir / f"plan-{pipeline}-{gil}.json"
    log_file = workdir / f"log-{pipeline}-{gil}.json"
    plan_file.write_text(
        json.dumps(
            {
                "responses": [
                    {"interrupt_after_ms": s.after_ms if s.kind == "local" else None} for s in plan
                ]
            }
        )
    )
    async with open_server(brain=InstantBrain, options=options) as server:
        url = f"ws://127.0.0.1:{server.port}/v1/realtime?model=gpt-realtime"
        command = _client_command(pipeline, url, plan_file, log_file, gil)
        proc = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            with trio.fail_after(30):
                seen = b""
                while b"ready" not in seen:
                    chunk = await proc.stdout.receive_some(4096)
                    if not chunk:
                        raise RuntimeError("the client exited before it was ready")
                    seen += chunk
            await trio.sleep(0.5)  # both streams running, the session configured
            for index, step in enumerate(plan):
                if index == 0 or plan[index - 1].kind != "vad":
                    voice.say()
                    run.utterances.append("question")
                await _wait(
                    lambda i=index: len(observer.audio_responses) > i, 15, f"answer {index + 1}"
                )
                rid = observer.audio_responses[index]
                if step.kind == "vad":
                    assert step.after_ms is not None
                    # Playback starts about 20 ms after the first delta leaves the server.
                    await trio.sleep(0.02 + step.after_ms / 1000)
                    voice.say()
                    run.utterances.append("barge-in")
                    await _wait(lambda r=rid: r in observer.done, 15, "a cut answer's end")
                else:
                    await _wait(lambda r=rid: r in observer.done, 15, "an answer's end")
                    await trio.sleep(ANSWER_S + 0.35 if step.kind == "full" else 0.8)
                print(
                    f"  {run.label}: answer {index + 1}/{len(plan)} ({step.kind})",
                    file=out,
                    flush=True,
                )
            with trio.fail_after(30):
                code = await proc.wait()
            err = (await proc.stderr.receive_some(65536)).decode(errors="replace").strip()
            if code != 0:
                raise RuntimeError(f"the client exited with {code}: {err[-500:]}")
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
    run.log = json.loads(log_file.read_text())
    analyse(run, plan)
    return run


# -- analysis -----------------------------------------------------------------------------


class Clock:
    """Device timestamps of one stream's callbacks mapped onto CLOCK_MONOTONIC ns."""

    def __init__(self, rows: list[list[float]], kind: str) -> None:
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 5 if kind == "capture" else 7)
        self.first = a[:, 0].astype(np.int64)
        self.frames = a[:, 1].astype(np.int64)
        if kind == "capture":
            self.entry = a[:, 2].astype(np.int64)
            current, device_time = a[:, 3], a[:, 4]
            self.first_audible = np.zeros(len(a), dtype=np.int64)
            self.audible = self.frames.copy()
        else:
            self.first_audible = a[:, 2].astype(np.int64)
            self.audible = a[:, 3].astype(np.int64)
            self.entry = a[:, 4].astype(np.int64)
            current, device_time = a[:, 5], a[:, 6]
        # The device time of each buffer's first frame, on the monotonic clock.
        self.device_ns = self.entry + np.round((device_time - current) * 1e9).astype(np.int64)

    def row_of_frame(self, frame: int) -> int | None:
        i = int(np.searchsorted(self.first, frame, side="right")) - 1
        if i < 0 or frame >= self.first[i] + self.frames[i]:
            return None
        return i

    def frame_ns(self, row: int, offset: int) -> int:
        """Device time of frame ``offset`` of buffer ``row``."""
        return int(self.device_ns[row] + offset * 1e9 / RATE)

    def lateness_ms(self) -> list[float]:
        due = self.entry[:-1] + self.frames[:-1] * 1e9 / RATE
        return [max(0.0, float(x)) / 1e6 for x in self.entry[1:] - due]


def _server_audio(observations: list[Observation]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The appended audio as the server got it: (samples, arrival ns per append, the
    first sample index of each append)."""
    chunks, times, starts = [], [], []
    n = 0
    for o in observations:
        if o.direction == "in" and o.event.get("type") == "input_audio_buffer.append":
            pcm = np.frombuffer(base64.b64decode(o.event["audio"]), dtype="<i2")
            chunks.append(pcm)
            times.append(o.t_ns)
            starts.append(n)
            n += len(pcm)
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return audio, np.asarray(times, dtype=np.int64), np.asarray(starts, dtype=np.int64)


def _edges(edges: list[Any], kind: str) -> list[int]:
    return [int(i) for k, i in edges if k == kind]


def analyse(run: Run, plan: list[Step]) -> None:
    log, m = run.log, run.metrics
    for key in METRICS:
        m[key] = []
    capture = Clock(log["capture"]["callbacks"], "capture")
    playback = Clock(log["playback"]["callbacks"], "playback")
    m["output callback lateness"] = playback.lateness_ms()
    m["input callback lateness"] = capture.lateness_ms()

    # Input: the end of each utterance, in the capture and at the server.
    audio, arrivals, starts = _server_audio(run.observations)
    detector = EdgeDetector(SOURCE_RATE)
    server_edges = detector.feed(0, audio.astype(np.float32) / 32768)
    client_falls = _edges(log["capture"]["edges"], "fall")
    client_appends = np.asarray(log["capture"].get("appends") or [], dtype=np.int64).reshape(-1, 2)
    server_falls = _edges(server_edges, "fall")
    client_rises = _edges(log["capture"]["edges"], "rise")
    if len(client_falls) != len(server_falls):
        run.notes.append(
            f"speech ends: {len(client_falls)} in the capture, {len(server_falls)} at the "
            "server; matched in order as far as both go"
        )
    for k, j in zip(client_falls, server_falls, strict=False):
        row = capture.row_of_frame(k)
        append = int(np.searchsorted(starts, j, side="right")) - 1
        if row is None or append < 0:
            continue
        adc = capture.frame_ns(row, k - int(capture.first[row]))
        sent = int(arrivals[append])
        m["input: end of speech → at the server"].append((sent - adc) / 1e6)
        m["input: device (ADC → callback)"].append((capture.entry[row] - adc) / 1e6)
        m["input: client (callback → at the server)"].append((sent - capture.entry[row]) / 1e6)
        if len(client_appends):
            # The client's own stamp: the append carrying sample j handed to the socket.
            index = int(np.searchsorted(client_appends[:, 1], j, side="right"))
            if index < len(client_appends):
                # Stamped once the send call returned: later than the bytes left when the
                # sending task was not resumed at once; the server's arrival bounds it.
                handed = min(int(client_appends[index, 0]), sent)
                m["input: of which the library (callback → on the socket)"].append(
                    (handed - capture.entry[row]) / 1e6
                )
                m["input: of which the socket to the server"].append((sent - handed) / 1e6)

    # Output, barge-in and truncation, answer by answer.
    first_delta: dict[str, int] = {}
    truncates: dict[str, int] = {}
    for o in run.observations:
        kind = o.event.get("type")
        if o.direction == "out" and kind == "response.output_audio.delta":
            first_delta.setdefault(str(o.event.get("response_id")), o.t_ns)
        if o.direction == "in" and kind == "conversation.item.truncate":
            truncates[str(o.event.get("item_id"))] = int(o.event.get("audio_end_ms", -1))
    responses = [r for r in log["responses"] if r.get("first_push_ns")]
    pushes = [int(r["first_push_ns"]) for r in responses]
    barge_rises = [
        rise for rise, what in zip(client_rises, run.utterances, strict=False) if what == "barge-in"
    ]
    vad_index = 0
    for i, r in enumerate(responses):
        start = pushes[i]
        end = pushes[i + 1] if i + 1 < len(pushes) else math.inf
        rows = [j for j in range(len(playback.entry)) if start <= playback.entry[j] < end]
        audible = [j for j in rows if playback.audible[j] > 0]
        if not audible:
            continue
        t0 = first_delta.get(r["response_id"])
        first = audible[0]
        dac_first = playback.frame_ns(first, int(playback.first_audible[first]))
        if t0 is not None:
            m["output: first delta sent → first sample at DAC"].append((dac_first - t0) / 1e6)
            m["output: client (sent → in the player)"].append((start - t0) / 1e6)
            if r.get("first_delta_received_ns"):
                got = int(r["first_delta_received_ns"])
                m["output: of which the socket to the client"].append((got - t0) / 1e6)
                m["output: of which the library (received → in the player)"].append(
                    (start - got) / 1e6
                )
        m["output: wait for the callback"].append((playback.entry[first] - start) / 1e6)
        offset_ms = int(playback.first_audible[first]) * 1000 / RATE
        m["output: resampler (offset in the first buffer)"].append(offset_ms)
        buffer_dac = playback.frame_ns(first, 0)
        m["output: device (callback → DAC)"].append((buffer_dac - playback.entry[first]) / 1e6)
        last = audible[-1]
        end_offset = int(playback.first_audible[last] + playback.audible[last])
        silent = playback.frame_ns(last, end_offset)
        # Where the audio ends on the callbacks' own timeline: how long after the trigger
        # the library still produced audio (the device adds its output latency).
        stopped = int(playback.entry[last] + end_offset * 1e9 / RATE)
        step = plan[i] if i < len(plan) else Step("full")
        if step.kind == "local" and r.get("interrupt_call_ns"):
            call = int(r["interrupt_call_ns"])
            m["barge-in: interrupt() → silent at DAC"].append((silent - call) / 1e6)
            m["barge-in: client (interrupt() → audio stops in the stream)"].append(
                (stopped - call) / 1e6
            )
        if step.kind == "vad":
            if vad_index < len(barge_rises):
                row = capture.row_of_frame(barge_rises[vad_index])
                if row is not None:
                    adc = capture.frame_ns(row, barge_rises[vad_index] - int(capture.first[row]))
                    m["barge-in: speech start → silent at DAC"].append((silent - adc) / 1e6)
            vad_index += 1
            if r.get("speech_started_ns"):
                m["barge-in: client (speech_started → audio stops in the stream)"].append(
                    (stopped - int(r["speech_started_ns"])) / 1e6
                )
        item = r.get("item_id")
        if step.kind != "full" and item in truncates:
            heard_device = int(sum(int(playback.audible[j]) for j in rows))
            heard = heard_device * SOURCE_RATE / RATE - float(log["output_resampler_delay_src"])
            m["truncation error (24 kHz samples)"].append(truncates[item] * 24 - heard)
    m["underruns"] = [float(log.get("underruns", 0))]


INPUT_TOTAL = "input: end of speech → at the server"
OUTPUT_TOTAL = "output: first delta sent → first sample at DAC"
INPUT_LIBRARY = "input: of which the library (callback → on the socket)"
OUTPUT_LIBRARY = "output: of which the library (received → in the player)"
METRICS = (
    "input: end of speech → at the server",
    "input: device (ADC → callback)",
    "input: client (callback → at the server)",
    "input: of which the library (callback → on the socket)",
    "input: of which the socket to the server",
    "output: first delta sent → first sample at DAC",
    "output: client (sent → in the player)",
    "output: of which the socket to the client",
    "output: of which the library (received → in the player)",
    "output: wait for the callback",
    "output: resampler (offset in the first buffer)",
    "output: device (callback → DAC)",
    "barge-in: interrupt() → silent at DAC",
    "barge-in: client (interrupt() → audio stops in the stream)",
    "barge-in: speech start → silent at DAC",
    "barge-in: client (speech_started → audio stops in the stream)",
    "truncation error (24 kHz samples)",
    "output callback lateness",
    "input callback lateness",
    "underruns",
)


# -- statistics and the report -------------------------------------------------------------


def stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": float(len(a)),
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        # The value farthest from zero (for latencies, the largest; for signed errors,
        # the worst either way).
        "max": float(a[int(np.argmax(np.abs(a)))]),
    }


def _cell(values: Sequence[float], metric: str) -> str:
    s = stats(values)
    if s is None:
        return "—"
    if metric == "underruns":
        return f"{s['max']:.0f}"
    return f"{s['median']:.2f} / {s['p90']:.2f} / {s['p99']:.2f} / {s['max']:.2f}"


def table(runs: list[Run]) -> list[str]:
    """Markdown rows: one per metric, one column per run."""
    head = "| metric (ms; median / p90 / p99 / max) | " + " | ".join(r.label for r in runs) + " |"
    lines = [head, "|---" * (len(runs) + 1) + "|"]
    for metric in METRICS:
        cells = [_cell(r.metrics.get(metric, []), metric) for r in runs]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines.append(
        "| turns measured (input / output) | "
        + " | ".join(
            f"{len(r.metrics.get(INPUT_TOTAL, []))} / {len(r.metrics.get(OUTPUT_TOTAL, []))}"
            for r in runs
        )
        + " |"
    )
    return lines


def _p99(run: Run | None, metric: str) -> float | None:
    if run is None:
        return None
    s = stats(run.metrics.get(metric, []))
    return None if s is None else s["p99"]


def goals(runs: list[Run]) -> list[str]:
    by = {(r.pipeline, r.gil): r for r in runs}
    rt = by.get(("realtalk", "none"))
    lines = []

    def judge(ok: bool | None, text: str) -> None:
        verdict = "SKIP" if ok is None else ("PASS" if ok else "MISS")
        lines.append(f"- {verdict}: {text}")

    period_ms = BLOCKSIZE * 1000 / RATE
    for metric, label in ((INPUT_LIBRARY, "input"), (OUTPUT_LIBRARY, "output")):
        p99 = _p99(rt, metric)
        judge(
            None if p99 is None else p99 <= 1.0,
            f"added latency, {label} (the library's own share: no device, no socket), "
            f"p99 ≤ 1 ms: {'—' if p99 is None else f'{p99:.2f} ms'}",
        )
    p99 = _p99(rt, "barge-in: client (interrupt() → audio stops in the stream)")
    judge(
        None if p99 is None else p99 <= period_ms,
        f"barge-in (interrupt()) to the audio stopping in the stream ≤ one callback period "
        f"({period_ms:.2f} ms), p99: {'—' if p99 is None else f'{p99:.2f} ms'}",
    )
    errors = rt.metrics.get("truncation error (24 kHz samples)", []) if rt else []
    worst = max((abs(e) for e in errors), default=None)
    judge(
        None if worst is None else worst <= 1.0,
        f"truncation error within ±1 sample at 24 kHz: worst "
        f"{'—' if worst is None else f'{worst:.1f} samples'}",
    )
    for pipeline in ("realtalk", "reference"):
        calm, busy = by.get((pipeline, "none")), by.get((pipeline, "busy"))
        for metric in (
            "output callback lateness",
            OUTPUT_LIBRARY,
            INPUT_LIBRARY,
            "output: client (sent → in the player)",
            "input: client (callback → at the server)",
        ):
            a, b = _p99(calm, metric), _p99(busy, metric)
            if a is not None and b is not None:
                lines.append(f"- GIL pressure, {pipeline}, {metric}: p99 {a:.2f} → {b:.2f} ms")
    return lines


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [
        (INPUT_LIBRARY, "input: the library's share (ms)"),
        (OUTPUT_LIBRARY, "output: the library's share (ms, log scale)"),
        ("input: end of speech → at the server", "input: end to end (ms)"),
        ("output: first delta sent → first sample at DAC", "output: end to end (ms)"),
        ("barge-in: interrupt() → silent at DAC", "barge-in: interrupt() → silent (ms)"),
        ("output callback lateness", "output callback lateness (ms)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (metric, title) in zip(axes.flat, shown, strict=True):
        for r in runs:
            values = np.sort(np.asarray(r.metrics.get(metric, []), dtype=float))
            if len(values):
                ax.plot(
                    values,
                    np.arange(1, len(values) + 1) / len(values),
                    label=r.label,
                    drawstyle="steps-post",
                )
        ax.set_title(title)
        if "log scale" in title:
            ax.set_xscale("log")
        ax.set_ylabel("fraction ≤ x")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        "realtalk bench: latency distributions (CDF), JACK loopback, 48 kHz, "
        f"{BLOCKSIZE}-frame callbacks"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(runs: list[Run], args: Any, seconds: float) -> str:
    lines = [
        "# realtalk bench: the latency budget",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}), {seconds:.0f} s. "
        f"Devices: JACK dummy backend, 48 kHz, {BLOCKSIZE}-frame periods "
        f"({BLOCKSIZE * 1000 / RATE:.2f} ms); microphone = JACK `loopback` (the user speaks "
        "into it), speaker = JACK `system`. Server: the embedded one, an instant brain "
        f"({ANSWER_S:g} s answers, sent at once), server VAD with 200 ms of silence. "
        f"{args.turns} answers per run: played out, cut by `interrupt()`, cut by the user "
        "speaking again, in turn. GIL `busy`: a Python thread in the client's process "
        "spinning in pure Python the whole run.",
        "",
        "Command: `" + " ".join(shlex.quote(a) for a in sys.argv) + "`",
        "",
        *table(runs),
        "",
        "## Goals (issue 10)",
        "",
        *goals(runs),
        "",
    ]
    notes = [f"- {r.label}: {n}" for r in runs for n in r.notes]
    notes += [f"- {r.label}: failed: {r.error}" for r in runs if r.error]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += [
        "## How to read it",
        "",
        "Client's share = what the library adds: input, from the callback that delivered "
        "the last sample of speech to the append carrying it reaching the server (ring "
        "polling, resampling, encoding, the socket); output, from the first delta leaving "
        "the server to its audio being in the player (the socket, parsing, decoding, "
        "resampling). Device = ADC → input callback, and output callback → DAC (PortAudio's "
        "timestamps). The wait for the callback is up to one period (jitter buffer start "
        "included). Truncation error = `audio_end_ms` times 24 minus the samples the output "
        "callbacks played (less the player's resampler delay): positive means the server "
        "keeps more than was heard.",
        "",
    ]
    return "\n".join(lines)


def _configurations(args: Any) -> Iterator[tuple[str, str]]:
    for gil in args.gil:
        for pipeline in args.pipelines:
            yield pipeline, gil


async def _main(args: Any, out: TextIO) -> list[Run]:
    plan = make_plan(args.turns)
    runs: list[Run] = []
    voice = Voice(seed=3)
    logs = Path(args.out) / "client-logs"  # the plans and each client's raw log, kept
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for pipeline, gil in _configurations(args):
            print(f"==> {pipeline}, GIL {gil}", file=out, flush=True)
            try:
                runs.append(await run_one(pipeline, gil, plan, voice, logs, out))
            except (RuntimeError, TimeoutError, OSError, KeyError, ValueError) as exc:
                failed = Run(pipeline, gil, error=f"{type(exc).__name__}: {exc}")
                print(f"  {failed.label}: {failed.error}", file=out, flush=True)
                runs.append(failed)
            await trio.sleep(0.5)
    finally:
        voice.close()
    return runs


def run_bench(args: Any, out: TextIO = sys.stdout) -> int:
    """``realtalk bench``; the exit code (1: no JACK loopback device, or a run failed)."""
    apply_audio_env()
    from realtalk.audio import PortAudioError, find_device
    from realtalk.exceptions import ConfigurationError

    try:
        find_device("loopback", "JACK", "output")
        find_device("system", "JACK", "output")
    except (ConfigurationError, PortAudioError) as exc:
        print(
            f"realtalk bench: needs JACK's dummy loopback (scripts/audio_up.sh): {exc}",
            file=sys.stderr,
        )
        return 1
    if "reference" in args.pipelines and not REFERENCE.is_file():
        print(f"realtalk bench: no {REFERENCE}; running realtalk alone", file=out)
        args.pipelines = [p for p in args.pipelines if p != "reference"]
    started = time.perf_counter()
    runs = trio.run(_main, args, out)
    seconds = time.perf_counter() - started
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    text = report(runs, args, seconds)
    (folder / "latency-report.md").write_text(text)
    (folder / "latency-data.json").write_text(
        json.dumps({r.label: r.metrics for r in runs}, indent=1)
    )
    try:
        plot(runs, folder / "latency.png")
        plotted = f", {folder / 'latency.png'}"
    except ImportError:
        plotted = " (no plot: matplotlib is not installed)"
    print("", file=out)
    print("\n".join(table(runs)), file=out)
    print("", file=out)
    print("\n".join(goals(runs)), file=out)
    print(f"\nreport: {folder / 'latency-report.md'}{plotted}", file=out)
    return 1 if any(r.error for r in runs) else 0
