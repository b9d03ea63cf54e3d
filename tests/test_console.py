"""The browser console (python/realtalk/relay/console/) in a real headless Chromium.

Chromium's fake microphone plays the bundled question followed by 2 s of silence, in a
loop. The relay serves the page and its WebSocket on one port, in front of the embedded
server (EchoBrain: it plays the user's audio back, transcript "(your words, played
back)"). Everything is driven over the DevTools protocol (tests/browser.py): the page's
test API (``window.realtalkConsole``) and its real buttons.

* VAD turn (GA): the WebSocket URL defaults to the page's own origin; connect and record
  by clicking; speech_started / speech_stopped,
  response.done, the reply rendered by the playback worklet, the inspector and transcript
  in the DOM. Then the looped question starts again while the reply plays: server VAD
  barge-in, and the page must truncate at what it rendered (floor ms, within what it
  received), and drop a delta of the cut item that arrives later.
* Push-to-talk (beta, server paced at real time so a response is still streaming):
  commit + response.create on stop, interrupt() cancels and truncates, pressing talk
  during playback interrupts too, and switching to VAD mid-session.
* The DSP and the rules without a microphone: the resampler's passband, rejection and
  block independence measured in the browser, PCM16/base64 against Python's, and the
  page's interruption rules against ``realtalk.protocol.decide_interrupt``.

A JavaScript error on the page (uncaught, or console.error) fails the test. The first
test saves a screenshot to tmp_path and to $REALTALK_ARTIFACTS_DIR (default
/tmp/realtalk-artifacts/console.png). Skipped without chromium (scripts/browser_up.sh
installs it when run as root).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import urllib.parse
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

import realtalk
from browser import Page, PageError, find_chromium, open_browser
from realtalk.protocol import decide_interrupt
from realtalk.relay import RelayAuth, Upstream, open_relay
from realtalk.server import ServerOptions, open_server

PACKAGE = Path(realtalk.__file__).parent
QUESTION_WAV = PACKAGE / "data" / "question.wav"
TOKEN = "console-test-token-0123456789"  # the relay's; the page never sees the upstream key
UPSTREAM_KEY = "sk-test-upstream"
RATE = 24000
ARTIFACTS = Path(os.environ.get("REALTALK_ARTIFACTS_DIR", "/tmp/realtalk-artifacts"))
#: The server's and the relay's log lines, for failure messages.
SERVER_LOG = pytest.StashKey[list[str]]()

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium is not installed (scripts/browser_up.sh installs it when run as root)",
)


# -- the site: the relay (console + WebSocket) in front of the embedded server ----------


@pytest.fixture
async def site(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str, str]]:
    """(page_url, ws_url, token): where the console is served, the Realtime endpoint it
    talks to, and the token it offers as a subprotocol.

    The relay serves both on one port (the console at /, WebSocket at /v1/realtime), in
    front of the embedded server (EchoBrain). ``indirect`` parameter: ``{"paced": bool,
    "dialect": "ga" | "beta"}`` (a relay speaks its upstream's dialect only).
    """
    params = getattr(request, "param", {})
    options = ServerOptions(api_key=UPSTREAM_KEY, paced=params.get("paced", False), delta_ms=50)
    log: list[str] = []
    request.node.stash[SERVER_LOG] = log
    async with open_server(options=options, log=log.append) as server:
        upstream = Upstream(
            url=server.url, api_key=UPSTREAM_KEY, dialect=params.get("dialect", "ga")
        )
        async with open_relay(
            upstream=upstream, auth=RelayAuth(token=TOKEN), log=log.append
        ) as relay:
            yield relay.http_url, relay.url, TOKEN


@pytest.fixture
def fake_mic(tmp_path: Path) -> Path:
    """The question, then 2 s of silence (Chromium loops the file; VAD needs the pause)."""
    with wave.open(str(QUESTION_WAV), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        speech = w.readframes(w.getnframes())
    path = tmp_path / "question.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(speech + bytes(2 * 2 * RATE))
    return path


def console_url(page_url: str, token: str, **extra: str) -> str:
    """The page with its parameters (``url=`` overrides the WebSocket URL)."""
    query = urllib.parse.urlencode({"token": token, **extra})
    return f"{page_url}?{query}"


# -- helpers ------------------------------------------------------------------------------

API = "window.realtalkConsole"


class Steps:
    """Waits with a bound each, timed from the start, with the page's state on failure."""

    def __init__(self, page: Page, request: pytest.FixtureRequest) -> None:
        self.page = page
        self.request = request
        self.t0 = trio.current_time()
        self.times: list[tuple[str, float]] = []

    async def until(self, expression: str, what: str, timeout_s: float = 10.0) -> Any:
        try:
            value = await self.page.wait_for(expression, what=what, timeout_s=timeout_s)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self.diagnostics()}") from None
        self.times.append((what, trio.current_time() - self.t0))
        return value

    async def diagnostics(self) -> str:
        try:
            snapshot = await self.page.evaluate(
                f"JSON.stringify({{state: {API}.state, counters: {API}.counters, "
                f"interruptions: {API}.interruptions, tracks: {API}.tracks(), "
                f"errors: {API}.errors}})"
            )
        except Exception as exc:  # the page may be the problem
            snapshot = f"(no snapshot: {exc})"
        log = self.request.node.stash.get(SERVER_LOG, [])
        console = "\n".join(self.page.console[-20:])
        return f"page: {snapshot}\nconsole:\n{console}\nserver log (tail):\n" + "\n".join(log[-40:])

    def report(self, name: str) -> None:
        lines = [f"  {t:6.2f} s  {what}" for what, t in self.times]
        print(f"\n{name}: measured steps\n" + "\n".join(lines))


async def inspector_types(page: Page) -> set[str]:
    types = await page.evaluate(
        "[...document.querySelectorAll('#events li.event')].map(li => li.dataset.type)"
    )
    return set(types)


async def opened_row_json(page: Page, event_type: str, which: str = "last") -> Any:
    """Open the inspector row of ``event_type`` (as a user would) and parse its JSON."""
    text = await page.evaluate(
        f"""(async () => {{
          const rows = [...document.querySelectorAll('#events li[data-type="{event_type}"]')];
          const row = rows.{"at(-1)" if which == "last" else "at(0)"};
          if (!row.querySelector('details').open) row.querySelector('summary').click();
          // The JSON is rendered by the details' toggle event, which fires as a task.
          for (let i = 0; i < 100 && !row.querySelector('pre'); i++) {{
            await new Promise(r => setTimeout(r, 10));
          }}
          return row.querySelector('pre').textContent;
        }})()"""
    )
    return json.loads("\n".join(line for line in text.splitlines() if not line.startswith("//")))


def late_delta(item_id: str, samples: int) -> str:
    """A server audio delta for ``item_id``, as the page would get it after a cut."""
    event = {
        "type": "response.output_audio.delta",
        "event_id": "event_late",
        "response_id": "resp_late",
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(bytes(2 * samples)).decode(),
    }
    return f"{API}.receive({json.dumps(event)})"


def ms(samples: int) -> int:
    return samples * 1000 // RATE


# -- tests --------------------------------------------------------------------------------


async def test_console_vad_turn_and_barge_in(
    site: tuple[str, str, str], fake_mic: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page_url, ws_url, token = site
    with trio.fail_after(40):
        async with open_browser(fake_audio=fake_mic, viewport=(1400, 1000)) as page:
            steps = Steps(page, request)
            await page.navigate(console_url(page_url, token))
            await steps.until(f"typeof {API} === 'object'", "the console's script")
            default = await page.evaluate("document.getElementById('ws-url').value")
            assert urllib.parse.urlsplit(default)[:3] == urllib.parse.urlsplit(ws_url)[:3]
            # The real buttons, as a user would.
            await page.evaluate("document.getElementById('connect').click()")
            await steps.until(
                f"{API}.state.connected && {API}.counters.eventsIn['session.updated'] >= 1",
                "connected, session.updated",
            )
            session = await page.evaluate(f"{API}.session")
            assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
            assert await page.evaluate("document.getElementById('temperature').disabled")
            await page.evaluate("document.getElementById('record').click()")
            await steps.until(f"{API}.state.recording", "recording")

            c = f"{API}.counters"
            await steps.until(f"{c}.eventsOut['input_audio_buffer.append'] > 0", "appends sent")
            await steps.until(
                f"{c}.eventsIn['input_audio_buffer.speech_started'] >= 1", "speech_started"
            )
            await steps.until(
                f"{c}.eventsIn['input_audio_buffer.speech_stopped'] >= 1",
                "speech_stopped",
                timeout_s=8,
            )
            await steps.until(f"{c}.eventsIn['response.done'] >= 1", "response.done")
            reply = await steps.until(
                f"{API}.tracks().find(t => t.played > 0)?.item_id", "the reply playing"
            )
            sent = await page.evaluate(f"{c}.samplesSent")
            assert sent > RATE, sent  # over a second of 24 kHz audio went out

            types = await inspector_types(page)
            wanted = {
                "session.update",
                "input_audio_buffer.append",
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "response.created",
                "response.output_audio.delta",
                "response.done",
            }
            assert wanted <= types, wanted - types
            folds = await page.evaluate(
                "[...document.querySelectorAll("
                "'#events li[data-type=\"response.output_audio.delta\"] .count')]"
                ".map(e => e.textContent)"
            )
            assert any(f.startswith("\u00d7") and int(f[1:]) > 1 for f in folds), folds  # "xN"
            transcript = await page.evaluate("document.getElementById('transcript').innerText")
            assert "(your words, played back)" in transcript

            # Barge-in: the looped question starts again while the reply still plays.
            decision = await steps.until(
                f"{API}.interruptions.find(d => d.trigger === 'speech_started')",
                "barge-in (speech_started during playback)",
                timeout_s=10,
            )
            assert decision["item_id"] == reply
            assert decision["action"] == "truncate", decision
            played, received = decision["played_samples"], decision["received_samples"]
            assert 0 < played < received, decision  # cut mid-reply
            assert decision["audio_end_ms"] == ms(played), decision  # floor, whole ms
            assert 0 < decision["audio_end_ms"] <= ms(received)
            assert decision["exact"], "the playback worklet did not answer the flush"
            sent_truncate = await opened_row_json(page, "conversation.item.truncate")
            assert sent_truncate["item_id"] == reply
            assert sent_truncate["content_index"] == 0
            assert sent_truncate["audio_end_ms"] == decision["audio_end_ms"]
            assert await page.evaluate(f"{c}.truncationsSent") == 1
            await steps.until(
                f"{c}.eventsIn['conversation.item.truncated'] >= 1", "conversation.item.truncated"
            )
            confirmed = await opened_row_json(page, "conversation.item.truncated")
            assert confirmed["audio_end_ms"] == decision["audio_end_ms"]
            assert await page.evaluate(
                f"!!document.querySelector('#transcript li.truncated[data-item-id=\"{reply}\"]')"
            )

            # A delta of the cut item arriving now was sent before the server saw the cut.
            await page.evaluate(late_delta(reply, 2400))
            counters = await page.evaluate(c)
            assert counters["droppedDeltas"] == 1
            assert counters["droppedSamples"] == 2400
            assert counters["samplesReceived"][reply] == received
            await trio.sleep(0.3)
            assert await page.evaluate(f"{c}.samplesPlayed['{reply}']") == played

            shots = [tmp_path / "console.png", ARTIFACTS / "console.png"]
            await page.screenshot(*shots)
            print(f"\nscreenshot: {shots[1]} (and {shots[0]})")

            await page.evaluate("document.getElementById('record').click()")  # Stop
            await steps.until(f"!{API}.state.recording", "recording stopped")
            await page.evaluate("document.getElementById('disconnect').click()")
            await steps.until(f"!{API}.state.connected", "disconnected")
            page.raise_errors()
            assert await page.evaluate(f"{API}.errors") == []
            steps.report("VAD turn and barge-in")


@pytest.mark.parametrize("site", [{"paced": True, "dialect": "beta"}], indirect=True, ids=["beta"])
async def test_console_push_to_talk_beta_interrupt(
    site: tuple[str, str, str], fake_mic: Path, request: pytest.FixtureRequest
) -> None:
    page_url, ws_url, token = site
    c = f"{API}.counters"
    with trio.fail_after(40):
        async with open_browser(fake_audio=fake_mic) as page:
            steps = Steps(page, request)
            await page.navigate(
                console_url(page_url, token, url=ws_url, dialect="beta", mode="ptt")
            )
            await steps.until(f"typeof {API} === 'object'", "the console's script")
            await page.evaluate(f"{API}.connect()")
            await steps.until(f"{c}.eventsIn['session.updated'] >= 1", "session.updated")
            session = await page.evaluate(f"{API}.session")
            assert session["turn_detection"] is None  # beta's flat shape; no VAD in PTT
            assert session["temperature"] == pytest.approx(0.8)
            assert not await page.evaluate("document.getElementById('temperature').disabled")
            label = await page.evaluate("document.getElementById('record').textContent")
            assert label == "Push to talk"

            async def talk(seconds: float) -> None:
                before = await page.evaluate(f"{c}.samplesSent")
                await page.evaluate(f"{API}.startRecording()")
                await steps.until(
                    f"{c}.samplesSent >= {before + int(seconds * RATE)}", f"{seconds} s sent"
                )
                await page.evaluate(f"{API}.stopRecording()")

            # Turn 1: talk, send; interrupt() while the reply is still streaming.
            await talk(1.0)
            out = await page.evaluate(f"{c}.eventsOut")
            assert out["input_audio_buffer.commit"] == 1
            assert out["response.create"] == 1
            assert out["input_audio_buffer.clear"] == 1  # each PTT turn starts clean
            first = await steps.until(
                f"{API}.tracks().find(t => t.played >= {RATE * 3 // 10})?.item_id",
                "300 ms of the first reply rendered",
            )
            assert await page.evaluate(f"{API}.state.responseActive")
            decisions = await page.evaluate(f"{API}.interrupt()")
            assert [d["item_id"] for d in decisions] == [first]
            (decision,) = decisions
            assert decision["action"] == "truncate", decision
            assert decision["trigger"] == "api"
            assert 0 < decision["audio_end_ms"] <= ms(decision["received_samples"])
            assert decision["audio_end_ms"] == ms(decision["played_samples"])
            assert decision["played_samples"] < decision["received_samples"]
            assert await page.evaluate(f"{c}.eventsOut['response.cancel']") == 1
            await steps.until(
                f"{API}.lastResponse?.status === 'cancelled'", "response.done (cancelled)"
            )
            status = await page.evaluate(f"{API}.lastResponse.status_details")
            assert status["reason"] == "client_cancelled"
            await steps.until(
                f"{c}.eventsIn['conversation.item.truncated'] >= 1", "conversation.item.truncated"
            )
            await page.evaluate(late_delta(first, 1200))
            assert await page.evaluate(f"{c}.droppedDeltas") >= 1
            received = await page.evaluate(f"{c}.samplesReceived['{first}']")
            assert received == decision["received_samples"]

            # Turn 2: pressing talk while the assistant speaks interrupts it.
            await talk(1.0)
            second = await steps.until(
                f"{API}.tracks().find(t => t.item_id !== '{first}' && t.played >= 4800)?.item_id",
                "200 ms of the second reply rendered",
            )
            await page.evaluate(f"{API}.startRecording()")
            decision = await steps.until(
                f"{API}.interruptions.find(d => d.trigger === 'push_to_talk')",
                "push-to-talk interruption",
            )
            assert decision["item_id"] == second
            assert decision["action"] == "truncate", decision
            assert 0 < decision["audio_end_ms"] <= ms(decision["received_samples"])
            assert await page.evaluate(f"{c}.eventsOut['response.cancel']") == 2
            assert await page.evaluate(f"{c}.truncationsSent") == 2

            # Mode switch mid-session: VAD again, in beta's shape.
            await page.evaluate(f"{API}.setMode('vad')")
            await steps.until(
                f"{API}.session?.turn_detection?.type === 'server_vad'", "server VAD back on"
            )
            await page.evaluate(f"{API}.disconnect()")
            await steps.until(f"!{API}.state.connected", "disconnected")
            page.raise_errors()
            assert await page.evaluate(f"{API}.errors") == []
            steps.report("push-to-talk (beta, paced server)")


async def test_console_dsp_and_rules(site: tuple[str, str, str]) -> None:
    page_url, _, _ = site
    rng = np.random.default_rng(7)
    pcm = rng.integers(-32768, 32767, size=4801, dtype=np.int16)
    raw = pcm.astype("<i2").tobytes()
    played = [0, 1, 23, 24, 25, 47, 48, 23999, 24000, 24001, 1_000_000]
    cases = [(p, r, done) for p, r, done in itertools.product(played, played, [False, True])]
    with trio.fail_after(30):
        async with open_browser() as page:
            await page.navigate(page_url)
            result = await page.evaluate(
                f"""(async () => {{
          const {{ SincResampler }} = await import('./resampler.js');
          const audio = await import('./audio.js');
          const rules = await import('./interrupt-rules.js');
          function run(inRate, outRate, freq, block) {{
            const n = inRate;  // one second
            const r = new SincResampler(inRate, outRate);
            const x = new Float32Array(n);
            for (let i = 0; i < n; i++) x[i] = Math.sin(2 * Math.PI * freq * i / inRate);
            const out = new Float32Array(Math.ceil(n * outRate / inRate) + 8);
            let w = 0;
            for (let i = 0; i < n; i += block) {{
              r.push(x.subarray(i, Math.min(n, i + block)));
              w += r.pull(out, w);
            }}
            return out.subarray(0, w);
          }}
          function level(y) {{  // dB relative to a full-scale sine, edges skipped
            let s = 0, c = 0;
            for (let i = 500; i < y.length - 500; i++) {{ s += y[i] * y[i]; c++; }}
            return 10 * Math.log10(s / c / 0.5);
          }}
          function snr(inRate, outRate, freq) {{  // against the ideal band-limited signal
            const y = run(inRate, outRate, freq, 128);
            let e = 0, s = 0;
            for (let k = 500; k < y.length - 500; k++) {{
              const ideal = Math.sin(2 * Math.PI * freq * k / outRate);
              e += (y[k] - ideal) ** 2; s += ideal ** 2;
            }}
            return 10 * Math.log10(s / e);
          }}
          const whole = run(44100, 24000, 1000, 44100);
          let blockDiff = 0;
          for (const block of [1, 128, 1000]) {{
            const y = run(44100, 24000, 1000, block);
            if (y.length !== whole.length) return {{ error: 'length depends on blocks' }};
            for (let i = 0; i < y.length; i++) {{
              blockDiff = Math.max(blockDiff, Math.abs(y[i] - whole[i]));
            }}
          }}
          const bytes = audio.base64ToBytes({json.dumps(base64.b64encode(raw).decode())});
          return {{
            pass: [level(run(48000, 24000, 1000, 128)), level(run(44100, 24000, 1000, 128)),
                   level(run(48000, 24000, 8000, 128)), level(run(24000, 48000, 1000, 128))],
            reject: [level(run(48000, 24000, 13000, 128)), level(run(48000, 24000, 15000, 128)),
                     level(run(44100, 24000, 13000, 128)), level(run(44100, 24000, 20000, 128))],
            upSnr: [snr(24000, 44100, 1000), snr(24000, 48000, 5000)],
            blockDiff,
            floats: Array.from(audio.pcm16ToFloat32(bytes)),
            reencoded: audio.bytesToBase64(bytes),
            decisions: {json.dumps(cases)}.map(([p, r, d]) => rules.decideInterrupt(p, r, d)),
          }};
        }})()"""
            )
            page.raise_errors()
    assert "error" not in result, result
    assert all(abs(db) < 0.05 for db in result["pass"]), result["pass"]
    assert all(db < -60 for db in result["reject"]), result["reject"]
    assert all(s > 60 for s in result["upSnr"]), result["upSnr"]
    assert result["blockDiff"] < 1e-6
    np.testing.assert_array_equal(np.array(result["floats"]), pcm / 32768.0)
    assert result["reencoded"] == base64.b64encode(raw).decode()
    for (p, r, done), js in zip(cases, result["decisions"], strict=True):
        py = decide_interrupt(
            played_samples=p, received_samples=r, audio_done=done, sample_rate=RATE
        )
        assert (js["action"], js["audioEndMs"], js["rule"]) == (
            py.action.value,
            py.audio_end_ms,
            py.rule,
        ), (p, r, done)


async def test_page_error_fails() -> None:
    """A JavaScript error on the page is a test failure, not a log line."""
    with trio.fail_after(20):
        async with open_browser() as page:
            await page.navigate("about:blank")
            await page.evaluate("setTimeout(() => { throw new Error('boom'); }, 0)")
            with pytest.raises(PageError, match="boom"):
                await page.wait_for("false", what="never", timeout_s=5)
