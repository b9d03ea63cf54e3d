"""Shared pieces of the latency bench's two clients (realtalk and the reference pipeline).

What it owns: finding the edges of bursts in a captured signal (:class:`EdgeDetector`) and
the GIL pressure thread (:func:`start_gil_pressure`), so that both clients measure and
are loaded the same way. It must never depend on the audio devices or the session layer.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import threading
import time
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Edge = tuple[Literal["rise", "fall"], int]


class EdgeDetector:
    """Rises and falls of bursts in a stream of samples, fed chunk by chunk.

    A sample is *loud* when its magnitude is above ``threshold`` (full scale 1.0). A rise
    is the index of a loud sample preceded by at least ``quiet_ms`` of quiet samples (or
    the first loud sample of the stream); a fall is the index of the last loud sample
    before at least ``quiet_ms`` of quiet ones, reported once that much quiet has been
    seen (a burst still loud, or not yet followed by enough quiet, has no fall yet).
    Indices are absolute: ``first_frame`` is the index of ``samples[0]`` in the stream;
    frames skipped between chunks count as quiet.
    """

    def __init__(self, rate: int, threshold: float = 0.05, quiet_ms: float = 100) -> None:
        if rate <= 0 or threshold < 0 or quiet_ms <= 0:
            raise ValueError("rate and quiet_ms must be positive, threshold non-negative")
        self.threshold = threshold
        self.quiet = max(1, round(rate * quiet_ms / 1000))
        self._last_loud: int | None = None  # index of the last loud sample seen
        self._fall_pending = False  # a burst is open: its fall is not reported yet

    def feed(self, first_frame: int, samples: npt.NDArray[np.floating]) -> list[Edge]:
        """The edges that this chunk completes, in stream order."""
        edges: list[Edge] = []
        loud = np.flatnonzero(np.abs(samples) > self.threshold)
        last = self._last_loud
        if len(loud):
            loud = loud + first_frame
            previous = np.empty(len(loud), dtype=loud.dtype)
            previous[1:] = loud[:-1]
            previous[0] = -self.quiet - 1 if last is None else last
            # A gap of at least `quiet` quiet samples between two loud ones splits bursts.
            for i in np.flatnonzero(loud - previous - 1 >= self.quiet).tolist():
                if i > 0 or (last is not None and self._fall_pending):
                    edges.append(("fall", int(previous[i])))
                edges.append(("rise", int(loud[i])))
            self._last_loud = int(loud[-1])
            self._fall_pending = True
        end = first_frame + len(samples)  # index just past this chunk
        last = self._last_loud
        if self._fall_pending and last is not None and end - last - 1 >= self.quiet:
            edges.append(("fall", last))
            self._fall_pending = False
        return edges


def parse_gil_spec(spec: str) -> tuple[Literal["none", "busy", "hold"], float | None]:
    """``"none"``, ``"busy"`` or ``"hold:MS"`` (MS > 0, at most 10 s) as (kind, ms);
    anything else raises ``ValueError``."""
    if spec == "none":
        return "none", None
    if spec == "busy":
        return "busy", None
    kind, sep, value = spec.partition(":")
    if kind == "hold" and sep:
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and 0 < ms <= 10_000:
            return "hold", ms
    raise ValueError(
        f"GIL pressure must be 'none', 'busy' or 'hold:MS' (0 < MS <= 10000): {spec!r}"
    )


def _timed_loads(document: str) -> float:
    start = time.perf_counter()
    json.loads(document)  # the parsed list is freed before the clock is read again
    return time.perf_counter() - start


def _hold_document(ms: float) -> tuple[str, float]:
    """A JSON text whose ``json.loads`` (a C call that keeps the GIL) takes about ``ms``,
    and the median measured duration in ms."""
    n = 10_000
    for _ in range(8):
        document = "[" + ",".join(["1.25"] * n) + "]"
        measured = sorted(_timed_loads(document) for _ in range(5))[2] * 1000
        if abs(measured - ms) <= 0.05 * ms:
            break
        n = max(100, round(n * ms / max(measured, 1e-3)))
    return document, measured


def start_gil_pressure(spec: str) -> float | None:
    """Start the GIL pressure ``spec`` names in a daemon thread and return, for
    ``hold:MS``, the measured duration of one hold in ms (else None).

    ``none``: no thread. ``busy``: a pure-Python loop forever (it gives the GIL up at every
    switch interval). ``hold:MS``: ``json.loads`` of a document sized once here so that a
    call keeps the GIL about MS ms, then a 1 ms sleep, forever.
    """
    kind, ms = parse_gil_spec(spec)
    if kind == "none":
        return None
    if kind == "busy":
        threading.Thread(target=_busy, name="gil-busy", daemon=True).start()
        return None
    assert ms is not None
    document, measured = _hold_document(ms)
    threading.Thread(target=_hold, args=(document,), name="gil-hold", daemon=True).start()
    return measured


def _busy() -> None:
    n = 0
    while True:
        n += 1


def _hold(document: str) -> None:
    while True:
        json.loads(document)
        time.sleep(0.001)


def apply_audio_env() -> None:
    """Export the variables of ``$AUDIO_DIR/env.sh`` (default ``/tmp/realtalk-audio``,
    written by ``scripts/audio_up.sh``) that are not set yet. Must run before PortAudio
    initialises: libjack and ALSA's pulse plugin read them when devices are scanned."""
    env_file = Path(os.environ.get("AUDIO_DIR", "/tmp/realtalk-audio")) / "env.sh"
    if not env_file.is_file():
        return
    for line in env_file.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            os.environ.setdefault(name, value)
