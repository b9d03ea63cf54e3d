"""The soak in short: benches/soak.py's simulated conversation for 5 simulated minutes, and
100 concurrent sessions of two turns, against the embedded server in this process.

Every balance the soak checks must hold (responses, interrupt echoes, appended vs
committed audio, errors, the session's bookkeeping) and RSS must stay within a generous
bound; the full hour is ``make soak``. A brain that fails every response shows that the
checks are not vacuous.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import trio

from realtalk.server import BrainError, Turn


def _load_soak() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "benches" / "soak.py"
    spec = importlib.util.spec_from_file_location("realtalk_soak", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


soak = _load_soak()


@pytest.fixture(scope="module")
def clips() -> list[object]:
    return soak.load_clips()  # type: ignore[no-any-return]


async def test_five_simulated_minutes(clips: list[object]) -> None:
    with trio.fail_after(60):
        async with soak.open_target("inproc", 3600) as target:
            result = await soak.soak(target, clips, simulated_s=300, rss_bound_mb=60)
    assert result.problems() == []
    c = result.conversation.counters
    assert result.conversation.sim_s >= 300
    # Every kind of turn and every interrupt action happened, and all balanced.
    assert set(c.turns) == {"audio", "text", "tool", "oob"}
    assert set(c.interrupts) == {"truncate", "delete", "nothing"}
    assert c.echoes_matched == c.interrupts["truncate"] + c.interrupts["delete"] > 0
    conv = result.conversation
    # The server holds VAD's spans (the silence around them dropped): the client counts
    # the same, sample for sample.
    assert conv.appended_samples > conv.committed_samples == conv.counted_samples > 0
    assert result.conversation.counters.statuses["cancelled"] > 0


async def test_hundred_sessions(clips: list[object]) -> None:
    with trio.fail_after(120):
        async with soak.open_target("inproc", 3600) as target:
            many = await soak.sessions(target, clips, count=100, turns=2)
    assert many.problems() == []
    assert len(many.ok()) == 100
    assert sum(r.counters.responses_done for r in many.ok()) == 200
    assert all(r.ttfa_s.get("audio") and r.ttfa_s.get("text") for r in many.ok())


class FailingBrain:
    def respond(self, turn: Turn) -> list[object]:
        raise BrainError("no answer today")


async def test_the_balances_catch_a_broken_server(clips: list[object]) -> None:
    with trio.fail_after(30):
        async with soak.open_server(brain=FailingBrain) as server:
            target = soak.Target(server.url, None)
            result = await soak.converse(target.url, clips, seed=3, simulated_s=60, turns=2)
    problems = "\n".join(result.problems)
    assert "failed responses: 2 != 0" in problems
    assert "conversation holds" in problems  # no assistant items
