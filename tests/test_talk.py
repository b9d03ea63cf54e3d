"""``realtalk talk``: options and errors, then whole conversations on the virtual devices.

The conversations run the real command in a subprocess: its microphone is the JACK
``loopback`` device, into which the test plays the bundled spoken question (so the
command hears speech through a real-time audio path), and its speaker is the PulseAudio
null sink (a different server, so it does not hear itself). The embedded server answers.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tests.audio_env import require_jack, require_pulse
from tests.server_thread import ServerThread

from realtalk._talk import SAMPLE_LABEL, TalkOptions, get_weather
from realtalk.audio import Speaker
from realtalk.protocol import SemanticVad, ServerVad
from realtalk.server import Faults, ServerOptions

CLI = [sys.executable, "-m", "realtalk", "talk"]
DEVICES = ["--input", "loopback", "--output", "pulse"]
LATENCY = re.compile(
    r"turn (\d+): end of speech -> first sample heard (\d+) ms \(end of turn detected by "
    r"(VAD|key) (-?\d+) \+ server (-?\d+) \+ buffering and device (-?\d+)\)"
)
TRUNCATED = re.compile(r"barge-in by (voice|key): truncated the answer at (\d+) ms")


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    env["COLUMNS"] = "100"
    return env


# --- options and errors (no devices needed) ---------------------------------------------


def test_options_make_the_session_config() -> None:
    config = TalkOptions(silence_duration_ms=700, threshold=0.6).session_config()
    assert config.turn_detection == ServerVad(threshold=0.6, silence_duration_ms=700)
    assert config.tools is not None
    assert [t.name for t in config.tools] == ["get_weather", "set_memory"]
    assert TalkOptions(turn_detection="key").session_config().turn_detection is False
    semantic = TalkOptions(turn_detection="semantic", eagerness="high").session_config()
    assert semantic.turn_detection == SemanticVad(eagerness="high")
    assert TalkOptions(tools=False).session_config().tools is None
    transcribed = TalkOptions(transcribe="whisper-1").session_config()
    assert transcribed.input_transcription is not None
    assert transcribed.input_transcription.model == "whisper-1"


def test_get_weather_answers_from_the_labelled_sample_table() -> None:
    paris = get_weather(" PARIS ")
    assert paris["temperature_c"] == 14.0
    assert paris["source"] == SAMPLE_LABEL
    assert "not a real forecast" in SAMPLE_LABEL
    unknown = get_weather("Atlantis")
    assert unknown["error"] == "no sample data for this city"
    assert "Paris" in unknown["cities"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--temperature", "0.9"], "temperature: not supported by the GA dialect"),
        (["--threshold", "1.5"], "turn_detection.threshold: must be between 0.0 and 1.0"),
        (["--turn-detection", "key"], "push-to-talk (--turn-detection key) needs a terminal"),
        (["--deployment", "rt"], "--deployment and --api-version need --azure-endpoint"),
        (["--url", "ws://h/x", "--api-version", "v"], "are for Azure, not --url"),
        (["--url", "ws://h/x", "--api-key-env", "REALTALK_UNSET"], "$REALTALK_UNSET is not set"),
        (["--api-key-env", "HOME"], "--api-key-env goes with --url"),
    ],
)
def test_bad_options_fail_in_one_line_before_any_device_opens(
    args: list[str], message: str
) -> None:
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=offline_env()
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


# --- conversations on the virtual devices ------------------------------------------------


@pytest.fixture
def devices() -> None:
    require_jack()
    require_pulse()


def question() -> tuple[npt.NDArray[np.int16], int]:
    with (
        resources.as_file(resources.files("realtalk") / "data" / "question.wav") as path,
        wave.open(str(path), "rb") as w,
    ):
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        return samples, w.getframerate()


class Talk:
    """``realtalk talk`` in a subprocess: its output lines as they come, keys in through
    a pseudo-terminal on stdin (when ``keys``), and a voice into its microphone."""

    def __init__(self, args: list[str], *, keys: bool = False) -> None:
        self.lines: list[str] = []
        self._master: int | None = None
        stdin: int | None = subprocess.DEVNULL
        if keys:
            self._master, stdin = pty.openpty()
        self.process = subprocess.Popen(
            [*CLI, *DEVICES, *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=offline_env(),
        )
        if keys:
            assert isinstance(stdin, int)
            os.close(stdin)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.voice, self.voice_rate = question()
        # The test's own player into the loopback: what it plays, the command records.
        self.mouth = Speaker("loopback", sample_rate=48000, source_rate=self.voice_rate)
        self._said = 0

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float = 20.0, *, since: int = 0
    ) -> re.Match[str]:
        """The first line from line ``since`` on that matches ``pattern``."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = since
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if match := regex.search(line):
                    return match
            seen = len(self.lines)
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line matching {regex.pattern!r}; output:\n" + self.output)

    def say(self) -> float:
        """Play the question into the microphone; its length in seconds."""
        self._said += 1
        self.mouth.buffer.push(f"said_{self._said}", 0, self.voice)
        self.mouth.buffer.end_of_stream()
        return len(self.voice) / self.voice_rate

    def press(self, keys: bytes) -> None:
        assert self._master is not None
        os.write(self._master, keys)

    def stop(self, how: str = "signal") -> int:
        if how == "signal":
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=20)
        finally:
            self.close()
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.mouth.close()
        if self._master is not None:
            os.close(self._master)
            self._master = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def talk_factory(devices: None) -> Iterator[list[Talk]]:
    started: list[Talk] = []
    yield started
    for talk in started:
        talk.close()


def start(started: list[Talk], args: list[str], *, keys: bool = False) -> Talk:
    talk = Talk(args, keys=keys)
    started.append(talk)
    talk.wait_for("^connected")
    return talk


def check_latency_line(match: re.Match[str], how: str) -> int:
    """The breakdown adds up (within rounding) and the stages are not negative."""
    total, detect, server, device = (int(match.group(i)) for i in (2, 4, 5, 6))
    assert match.group(3) == how
    assert abs(total - (detect + server + device)) <= 2, match.group(0)
    assert min(detect, server, device) >= 0, match.group(0)
    return total


def test_a_voice_conversation_with_a_barge_in_by_voice(talk_factory: list[Talk]) -> None:
    talk = start(talk_factory, ["--silence-ms", "400"])
    assert "embedded server at ws://127.0.0.1" in talk.output
    seconds = talk.say()
    first = talk.wait_for(LATENCY, timeout=seconds + 10)
    total = check_latency_line(first, "VAD")
    # Server VAD waits for 400 ms of silence before it ends the turn, and the answer is
    # heard after that: the measurement must include the wait.
    assert total >= 400, first.group(0)
    time.sleep(0.8)  # hear some of the answer (the echo of the question, 2.7 s)
    talk.say()  # ... and talk over it
    cut = talk.wait_for(TRUNCATED)
    assert cut.group(1) == "voice"
    heard_ms = int(cut.group(2))
    assert 0 < heard_ms < 2700
    talk.wait_for(r"turn 1: [\d.]+ s heard \(cut short\), underruns \d+")
    second = talk.wait_for(re.compile(r"turn 2: end of speech -> first sample heard"), 15)
    assert second
    assert talk.stop() == 0, talk.output
    out = talk.output
    assert re.search(r"2 turns, 1 barge-ins, 0 tool calls, 1 connections, 0 server errors", out)
    assert re.search(r"end of speech -> first sample heard: median \d+ ms", out)
    assert re.search(r"microphone: [\d.]+ s sent, 0 frames lost; speaker: \d+ underruns", out)
    assert "devices and connection closed" in out
    assert "Traceback" not in out


def test_push_to_talk_with_a_barge_in_by_key(talk_factory: list[Talk]) -> None:
    talk = start(talk_factory, ["--turn-detection", "key"], keys=True)
    assert "space: talk/send" in talk.output
    talk.press(b" ")  # start talking
    seconds = talk.say()
    time.sleep(seconds + 0.3)
    talk.press(b" ")  # send
    first = talk.wait_for(LATENCY)
    total = check_latency_line(first, "key")
    assert total < 2000, first.group(0)
    time.sleep(0.8)
    talk.press(b" ")  # talk again while the answer plays: that interrupts it
    cut = talk.wait_for(TRUNCATED)
    assert cut.group(1) == "key"
    assert 0 < int(cut.group(2)) < 2700
    talk.press(b" ")  # send the (silent) second turn
    talk.wait_for("turn 2: end of speech -> first sample heard")
    talk.press(b"q")
    assert talk.stop(how="wait") == 0, talk.output
    assert re.search(r"2 turns, 1 barge-ins", talk.output)


def test_tools_run_and_the_memory_is_shown(tmp_path: Path, talk_factory: list[Talk]) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                {
                    "outputs": [
                        {"call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                        {
                            "call": {
                                "name": "set_memory",
                                "arguments": {"key": "city", "value": "Paris"},
                            }
                        },
                    ]
                },
                {"say": "It is fourteen degrees in Paris, from sample data."},
            ]
        )
    )
    talk = start(talk_factory, ["--brain", str(script)])
    talk.say()
    weather = talk.wait_for(r"tool get_weather\(city='Paris'\) -> (.*)")
    assert json.loads(weather.group(1))["source"] == SAMPLE_LABEL
    talk.wait_for("memory: city = Paris")
    talk.wait_for("assistant: It is fourteen degrees in Paris, from sample data.")
    talk.wait_for(LATENCY)
    assert talk.stop() == 0, talk.output
    assert "1 turns, 0 barge-ins, 2 tool calls" in talk.output


def test_a_dropped_connection_is_reconnected(talk_factory: list[Talk]) -> None:
    options = ServerOptions(faults=Faults(drop_mid_response=True))
    with ServerThread(options=options) as server:
        os.environ["REALTALK_TEST_KEY"] = "sk-test"
        try:
            talk = start(
                talk_factory, ["--url", server.server.url, "--api-key-env", "REALTALK_TEST_KEY"]
            )
        finally:
            del os.environ["REALTALK_TEST_KEY"]
        talk.say()
        lost = talk.wait_for(r"connection lost: (.*); reconnecting in [\d.]+ s \(attempt 1 of 5\)")
        assert "1006" in lost.group(1) or "closed" in lost.group(1)
        talk.wait_for("^reconnected; restoring the session", timeout=10)
        talk.wait_for(r"^resumed: \d+ conversation items restored.*, \d+ ms of microphone audio")
        assert talk.stop() == 0, talk.output
    assert "2 connections" in talk.output


def test_an_unreachable_endpoint_is_one_line_without_retries(devices: None) -> None:
    done = subprocess.run(
        [*CLI, *DEVICES, "--url", "ws://127.0.0.1:1/v1/realtime"],
        capture_output=True,
        text=True,
        timeout=60,
        env=offline_env(),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert "ConnectError: cannot connect to 127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "reconnecting" not in done.stdout
