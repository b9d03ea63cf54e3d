"""Ctrl-C and SIGTERM in the command-line tools: a cancellation in order, not a
``KeyboardInterrupt`` raised in whichever task runs (realtalk._signals)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

# A task that must be unwound (its finally runs) and a "server" task that, like a
# connection handler, turns any exception into something else: under trio's default a
# KeyboardInterrupt can land there.
SCRIPT = """
import sys, trio
from realtalk._signals import Interrupted, until_signalled

async def main():
    async def server():
        while True:
            try:
                await trio.sleep(0)
                sum(range(2000))
            except Exception:
                print("server swallowed", flush=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        try:
            print("ready", flush=True)
            await trio.sleep_forever()
        finally:
            print("unwound", flush=True)

try:
    trio.run(until_signalled, main)
except Interrupted:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_unwinds_every_task_then_raises_interrupted(signum: int) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert out.splitlines() == ["unwound", "interrupted"]


def test_without_a_signal_the_result_comes_back() -> None:
    import trio

    from realtalk._signals import until_signalled

    async def answer() -> int:
        await trio.sleep(0)
        return 42

    assert trio.run(until_signalled, answer) == 42


def test_an_error_without_a_signal_is_not_mistaken_for_one() -> None:
    import trio

    from realtalk._signals import until_signalled

    async def fail() -> None:
        raise ValueError("boom")

    # As itself: not Interrupted, and not wrapped in a group by the signal watcher's nursery.
    with pytest.raises(ValueError, match="boom"):
        trio.run(until_signalled, fail)
