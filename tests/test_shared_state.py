"""SharedBufferManager: isolation levels, fall-through reads, per-key locking, STATE_CHANGED."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hive_actors.runtime.event_bus import EventBus, EventType
from hive_actors.events import ListSink
from hive_actors.runtime.shared_state import SharedBufferManager, StateScopeError


async def test_scope_is_bound_to_its_execution_and_stream():
    scope = SharedBufferManager().scope_for("exec-1", "webhook", "shared")
    assert (scope.execution_id, scope.stream_id, scope.level) == ("exec-1", "webhook", "shared")


async def test_isolated_executions_each_read_back_their_own_value():
    m = SharedBufferManager()
    a, b = m.scope_for("e1", "s", "isolated"), m.scope_for("e2", "s", "isolated")
    await a.write("answer", 1)
    await b.write("answer", 2)
    assert (a.get("answer"), b.get("answer")) == (1, 2)
    assert m.stream_state.get("s", {}) == {}
    with pytest.raises(StateScopeError, match="'e1' is isolated"):
        await a.write("answer", 3, scope="global")


async def test_isolated_execution_does_not_see_stream_or_global_values():
    m = SharedBufferManager()
    await m.scope_for("e1", "s", "shared").write("k", "shared", scope="global")
    assert m.scope_for("e2", "s", "isolated").get("k", "absent") == "absent"


async def test_shared_reads_fall_through_execution_then_stream_then_global():
    m = SharedBufferManager()
    writer = m.scope_for("e1", "s", "shared")
    await writer.write("g", "global", scope="global")
    await writer.write("k", "from-e1")  # execution scope, published to the stream
    reader = m.scope_for("e2", "s", "shared")
    assert reader.get("g") == "global"
    assert reader.get("k") == "from-e1"
    await reader.write("k", "mine")
    assert reader.get("k") == "mine"
    other_stream = m.scope_for("e3", "other", "shared")
    assert other_stream.get("k") is None and other_stream.get("g") == "global"
    assert reader.snapshot() == {"g": "global", "k": "mine"}


async def test_global_write_is_seen_by_every_execution_of_the_stream():
    m = SharedBufferManager()
    scopes = [m.scope_for(f"e{i}", "s", "shared") for i in range(3)]
    await scopes[0].write("config", {"v": 2}, scope="global")
    assert [s.get("config") for s in scopes] == [{"v": 2}] * 3


async def test_cleanup_execution_removes_its_state_but_not_what_it_published():
    m = SharedBufferManager()
    scope = m.scope_for("exec-1", "s", "shared")
    await scope.write("k", 1)
    m.cleanup_execution("exec-1")
    assert "exec-1" not in m.execution_state
    assert m.scope_for("exec-2", "s", "shared").get("k") == 1


async def test_synchronized_writers_of_a_key_wait_for_a_read_modify_write():
    m = SharedBufferManager()
    a, b = m.scope_for("e1", "s", "synchronized"), m.scope_for("e2", "s", "synchronized")
    await a.write("count", 0, scope="stream")
    order = []

    async def increment(scope, name):
        async with scope.locked("count"):
            value = scope.get("count")
            await trio.sleep(0)  # an await in the middle would lose an update without the lock
            await scope.write("count", value + 1, scope="stream")
            order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(increment, a, "a")
        nursery.start_soon(increment, b, "b")
    assert a.get("count") == 2
    assert sorted(order) == ["a", "b"]
    assert m.stats()["locks"] == 0  # lock table shrinks back


async def test_shared_level_does_not_lock_so_the_same_race_loses_an_update():
    m = SharedBufferManager()
    a, b = m.scope_for("e1", "s", "shared"), m.scope_for("e2", "s", "shared")
    await a.write("count", 0, scope="stream")

    async def increment(scope):
        async with scope.locked("count"):
            value = scope.get("count")
            await trio.sleep(0)
            await scope.write("count", value + 1, scope="stream")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(increment, a)
        nursery.start_soon(increment, b)
    assert a.get("count") == 1


async def test_plain_synchronized_write_waits_while_another_task_holds_the_key():
    m = SharedBufferManager()
    holder, writer = m.scope_for("e1", "s", "synchronized"), m.scope_for("e2", "s", "synchronized")
    release = trio.Event()
    done = []

    async def hold():
        async with holder.locked("k"):
            await release.wait()

    async def write():
        await writer.write("k", "late")
        done.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(write)
        await trio.testing.wait_all_tasks_blocked()
        assert done == [] and m.stream_state["s"].get("k") is None
        assert writer.get("k") == "late"  # the execution-scope part is already written
        release.set()
    assert done == [True] and m.stream_state["s"]["k"] == "late"


async def test_writes_emit_state_changed_with_old_and_new_values():
    sink = ListSink("s", "e1")
    scope = SharedBufferManager().scope_for("e1", "s", "shared", events=sink)
    await scope.write("k", 1)
    await scope.write("k", 2, scope="global")
    assert sink.types() == [EventType.STATE_CHANGED] * 3
    assert [(e.data["scope"], e.data["old_value"], e.data["new_value"]) for e in sink.events] == [
        ("execution", None, 1), ("stream", None, 1), ("global", None, 2)
    ]


async def test_state_changed_goes_through_the_bus_emitter_of_the_execution():
    bus = EventBus()
    scope = SharedBufferManager(bus=bus).scope_for("e1", "s", "isolated")
    await scope.write("k", "v")
    [(_, event)] = bus.history(event_types="state_changed")
    assert (event.stream_id, event.execution_id, event.seq) == ("s", "e1", 1)
    assert event.data["key"] == "k"


async def test_unknown_level_or_scope_is_a_clear_error():
    m = SharedBufferManager()
    with pytest.raises(StateScopeError, match="unknown isolation level 'sharde'"):
        m.scope_for("e1", "s", "sharde")
    with pytest.raises(StateScopeError, match="unknown scope 'galaxy'"):
        await m.scope_for("e1", "s", "shared").write("k", 1, scope="galaxy")
