"""A text chat: send a few messages and stream each answer as it arrives.

Runs against realtalk's embedded server (no API key, no network; its default brain
echoes: "You said: ..."). ``python examples/text_chat.py --remote`` talks to the OpenAI
Realtime API instead, with the key from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import sys

import trio

import realtalk
from realtalk.protocol import ErrorEvent, ItemUpdated, ResponseDone
from realtalk.server import open_server

QUESTIONS = [
    "Hello! Who are you?",
    "What is the capital of France?",
    "Thanks, that's all.",
]

# Text out only: the answers come as text deltas, no audio is generated.
CONFIG = realtalk.SessionConfig(instructions="Be brief.", output_modalities=("text",))


async def chat(session: realtalk.Session) -> None:
    events = session.events()
    for question in QUESTIONS:
        print(f"user:      {question}")
        await session.send_text(question)  # adds the message and asks for a response
        print("assistant: ", end="", flush=True)
        # The session's events are one ordered stream; read it until this turn is done.
        async for event in events:
            # "text" deltas in a text session, "transcript" deltas when audio is spoken.
            if isinstance(event, ItemUpdated) and event.kind in ("text", "transcript"):
                print(event.delta, end="", flush=True)
            elif isinstance(event, ErrorEvent):
                # Server errors are events, not exceptions: the session goes on.
                print(f"\n[server error: {event.message}]", end="")
            elif isinstance(event, ResponseDone):
                print(f"\n           ({event.status})")
                break

    stats = session.statistics().connection
    print(f"{stats.responses_done} responses, {stats.events_received} server events")


async def main() -> None:
    # Callers own timeouts in realtalk: nothing here waits forever.
    with trio.fail_after(60):
        if "--remote" in sys.argv[1:]:
            async with realtalk.connect(config=CONFIG) as session:  # OPENAI_API_KEY
                await chat(session)
        else:
            async with (
                open_server() as server,
                realtalk.connect(server.url, api_key="local", config=CONFIG) as session,
            ):
                await chat(session)


if __name__ == "__main__":
    trio.run(main)
