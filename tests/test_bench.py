"""realtalk bench's arithmetic (realtalk._bench.analyse) on a made-up run whose every
answer is known, and its plan; the bench itself runs over JACK in the test command."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from realtalk._bench import (
    INPUT_LIBRARY,
    INPUT_TOTAL,
    OUTPUT_LIBRARY,
    OUTPUT_TOTAL,
    Run,
    Step,
    analyse,
    make_plan,
    table,
)
from realtalk.server import Observation

MS = 1_000_000
PERIOD_NS = 256 * 1_000_000_000 / 48000  # 5.333 ms
T_START = 10_000 * MS


def observation(t_ns: float, direction: str, **event: object) -> Observation:
    return Observation(int(t_ns), direction, dict(event), 1)  # type: ignore[arg-type]


def made_up_run() -> tuple[Run, dict[str, float]]:
    """One question (its last loud sample: capture frame 40000) and one answer, cut by
    interrupt() after 300 ms; with the times each stage should measure."""
    expected: dict[str, float] = {}
    # Capture: 256-frame callbacks; PaTime = monotonic seconds, ADC one period back.
    capture = []
    for i in range(400):
        entry = T_START + i * PERIOD_NS
        capture.append([i * 256, 256, int(entry), entry / 1e9, (entry - PERIOD_NS) / 1e9])
    k, row = 40000, 40000 // 256
    adc_k = T_START + row * PERIOD_NS - PERIOD_NS + (k - row * 256) * 1e9 / 48000
    # The server's audio (24 kHz, 128-sample appends): loud up to sample 20000 = k / 2.
    audio = np.zeros(30000, dtype=np.int16)
    audio[5000:20001] = 10000
    observations = []
    appends = []
    for n, start in enumerate(range(0, len(audio), 128)):
        arrival = T_START + n * PERIOD_NS + 1 * MS  # 1 ms after the callback of its block
        pcm = audio[start : start + 128].astype("<i2").tobytes()
        observations.append(
            observation(
                arrival,
                "in",
                type="input_audio_buffer.append",
                audio=base64.b64encode(pcm).decode(),
            )
        )
        appends.append([int(arrival - 0.25 * MS), start + 128])  # handed 0.25 ms earlier
    expected[INPUT_TOTAL] = (T_START + row * PERIOD_NS + 1 * MS - adc_k) / MS
    expected["input: device (ADC → callback)"] = (T_START + row * PERIOD_NS - adc_k) / MS
    expected[INPUT_LIBRARY] = 0.75
    # The answer: its first delta leaves at t0; the player has it 0.6 ms later.
    t0 = T_START + 3000 * MS
    observations.append(
        observation(
            t0, "out", type="response.output_audio.delta", response_id="resp_1", item_id="item_1"
        )
    )
    playback = []
    dac_offset = 10.667 * MS
    # Callbacks from 2 ms after t0: audio from frame 106 of the first (the resampler),
    # full buffers, then the end of the cut in the last one: 14400 frames = 7200 samples.
    spans = [(106, 150)] + [(0, 256)] * 55 + [(0, 170)] + [(256, 0)] * 5
    for i, (first, audible) in enumerate(spans):
        entry = t0 + 2 * MS + i * PERIOD_NS
        playback.append(
            [i * 256, 256, first, audible, int(entry), entry / 1e9, (entry + dac_offset) / 1e9]
        )
    last_entry = t0 + 2 * MS + 56 * PERIOD_NS
    call = last_entry - 3 * MS
    expected[OUTPUT_TOTAL] = (2 * MS + dac_offset + 106 * 1e9 / 48000) / MS
    expected[OUTPUT_LIBRARY] = 0.1
    expected["output: client (sent → in the player)"] = 0.6
    expected["barge-in: client (interrupt() → audio stops in the stream)"] = (
        3 * MS + 170 * 1e9 / 48000
    ) / MS
    expected["barge-in: interrupt() → silent at DAC"] = (
        3 * MS + dac_offset + 170 * 1e9 / 48000
    ) / MS
    observations.append(
        observation(
            call + 1 * MS,
            "in",
            type="conversation.item.truncate",
            item_id="item_1",
            audio_end_ms=300,
        )
    )
    expected["truncation error (24 kHz samples)"] = 0.0
    log = {
        "capture": {
            "callbacks": capture,
            "edges": [["rise", 10000], ["fall", k]],
            "appends": appends,
        },
        "playback": {"callbacks": playback},
        "responses": [
            {
                "response_id": "resp_1",
                "item_id": "item_1",
                "first_delta_received_ns": int(t0 + 0.5 * MS),
                "first_push_ns": int(t0 + 0.6 * MS),
                "speech_started_ns": None,
                "interrupt_call_ns": int(call),
                "truncate_audio_end_ms": 300,
            }
        ],
        "output_resampler_delay_src": 0.0,
        "underruns": 0,
    }
    run = Run("realtalk", "none", log=log, observations=observations, utterances=["question"])
    return run, expected


def test_every_stage_is_measured_from_the_right_timestamps() -> None:
    run, expected = made_up_run()
    analyse(run, [Step("local", 300)])
    for metric, value in expected.items():
        assert run.metrics[metric] == [pytest.approx(value, abs=1e-3)], metric
    # The answer's audio: 14400 device frames = 7200 samples = the 300 ms truncated.
    assert run.metrics["output: resampler (offset in the first buffer)"] == [
        pytest.approx(106 / 48)
    ]
    assert run.metrics["output callback lateness"] == [pytest.approx(0, abs=1e-3)] * 61
    assert "0.75" in "\n".join(table([run]))


def test_a_cut_one_sample_short_is_one_sample_of_error() -> None:
    run, _ = made_up_run()
    run.log["playback"]["callbacks"][56][3] = 172  # two more frames = one more sample
    analyse(run, [Step("local", 300)])
    assert run.metrics["truncation error (24 kHz samples)"] == [pytest.approx(-1.0)]


def test_the_plan_cycles_through_the_three_kinds_and_ends_on_an_answer() -> None:
    plan = make_plan(9)
    assert [s.kind for s in plan] == ["full", "local", "vad"] * 2 + ["full", "local", "full"]
    assert all(250 <= (s.after_ms or 0) <= 700 for s in plan if s.kind != "full")
    assert make_plan(9) == plan  # seeded
