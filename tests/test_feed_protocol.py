"""The feed's wire protocol and the outbox's backpressure rules (pure, no sockets)."""

from __future__ import annotations

import json

import pytest

from hive_actors.feed import protocol as p
from hive_actors.feed.outbox import Outbox
from hive_actors.events import AgentEvent, EventType


def _error_of(frame: str) -> p.Error:
    with pytest.raises(p.ProtocolError) as info:
        p.parse_request(frame)
    return info.value.reply


def test_subscribe_parses_filters_and_since() -> None:
    request = p.parse_request(
        json.dumps({"type": "subscribe", "id": 7, "event_types": ["node_started"],
                    "execution_id": "e1", "since": 3})
    )
    assert request == p.Subscribe(id=7, event_types=(EventType.NODE_STARTED,),
                                  execution_id="e1", since=3)


@pytest.mark.parametrize(
    ("frame", "code", "request_id", "words"),
    [
        ("{not json", p.BAD_JSON, None, "not valid JSON"),
        ("[1, 2]", p.BAD_REQUEST, None, "JSON object"),
        ('{"id": 1}', p.BAD_REQUEST, 1, "no 'type'"),
        ('{"type": "launch_rockets", "id": "x"}', p.UNKNOWN_TYPE, "x", "launch_rockets"),
        ('{"type": "get_stats"}', p.BAD_REQUEST, None, "'id' is required"),
        ('{"type": "subscribe", "id": 2, "event_types": ["nope"]}', p.BAD_REQUEST, 2,
         "event_types[0]"),
        ('{"type": "subscribe", "id": 3, "since": -1}', p.BAD_REQUEST, 3, "since must be from 0 to"),
        ('{"type": "trigger", "id": 4}', p.BAD_REQUEST, 4, "entry_point"),
        ('{"type": "trigger", "id": 5, "entry_point": "x", "surprise": 1}', p.BAD_REQUEST, 5,
         "surprise"),
    ],
)
def test_bad_frames_become_error_replies_naming_the_request(
        frame: str, code: str, request_id: object, words: str) -> None:
    error = _error_of(frame)
    assert (error.code, error.id) == (code, request_id)
    assert words in error.message


def test_encoded_event_carries_bus_offset_and_event_fields() -> None:
    event = AgentEvent(EventType.NODE_STARTED, "default", "e1", "n1", {"x": 1}, seq=4)
    data = json.loads(p.encode(p.EventMessage("s1", 42, event)))
    assert list(data)[0] == "type"
    assert data["type"] == "event" and data["seq"] == 42 and data["subscription"] == "s1"
    assert data["event"]["type"] == "node_started"
    assert data["event"]["seq"] == 4 and data["event"]["node_id"] == "n1"
    assert data["event"]["timestamp"].endswith("+00:00")


def _event(n: int) -> AgentEvent:
    return AgentEvent(EventType.LLM_TEXT_DELTA, "s", "e", data={"n": n}, seq=n)


def _drain(box: Outbox) -> list[p.ServerMessage]:
    out = []
    while (message := box.pop_ready()) is not None:
        out.append(message)
    return out


def test_full_outbox_drops_oldest_and_reports_the_gap_first() -> None:
    box = Outbox(event_capacity=3)
    box.activate("s1")
    for n in range(1, 8):
        box.push_event("s1", n, _event(n))
    messages = _drain(box)
    assert messages[0] == p.EventsDropped(count=4, subscription="s1")
    assert [m.seq for m in messages[1:]] == [5, 6, 7]
    assert box.total_dropped == 4


def test_replies_are_never_dropped_and_go_before_events() -> None:
    box = Outbox(event_capacity=1)
    box.activate("s1")
    box.push_event("s1", 1, _event(1))
    box.push_reply(p.Result(1, "a"))
    box.push_event("s1", 2, _event(2))
    box.push_reply(p.Result(2, "b"))
    kinds = [(m.type, getattr(m, "id", None)) for m in _drain(box)]
    assert kinds == [("result", 1), ("result", 2), ("events_dropped", None), ("event", None)]


def test_upstream_gap_keeps_its_place_among_events() -> None:
    box = Outbox(event_capacity=10)
    box.activate("s1")
    box.push_event("s1", 1, _event(1))
    box.push_gap("s1", 5)
    box.push_event("s1", 7, _event(7))
    assert [m.type for m in _drain(box)] == ["event", "events_dropped", "event"]


def test_unsubscribed_events_are_discarded() -> None:
    box = Outbox(event_capacity=10)
    box.activate("s1")
    box.activate("s2")
    box.push_event("s1", 1, _event(1))
    box.push_event("s2", 2, _event(2))
    box.deactivate("s1")
    box.push_event("s1", 3, _event(3))
    assert [m.subscription for m in _drain(box)] == ["s2"]


async def test_reply_room_waits_until_the_writer_takes_a_reply() -> None:
    import trio
    import trio.testing

    box = Outbox(reply_capacity=1)
    box.push_reply(p.Result(1))
    done = trio.Event()

    async def producer() -> None:
        await box.wait_reply_room()
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert await box.next_message() == p.Result(1)
        await done.wait()
