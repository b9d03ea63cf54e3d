"""The sans-IO Connection through whole realistic exchanges, both dialects.

Each scenario is a list of steps: a server event delivered, or a client call made. It is
run several ways that must agree: events as ``str`` or as UTF-8 ``bytes``, and the outbox
drained after every step or only at the end. Every client event sent is checked against
the ``openai`` package's model of its dialect, with no undeclared keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import scenarios as sc
from peer import assert_no_extra, client_event_models
from realtalk.core import AudioDelta, ulaw_encode
from realtalk.exceptions import LocalProtocolError, RemoteProtocolError
from realtalk.protocol import (
    ConfigDriftDetected,
    Connection,
    ErrorEvent,
    FunctionCallArgumentsDone,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    InterruptAction,
    ItemAppended,
    ItemCompleted,
    ItemRemoved,
    ItemUpdated,
    ResponseState,
    ServerVad,
    SessionConfig,
    SpeechStarted,
    TextDelta,
    UnknownEvent,
)

DIALECTS = ("ga", "beta")
Step = tuple[str, Any]


def validate(dialect: str, text: str) -> dict[str, Any]:
    obj = json.loads(text)
    model = client_event_models(dialect)[obj["type"]]  # type: ignore[arg-type]
    assert_no_extra(model.model_validate(obj))
    return obj


def summary(event: object) -> tuple[Any, ...]:
    if isinstance(event, AudioDelta):
        return ("audio", event.type, event.item_id, event.content_index, event.samples.tobytes())
    return (type(event).__name__, repr(event))


def run(
    dialect: str, steps: list[Step], *, as_bytes: bool = False, drain_each: bool = True
) -> tuple[Connection, list[object], list[dict[str, Any]]]:
    conn = Connection(dialect)  # type: ignore[arg-type]
    events: list[object] = []
    wire: list[dict[str, Any]] = []
    for kind, value in steps:
        if kind == "server":
            value = echo_tag(conn, value)
            text = json.dumps(value)
            events.extend(conn.receive(text.encode() if as_bytes else text))
        else:
            result = value(conn)
            if result is not None:
                events.append(result)
        if drain_each:
            wire.extend(validate(dialect, t) for t in conn.data_to_send())
    wire.extend(validate(dialect, t) for t in conn.data_to_send())
    return conn, events, wire


def echo_tag(conn: Connection, event: dict[str, Any]) -> dict[str, Any]:
    """Play the server's part: a response started for our request echoes its metadata."""
    pending = conn.pending_request_id
    if (
        event["type"] == "response.created"
        and pending is not None
        and "metadata" not in event["response"]
    ):
        return {
            **event,
            "response": {**event["response"], "metadata": {"realtalk_event_id": pending}},
        }
    return event


def server(events: list[dict[str, Any]]) -> list[Step]:
    return [("server", e) for e in events]


def client(fn: Callable[[Connection], object]) -> Step:
    return ("client", fn)


def run_all_ways(
    dialect: str, steps: list[Step]
) -> tuple[Connection, list[object], list[dict[str, Any]]]:
    """Run the steps every way; all must give the same events and wire."""
    results = [
        run(dialect, steps, as_bytes=b, drain_each=d) for b in (False, True) for d in (True, False)
    ]
    first = results[0]
    for other in results[1:]:
        assert [summary(e) for e in other[1]] == [summary(e) for e in first[1]]
        assert other[2] == first[2]
    return first


def types_of(wire: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in wire]


# --- scenarios ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_text_turn(dialect: str) -> None:
    steps = [
        *server(sc.session_created(dialect)),
        client(lambda c: c.add_user_text("What is 2+2?")),
        client(lambda c: c.create_response()),
        *server(sc.user_text_item_events(dialect, "item_u1", "What is 2+2?")),
        *server(sc.text_response(dialect, "resp_1", "item_a1", ["2+2", " is ", "4."])),
    ]
    conn, events, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == ["conversation.item.create", "response.create"]
    assert wire[0]["item"]["content"] == [{"type": "input_text", "text": "What is 2+2?"}]
    assert conn.response_state is ResponseState.IDLE
    items = conn.conversation.items
    assert [(i.id, i.role, i.text) for i in items] == [
        ("item_u1", "user", "What is 2+2?"),
        ("item_a1", "assistant", "2+2 is 4."),
    ]
    assert all(i.completed for i in items)
    deltas = [e for e in events if isinstance(e, ItemUpdated)]
    assert [d.delta for d in deltas] == ["2+2", " is ", "4."]
    assert [type(e).__name__ for e in events if isinstance(e, TextDelta)] == ["TextDelta"] * 3
    # Appended once each, completed once each, however many events announced them.
    assert [e.item.id for e in events if isinstance(e, ItemAppended)] == ["item_u1", "item_a1"]
    assert [e.item.id for e in events if isinstance(e, ItemCompleted)] == ["item_u1", "item_a1"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_audio_turn_with_server_vad(dialect: str) -> None:
    chunks = [4800, 4800, 2400]  # 200 + 200 + 100 ms at 24 kHz
    steps = [
        *server(sc.session_created(dialect)),
        client(lambda c: c.append_audio(np.zeros(480, dtype=np.int16))),
        *server(sc.vad_user_turn(dialect, "item_u1", 1000, 2400, transcript="Hello there")),
        *server(sc.audio_response_start(dialect, "resp_1", "item_a1")),
        *server(sc.audio_deltas(dialect, "resp_1", "item_a1", chunks, ["Hi", " there", "!"])),
        *server(sc.audio_response_end(dialect, "resp_1", "item_a1", "Hi there!")),
    ]
    conn, events, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == ["input_audio_buffer.append"]
    assert base64.b64decode(wire[0]["audio"]) == bytes(960)
    audio = [e for e in events if isinstance(e, AudioDelta)]
    assert [len(a.samples) for a in audio] == chunks
    item = conn.conversation["item_a1"]
    part = item.content[0]
    assert (part.audio_samples, part.audio_done, part.transcript) == (12000, True, "Hi there!")
    assert conn.conversation["item_u1"].content[0].transcript == "Hello there"
    stats = conn.statistics()
    assert (stats.audio_received_samples, stats.audio_received_ms) == (12000, 500)
    assert (stats.audio_appended_samples, stats.audio_appended_ms) == (480, 20)
    # A VAD response (not ours) still counts as active, then done.
    assert conn.response_state is ResponseState.IDLE
    assert next(e for e in events if isinstance(e, SpeechStarted)).audio_start_ms == 1000


@pytest.mark.parametrize("dialect", DIALECTS)
def test_function_call_round_trip(dialect: str) -> None:
    args = json.dumps({"city": "Paris", "unit": "c"})
    steps = [
        *server(sc.session_created(dialect)),
        client(lambda c: c.add_user_text("Weather in Paris?")),
        client(lambda c: c.create_response()),
        *server(sc.user_text_item_events(dialect, "item_u1", "Weather in Paris?")),
        *server(
            sc.function_call_response(dialect, "resp_1", "item_f1", "call_1", "get_weather", args)
        ),
        client(lambda c: c.add_function_output("call_1", '{"temp_c": 21}')),
        client(lambda c: c.create_response()),
        *server(sc.function_output_item_events(dialect, "item_o1", "call_1", '{"temp_c": 21}')),
        *server(sc.text_response(dialect, "resp_2", "item_a1", ["It is 21 °C."])),
    ]
    conn, events, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == [
        "conversation.item.create",
        "response.create",
        "conversation.item.create",
        "response.create",
    ]
    assert wire[2]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"temp_c": 21}',
    }
    call = conn.conversation["item_f1"]
    assert (call.type, call.name, call.call_id, call.arguments, call.completed) == (
        "function_call",
        "get_weather",
        "call_1",
        args,
        True,
    )
    done = [e for e in events if isinstance(e, FunctionCallArgumentsDone)]
    assert done[0].name == ("get_weather" if dialect == "ga" else None)
    assert [e.delta for e in events if isinstance(e, ItemUpdated) and e.kind == "arguments"] == [
        args[: len(args) // 2],
        args[len(args) // 2 :],
    ]
    assert conn.conversation["item_o1"].output == '{"temp_c": 21}'
    assert [i.id for i in conn.conversation] == ["item_u1", "item_f1", "item_o1", "item_a1"]


def barge_in_steps(dialect: str, *, finish_response: bool) -> list[Step]:
    steps = [
        *server(sc.session_created(dialect)),
        *server(sc.audio_response_start(dialect, "resp_1", "item_a1")),
        *server(sc.audio_deltas(dialect, "resp_1", "item_a1", [4800] * 5, ["one", " two"])),
    ]
    if finish_response:
        steps += server(sc.audio_response_end(dialect, "resp_1", "item_a1", "one two three"))
    return steps


@pytest.mark.parametrize("dialect", DIALECTS)
def test_barge_in_mid_response_truncates_at_the_heard_position(dialect: str) -> None:
    steps = barge_in_steps(dialect, finish_response=False)
    # 7_212 samples heard: 300.5 ms, so 300 ms (never past what was heard).
    steps.append(client(lambda c: c.interrupt(played_samples=7212)))
    steps += server(
        sc.audio_response_end(
            dialect, "resp_1", "item_a1", "one two", status="cancelled", reason="client_cancelled"
        )
    )
    steps.append(
        (
            "server",
            sc.event(
                dialect,
                "conversation.item.truncated",
                item_id="item_a1",
                content_index=0,
                audio_end_ms=300,
            ),
        )
    )
    conn, events, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == ["response.cancel", "conversation.item.truncate"]
    assert wire[1] | {"event_id": None} == {
        "type": "conversation.item.truncate",
        "event_id": None,
        "item_id": "item_a1",
        "content_index": 0,
        "audio_end_ms": 300,
    }
    interrupted = next(e for e in events if type(e).__name__ == "Interrupted")
    assert (interrupted.action, interrupted.played_ms, interrupted.cancelled_response) == (
        InterruptAction.TRUNCATE,
        300,
        True,
    )
    item = conn.conversation["item_a1"]
    assert item.truncated_at_ms == 300
    assert item.content[0].transcript == ""  # the server dropped it; so does the copy
    assert conn.response_state is ResponseState.IDLE


@pytest.mark.parametrize("dialect", DIALECTS)
def test_barge_in_after_response_done_still_truncates_without_cancel(dialect: str) -> None:
    # Audio arrives faster than real time: the response is done, the listener is not.
    steps = barge_in_steps(dialect, finish_response=True)
    steps.append(client(lambda c: c.interrupt(played_samples=12_000)))
    _, _, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == ["conversation.item.truncate"]
    assert wire[0]["audio_end_ms"] == 500


@pytest.mark.parametrize("dialect", DIALECTS)
def test_barge_in_with_server_vad_sends_no_cancel(dialect: str) -> None:
    steps = barge_in_steps(dialect, finish_response=False)
    steps.append(
        (
            "server",
            sc.event(
                dialect, "input_audio_buffer.speech_started", audio_start_ms=5000, item_id="item_u2"
            ),
        )
    )
    steps.append(client(lambda c: c.interrupt(played_samples=2400, server_cancels=True)))
    _, _, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == ["conversation.item.truncate"]
    assert wire[0]["audio_end_ms"] == 100


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("played", "expected"),
    [
        (0, ["response.cancel", "conversation.item.delete"]),
        (10, ["response.cancel", "conversation.item.delete"]),
        (24_000 * 2, ["response.cancel", "conversation.item.truncate"]),
    ],
)
def test_barge_in_before_anything_was_heard_deletes(
    dialect: str, played: int, expected: list[str]
) -> None:
    steps = barge_in_steps(dialect, finish_response=False)
    steps.append(client(lambda c: c.interrupt(played_samples=played)))
    _, _, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == expected
    if expected[1] == "conversation.item.truncate":
        assert wire[1]["audio_end_ms"] == 1000  # clamped to the 1 s received


@pytest.mark.parametrize("dialect", DIALECTS)
def test_interrupt_after_playback_finished_sends_nothing(dialect: str) -> None:
    steps = barge_in_steps(dialect, finish_response=True)
    steps.append(client(lambda c: c.interrupt(played_samples=12_000)))
    steps.append(client(lambda c: c.interrupt(played_samples=13_000)))  # twice: still once
    _, events, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == ["conversation.item.truncate"]
    assert events[-1].action is InterruptAction.NOTHING  # type: ignore[attr-defined]
    steps = barge_in_steps(dialect, finish_response=True)
    steps.append(client(lambda c: c.interrupt(played_samples=24_000)))
    _, events, wire = run_all_ways(dialect, steps)
    assert types_of(wire) == []
    interrupted = events[-1]
    assert interrupted.action is InterruptAction.NOTHING  # type: ignore[attr-defined]
    assert interrupted.rule == "playback_finished"  # type: ignore[attr-defined]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fmt", ["g711_ulaw", "g711_alaw"])
def test_g711_output_is_decoded_and_truncated_at_8khz(dialect: str, fmt: str) -> None:
    wire_fmt = {"g711_ulaw": {"type": "audio/pcmu"}, "g711_alaw": {"type": "audio/pcma"}}[fmt]
    if dialect == "ga":
        session = sc.session_object(dialect)
        session["audio"]["output"]["format"] = wire_fmt
        created = [sc.event(dialect, "session.created", session=session)]
    else:
        created = [
            sc.event(
                dialect,
                "session.created",
                session=sc.session_object(dialect, output_audio_format=fmt),
            )
        ]
    payload = ulaw_encode(np.full(1600, 1000, dtype=np.int16))  # 200 ms at 8 kHz, 1 byte each
    delta = sc.event(
        dialect,
        "response.output_audio.delta",
        response_id="resp_1",
        item_id="item_a1",
        output_index=0,
        content_index=0,
        delta=base64.b64encode(payload).decode(),
    )
    steps = [
        *server(created),
        *server(sc.audio_response_start(dialect, "resp_1", "item_a1")),
        ("server", delta),
    ]
    steps.append(client(lambda c: c.interrupt(played_samples=800)))
    conn, events, wire = run_all_ways(dialect, steps)
    assert conn.output_sample_rate == 8000
    audio = [e for e in events if isinstance(e, AudioDelta)]
    assert len(audio[0].samples) == 1600
    assert types_of(wire) == ["response.cancel", "conversation.item.truncate"]
    assert wire[1]["audio_end_ms"] == 100


@pytest.mark.parametrize("dialect", DIALECTS)
def test_server_error_mid_turn_names_its_cause_and_the_session_goes_on(dialect: str) -> None:
    steps = barge_in_steps(dialect, finish_response=True)
    steps.append(client(lambda c: c.interrupt(played_samples=12_000)))
    conn, _, wire = run(dialect, steps)
    truncate_id = wire[-1]["event_id"]
    err = sc.error(
        dialect,
        "audio_end_ms is longer than the audio",
        code="invalid_value",
        caused_by=truncate_id,
        param="audio_end_ms",
    )
    events = conn.receive(json.dumps(err))
    assert isinstance(events[0], ErrorEvent)
    assert events[0].caused_by == "conversation.item.truncate"
    assert events[0].code == "invalid_value"
    # Still usable.
    conn.add_user_text("again")
    conn.create_response()
    assert types_of([validate(dialect, t) for t in conn.data_to_send()]) == [
        "conversation.item.create",
        "response.create",
    ]
    # An error naming nothing we sent is kept as it is.
    events = conn.receive(json.dumps(sc.error(dialect, "server hiccup", error_type="server_error")))
    assert isinstance(events[0], ErrorEvent)
    assert events[0].caused_by is None
    assert conn.statistics().errors == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unknown_and_malformed_events_are_kept_not_dropped(dialect: str) -> None:
    conn = Connection(dialect)  # type: ignore[arg-type]
    future = {"type": "response.hologram.delta", "event_id": "e1", "frames": [1, 2]}
    (event,) = conn.receive(json.dumps(future))
    assert isinstance(event, UnknownEvent)
    assert (event.type, event.raw, event.problem) == ("response.hologram.delta", future, None)
    broken = sc.event(
        dialect,
        "response.output_text.delta",
        response_id="r",
        output_index=0,
        content_index=0,
        delta="x",
    )
    (event,) = conn.receive(json.dumps(broken))
    assert isinstance(event, UnknownEvent)
    assert event.problem == "item_id: missing"
    wrong = sc.event(
        dialect, "conversation.item.truncated", item_id="i", content_index=True, audio_end_ms=5
    )
    (event,) = conn.receive(json.dumps(wrong))
    assert event.problem == "content_index: expected int, got bool"  # type: ignore[union-attr]
    (event,) = conn.receive(json.dumps({"no_type": 1}))
    assert isinstance(event, UnknownEvent)
    assert event.problem == "type: not a string"
    assert conn.statistics().events_received == 4


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"str"', b"\xff\xfe"])
def test_unusable_text_is_a_remote_protocol_error(text: str | bytes) -> None:
    conn = Connection()
    with pytest.raises(RemoteProtocolError):
        conn.receive(text)
    # The connection goes on.
    assert isinstance(conn.receive('{"type":"x.y"}')[0], UnknownEvent)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_config_drift_is_reported(dialect: str) -> None:
    conn = Connection(dialect)  # type: ignore[arg-type]
    conn.receive(json.dumps(sc.session_created(dialect)[0]))
    conn.update_session(
        SessionConfig(
            instructions="Be brief.",
            turn_detection=ServerVad(threshold=0.7, silence_duration_ms=400),
        )
    )
    (sent,) = [validate(dialect, t) for t in conn.data_to_send()]
    echoed = json.loads(json.dumps(sent["session"]))
    td = echoed["audio"]["input"]["turn_detection"] if dialect == "ga" else echoed["turn_detection"]
    td["silence_duration_ms"] = 500  # the server chose its own value
    td["threshold"] = 0.699999988079071  # float32 echo: not drift
    del echoed["instructions"]  # ignored
    events = conn.receive(json.dumps(sc.event(dialect, "session.updated", session=echoed)))
    (drift,) = [e for e in events if isinstance(e, ConfigDriftDetected)]
    assert {(d.path, d.kind) for d in drift.drift} == {
        ("instructions", "ignored"),
        (
            "audio.input.turn_detection.silence_duration_ms"
            if dialect == "ga"
            else "turn_detection.silence_duration_ms",
            "changed",
        ),
    }
    assert conn.config.turn_detection == ServerVad(
        threshold=0.699999988079071, silence_duration_ms=500
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_deleting_and_inserting_items_keeps_order(dialect: str) -> None:
    conn = Connection(dialect)  # type: ignore[arg-type]
    for e in sc.user_text_item_events(dialect, "a", "first") + sc.user_text_item_events(
        dialect, "c", "third", previous="a"
    ):
        conn.receive(json.dumps(e))
    for e in sc.user_text_item_events(dialect, "b", "second", previous="a"):
        conn.receive(json.dumps(e))
    for e in sc.user_text_item_events(dialect, "z", "zeroth", previous="root"):
        conn.receive(json.dumps(e))
    assert [i.id for i in conn.conversation] == ["z", "a", "b", "c"]
    events = conn.receive(json.dumps(sc.event(dialect, "conversation.item.deleted", item_id="b")))
    assert isinstance(events[-1], ItemRemoved)
    assert [i.id for i in conn.conversation] == ["z", "a", "c"]


def test_only_assistant_messages_can_be_interrupted() -> None:
    conn = Connection()
    for e in sc.function_call_response("ga", "resp_1", "item_f1", "call_1", "f", "{}"):
        conn.receive(json.dumps(e))
    with pytest.raises(LocalProtocolError, match="only assistant messages"):
        conn.interrupt(played_samples=100, item_id="item_f1")
    with pytest.raises(ValueError, match="played_samples"):
        conn.interrupt(played_samples=-1)


def test_kept_audio_is_bounded() -> None:
    conn = Connection(keep_audio_ms=150)
    for e in sc.audio_response_start("ga", "resp_1", "item_a1") + sc.audio_deltas(
        "ga", "resp_1", "item_a1", [2400, 2400]
    ):
        conn.receive(json.dumps(e))
    part = conn.conversation["item_a1"].content[0]
    assert (part.audio_samples, len(part.audio), part.audio_dropped_samples) == (4800, 3600, 1200)
    first = sc.audio_deltas("ga", "resp_1", "item_a1", [2400])[0]
    expected = np.frombuffer(base64.b64decode(first["delta"]), dtype="<i2")
    assert np.array_equal(part.audio[:2400], expected)


def test_event_ids_are_unique_and_every_sent_event_carries_one() -> None:
    conn = Connection()
    conn.add_user_text("a")
    conn.create_response()
    conn.add_user_text("b")
    conn.create_response({"instructions": "short"})
    wire = [validate("ga", t) for t in conn.data_to_send()]
    ids = [e["event_id"] for e in wire]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_out_of_band_responses_run_beside_the_default_one(dialect: str) -> None:
    conn = Connection(dialect)  # type: ignore[arg-type]
    default = conn.create_response()
    oob = conn.create_response({"conversation": "none", "instructions": "Classify the topic."})
    wire = [validate(dialect, t) for t in conn.data_to_send()]
    assert [e["event_id"] for e in wire] == [default, oob]  # not queued behind the default
    assert wire[1]["response"]["metadata"] == {"realtalk_event_id": oob}

    def deliver(events: list[dict[str, Any]], tag: str) -> None:
        for e in events:
            if e["type"] in ("response.created", "response.done"):
                e["response"]["metadata"] = {"realtalk_event_id": tag}
            conn.receive(json.dumps(e))

    # Out of band, the server sends no conversation.item.* events.
    oob_events = [
        e
        for e in sc.text_response(dialect, "resp_oob", "item_oob", ["sports"])  # type: ignore[arg-type]
        if not e["type"].startswith("conversation.item.")
    ]
    deliver(oob_events, oob)
    assert conn.response_state is ResponseState.REQUESTED  # the default one still pending
    assert "item_oob" not in conn.conversation
    deliver(sc.text_response(dialect, "resp_1", "item_a1", ["Hi"]), default)  # type: ignore[arg-type]
    assert conn.response_state is ResponseState.IDLE
    assert [i.id for i in conn.conversation] == ["item_a1"]


def test_response_done_says_why_a_response_ended() -> None:
    from realtalk.protocol import ResponseDone, parse_server_object

    failed = {
        "type": "failed",
        "error": {"type": "server_error", "code": "x", "message": "the model failed"},
    }
    event = parse_server_object(
        {
            "type": "response.done",
            "event_id": "e1",
            "response": {"id": "r1", "status": "failed", "status_details": failed},
        }
    )
    assert isinstance(event, ResponseDone)
    assert event.status == "failed"
    assert event.status_details == failed
    bare = parse_server_object(
        {"type": "response.done", "event_id": "e2", "response": {"id": "r2", "status": "completed"}}
    )
    assert isinstance(bare, ResponseDone)
    assert bare.status_details == {}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_audio_of_a_cut_item_arriving_after_the_cut_is_dropped(dialect: str) -> None:
    # The server streams faster than real time: deltas sent before it saw the cancel
    # arrive after the interrupt. Played, they would be heard past the truncation point.
    steps = barge_in_steps(dialect, finish_response=False)
    steps.append(client(lambda c: c.interrupt(played_samples=7212)))
    steps += server(sc.audio_deltas(dialect, "resp_1", "item_a1", [2400, 2400], []))
    steps += server(sc.audio_response_start(dialect, "resp_2", "item_a2"))
    steps += server(sc.audio_deltas(dialect, "resp_2", "item_a2", [1200], []))
    conn, events, _ = run_all_ways(dialect, steps)
    delivered = [(e.item_id, len(e.samples)) for e in events if type(e).__name__ == "AudioDelta"]
    assert delivered == [("item_a1", 4800)] * 5 + [("item_a2", 1200)]
    stats = conn.statistics()
    assert stats.audio_dropped_samples == 4800
    assert stats.audio_received_samples == 5 * 4800 + 1200
    assert conn.audio_item() == ("item_a2", 0)
    assert conn.conversation["item_a1"].content[0].audio_samples == 5 * 4800


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_retrieved_items_audio_is_not_kept_in_raw(dialect: str) -> None:
    # An hour of retrieves kept 105 MB of base64 in item.raw (found by the soak).
    conn = Connection(dialect)  # type: ignore[arg-type]
    item = {
        "id": "item_u1",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "audio": "AAAA" * 1000, "transcript": "hi"}],
    }
    conn.receive(
        json.dumps({"type": "conversation.item.retrieved", "event_id": "e1", "item": item})
    )
    kept = conn.conversation["item_u1"]
    assert kept.raw["content"] == [{"type": "input_audio", "transcript": "hi"}]
    assert kept.text == "hi"


# -- the microphone audio behind each committed user item ---------------------------------


def committed_item(dialect: str, item_id: str) -> list[dict[str, Any]]:
    """``input_audio_buffer.committed`` and the user item it made (no VAD events)."""
    return [
        e
        for e in sc.vad_user_turn(dialect, item_id, 0, 0)  # type: ignore[arg-type]
        if "speech" not in e["type"]
    ]


def ramp(start: int, count: int) -> np.ndarray:
    return (np.arange(start, start + count) % 30000).astype(np.int16)


def created_connection(dialect: str, keep_audio_ms: int = 0) -> Connection:
    conn = Connection(dialect, keep_audio_ms=keep_audio_ms)  # type: ignore[arg-type]
    for obj in sc.session_created(dialect):  # type: ignore[arg-type]
        conn.receive_object(obj)
    return conn


@pytest.mark.parametrize("dialect", DIALECTS)
def test_client_commits_keep_what_each_covered_and_a_refused_one_rolls_over(
    dialect: str,
) -> None:
    conn = created_connection(dialect, keep_audio_ms=10_000)
    conn.append_audio(ramp(0, 2400))
    refused = conn.send(InputAudioBufferCommit())
    conn.receive_object(sc.error(dialect, "too short", code="x", caused_by=refused))  # type: ignore[arg-type]
    conn.append_audio(ramp(2400, 4800))
    conn.send(InputAudioBufferCommit())  # covers both appends
    conn.append_audio(ramp(7200, 1000))
    conn.send(InputAudioBufferClear())  # gone from the server's buffer
    conn.append_audio(ramp(8200, 3000))
    conn.send(InputAudioBufferCommit())
    for item_id in ("item_a", "item_b"):
        for obj in committed_item(dialect, item_id):
            conn.receive_object(obj)
    a, b = (conn.conversation[i].content[0] for i in ("item_a", "item_b"))
    assert np.array_equal(a.audio, ramp(0, 7200))
    assert np.array_equal(b.audio, ramp(8200, 3000))
    assert (a.audio_samples, b.audio_samples) == (7200, 3000)
    assert a.audio_dropped_samples == b.audio_dropped_samples == 0


@pytest.mark.parametrize("dialect", DIALECTS)
def test_vad_spans_are_kept_and_audio_older_than_the_bound_is_counted_dropped(
    dialect: str,
) -> None:
    conn = created_connection(dialect, keep_audio_ms=500)
    for start in range(0, 24000, 480):  # 1 s in 20 ms appends
        conn.append_audio(ramp(start, 480))
    for obj in sc.vad_user_turn(dialect, "item_short", 700, 900):  # type: ignore[arg-type]
        conn.receive_object(obj)
    short = conn.conversation["item_short"].content[0]
    assert np.array_equal(short.audio, ramp(16800, 4800))  # 700..900 ms, sample exact
    # Longer than the 500 ms bound, or starting before what the ring still holds:
    # counted, not kept (never half an item).
    for item_id, start_ms, end_ms in (("item_long", 100, 1000), ("item_old", 0, 400)):
        for obj in sc.vad_user_turn(dialect, item_id, start_ms, end_ms):  # type: ignore[arg-type]
            conn.receive_object(obj)
        part = conn.conversation[item_id].content[0]
        samples = (end_ms - start_ms) * 24
        assert (len(part.audio), part.audio_samples, part.audio_dropped_samples) == (
            0,
            samples,
            samples,
        )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_without_keep_audio_input_audio_is_counted_not_kept(dialect: str) -> None:
    conn = created_connection(dialect)
    conn.append_audio(ramp(0, 4800))
    conn.send(InputAudioBufferCommit())
    for obj in committed_item(dialect, "item_a"):
        conn.receive_object(obj)
    part = conn.conversation["item_a"].content[0]
    assert (len(part.audio), part.audio_samples, part.audio_dropped_samples) == (0, 4800, 4800)
