"""``realtalk demo``: a WAV through the audio core, both directions, with a summary.

Until the embedded server exists this plays both sides itself: it frames the clip as the
client would send it, turns each append into the audio delta event a server would send
back, and parses those. Nothing here touches the network.
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from realtalk import core

SAMPLE_RATE = 24_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000


def _read_wav(path: Path | None) -> tuple[str, npt.NDArray[np.int16]]:
    if path is None:
        ref = resources.files("realtalk") / "data" / "hello.wav"
        name = "bundled hello.wav"
        with resources.as_file(ref) as p, wave.open(str(p), "rb") as w:
            params, frames = w.getparams(), w.readframes(w.getnframes())
    else:
        name = str(path)
        with wave.open(str(path), "rb") as w:
            params, frames = w.getparams(), w.readframes(w.getnframes())
    if (params.sampwidth, params.nchannels, params.framerate) != (2, 1, SAMPLE_RATE):
        raise SystemExit(
            f"realtalk demo: {name} is {params.sampwidth * 8}-bit, {params.nchannels} "
            f"channel(s), {params.framerate} Hz; the demo needs 16-bit mono {SAMPLE_RATE} Hz "
            "(for example: sox in.wav -r 24000 -c 1 -b 16 out.wav)"
        )
    return name, np.frombuffer(frames, dtype="<i2").astype(np.int16)


def _write_wav(path: Path, samples: npt.NDArray[np.int16]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def _snr_db(reference: npt.NDArray[np.int16], decoded: npt.NDArray[np.int16]) -> float:
    ref = reference.astype(np.float64)
    noise = ref - decoded.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum(noise**2), 1e-12)))


def _per_call_ns(function: Callable[[Any], object], inputs: Sequence[Any]) -> float:
    """Median over 5 passes of the mean time of one call, in ns (the first pass warms up)."""
    passes = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for x in inputs:
            function(x)
        passes.append((time.perf_counter_ns() - t0) / len(inputs))
    return float(np.median(passes))


def _delta_event(append_text: str, index: int) -> str:
    """The audio delta event a server would stream back carrying an append's audio."""
    audio = json.loads(append_text)["audio"]
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": f"event_{index}",
            "response_id": "resp_demo",
            "item_id": "item_demo",
            "output_index": 0,
            "content_index": 0,
            "delta": audio,
        }
    )


def run_demo(wav: Path | None, *, output: Path | None, codec: str) -> int:
    name, samples = _read_wav(wav)
    seconds = len(samples) / SAMPLE_RATE
    print(f"realtalk demo: {name}, {seconds:.2f} s of 16-bit mono {SAMPLE_RATE} Hz")
    frames = [samples[i : i + FRAME_SAMPLES] for i in range(0, len(samples), FRAME_SAMPLES)]

    # Out: 20 ms frames -> input_audio_buffer.append JSON text.
    event_ids = [f"append_{i}" for i in range(len(frames))]
    appends = [core.encode_append(f, event_id=e) for f, e in zip(frames, event_ids, strict=True)]
    send_ns = _per_call_ns(core.encode_append, frames)
    wire_bytes = sum(len(t) for t in appends)
    print(
        f"  send     {len(appends)} append events ({FRAME_MS} ms each), "
        f"{wire_bytes / 1024:.0f} KiB of JSON, {send_ns / 1000:.2f} µs per event"
    )

    # Back: the same audio as server delta events -> samples.
    deltas = [_delta_event(t, i) for i, t in enumerate(appends)]
    parsed = [core.parse_server_event(d) for d in deltas]
    recv_ns = _per_call_ns(core.parse_server_event, deltas)
    received = np.concatenate([p.samples for p in parsed if isinstance(p, core.AudioDelta)])
    identical = np.array_equal(received, samples)
    print(
        f"  receive  {len(parsed)} audio delta events, {recv_ns / 1000:.2f} µs per event, "
        f"samples {'identical' if identical else 'DIFFERENT'}"
    )

    # float32 <-> int16 is exact at this scale.
    float_ok = np.array_equal(core.f32_to_pcm16(core.pcm16_to_f32(samples)), samples)
    print(f"  float32  int16 -> float32 -> int16 {'exact' if float_ok else 'NOT exact'}")

    # G.711 is lossy: report how lossy.
    ulaw = core.ulaw_decode(core.ulaw_encode(samples))
    alaw = core.alaw_decode(core.alaw_encode(samples))
    print(
        f"  G.711    mu-law SNR {_snr_db(samples, ulaw):.1f} dB, "
        f"A-law SNR {_snr_db(samples, alaw):.1f} dB (1 byte per sample)"
    )

    if output is not None:
        out = {"pcm16": received, "ulaw": ulaw, "alaw": alaw}[codec]
        _write_wav(output, out)
        print(f"  wrote    {output} ({codec} round trip)")

    ok = identical and float_ok
    print("ok" if ok else "FAILED: the round trip changed the audio")
    return 0 if ok else 1
