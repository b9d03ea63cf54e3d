"""A terminal display for the CLI: lines that scroll, and a live area redrawn below them.

What it owns: :class:`Screen` (permanent lines printed above a small block of live lines
that are redrawn in place with ANSI cursor moves) and the level meter text.

What it must never do: redraw when the output is not a terminal (pipes, files and tests
get the permanent lines only, one per line, nothing overwritten), or let a live line wrap
(each is cut to the terminal width, so the cursor arithmetic stays exact).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from typing import TextIO

import numpy as np
import numpy.typing as npt

#: The meter's range: this many dB below full scale show as an empty bar.
METER_FLOOR_DB = -60.0

_UP = "\x1b[1A"
_CLEAR_TO_END = "\x1b[J"


def level_db(samples: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> float:
    """RMS level of ``samples`` in dB relative to full scale (float ±1.0 or int16 ±32768);
    ``-inf`` for silence or no samples."""
    if samples.size == 0:
        return -math.inf
    x = samples.astype(np.float64, copy=False)
    if samples.dtype == np.int16:
        x = x / 32768.0
    rms = float(np.sqrt(np.mean(np.square(x))))
    return 20.0 * math.log10(rms) if rms > 0.0 else -math.inf


def meter(db: float, width: int = 12) -> str:
    """A level bar ``width`` characters wide plus the level, e.g. ``█████······· -31 dB``."""
    if not math.isfinite(db) or db <= METER_FLOOR_DB:
        return "·" * width + "   -∞ dB"
    filled = round(min(1.0, (db - METER_FLOOR_DB) / -METER_FLOOR_DB) * width)
    return "█" * filled + "·" * (width - filled) + f" {db:4.0f} dB"


class Screen:
    """Permanent lines above a live area of a few lines redrawn in place.

    Args:
        out: where to write (a terminal, or any text stream).
        live: redraw the live area in place; default: whether ``out`` is a terminal.
            Without it :meth:`live` does nothing and :meth:`log` just prints.
    """

    def __init__(self, out: TextIO, *, live: bool | None = None) -> None:
        self.out = out
        self.is_live = out.isatty() if live is None else live
        self._lines: list[str] = []
        self._drawn = 0

    def log(self, text: str) -> None:
        """Print ``text`` (one or more lines) above the live area, which is redrawn."""
        if not self.is_live:
            print(text, file=self.out, flush=True)
            return
        self._erase()
        self.out.write(text + "\n")
        self._draw()

    def live(self, lines: Sequence[str]) -> None:
        """Show ``lines`` as the live area (replacing what was there)."""
        if not self.is_live:
            return
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        self._erase()
        self._lines = [line[:width] for line in lines]
        self._draw()

    def close(self) -> None:
        """Remove the live area, leaving the permanent lines (idempotent)."""
        if self.is_live:
            self._erase()
            self._lines = []
            self.out.flush()

    def _erase(self) -> None:
        if self._drawn:
            self.out.write("\r" + _UP * (self._drawn - 1) + _CLEAR_TO_END)
            self._drawn = 0

    def _draw(self) -> None:
        if self._lines:
            self.out.write("\n".join(self._lines))
            self._drawn = len(self._lines)
        self.out.flush()
