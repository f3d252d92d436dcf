"""Events are built only when someone can see them, and laziness never costs a subscriber an
event of its filter: every subscriber gets every such event, in publish order per execution."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from hive_actors.bench import graphs
from hive_actors.events import AgentEvent, EventType
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.runtime.agent_runtime import RuntimeConfig, create_agent_runtime
from hive_actors.runtime.event_bus import EventBus, open_event_bus

ET = EventType
# what one `seq` execution emits: started, 5 x (node started, state changed, node completed),
# 4 edges, completed
SEQ_EVENTS = 21


def runtime(functions: dict[str, Any] | None = None, **config: Any) -> Any:
    cfg = RuntimeConfig(executor_config=ExecutorConfig(
        functions=functions or graphs.seq_functions(), sync_functions_in_thread=False), **config)
    return create_agent_runtime(graph=graphs.seq_graph(), goal=graphs.GOAL, config=cfg,
                                entry_points=[EntryPointSpec(id="ep", entry_node="n1",
                                                             max_concurrent=100)])


async def test_events_nobody_can_see_are_not_built():
    # before: all 21 events of every execution were built and published
    async with runtime() as rt:
        before = rt.event_bus.stats().published
        for i in range(10):
            assert (await rt.trigger_and_wait("ep", {"k": i})).success
        published = rt.event_bus.stats().published - before
    assert published == 10 * 2  # execution started + completed, kept for replay


async def test_a_subscriber_gets_every_event_of_its_filter_in_order_per_execution():
    async with runtime() as rt:
        seen: dict[str, list[AgentEvent]] = {}
        everything: list[AgentEvent] = []
        rt.subscribe_to_events([ET.NODE_COMPLETED, ET.EDGE_TRAVERSED],
                               lambda e: seen.setdefault(e.execution_id, []).append(e),
                               buffer_size=10_000)
        rt.subscribe_to_events(None, everything.append, buffer_size=10_000)
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(rt.trigger_and_wait, "ep", {"k": i})
        await trio.testing.wait_all_tasks_blocked()
    assert len(seen) == 20
    for events in seen.values():
        assert [e.type for e in events] == [ET.NODE_COMPLETED, ET.EDGE_TRAVERSED] * 4 + [
            ET.NODE_COMPLETED]
        assert [e.node_id for e in events if e.type is ET.NODE_COMPLETED] == [
            "n1", "n2", "n3", "n4", "n5"]
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs)
    # the subscriber of every type sees each execution's full numbered sequence
    by_exec: dict[str, list[int]] = {}
    for e in everything:
        by_exec.setdefault(e.execution_id, []).append(e.seq)
    assert all(seqs == list(range(1, SEQ_EVENTS + 1)) for seqs in by_exec.values())


async def test_a_subscription_made_mid_execution_gets_the_events_that_follow():
    gate = trio.Event()
    async with runtime(graphs.blocking_seq_functions(gate)) as rt:
        eid = await rt.trigger("ep", {"k": 1})
        await trio.testing.wait_all_tasks_blocked()  # blocked inside n3
        got: list[AgentEvent] = []
        async with rt.event_bus.open_subscription([ET.NODE_COMPLETED, ET.STATE_CHANGED],
                                                  execution_id=eid) as sub:
            gate.set()
            async for event in sub:
                got.append(event)
                if event.type is ET.NODE_COMPLETED and event.node_id == "n5":
                    break
    assert [(e.type, e.node_id or e.data["key"]) for e in got] == [
        (ET.STATE_CHANGED, "c"), (ET.NODE_COMPLETED, "n3"),
        (ET.STATE_CHANGED, "d"), (ET.NODE_COMPLETED, "n4"),
        (ET.STATE_CHANGED, "e"), (ET.NODE_COMPLETED, "n5"),
    ]
    # seq numbers the events built for the execution, in publish order
    assert [e.seq for e in got] == sorted(e.seq for e in got)


async def test_unsubscribing_stops_the_building_again():
    async with runtime() as rt:
        sid = rt.subscribe_to_events([ET.NODE_STARTED], lambda e: None)
        before = rt.event_bus.stats().published
        assert (await rt.trigger_and_wait("ep", {"k": 1})).success
        assert rt.event_bus.stats().published - before == 2 + 5
        rt.unsubscribe_from_events(sid)
        before = rt.event_bus.stats().published
        assert (await rt.trigger_and_wait("ep", {"k": 2})).success
        assert rt.event_bus.stats().published - before == 2


async def test_an_execution_filter_does_not_make_other_executions_build_events():
    gate = trio.Event()
    async with runtime(graphs.blocking_seq_functions(gate)) as rt:
        watched = await rt.trigger("ep", {"k": 1})
        other = await rt.trigger("ep", {"k": 2})
        await trio.testing.wait_all_tasks_blocked()  # both blocked inside n3
        got: list[AgentEvent] = []
        rt.subscribe_to_events([ET.NODE_COMPLETED], got.append, execution_id=watched)
        before = rt.event_bus.stats().published
        gate.set()
        await rt.wait_for_result(watched)
        await rt.wait_for_result(other)
        await trio.testing.wait_all_tasks_blocked()
        published = rt.event_bus.stats().published - before
    assert [e.node_id for e in got] == ["n3", "n4", "n5"]
    assert {e.execution_id for e in got} == {watched}
    assert published == 3 + 2  # the watched nodes, and both executions' completion


@pytest.mark.parametrize("history, kept", [("all", SEQ_EVENTS), ("lifecycle", 2), ("none", 0)])
async def test_event_history_config_says_what_is_kept_for_replay(history, kept):
    async with runtime(event_history=history) as rt:
        assert (await rt.trigger_and_wait("ep", {"k": 1})).success
        assert len(rt.event_bus.history()) == kept


async def test_widening_the_history_builds_events_for_it_from_then_on():
    async with open_event_bus() as bus:
        narrow = EventBus(history_types=[ET.EXECUTION_COMPLETED])
        em = narrow.emitter("s", "e")
        assert em.emit_nowait(ET.NODE_STARTED, "n") == 0  # nobody: not built
        narrow.retain_history(None)
        assert em.emit_nowait(ET.NODE_STARTED, "n") == 1
        assert [(off, e.seq) for off, e in narrow.history()] == [(1, 1)]
        assert bus.history_types is None


async def test_an_unknown_history_type_is_refused():
    from hive_actors.runtime.event_bus import UnknownEventTypeError

    with pytest.raises(UnknownEventTypeError, match="nope"):
        EventBus().retain_history(["nope"])
    with pytest.raises(ValueError, match="event_history"):
        RuntimeConfig(event_history="some")


async def test_a_handler_that_unsubscribes_itself_gets_nothing_more_of_its_batch():
    async with open_event_bus() as bus:
        got: list[int] = []
        sub_id = ""

        def once(event: AgentEvent) -> None:
            got.append(event.seq)
            bus.unsubscribe(sub_id)

        sub_id = bus.subscribe(None, once)
        emitter = bus.emitter("s", "e")
        for _ in range(10):  # all buffered before the delivery task runs: one batch
            emitter.emit_nowait(ET.NODE_STARTED, "n")
        await trio.testing.wait_all_tasks_blocked()
    assert got == [1]
