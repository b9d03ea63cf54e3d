"""Function tools with automatic execution: the model calls, realtalk runs your handler.

Each tool is a JSON schema (what the model sees) and a handler. When the model calls a
tool, the session runs the handler with the call's arguments (an ``async def`` as a trio
task, a plain function in a worker thread), sends its result back, and asks for the next
response once every call of the model's response has answered. A handler's exception is
sent to the model as ``{"error": ...}``; the session goes on. Tools are registered with
``connect(tools=...)``, or later with ``await session.add_tool(schema, handler)``.

Runs against realtalk's embedded server (no API key, no network), with a scripted brain
standing in for the model. ``--remote`` talks to the OpenAI Realtime API instead, with
the key from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import trio

import realtalk
from realtalk.protocol import ResponseDone
from realtalk.server import ScriptedBrain, open_server

# SAMPLE DATA, not a weather service: swap in a real API call.
SAMPLE_WEATHER = {
    "paris": {"temp_c": 18, "sky": "cloudy"},
    "tokyo": {"temp_c": 24, "sky": "clear"},
}

# What the model sees: a name, when to use it, and a JSON Schema of the arguments.
# (A dict in the API's shape, {"type": "function", "name": ...}, works too.)
WEATHER = realtalk.FunctionTool(
    name="get_weather",
    description="Current weather in a city, in degrees Celsius",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
FAHRENHEIT = realtalk.FunctionTool(
    name="celsius_to_fahrenheit",
    description="Convert a temperature from Celsius to Fahrenheit",
    parameters={
        "type": "object",
        "properties": {"celsius": {"type": "number"}},
        "required": ["celsius"],
    },
)


async def get_weather(city: str) -> dict[str, Any]:
    await trio.sleep(0.1)  # an async handler may wait on I/O without delaying audio
    weather = SAMPLE_WEATHER.get(city.lower())
    if weather is None:
        raise LookupError(f"no weather for {city!r}")  # the model is told
    return {"city": city, **weather}  # anything but str is sent as JSON


def celsius_to_fahrenheit(celsius: float) -> str:  # a plain function runs in a thread
    return f"{celsius * 9 / 5 + 32:.1f}"


# What the embedded server's "model" does, one entry per response: call the tools in
# turn, then answer. (A real model decides this from the tool descriptions.)
SCRIPT: list[dict[str, Any]] = [
    {"expect": "weather", "call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
    {"call": {"name": "celsius_to_fahrenheit", "arguments": {"celsius": 18}}},
    {"say": "It is 18 degrees Celsius, 64.4 Fahrenheit, and cloudy in Paris."},
]
# Each tool: (schema, handler). Annotated because mypy cannot join two handler types.
TOOLS: list[tuple[realtalk.FunctionTool, Callable[..., Any]]] = [
    (WEATHER, get_weather),
    (FAHRENHEIT, celsius_to_fahrenheit),
]
CONFIG = realtalk.SessionConfig(instructions="Give temperatures in Celsius and Fahrenheit.")


async def ask(session: realtalk.Session) -> None:
    question = "What's the weather in Paris?"
    print(f"user:      {question}")
    await session.send_text(question)
    async for event in session.events():
        if isinstance(event, realtalk.ToolCallFinished):
            print(f"tool:      {event.name}({event.arguments}) -> {event.output}")
        elif isinstance(event, ResponseDone) and not event.function_calls:
            break  # a response without tool calls is the answer
    # session.conversation holds every item; the last assistant message is the answer
    # (its text, or the transcript of its audio).
    answer = [item for item in session.conversation if item.role == "assistant"][-1]
    print(f"answer:    {answer.text}")


async def main() -> None:
    with trio.fail_after(60):
        if "--remote" in sys.argv[1:]:
            async with realtalk.connect(config=CONFIG, tools=TOOLS) as session:
                await ask(session)
        else:
            async with (
                # A factory: every connection gets a fresh script.
                open_server(brain=lambda: ScriptedBrain(SCRIPT)) as server,
                realtalk.connect(
                    server.url, api_key="local", config=CONFIG, tools=TOOLS
                ) as session,
            ):
                await ask(session)


if __name__ == "__main__":
    trio.run(main)
