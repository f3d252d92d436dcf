"""EventBus: ordering, bounded buffers, backpressure, isolation of handlers, filters, waiting."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hive_actors.errors import RuntimeStateError
from hive_actors.runtime.event_bus import (
    AgentEvent,
    EventBus,
    EventType,
    EventWaitTimeout,
    UnknownEventTypeError,
    open_event_bus,
)

ET = EventType


def ev(type: EventType = ET.NODE_STARTED, stream: str = "s", execution: str = "e",
       node: str | None = None, **data) -> AgentEvent:
    return AgentEvent(type=type, stream_id=stream, execution_id=execution, node_id=node, data=data)


def all_task_names() -> list[str]:
    names, stack = [], [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        names.append(task.name)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return names


# ---- ordering and delivery -----------------------------------------------------------------


async def test_every_subscriber_sees_one_executions_events_in_publish_order():
    async with open_event_bus() as bus:
        seen: dict[str, list[int]] = {"sync": [], "async": []}

        async def slow_async(event):
            await trio.sleep(0)
            seen["async"].append(event.seq)

        bus.subscribe(None, lambda e: seen["sync"].append(e.seq))
        bus.subscribe(None, slow_async)
        em = bus.emitter("s", "e1")
        for i in range(50):
            await em.emit(ET.LLM_TEXT_DELTA, "n", content=str(i))
        await trio.testing.wait_all_tasks_blocked()
        assert seen["sync"] == list(range(1, 51))
        assert seen["async"] == list(range(1, 51))


async def test_emitter_numbers_events_per_execution_and_is_shared_while_held():
    async with open_event_bus() as bus:
        a = bus.emitter("s", "e1")
        assert bus.emitter("s", "e1") is a
        b = bus.emitter("s", "e2")
        await a.emit(ET.EXECUTION_STARTED)
        await b.emit(ET.EXECUTION_STARTED)
        await a.emit(ET.NODE_STARTED, "n1", attempt=1)
        seqs = [(e.execution_id, e.seq) for _, e in bus.history()]
        assert seqs == [("e1", 1), ("e2", 1), ("e1", 2)]
        assert bus.history()[-1][1].data == {"attempt": 1}


async def test_subscriber_for_execution_started_gets_exactly_one_delivery():
    async with open_event_bus() as bus:
        got = []
        bus.subscribe(ET.EXECUTION_STARTED, got.append)
        bus.publish_nowait(ev(ET.EXECUTION_STARTED, stream="webhook"))
        bus.publish_nowait(ev(ET.EXECUTION_COMPLETED, stream="webhook"))
        await trio.testing.wait_all_tasks_blocked()
        assert [(e.type, e.stream_id) for e in got] == [(ET.EXECUTION_STARTED, "webhook")]


# ---- bounded buffers -----------------------------------------------------------------------


async def test_full_lossy_buffer_drops_oldest_and_reports_the_count_before_next_event():
    bus = EventBus()
    async with bus.open_subscription(buffer_size=3) as sub:
        for i in range(10):
            bus.publish_nowait(ev(i=i))
        first = await sub.receive()
        assert first.type is ET.EVENTS_DROPPED
        assert first.data == {"count": 7, "subscription_id": sub.id}
        rest = [(await sub.receive()).data["i"] for _ in range(3)]
        assert rest == [7, 8, 9]
        assert sub.last_offset == 10
        assert bus.stats().dropped == 7
        assert bus.stats().subscriptions[sub.id].dropped == 7


async def test_blocked_handler_never_slows_publishers_or_other_subscribers():
    async with open_event_bus() as bus:
        release = trio.Event()
        blocked_got, fast_got = [], []

        async def blocked(event):
            blocked_got.append(event)
            await release.wait()

        blocked_id = bus.subscribe(None, blocked, buffer_size=5)
        bus.subscribe(None, fast_got.append)
        await bus.publish(ev(i=0))
        await trio.testing.wait_all_tasks_blocked()  # the blocked handler now holds event 0
        for i in range(1, 100):
            await bus.publish(ev(i=i))  # would hang here if publish awaited the handler
        await trio.testing.wait_all_tasks_blocked()
        assert len(fast_got) == 100
        assert len(blocked_got) == 1
        assert bus.stats().subscriptions[blocked_id].dropped == 100 - 1 - 5
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert blocked_got[1].type is ET.EVENTS_DROPPED
        assert blocked_got[1].data["count"] == 94
        assert [e.data["i"] for e in blocked_got[2:]] == [95, 96, 97, 98, 99]


async def test_lossless_subscription_applies_backpressure_to_publish_only():
    bus = EventBus()
    async with bus.open_subscription(lossless=True, buffer_size=2) as sub:
        published = []

        async def publisher():
            for i in range(5):
                await bus.publish(ev(i=i))
                published.append(i)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(publisher)
            await trio.testing.wait_all_tasks_blocked()
            assert published == [0, 1]  # buffer full: the third publish waits
            bus.publish_nowait(ev(i=-1))  # never waits: over-fills instead of losing
            received = [await sub.receive() for _ in range(2)]
            await trio.testing.wait_all_tasks_blocked()
            assert published == [0, 1, 2]  # room for exactly one more: [-1, 2]
            while len(received) < 6:
                received.append(await sub.receive())
        assert [e.data["i"] for e in received] == [0, 1, -1, 2, 3, 4]
        stats = bus.stats().subscriptions[sub.id]
        assert (stats.dropped, stats.overfilled) == (0, 1)


async def test_raising_handler_is_reported_isolated_and_keeps_its_subscription():
    async with open_event_bus() as bus:
        calls, reports = [], []

        def flaky(event):
            calls.append(event.type)
            if event.data.get("fail"):
                raise ValueError("bad payload")

        flaky_id = bus.subscribe([ET.NODE_STARTED, ET.HANDLER_FAILED], flaky)
        bus.subscribe(ET.HANDLER_FAILED, reports.append)
        bus.publish_nowait(ev(fail=True))
        bus.publish_nowait(ev())
        await trio.testing.wait_all_tasks_blocked()
        assert calls == [ET.NODE_STARTED, ET.NODE_STARTED]  # no HANDLER_FAILED to itself
        assert len(reports) == 1
        assert reports[0].data["subscription_id"] == flaky_id
        assert reports[0].data["error_type"] == "ValueError"
        assert bus.stats().handler_errors == 1


async def test_handlers_failing_on_failure_reports_do_not_ping_pong():
    async with open_event_bus() as bus:
        def always_fails(event):
            raise RuntimeError("nope")

        bus.subscribe(None, always_fails)
        bus.subscribe(None, always_fails)
        bus.publish_nowait(ev())
        await trio.testing.wait_all_tasks_blocked()
        # each fails on the event, then each fails once on the other's report: 4, then quiet
        assert bus.stats().handler_errors == 4
        assert bus.stats().published == 3


async def test_handler_that_publishes_into_its_own_full_lossless_buffer_does_not_deadlock():
    async with open_event_bus() as bus:
        seen = []

        async def echo(event):
            seen.append(event.data["n"])
            if event.data["n"] < 5:
                await bus.publish(ev(n=event.data["n"] + 1))

        bus.subscribe(None, echo, lossless=True, buffer_size=1)
        await bus.publish(ev(n=0))
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [0, 1, 2, 3, 4, 5]


async def test_publish_delivers_inside_a_cancelled_scope_when_nothing_is_full():
    bus = EventBus()
    async with bus.open_subscription() as sub:
        with trio.CancelScope() as scope:
            scope.cancel()
            await bus.publish(ev(ET.EXECUTION_CANCELLED))
        assert sub.buffer and sub.buffer[0][1].type is ET.EXECUTION_CANCELLED


# ---- filters -------------------------------------------------------------------------------


async def test_filters_select_by_type_stream_execution_and_node():
    async with open_event_bus() as bus:
        by = {k: [] for k in ("stream", "execution", "node", "types")}
        bus.subscribe(None, by["stream"].append, stream_id="webhook")
        bus.subscribe(None, by["execution"].append, execution_id="e2")
        bus.subscribe(None, by["node"].append, node_id="n1")
        bus.subscribe(["node_completed", ET.NODE_FAILED], by["types"].append)
        bus.publish_nowait(ev(stream="api", execution="e1", node="n1"))
        bus.publish_nowait(ev(ET.NODE_COMPLETED, stream="webhook", execution="e2", node="n2"))
        bus.publish_nowait(ev(ET.NODE_FAILED, stream="api", execution="e2"))
        await trio.testing.wait_all_tasks_blocked()
        assert [e.type for e in by["stream"]] == [ET.NODE_COMPLETED]
        assert [e.type for e in by["execution"]] == [ET.NODE_COMPLETED, ET.NODE_FAILED]
        assert [e.stream_id for e in by["node"]] == ["api"]
        assert [e.type for e in by["types"]] == [ET.NODE_COMPLETED, ET.NODE_FAILED]


async def test_unknown_event_type_name_is_rejected_at_subscribe_time():
    bus = EventBus()
    with pytest.raises(UnknownEventTypeError, match="'node_exploded'"):
        bus.subscribe(["node_started", "node_exploded"], print)
    with pytest.raises(UnknownEventTypeError):
        await bus.wait_for("nope", timeout=0)
    assert bus.stats().subscriptions == {}


async def test_has_subscribers_answers_for_an_event_with_given_fields():
    bus = EventBus()
    assert not bus.has_subscribers(ET.CLIENT_INPUT_REQUESTED, stream_id="s", execution_id="e")
    async with bus.open_subscription(ET.CLIENT_INPUT_REQUESTED, execution_id="e"):
        assert bus.has_subscribers("client_input_requested", stream_id="s", execution_id="e")
        assert not bus.has_subscribers(ET.CLIENT_INPUT_REQUESTED, execution_id="other")
    assert not bus.has_subscribers(ET.CLIENT_INPUT_REQUESTED, stream_id="s", execution_id="e")


# ---- wait_for, history ---------------------------------------------------------------------


async def test_wait_for_returns_a_later_matching_event():
    async with open_event_bus() as bus, trio.open_nursery() as nursery:
        async def later():
            await trio.sleep(0.5)
            bus.publish_nowait(ev(ET.EXECUTION_COMPLETED, execution="other"))
            bus.publish_nowait(ev(ET.EXECUTION_COMPLETED, execution="e1", output=1))
            bus.publish_nowait(ev(ET.EXECUTION_COMPLETED, execution="e1", output=2))

        nursery.start_soon(later)
        got = await bus.wait_for(ET.EXECUTION_COMPLETED, timeout=1, execution_id="e1")
        assert got.data == {"output": 1}


async def test_wait_for_times_out_with_a_typed_error(autojump_clock):
    bus = EventBus()
    start = trio.current_time()
    with pytest.raises(EventWaitTimeout, match="execution_completed execution_id='e1'"):
        await bus.wait_for(ET.EXECUTION_COMPLETED, timeout=30, execution_id="e1")
    assert trio.current_time() - start == pytest.approx(30)
    with pytest.raises(trio.TooSlowError):  # also catchable as trio's own timeout error
        await bus.wait_for(ET.EXECUTION_COMPLETED, timeout=0)
    assert trio.current_time() - start == pytest.approx(30)  # timeout=0 did not wait
    assert bus.stats().subscriptions == {}


async def test_wait_for_since_an_offset_sees_events_published_before_the_call():
    bus = EventBus()
    mark = bus.next_offset
    bus.publish_nowait(ev(ET.EXECUTION_COMPLETED, execution="e1"))
    got = await bus.wait_for(ET.EXECUTION_COMPLETED, timeout=0, since=mark, execution_id="e1")
    assert got.execution_id == "e1"


async def test_wait_for_none_waits_until_the_bus_stops():
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        with pytest.raises(RuntimeStateError, match="stopped while waiting"):
            nursery.start_soon(_stop_soon, bus)
            await bus.wait_for(ET.EXECUTION_COMPLETED, timeout=None)


async def _stop_soon(bus: EventBus) -> None:
    await trio.testing.wait_all_tasks_blocked()
    bus.stop()


async def test_history_replays_since_an_offset_and_trims_oldest_in_constant_space():
    bus = EventBus(max_history=5)
    for i in range(8):
        bus.publish_nowait(ev(ET.NODE_STARTED if i % 2 else ET.NODE_COMPLETED, i=i))
    assert [off for off, _ in bus.history()] == [4, 5, 6, 7, 8]
    assert [e.data["i"] for _, e in bus.history(since=6)] == [5, 6, 7]
    assert [off for off, _ in bus.history(since=5, event_types="node_started")] == [6, 8]
    assert bus.history(since=100) == []
    assert len(bus.history(limit=2)) == 2


async def test_open_subscription_since_replays_history_then_continues_live():
    bus = EventBus()
    bus.publish_nowait(ev(i=0))
    bus.publish_nowait(ev(i=1))
    async with bus.open_subscription(since=2) as sub:
        bus.publish_nowait(ev(i=2))
        assert [(await sub.receive()).data["i"] for _ in range(2)] == [1, 2]


# ---- unsubscribe and lifetime --------------------------------------------------------------


async def test_unsubscribe_stops_delivery_and_cancels_a_running_handler():
    async with open_event_bus() as bus:
        got, cancelled = [], []

        async def handler(event):
            got.append(event)
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                cancelled.append(True)
                raise

        sub_id = bus.subscribe(None, handler)
        bus.publish_nowait(ev())
        bus.publish_nowait(ev())
        await trio.testing.wait_all_tasks_blocked()
        assert bus.unsubscribe(sub_id) is True
        bus.publish_nowait(ev())
        await trio.testing.wait_all_tasks_blocked()
        assert len(got) == 1 and cancelled == [True]
        assert bus.unsubscribe(sub_id) is False
        assert sub_id not in bus.stats().subscriptions
        assert not any(name.endswith("EventBus._deliver") for name in all_task_names())


async def test_no_delivery_task_outlives_the_bus():
    async with open_event_bus() as bus:
        bus.subscribe(None, lambda e: None)

        async def stuck(event):
            await trio.sleep_forever()

        bus.subscribe(None, stuck)
        bus.publish_nowait(ev())
        await trio.testing.wait_all_tasks_blocked()
        assert sum(n.endswith("EventBus._deliver") for n in all_task_names()) == 2
    assert not any(n.endswith("EventBus._deliver") for n in all_task_names())
    assert bus.closed
    with pytest.raises(RuntimeStateError):
        bus.subscribe(None, print)


async def test_subscription_iterator_drains_then_ends_when_the_bus_stops():
    async with trio.open_nursery() as nursery:
        bus = await nursery.start(EventBus().run)
        async with bus.open_subscription() as sub:
            bus.publish_nowait(ev(i=1))
            bus.stop()
            await trio.testing.wait_all_tasks_blocked()
            assert [e.data["i"] async for e in sub] == [1]


async def test_handlers_subscribed_before_run_start_when_the_bus_runs():
    bus = EventBus()
    got = []
    bus.subscribe(None, got.append)
    bus.publish_nowait(ev())
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await trio.testing.wait_all_tasks_blocked()
        assert len(got) == 1
        bus.stop()
    with pytest.raises(RuntimeStateError, match="twice"):
        await bus.run()
