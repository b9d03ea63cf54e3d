"""File in, file out: send a spoken question from a WAV file, write the spoken answer to one.

Usage: ``python examples/file_in_file_out.py [--remote] [IN.wav [OUT.wav]]``

It runs against realtalk's embedded server (no API key, no network; its default brain
answers audio by playing it back). ``--remote`` talks to the OpenAI Realtime API instead,
with the key from ``OPENAI_API_KEY``. IN.wav may be any PCM (8 to 32-bit)
or float WAV at any rate with any number of channels; the default is the question bundled
with realtalk. The answer goes to OUT.wav (default: answer.wav).
"""

from __future__ import annotations

import sys
from importlib import resources

import numpy as np
import trio

import realtalk
from realtalk.audio import WavAudio, read_wav, write_wav
from realtalk.core import AudioDelta
from realtalk.protocol import AudioTranscriptDelta, ResponseDone
from realtalk.server import open_server

# turn_detection=False is push-to-talk: we say when the question ends, not server VAD.
CONFIG = realtalk.SessionConfig(turn_detection=False)


async def ask(url: str | None, key: str | None, question: WavAudio, answer: str) -> None:
    async with realtalk.connect(url, api_key=key, config=CONFIG) as session:
        # 100 ms per append, channels averaged; realtalk resamples to the session's 24 kHz.
        mono, rate = question.mono(), question.sample_rate
        for start in range(0, question.frames, rate // 10):
            await session.append_audio(mono[start : start + rate // 10], sample_rate=rate)
        await session.commit_audio()  # the buffer becomes the user's message
        await session.create_response()

        reply: list[np.ndarray] = []
        transcript = ""
        async for event in session.events():
            if isinstance(event, AudioDelta):
                reply.append(event.samples)  # int16, mono, at session.output_sample_rate
            elif isinstance(event, AudioTranscriptDelta):
                transcript += event.delta
            elif isinstance(event, ResponseDone):
                break
        samples = np.concatenate(reply) if reply else np.zeros(0, np.int16)
        write_wav(answer, samples, session.output_sample_rate)
    print(f"answer:     {len(samples) / session.output_sample_rate:.2f} s written to {answer}")
    print(f"transcript: {transcript}")


async def main(remote: bool, path: str | None, answer: str) -> None:
    bundled = resources.files("realtalk") / "data" / "question.wav"
    with resources.as_file(bundled) as default:
        question = read_wav(path or default)  # float32 (frames, channels), any format
    print(f"question:   {question.duration_s:.2f} s, {question.format}, {question.sample_rate} Hz")
    with trio.fail_after(60):  # callers own timeouts
        if remote:
            await ask(None, None, question, answer)  # the OpenAI API, with OPENAI_API_KEY
        else:
            async with open_server() as server:  # the embedded server, on 127.0.0.1
                await ask(server.url, "any-key-will-do", question, answer)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--remote"]
    path, answer = [*args, None, None][:2]
    trio.run(main, "--remote" in sys.argv[1:], path, answer or "answer.wav")
