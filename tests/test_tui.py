"""The CLI's terminal display and the measurements behind ``realtalk talk``'s numbers."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from realtalk._talk import _MicClock
from realtalk._tui import Screen, level_db, meter


def test_level_db_of_floats_and_int16() -> None:
    full = np.ones(480, dtype=np.float32)
    assert level_db(full) == pytest.approx(0.0)
    assert level_db(full * 0.1) == pytest.approx(-20.0, abs=1e-4)
    assert level_db(np.full(480, 16384, dtype=np.int16)) == pytest.approx(-6.0206, abs=1e-3)
    assert level_db(np.zeros(10, dtype=np.float32)) == -math.inf
    assert level_db(np.zeros(0, dtype=np.float32)) == -math.inf


def test_meter_is_a_fixed_width_bar() -> None:
    assert meter(0.0, width=10) == "██████████    0 dB"
    assert meter(-30.0, width=10) == "█████·····  -30 dB"
    assert meter(-math.inf, width=10) == "··········   -∞ dB"
    assert meter(-90.0, width=10) == meter(-math.inf, width=10)
    assert len({len(meter(db)) for db in (-math.inf, -59.0, -30.0, -3.0, 0.0)}) == 1


def test_a_screen_that_is_not_a_terminal_prints_lines_and_never_redraws() -> None:
    out = io.StringIO()
    screen = Screen(out)
    assert not screen.is_live
    screen.live(["status"])
    screen.log("one")
    screen.live(["status 2"])
    screen.log("two")
    screen.close()
    assert out.getvalue() == "one\ntwo\n"


def test_a_live_screen_redraws_below_the_permanent_lines() -> None:
    out = io.StringIO()
    screen = Screen(out, live=True)
    screen.live(["a", "b"])
    screen.log("kept")
    screen.live(["c"])
    screen.close()
    # Drawn: a/b; erased (back to column 0, up one line, clear to the end); "kept" printed
    # and a/b redrawn; erased again and replaced by c; c erased at close.
    assert out.getvalue() == (
        "a\nb" + "\r\x1b[1A\x1b[J" + "kept\n" + "a\nb" + "\r\x1b[1A\x1b[J" + "c" + "\r\x1b[J"
    )


def test_live_lines_are_cut_to_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")
    out = io.StringIO()
    screen = Screen(out, live=True)
    screen.live(["x" * 100])
    assert out.getvalue() == "x" * 29


def test_the_mic_clock_maps_session_audio_back_to_capture_time() -> None:
    clock = _MicClock(sample_rate=48000, input_latency_s=0.010)
    # Reads of 480 frames (10 ms) at t = 1.00, 1.01, 1.02 ...
    for n in range(100):
        clock.appended(1.0 + n * 0.01, 480)
    # The sample at 250 ms arrived in the read at t = 1.24 (which ended at 250 ms), and was
    # captured 10 ms of input latency before that.
    assert clock.time_of(250) == pytest.approx(1.24 - 0.010)
    # Mid-chunk: 245 ms is 5 ms before the end of that read.
    assert clock.time_of(245) == pytest.approx(1.24 - 0.005 - 0.010)
    assert clock.time_of(2000) is None  # not captured yet
