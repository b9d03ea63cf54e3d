"""Testing your own agent with pytest and the embedded server: no key, no network.

``ask_agent`` stands for your code: it connects, registers a tool and answers one
question. The tests run it against ``open_server`` with a ``ScriptedBrain`` playing the
model, so each test fixes what the "model" does and checks what the agent does with it:
which tool it ran with which arguments, what it answered, and how it fails when the
server misbehaves (``ServerOptions(faults=...)``).

Run: ``pytest examples/test_my_agent.py`` (needs ``pytest-trio``; the tests are marked
``@pytest.mark.trio``, so no ``trio_mode`` setting is needed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

import realtalk
from realtalk.protocol import ResponseDone
from realtalk.server import Faults, ScriptedBrain, ServerOptions, open_server

# -- the agent under test -------------------------------------------------------------------

SAMPLE_ORDERS = {"A123": "shipped", "B456": "processing"}  # sample data, not a real shop

ORDER_STATUS = {
    "type": "function",
    "name": "order_status",
    "description": "The status of an order, by order id",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}


def order_status(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "status": SAMPLE_ORDERS[order_id]}  # KeyError if unknown


class AgentError(Exception):
    """The agent could not answer."""


@dataclass
class Answer:
    text: str
    audio_ms: int
    tool_calls: list[realtalk.ToolCallFinished] = field(default_factory=list)


async def ask_agent(question: str, *, url: str | None = None, api_key: str | None = None) -> Answer:
    """Ask one question; the answer comes after any tool calls the model makes."""
    config = realtalk.SessionConfig(instructions="You are a shop's helpful assistant.")
    tools = [(ORDER_STATUS, order_status)]
    async with realtalk.connect(url, api_key=api_key, config=config, tools=tools) as session:
        await session.send_text(question)
        calls: list[realtalk.ToolCallFinished] = []
        async for event in session.events():
            if isinstance(event, realtalk.ToolCallFinished):
                calls.append(event)
            elif isinstance(event, ResponseDone) and event.status != "completed":
                details: Any = event.response.get("status_details") or {}
                raise AgentError(f"response {event.status}: {details.get('error')}")
            elif isinstance(event, ResponseDone) and not event.function_calls:
                reply = [item for item in session.conversation if item.role == "assistant"][-1]
                audio_ms = session.statistics().connection.audio_received_ms
                return Answer(reply.text, audio_ms, calls)
    # The event stream ends when the connection does.
    raise AgentError("the connection closed before the answer")


# -- its tests --------------------------------------------------------------------------------


@pytest.mark.trio
async def test_agent_looks_up_the_order_and_speaks_the_answer() -> None:
    brain = ScriptedBrain(
        [
            {"expect": "A123", "call": {"name": "order_status", "arguments": {"order_id": "A123"}}},
            {"say": "Your order A123 has shipped."},
        ]
    )
    with trio.fail_after(10):
        async with open_server(brain=lambda: brain) as server:
            answer = await ask_agent("Where is my order A123?", url=server.url, api_key="test")

    [call] = answer.tool_calls
    assert (call.name, call.arguments, call.error) == ("order_status", {"order_id": "A123"}, None)
    assert json.loads(call.output) == {"order_id": "A123", "status": "shipped"}
    assert answer.text == "Your order A123 has shipped."
    assert answer.audio_ms > 0  # spoken, not just written
    assert brain.remaining == 0


@pytest.mark.trio
async def test_agent_tells_the_model_when_the_tool_fails() -> None:
    brain = ScriptedBrain(
        [
            {"call": {"name": "order_status", "arguments": {"order_id": "Z999"}}},
            {"say": "I can't find order Z999."},
        ]
    )
    with trio.fail_after(10):
        async with open_server(brain=lambda: brain) as server:
            answer = await ask_agent("Where is order Z999?", url=server.url, api_key="test")

    [call] = answer.tool_calls
    assert call.error == "KeyError: 'Z999'"  # sent to the model as {"error": ...}
    assert answer.text == "I can't find order Z999."


@pytest.mark.trio
@pytest.mark.parametrize(
    ("options", "script", "message"),
    [
        # The connection drops in the middle of the answer.
        (ServerOptions(faults=Faults(drop_mid_response=True)), [{"say": "Hi"}], "closed"),
        # The "model" fails (here: its script has no answer), so the response does.
        (ServerOptions(), [], "response failed"),
    ],
)
async def test_agent_reports_server_failures(
    options: ServerOptions, script: list[dict[str, Any]], message: str
) -> None:
    with trio.fail_after(10):
        async with open_server(brain=lambda: ScriptedBrain(script), options=options) as server:
            with pytest.raises(AgentError, match=message):
                await ask_agent("Hello?", url=server.url, api_key="test")
