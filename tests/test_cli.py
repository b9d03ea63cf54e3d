"""The command line as a user runs it: ``realtalk demo`` and ``realtalk serve``, as
subprocesses (offline: no key in their environment)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import wave
from pathlib import Path

import trio

import realtalk
from realtalk.protocol import ResponseDone

CLI = [sys.executable, "-m", "realtalk"]


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "OPENAI" not in k and "AZURE" not in k}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_demo_runs_offline_and_writes_the_reply(tmp_path: Path) -> None:
    reply = tmp_path / "reply.wav"
    done = subprocess.run(
        [*CLI, "demo", "-o", str(reply)],
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "embedded server at ws://127.0.0.1:" in out
    for step in ("speech_started", "speech_stopped", "committed", "first audio delta"):
        assert step in out
    assert "response.done (completed" in out
    assert "latency:    end of speech -> first audio delta" in out
    # Played where an output device exists (the test servers' PulseAudio), else skipped.
    assert "playback:   played on " in out or "playback:   skipped (" in out
    with wave.open(str(reply), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.getnframes() > 24000  # the question played back: over a second


def test_demo_reports_a_bad_wav_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    done = subprocess.run(
        [*CLI, "demo", str(bad), "-o", str(tmp_path / "r.wav")],
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "cannot read" in done.stderr
    assert "Traceback" not in done.stderr


async def test_serve_answers_a_client_and_stops_on_ctrl_c() -> None:
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            [*CLI, "serve", "--port", "0"],
            env=offline_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        buffer = b""
        while b"listening on " not in buffer or not buffer.endswith(b"\n"):
            buffer += await proc.stdout.receive_some(4096)
        url = buffer.decode().split("listening on ", 1)[1].split()[0]
        async with realtalk.connect(url, api_key="k") as session:
            await session.send_text("hello")
            async for event in session.events():
                if isinstance(event, ResponseDone):
                    break
            assert session.conversation.items[-1].text == "You said: hello"
        proc.send_signal(signal.SIGINT)
        assert await proc.wait() == 0
        log = buffer + await proc.stdout.receive_some(65536)
        assert b"<- conversation.item.create" in log
        assert b"-> response.done" in log
