"""The README's session example runs as written against a scripted server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio

import scenarios as sc
from peer import PeerConnection, serve

README = Path(__file__).resolve().parent.parent / "README.md"


def session_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## A session", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def tagged(events: list[dict[str, Any]], request: dict[str, Any]) -> list[dict[str, Any]]:
    for event in events:
        if event["type"] in ("response.created", "response.done"):
            event["response"]["metadata"] = request["response"]["metadata"]
    return events


async def script(conn: PeerConnection) -> None:
    await conn.send(sc.session_created("ga")[0])
    update = await conn.recv("session.update")
    assert update["session"]["tools"][0]["name"] == "get_weather"
    session = sc.session_object("ga", instructions=update["session"]["instructions"])
    session["tools"] = update["session"]["tools"]
    session["audio"]["output"]["voice"] = "marin"
    await conn.send(sc.event("ga", "session.updated", session=session))
    await conn.recv("conversation.item.create")
    request = await conn.recv("response.create")
    args = '{"city": "Paris"}'
    for e in tagged(
        sc.function_call_response("ga", "resp_1", "fc_1", "call_1", "get_weather", args), request
    ):
        await conn.send(e)
    output = await conn.recv("conversation.item.create")
    assert json.loads(output["item"]["output"]) == {"city": "Paris", "temp_c": 21}
    request = await conn.recv("response.create")
    answer = sc.audio_response_start("ga", "resp_2", "msg_1")
    answer += sc.audio_deltas("ga", "resp_2", "msg_1", [2400, 2400], ["It's 21 °C", " in Paris."])
    answer += sc.audio_response_end("ga", "resp_2", "msg_1", "It's 21 °C in Paris.")
    for e in tagged(answer, request):
        await conn.send(e)
    await conn.recv("conversation.item.create")
    request = await conn.recv("response.create")
    story = sc.audio_response_start("ga", "resp_3", "msg_2")
    story += sc.audio_deltas("ga", "resp_3", "msg_2", [4800] * 10, ["Once", " upon"])
    for e in tagged(story, request):
        await conn.send(e)
    await conn.recv("response.cancel")
    truncate = await conn.recv("conversation.item.truncate")
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("msg_2", 1200)


async def test_readme_session_example(capsys: pytest.CaptureFixture[str]) -> None:
    code = "\n".join(
        line for line in session_example().splitlines() if not line.startswith("trio.run(")
    )
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    with trio.fail_after(15):
        async with serve(script) as peer:
            await namespace["main"](peer.url, "sk-test")
    out = capsys.readouterr().out
    assert out == "It's 21 °C in Paris.\ntruncate at 1200 ms\n"
    assert peer.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_readme_session_example_against_the_embedded_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from realtalk.server import ScriptedBrain, open_server

    code = "\n".join(
        line for line in session_example().splitlines() if not line.startswith(("trio.run(", "#"))
    )
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    script = [
        {"expect": "weather", "call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"say": "It is 21 degrees in Paris."},
        {"expect": "story", "say": "Once upon a time, a long way from here, there was a sea."},
    ]
    with trio.fail_after(15):
        async with open_server(brain=lambda: ScriptedBrain(script)) as server:
            await namespace["main"](server.url, "any-key")
    assert capsys.readouterr().out == "It is 21 degrees in Paris.\ntruncate at 1200 ms\n"
