"""Checkpoints at node boundaries; cancelling mid-node and resuming gives the same result."""

from __future__ import annotations

import pytest
import trio

from hive_actors.graph.checkpoint_config import CheckpointConfig
from hive_actors.graph.result import SessionState
from hive_actors.events import EventType, ListSink
from hive_actors.storage.checkpoint_store import CheckpointStore

from executor_support import GOAL, chain, edge, executor, fn, graph

NODES = ("n0", "n1", "n2", "n3", "n4")


def five_node_graph():
    nodes = [fn("n0", ("seed",), ("v0",))]
    nodes += [fn(f"n{i}", (f"v{i-1}",), (f"v{i}",)) for i in range(1, 5)]
    return graph(nodes, chain(*NODES))


def functions(block_at: str | None, calls: dict[str, int], entered: trio.Event | None = None):
    def make(i: int):
        async def step(**kw):
            calls[f"n{i}"] = calls.get(f"n{i}", 0) + 1
            if f"n{i}" == block_at:
                entered.set()
                await trio.sleep_forever()
            (prev,) = kw.values()
            return {f"v{i}": prev * 3 + i}
        return step
    return {f"n{i}": make(i) for i in range(5)}


async def uninterrupted_output():
    result = await executor(functions(None, {})).execute(five_node_graph(), GOAL, {"seed": 1})
    assert result.success
    return result.output


@pytest.mark.parametrize("on_start", [False, True])
@pytest.mark.parametrize("block_index", range(5))
async def test_cancel_mid_node_then_resume_matches_uninterrupted_run(tmp_path, block_index, on_start):
    expected = await uninterrupted_output()
    block_at = NODES[block_index]
    calls: dict[str, int] = {}
    config = CheckpointConfig(checkpoint_on_node_start=on_start)
    entered = trio.Event()
    ex = executor(functions(block_at, calls, entered), storage_path=tmp_path)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ex.execute, five_node_graph(), GOAL, {"seed": 1}, None, config)
            await entered.wait()
            assert ex.current_node_id == block_at
            scope.cancel()
    store = CheckpointStore(tmp_path)
    latest = store.latest()  # readable, not torn
    if latest is None:
        assert block_index == 0 and not on_start
        state = None
    else:
        assert latest.state.next_nodes == (block_at,)
        assert latest.state.execution_path == NODES[:block_index]
        assert block_at not in latest.state.node_visit_counts or latest.state.node_visit_counts[block_at] == 0
        state = latest.state.to_dict()
    resumed = executor(functions(None, calls), storage_path=tmp_path)
    result = await resumed.execute(five_node_graph(), GOAL, {"seed": 1}, state, config)
    assert result.success and result.output == expected
    assert result.path == NODES
    assert result.node_visit_counts == {n: 1 for n in NODES}
    for i, n in enumerate(NODES):  # completed nodes never ran again; the one in flight ran twice
        assert calls[n] == (2 if i == block_index else 1)


async def test_checkpoints_are_numbered_and_emit_events(tmp_path):
    sink = ListSink()
    ex = executor(functions(None, {}), storage_path=tmp_path, events=sink)
    result = await ex.execute(five_node_graph(), GOAL, {"seed": 1})
    cps = CheckpointStore(tmp_path).load_all()
    assert [cp.seq for cp in cps] == [1, 2, 3, 4, 5]
    assert [cp.node_id for cp in cps] == list(NODES)
    assert cps[-1].state.next_nodes == () and cps[-1].state.memory == result.output
    saved = [e for e in sink.events if e.type == EventType.CHECKPOINT_SAVED]
    assert [e.data["seq"] for e in saved] == [1, 2, 3, 4, 5]


async def test_disabled_checkpoints_write_nothing(tmp_path):
    ex = executor(functions(None, {}), storage_path=tmp_path)
    await ex.execute(five_node_graph(), GOAL, {"seed": 1}, None, CheckpointConfig(enabled=False))
    assert CheckpointStore(tmp_path).latest() is None


async def test_pause_writes_a_resumable_checkpoint(tmp_path):
    g = graph([fn("a"), fn("p"), fn("c", outputs=("done",))], chain("a", "p", "c"), pause_nodes=("p",))
    ex = executor({"a": dict, "p": dict, "c": lambda: {"done": True}}, storage_path=tmp_path)
    first = await ex.execute(g, GOAL, {})
    latest = CheckpointStore(tmp_path).latest()
    assert latest.kind == "pause" and latest.state.resume_after == "p"
    again = await ex.execute(g, GOAL, {}, session_state=latest.state.to_dict())
    assert again.output["done"] is True and first.paused_at == "p"


async def test_fan_out_checkpoint_lists_every_pending_branch(tmp_path):
    release = trio.Event()
    fast_saved = trio.Event()

    class Sink(ListSink):
        async def emit(self, type, node_id=None, **data):
            await super().emit(type, node_id, **data)
            if type == EventType.CHECKPOINT_SAVED and node_id == "fast":
                fast_saved.set()

    async def slow():
        await release.wait()

    g = graph([fn("s"), fn("fast"), fn("slow"), fn("j", outputs=("ok",))],
              [edge("s", "fast"), edge("s", "slow"), edge("fast", "j"), edge("slow", "j")])
    funcs = {"s": dict, "fast": dict, "slow": slow, "j": lambda: {"ok": 1}}
    ex = executor(funcs, storage_path=tmp_path, events=Sink())
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ex.execute, g, GOAL, {})
            await fast_saved.wait()
            scope.cancel()
    latest = CheckpointStore(tmp_path).latest()
    assert latest.state.next_nodes == ("slow",)  # fast finished, slow in flight
    release.set()
    result = await executor(funcs, storage_path=tmp_path).execute(g, GOAL, {}, latest.state.to_dict())
    assert result.success and result.output["ok"] == 1 and result.path[-2:] == ("slow", "j")


def test_checkpoint_state_round_trips():
    state = SessionState(memory={"a": 1}, next_nodes=("x", "y"))
    assert SessionState.from_dict(state.to_dict()) == state


async def test_restore_continues_from_latest_checkpoint(tmp_path):
    calls: dict[str, int] = {}
    entered = trio.Event()
    ex = executor(functions("n3", calls, entered), storage_path=tmp_path)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ex.execute, five_node_graph(), GOAL, {"seed": 1})
            await entered.wait()
            scope.cancel()
    result = await executor(functions(None, calls), storage_path=tmp_path).restore(five_node_graph(), GOAL)
    assert result.success and result.output == await uninterrupted_output()
    assert calls["n0"] == 1 and calls["n3"] == 2


async def test_failed_state_resumes_at_the_failed_node():
    from executor_support import Flaky

    bad = Flaky(1)
    g = graph([fn("a"), fn("b")], chain("a", "b"))
    ex = executor({"a": dict, "b": bad})
    first = await ex.execute(g, GOAL, {})
    assert not first.success and first.session_state["next_nodes"] == ["b"]
    second = await ex.execute(g, GOAL, {}, session_state=first.session_state)
    assert second.success and second.path == ("a", "b", "b")
