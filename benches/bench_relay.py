"""What a relay adds to a turn: round trips of one 20 ms append and one 20 ms audio delta.

Owns: a minimal upstream (answers each append at once with a 20 ms audio delta), a raw
WebSocket client, and the same round trip timed directly and through ``open_relay`` (as
configured by default, and holding instructions and tools, which makes it inspect every
upstream event). Client, relay and upstream share one trio loop on 127.0.0.1, so the
figures include the relay's CPU per message and its extra loopback hop, and no network.

Rules: every delta is checked (it must be the one the upstream sent, byte for byte)
before anything is timed; a mismatch exits 1. Timing never fails a run.

    python benches/bench_relay.py              # 2,000 round trips per path
    python benches/bench_relay.py --rounds 200 # quicker
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_websocket

from realtalk.relay import RelayAuth, RelayLimits, RelayPolicy, Upstream, open_relay

TOKEN = "bench-token-0123456789"
APPEND = json.dumps(
    {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(960)).decode()},
    separators=(",", ":"),
)
DELTA = json.dumps(
    {
        "type": "response.output_audio.delta",
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(bytes(range(256)) * 3 + bytes(192)).decode(),
    },
    separators=(",", ":"),
)


async def _upstream_handler(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    created = {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    await ws.send_message(json.dumps(created))
    try:
        while True:
            message = await ws.get_message()
            if isinstance(message, str) and '"session.update"' in message:
                event = json.loads(message)
                await ws.send_message(
                    json.dumps({"type": "session.updated", "session": event["session"]})
                )
            else:
                await ws.send_message(DELTA)
    except trio_websocket.ConnectionClosed:
        pass


@asynccontextmanager
async def open_upstream() -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            trio_websocket.serve_websocket, _upstream_handler, "127.0.0.1", 0, None
        )
        yield f"ws://127.0.0.1:{server.port}/v1/realtime"
        nursery.cancel_scope.cancel()


async def round_trips(url: str, rounds: int, headers: list[tuple[bytes, bytes]]) -> list[float]:
    """Seconds from sending an append to receiving the delta it caused, per round."""
    times: list[float] = []
    async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
        created = json.loads(await ws.get_message())
        assert created["type"] == "session.created", created
        for i in range(rounds + 50):
            start = time.perf_counter()
            await ws.send_message(APPEND)
            reply = await ws.get_message()
            elapsed = time.perf_counter() - start
            if reply != DELTA:
                print(f"wrong reply: {str(reply)[:80]}", file=sys.stderr)
                sys.exit(1)
            if i >= 50:  # warm-up rounds are not kept
                times.append(elapsed)
    return times


def _row(name: str, times: list[float], base: list[float] | None) -> str:
    median = statistics.median(times) * 1e6
    p99 = sorted(times)[int(len(times) * 0.99)] * 1e6
    added = "" if base is None else f"{median - statistics.median(base) * 1e6:+9.1f}"
    return f"{name:<34} {median:9.1f} {p99:9.1f} {added:>9}"


async def main(rounds: int) -> None:
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    holding = RelayPolicy(instructions="Be brief.", tools=[(weather, lambda: "sunny")])
    auth = [(b"authorization", f"Bearer {TOKEN}".encode())]
    # Round trips run back to back, far above a microphone's 50 appends a second.
    limits = RelayLimits(max_messages_per_s=1e9, burst=10**9)
    gc.disable()
    async with open_upstream() as url:
        upstream = Upstream(url=url, api_key="upstream-key")
        direct = await round_trips(url, rounds, [])
        async with open_relay(
            upstream=upstream, auth=RelayAuth(token=TOKEN), limits=limits
        ) as relay:
            plain = await round_trips(relay.url, rounds, auth)
        async with open_relay(
            upstream=upstream, auth=RelayAuth(token=TOKEN), policy=holding, limits=limits
        ) as relay:
            inspecting = await round_trips(relay.url, rounds, auth)
    gc.enable()
    print(f"{rounds} round trips per path: one 20 ms append up, one 20 ms audio delta down")
    print(f"{'path':<34} {'median µs':>9} {'p99 µs':>9} {'added µs':>9}")
    print(_row("direct", direct, None))
    print(_row("relay (default policy)", plain, direct))
    print(_row("relay (holds instructions, tools)", inspecting, direct))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    trio.run(main, parser.parse_args().rounds)
