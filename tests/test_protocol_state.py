"""Every row of the two state tables, driven through a real Connection of each dialect.

The response table: every (state, trigger) pair, listed or not, is reached through the
Connection's public calls and server events, and the state and the text sent afterwards
must be what the table says. The interrupt table: every rule, at 24 kHz and 8 kHz.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

import scenarios as sc
from realtalk.protocol import (
    INTERRUPT_RULES,
    RESPONSE_TRANSITIONS,
    Connection,
    InterruptAction,
    ResponseAction,
    ResponseState,
    ResponseTrigger,
    decide_interrupt,
)

DIALECTS = ("ga", "beta")


def sent(conn: Connection) -> list[dict[str, Any]]:
    return [json.loads(text) for text in conn.data_to_send()]


def created(conn: Connection, response_id: str, tag: str | None = None) -> None:
    response: dict[str, Any] = {
        "id": response_id,
        "status": "in_progress",
        "output": [],
        "metadata": None,
    }
    if tag is not None:
        response["metadata"] = {"realtalk_event_id": tag}
    conn.receive(json.dumps(sc.event(conn.dialect, "response.created", response=response)))


def done(conn: Connection, response_id: str | None) -> None:
    response = {"status": "completed", "output": []}
    if response_id is not None:
        response["id"] = response_id
    conn.receive(json.dumps(sc.event(conn.dialect, "response.done", response=response)))


def reach(dialect: str, state: ResponseState) -> tuple[Connection, dict[str, str]]:
    """A connection in ``state``, one request queued unless idle; the ids sent on the way.

    The request in flight (``ids["create"]``) is still unanswered in REQUESTED and
    ACTIVE_REQUESTED; in the other states it has been answered.
    """
    conn = Connection(dialect)  # type: ignore[arg-type]
    ids: dict[str, str] = {}
    ids["create"] = conn.create_response()
    if state is ResponseState.IDLE:
        created(conn, "resp_0", tag=ids["create"])
        done(conn, "resp_0")
    else:
        if state in (ResponseState.ACTIVE, ResponseState.CANCELLING):
            created(conn, "resp_1", tag=ids["create"])
        if state is ResponseState.ACTIVE_REQUESTED:
            created(conn, "resp_1")  # server VAD raced our request
        if state is ResponseState.CANCELLING:
            ids["cancel"] = conn.cancel_response() or ""
        ids["queued"] = conn.create_response({"instructions": "queued"})
    conn.data_to_send()
    assert conn.response_state is state
    return conn, ids


def fire(conn: Connection, trigger: ResponseTrigger, ids: dict[str, str]) -> None:
    d = conn.dialect
    if trigger is ResponseTrigger.CREATE:
        conn.create_response({"instructions": "new"})
    elif trigger is ResponseTrigger.CANCEL:
        conn.cancel_response()
    elif trigger is ResponseTrigger.CREATED_OTHER:
        created(conn, "resp_2")
    elif trigger is ResponseTrigger.CREATED_OURS:
        tag = (
            ids["create"]
            if conn.response_state in (ResponseState.REQUESTED, ResponseState.ACTIVE_REQUESTED)
            else "rt_old"
        )
        created(conn, "resp_2", tag=tag)
    elif trigger is ResponseTrigger.DONE:
        done(conn, conn.active_response_id)
    elif trigger is ResponseTrigger.CREATE_REJECTED_BUSY:
        msg = "Conversation already has an active response"
        conn.receive(
            json.dumps(
                sc.error(
                    d, msg, code="conversation_already_has_active_response", caused_by=ids["create"]
                )
            )
        )
    elif trigger is ResponseTrigger.CREATE_FAILED:
        conn.receive(
            json.dumps(
                sc.error(d, "bad response settings", code="invalid_value", caused_by=ids["create"])
            )
        )
    elif trigger is ResponseTrigger.CANCEL_FAILED:
        cause = ids.get("cancel") or conn.new_event_id()
        if "cancel" not in ids:
            conn._remember(cause, "response.cancel")  # an old cancel, answered late
        conn.receive(
            json.dumps(
                sc.error(
                    d, "no active response", code="response_cancel_not_active", caused_by=cause
                )
            )
        )


PAIRS = list(itertools.product(ResponseState, ResponseTrigger))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("state", "trigger"), PAIRS, ids=[f"{s.value}-{t.value}" for s, t in PAIRS]
)
def test_every_response_transition(
    dialect: str, state: ResponseState, trigger: ResponseTrigger
) -> None:
    conn, ids = reach(dialect, state)
    queued_before = conn.queued_responses
    next_state, action = RESPONSE_TRANSITIONS.get((state, trigger), (state, ResponseAction.NOTHING))
    fire(conn, trigger, ids)
    out = sent(conn)
    types = [e["type"] for e in out]
    if action is ResponseAction.SEND_QUEUED and queued_before:
        # The queued request goes out, with the id it was given when it was queued.
        assert types == ["response.create"]
        assert out[0]["event_id"] == ids["queued"]
        assert out[0]["response"] == {
            "instructions": "queued",
            "metadata": {"realtalk_event_id": ids["queued"]},
        }
        assert conn.response_state is ResponseState.REQUESTED
        return
    assert conn.response_state is next_state
    if action is ResponseAction.SEND_CREATE:
        assert types == ["response.create"]
    elif action is ResponseAction.SEND_CANCEL:
        assert types == ["response.cancel"]
        assert conn.queued_responses == 0
    else:
        assert types == []
    if action is ResponseAction.QUEUE_CREATE:
        assert conn.queued_responses == queued_before + 1
    if action is ResponseAction.REQUEUE_CREATE:
        # The refused request is back at the head of the queue, sent after the done.
        assert conn.queued_responses == queued_before + 1
        done(conn, conn.active_response_id)
        again = sent(conn)
        assert [e["event_id"] for e in again] == [ids["create"]]


def test_table_mentions_only_real_pairs() -> None:
    for (state, trigger), (next_state, action) in RESPONSE_TRANSITIONS.items():
        assert isinstance(state, ResponseState)
        assert isinstance(trigger, ResponseTrigger)
        assert isinstance(next_state, ResponseState)
        assert isinstance(action, ResponseAction)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_never_two_creates_in_flight(dialect: str) -> None:
    """However requests and server events interleave, at most one response.create is
    outstanding, and every request is eventually sent exactly once."""
    conn = Connection(dialect)  # type: ignore[arg-type]
    wanted = [conn.create_response({"instructions": f"r{i}"}) for i in range(5)]
    sent_ids: list[str] = []
    for n in range(1, 6):
        out = sent(conn)
        assert [e["type"] for e in out] == ["response.create"]
        sent_ids.append(out[0]["event_id"])
        created(conn, f"resp_{n}", tag=out[0]["event_id"])
        assert sent(conn) == []
        done(conn, f"resp_{n}")
    assert sent_ids == wanted
    assert sent(conn) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_plain_requests_coalesce_while_busy(dialect: str) -> None:
    conn = Connection(dialect)  # type: ignore[arg-type]
    first = conn.create_response()
    second = conn.create_response()
    third = conn.create_response()
    assert second == third != first
    assert conn.queued_responses == 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_busy_refusal_is_retried_after_each_done(dialect: str) -> None:
    conn = Connection(dialect)  # type: ignore[arg-type]
    rid = conn.create_response()
    conn.data_to_send()
    for attempt in range(3):
        created(conn, f"resp_vad_{attempt}")  # VAD raced us again
        assert conn.response_state is ResponseState.ACTIVE_REQUESTED
        busy = sc.error(
            dialect, "busy", code="conversation_already_has_active_response", caused_by=rid
        )
        conn.receive(json.dumps(busy))
        assert sent(conn) == []  # never while the VAD response runs
        done(conn, f"resp_vad_{attempt}")
        assert [e["event_id"] for e in sent(conn)] == [rid]
    created(conn, "resp_ours", tag=rid)
    done(conn, "resp_ours")
    assert conn.response_state is ResponseState.IDLE
    assert sent(conn) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_cancelled_request_is_not_retried(dialect: str) -> None:
    conn = Connection(dialect)  # type: ignore[arg-type]
    rid = conn.create_response()
    created(conn, "resp_vad")
    assert conn.cancel_response() is not None
    busy = sc.error(dialect, "busy", code="conversation_already_has_active_response", caused_by=rid)
    conn.receive(json.dumps(busy))
    done(conn, "resp_vad")
    assert [e["type"] for e in sent(conn)] == ["response.create", "response.cancel"]
    assert conn.response_state is ResponseState.IDLE


# --- interruption ---------------------------------------------------------------------------

RULE_CASES = [
    # (played, received, audio_done, rate, expected action, expected ms, rule)
    (0, 48_000, False, 24_000, InterruptAction.DELETE, 0, "nothing_heard"),
    (23, 48_000, False, 24_000, InterruptAction.DELETE, 0, "nothing_heard"),
    (7, 8_000, True, 8_000, InterruptAction.DELETE, 0, "nothing_heard"),
    (500, 0, False, 24_000, InterruptAction.DELETE, 0, "nothing_heard"),
    (48_000, 48_000, True, 24_000, InterruptAction.NOTHING, 2000, "playback_finished"),
    (60_000, 48_000, True, 24_000, InterruptAction.NOTHING, 2000, "playback_finished"),
    (24, 48_000, False, 24_000, InterruptAction.TRUNCATE, 1, "partly_heard"),
    (36_012, 48_000, True, 24_000, InterruptAction.TRUNCATE, 1500, "partly_heard"),
    # Still streaming: the device ran dry, every received sample was heard.
    (60_000, 48_000, False, 24_000, InterruptAction.TRUNCATE, 2000, "partly_heard"),
    # G.711 is 8 kHz: 800 samples are 100 ms, not the 33 ms 24 kHz arithmetic gives.
    (800, 8_000, False, 8_000, InterruptAction.TRUNCATE, 100, "partly_heard"),
]


@pytest.mark.parametrize(
    ("played", "received", "audio_done", "rate", "action", "ms", "rule"), RULE_CASES
)
def test_every_interrupt_rule(
    played: int,
    received: int,
    audio_done: bool,
    rate: int,
    action: InterruptAction,
    ms: int,
    rule: str,
) -> None:
    decision = decide_interrupt(
        played_samples=played, received_samples=received, audio_done=audio_done, sample_rate=rate
    )
    assert (decision.action, decision.audio_end_ms, decision.rule) == (action, ms, rule)


def test_every_rule_has_a_case() -> None:
    assert {r[0] for r in INTERRUPT_RULES} == {c[-1] for c in RULE_CASES}


@pytest.mark.parametrize(
    "bad", [{"played_samples": -1}, {"received_samples": -5}, {"sample_rate": 0}]
)
def test_interrupt_rejects_nonsense(bad: dict[str, int]) -> None:
    args = {
        "played_samples": 10,
        "received_samples": 10,
        "audio_done": False,
        "sample_rate": 24_000,
        **bad,
    }
    with pytest.raises(ValueError, match="must"):
        decide_interrupt(**args)  # type: ignore[arg-type]


def test_truncation_never_exceeds_received_or_played() -> None:
    for played in range(0, 2000, 7):
        for received in range(0, 2000, 11):
            for audio_done in (False, True):
                d = decide_interrupt(
                    played_samples=played,
                    received_samples=received,
                    audio_done=audio_done,
                    sample_rate=24_000,
                )
                if d.action is InterruptAction.TRUNCATE:
                    assert d.audio_end_ms >= 1
                    assert d.audio_end_ms * 24 <= min(played, received)
                    assert (d.audio_end_ms + 1) * 24 > min(played, received)


# --- the table against a model server ---------------------------------------------------------


class ModelServer:
    """A Realtime server reduced to its response rules: one response at a time in the
    default conversation; ``response.create`` while one is active is refused with
    ``conversation_already_has_active_response``; ``response.cancel`` with nothing active
    is refused; server VAD may start a response by itself."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.inbox: list[dict[str, Any]] = []  # client events not processed yet
        self.outbox: list[dict[str, Any]] = []  # server events not delivered yet
        self.active: str | None = None
        self.count = 0
        self.answered: list[str] = []  # event ids of creates that started a response

    def _start(self, metadata: Any = None) -> None:
        self.count += 1
        self.active = f"resp_{self.count}"
        response = {"id": self.active, "status": "in_progress", "output": [], "metadata": metadata}
        self.outbox.append(sc.event(self.dialect, "response.created", response=response))  # type: ignore[arg-type]

    def process_one(self) -> None:
        event = self.inbox.pop(0)
        if event["type"] == "response.create":
            if self.active is not None:
                self.outbox.append(
                    sc.error(
                        self.dialect,
                        "busy",
                        code="conversation_already_has_active_response",
                        caused_by=event["event_id"],
                    )
                )  # type: ignore[arg-type]
            else:
                self.answered.append(event["event_id"])
                self._start(event.get("response", {}).get("metadata"))
        elif event["type"] == "response.cancel":
            if self.active is None:
                self.outbox.append(
                    sc.error(
                        self.dialect,
                        "nothing to cancel",
                        code="response_cancel_not_active",
                        caused_by=event["event_id"],
                    )
                )  # type: ignore[arg-type]
            else:
                self.finish("cancelled")

    def finish(self, status: str = "completed") -> None:
        if self.active is not None:
            self.outbox.append(
                sc.event(
                    self.dialect,
                    "response.done",
                    response={"id": self.active, "status": status, "output": []},
                )
            )  # type: ignore[arg-type]
            self.active = None

    def vad(self) -> None:
        if self.active is None:
            self._start()


OPS = ["create", "create_with_settings", "cancel", "process", "deliver", "finish", "vad"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_response_rules_hold_against_a_model_server(dialect: str) -> None:
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=500)
    @given(st.lists(st.sampled_from(OPS), max_size=60))
    # A request made while cancelling waits for the cancelled response's done.
    @example(["create", "process", "deliver", "cancel", "create", "process", "deliver"])
    # Cancelling with nothing active sends nothing.
    @example(["cancel", "create", "process", "deliver", "finish", "deliver", "cancel"])
    def run(ops: list[str]) -> None:
        conn = Connection(dialect)  # type: ignore[arg-type]
        server = ModelServer(dialect)
        requested: list[str] = []
        seen_active = False  # the client's own view, from delivered events
        unanswered: set[str] = set()  # creates sent, neither started nor refused yet
        cancelled_upto = 0

        def pump_client() -> None:
            nonlocal seen_active
            for event in sent(conn):
                if event["type"] == "response.cancel":
                    assert seen_active or unanswered, "response.cancel with nothing to cancel"
                if event["type"] == "response.create":
                    unanswered.add(event["event_id"])
                    # The rule under test: nothing active or in flight, as far as the
                    # client has been told.
                    assert not seen_active, "response.create sent while a response is active"
                    assert not any(e["type"] == "response.create" for e in server.inbox)
                server.inbox.append(event)

        def deliver() -> None:
            nonlocal seen_active
            if server.outbox:
                event = server.outbox.pop(0)
                if event["type"] == "response.created":
                    seen_active = True
                    unanswered.discard(
                        (event["response"]["metadata"] or {}).get("realtalk_event_id")
                    )
                elif event["type"] == "error":
                    unanswered.discard(event["error"]["event_id"])
                elif event["type"] == "response.done":
                    seen_active = False
                conn.receive(json.dumps(event))

        for op in ops:
            if op == "create":
                requested.append(conn.create_response())
            elif op == "create_with_settings":
                requested.append(conn.create_response({"instructions": "x"}))
            elif op == "cancel":
                conn.cancel_response()
                cancelled_upto = len(requested)
            elif op == "process" and server.inbox:
                server.process_one()
            elif op == "deliver":
                deliver()
            elif op == "finish":
                server.finish()
            elif op == "vad":
                server.vad()
            pump_client()
        # Let everything settle: the server answers, finishes, and the client sends.
        for _ in range(200):
            if server.inbox:
                server.process_one()
            elif server.outbox:
                deliver()
            elif server.active is not None:
                server.finish()
            else:
                break
            pump_client()
        assert conn.response_state is ResponseState.IDLE
        assert conn.queued_responses == 0
        # Liveness: every request made after the last cancel started a response (plain
        # requests may coalesce into one another, so compare the distinct ids sent).
        outstanding = set(requested[cancelled_upto:])
        assert outstanding <= set(server.answered) | coalesced(
            requested[cancelled_upto:], server.answered
        )

    run()


def coalesced(requests: list[str], answered: list[str]) -> set[str]:
    """Requests that were folded into another request (same id returned twice)."""
    return {r for r in requests if requests.count(r) > 1 and r in answered}


# The rows whose values the invariants above cannot pin down on their own (a missing
# cancel is not a safety violation, only a response the user no longer wants).
SPEC = {
    (ResponseState.REQUESTED, ResponseTrigger.CANCEL): ResponseAction.SEND_CANCEL,
    (ResponseState.ACTIVE, ResponseTrigger.CANCEL): ResponseAction.SEND_CANCEL,
    (ResponseState.ACTIVE_REQUESTED, ResponseTrigger.CANCEL): ResponseAction.SEND_CANCEL,
    (ResponseState.CANCELLING, ResponseTrigger.CANCEL): ResponseAction.NOTHING,
    (ResponseState.IDLE, ResponseTrigger.CANCEL): ResponseAction.NOTHING,
}


@pytest.mark.parametrize(
    ("pair", "action"), SPEC.items(), ids=lambda v: str(getattr(v, "value", ""))
)
def test_cancel_rows(pair: tuple[ResponseState, ResponseTrigger], action: ResponseAction) -> None:
    assert RESPONSE_TRANSITIONS.get(pair, (pair[0], ResponseAction.NOTHING))[1] is action
