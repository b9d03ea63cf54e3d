"""What the benchmarks share: optional peers, a speech-like test signal, interleaved
timing with gc off, and the tables. Each bench keeps its own cases, checks and goals."""

from __future__ import annotations

import gc
import importlib
import time
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


def optional(name: str) -> tuple[Any, str]:
    """The module, or None and why it is missing (its contenders are then skipped)."""
    try:
        with warnings.catch_warnings():
            # audioop warns on import (deprecated in 3.11, removed in 3.13).
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(name), ""
    except ImportError as exc:
        return None, f"{name} is not installed ({exc})"


def speech_like(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A voiced, syllable-modulated float64 signal in about [-0.9, 0.9] (fixed seed).

    A gliding 100-150 Hz pitch with 25 harmonics shaped by three formants, a 4 Hz syllable
    envelope and a little noise: busy enough that codecs and filters see varied data.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0 = 125.0 + 25.0 * np.sin(2 * np.pi * 0.8 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    k = np.arange(1, 26)
    freqs = f0[:, None] * k[None, :]
    weight = sum(np.exp(-(((freqs - formant) / 180.0) ** 2)) for formant in (500, 1500, 2500))
    voiced = ((weight + 0.05) / k * np.sin(phase[:, None] * k)).sum(axis=1)
    syllables = (0.5 - 0.5 * np.cos(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi))) ** 1.5
    x = syllables * voiced + 0.02 * rng.standard_normal(n)
    return 0.9 * x / np.max(np.abs(x))


@dataclass(frozen=True)
class Profile:
    rounds: int  # round robin passes over the contenders
    round_s: float  # time per contender per round (at least min_batches batches)
    max_batches: int  # per contender per round
    min_batches: int
    warmup_s: float


class Timeable(Protocol):
    status: str  # only "ok" contenders are timed
    per_call_ns: list[float]

    def timed(self, batch: list[Any]) -> int: ...


def _run_batches(
    c: Timeable, batch: list[Any], seconds: float, lo: int, hi: int, keep: bool
) -> None:
    deadline = time.perf_counter_ns() + int(seconds * 1e9)
    done = 0
    while done < hi and (done < lo or time.perf_counter_ns() < deadline):
        elapsed = c.timed(batch)
        if keep:
            c.per_call_ns.append(elapsed / len(batch))
        done += 1


def time_contenders(contenders: list[Any], batch: list[Any], profile: Profile) -> None:
    """Round robin over the contenders, so noise on the machine hits all of them alike."""
    live = [c for c in contenders if c.status == "ok"]
    if not live:
        return
    gc.collect()
    gc.disable()
    try:
        for c in live:
            _run_batches(c, batch, profile.warmup_s, 1, 1_000_000, keep=False)
        for round_no in range(profile.rounds):
            shift = round_no % len(live)
            for c in live[shift:] + live[:shift]:
                _run_batches(
                    c, batch, profile.round_s, profile.min_batches, profile.max_batches, True
                )
            gc.enable()
            gc.collect()
            gc.disable()
    finally:
        gc.enable()


def print_table(title: str, header: list[str], body: list[list[str]], markdown: bool) -> None:
    """A table with the first column left-aligned; a row shorter than the header is a
    contender that was not measured: its name and why."""
    if markdown:
        print(f"\n#### {title}\n")
        print("| " + " | ".join(header) + " |")
        print("|---|" + "---:|" * (len(header) - 1))
        for row in body:
            cells = row + [""] * (len(header) - len(row))
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        return
    print(f"\n{title}")
    widths = [
        max(len(r[i]) for r in [header, *body] if len(r) == len(header)) for i in range(len(header))
    ]
    print(
        "  "
        + "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for row in body:
        if len(row) != len(header):
            print(f"  {row[0].ljust(widths[0])}  {row[1]}")
            continue
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
