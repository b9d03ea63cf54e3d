"""The latency bench's shared pieces (realtalk._bench_signal): burst edges found exactly,
whatever the chunking, and the GIL pressure spec parser."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtalk._bench_signal import (
    EdgeDetector,
    _hold_document,
    parse_gil_spec,
    start_gil_pressure,
)

RATE = 48000
QUIET = 4800  # 100 ms at 48 kHz


def signal(length: int, bursts: list[tuple[int, int]], level: float = 0.3) -> np.ndarray:
    """Zeros with loud noise (|x| > 0.05 everywhere) on each [start, end)."""
    rng = np.random.default_rng(1)
    x = np.zeros(length, dtype=np.float32)
    for start, end in bursts:
        n = end - start
        x[start:end] = rng.choice([-1.0, 1.0], n) * rng.uniform(0.06, level, n)
    return x


def feed(x: np.ndarray, chunks: list[int]) -> list[tuple[str, int]]:
    detector = EdgeDetector(RATE)
    edges: list[tuple[str, int]] = []
    start = 0
    for n in [*chunks, len(x)]:
        end = min(len(x), start + n)
        edges += detector.feed(start, x[start:end])
        start = end
        if start == len(x):
            break
    return edges


def test_rises_and_falls_exact() -> None:
    x = signal(60000, [(10000, 20000), (30000, 40000)])
    edges = feed(x, [len(x)])
    assert edges == [("rise", 10000), ("fall", 19999), ("rise", 30000), ("fall", 39999)]


def test_threshold_is_strict_and_symmetric() -> None:
    x = np.zeros(20000, dtype=np.float32)
    x[5000] = 0.05  # not above
    x[6000] = -0.06  # above
    assert EdgeDetector(RATE).feed(0, x) == [("rise", 6000), ("fall", 6000)]


def test_burst_at_start_and_unfinished_fall() -> None:
    # A loud first sample is a rise; a fall needs 100 ms of quiet after it to be known.
    x = signal(12000, [(0, 5000), (10000, 12000)])
    assert feed(x, [len(x)]) == [("rise", 0), ("fall", 4999), ("rise", 10000)]
    # Exactly 100 ms of quiet after the last loud sample completes the fall.
    x = signal(5000 + QUIET, [(0, 5000)])
    assert feed(x, [len(x)]) == [("rise", 0), ("fall", 4999)]
    assert feed(x[:-1], [len(x)]) == [("rise", 0)]


def test_short_gaps_do_not_split() -> None:
    # Gaps of 4799 quiet samples (just under 100 ms) join; 4800 split.
    x = signal(40000, [(1000, 2000), (2000 + QUIET - 1, 9000), (9000 + QUIET, 15000)])
    expected = [("rise", 1000), ("fall", 8999), ("rise", 9000 + QUIET), ("fall", 14999)]
    assert feed(x, [len(x)]) == expected
    assert feed(x, [256] * 200) == expected


def test_chunk_boundaries() -> None:
    x = signal(50000, [(4800, 9600), (20000, 20001), (30000, 35000)])
    expected = feed(x, [len(x)])
    assert expected == [
        ("rise", 4800),
        ("fall", 9599),
        ("rise", 20000),
        ("fall", 20000),
        ("rise", 30000),
        ("fall", 34999),
    ]
    for cut in (4799, 4800, 4801, 9599, 9600, 9600 + QUIET - 1, 20000, 20001, 24800, 24801):
        assert feed(x, [cut]) == expected, cut
    assert feed(x, [1] * 50000) == expected
    assert feed(x, [256] * 196) == expected


def reference_edges(x: np.ndarray) -> list[tuple[str, int]]:
    """The definition, sample by sample."""
    loud = [i for i, v in enumerate(x) if abs(v) > 0.05]
    edges: list[tuple[str, int]] = []
    for k, i in enumerate(loud):
        if k == 0 or i - loud[k - 1] - 1 >= QUIET:
            edges.append(("rise", i))
        after = loud[k + 1] if k + 1 < len(loud) else len(x)
        if after - i - 1 >= QUIET:
            edges.append(("fall", i))
    return edges


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 7000), min_size=1, max_size=8),
    chunks=st.lists(st.integers(1, 9000), min_size=1, max_size=30),
)
def test_matches_definition_for_any_chunking(gaps: list[int], chunks: list[int]) -> None:
    bursts, pos = [], 0
    for k, gap in enumerate(gaps):
        pos += gap
        if k % 2 == 0:
            bursts.append((pos, pos + gap // 3 + 1))
            pos += gap // 3 + 1
    x = signal(pos + 6000, bursts)
    expected = reference_edges(x)
    assert feed(x, [len(x)]) == expected
    assert feed(x, chunks) == expected


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("none", ("none", None)), ("busy", ("busy", None)), ("hold:20", ("hold", 20.0))],
)
def test_gil_spec(spec: str, parsed: tuple[str, float | None]) -> None:
    assert parse_gil_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec", ["", "None", "hold", "hold:", "hold:0", "hold:-5", "hold:x", "hold:nan", "busy:3"]
)
def test_gil_spec_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match="GIL pressure"):
        parse_gil_spec(spec)
    with pytest.raises(ValueError, match="GIL pressure"):
        start_gil_pressure(spec)


def test_gil_none_starts_nothing() -> None:
    before = threading.active_count()
    assert start_gil_pressure("none") is None
    assert threading.active_count() == before


def test_gil_hold_calibrated() -> None:
    # The sizing only: a started hold thread would slow every later test in this process.
    document, measured = _hold_document(5.0)
    assert 3 < measured < 8
    start = time.perf_counter()
    json.loads(document)
    assert 1 < (time.perf_counter() - start) * 1000 < 50
