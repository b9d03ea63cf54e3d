"""Push-to-talk: no voice activity detection; the client says when the user's turn ends.

While "the key is held", audio chunks are appended to the server's input buffer; on
release the buffer is committed as a user message and a response is requested. The
spoken question is the WAV bundled with realtalk; ``--mic`` records 3 s from the default
microphone instead (needs PortAudio and an input device).

Runs against realtalk's embedded server (no API key, no network; its default brain plays
your words back). ``--remote`` talks to the OpenAI Realtime API instead, with the key
from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import importlib.resources
import sys
import wave

import numpy as np
import numpy.typing as npt
import trio

import realtalk
from realtalk.core import AudioDelta
from realtalk.protocol import ItemUpdated, ResponseDone
from realtalk.server import open_server

CHUNK_MS = 20  # a microphone delivers audio in small chunks; so do we
MIC_SECONDS = 3.0

# turn_detection=False switches server VAD off: commits and responses are up to us.
CONFIG = realtalk.SessionConfig(turn_detection=False)


async def hold_key_with_wav(session: realtalk.Session) -> None:
    wav = importlib.resources.files("realtalk") / "data" / "question.wav"
    with wav.open("rb") as file, wave.open(file) as reader:
        if reader.getsampwidth() != 2 or reader.getnchannels() != 1:
            raise SystemExit(f"{wav.name}: expected 16-bit mono")
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    chunk = rate * CHUNK_MS // 1000
    # A microphone delivers its chunks in real time; a file can go as fast as the socket.
    for start in range(0, len(samples), chunk):
        # Any rate works: realtalk resamples to the session's input format (24 kHz).
        await session.append_audio(samples[start : start + chunk], sample_rate=rate)
    print(f"sent:       {len(samples) / rate:.2f} s of audio from question.wav")


async def hold_key_with_mic(session: realtalk.Session) -> None:
    from realtalk.audio import Microphone  # PortAudio is only loaded when used

    with Microphone() as mic, trio.move_on_after(MIC_SECONDS):
        print(f"recording {MIC_SECONDS:.0f} s: speak now")
        async for frames in mic.frames():  # float32 chunks at mic.sample_rate
            await session.append_audio(frames, sample_rate=mic.sample_rate)


async def talk(session: realtalk.Session) -> None:
    if "--mic" in sys.argv[1:]:
        await hold_key_with_mic(session)
    else:
        await hold_key_with_wav(session)
    # The key is released: the buffer becomes a user item, and we ask for the answer.
    await session.commit_audio()
    await session.create_response()

    reply: list[npt.NDArray[np.int16]] = []
    print("transcript: ", end="")
    async for event in session.events():
        if isinstance(event, AudioDelta):
            reply.append(event.samples)  # int16, mono, at session.output_sample_rate
        elif isinstance(event, ItemUpdated) and event.kind == "transcript":
            print(event.delta, end="", flush=True)
        elif isinstance(event, ResponseDone):
            break
    # Play it (realtalk.audio.Speaker) or save it (examples/file_in_file_out.py).
    audio = np.concatenate(reply) if reply else np.zeros(0, dtype=np.int16)
    seconds = len(audio) / session.output_sample_rate
    print(f"\nreply:      {seconds:.2f} s of audio in {len(reply)} deltas")


async def main() -> None:
    with trio.fail_after(60):
        if "--remote" in sys.argv[1:]:
            async with realtalk.connect(config=CONFIG) as session:  # OPENAI_API_KEY
                await talk(session)
        else:
            async with (
                open_server() as server,
                realtalk.connect(server.url, api_key="local", config=CONFIG) as session,
            ):
                await talk(session)


if __name__ == "__main__":
    trio.run(main)
