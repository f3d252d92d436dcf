"""AgentRuntime with the real GraphExecutor: session files, stop midway, resume."""

from __future__ import annotations

import collections
import json

import pytest
import trio
import trio.testing

from hive_actors.bench.graphs import function_line
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.spec import Goal, GraphSpec, NodeSpec
from hive_actors.runtime.agent_runtime import RuntimeConfig, create_agent_runtime
from hive_actors.runtime.execution_stream import EntryPointSpec
from hive_actors.storage.engines import open_reader

GOAL = Goal(id="goal")
KEYS = ["k", "a", "b", "c", "d", "e"]


def five_node_graph() -> GraphSpec:
    return function_line("five", KEYS, "f")


class Work:
    """The node functions; odd ``k`` blocks in n3 until ``release`` is set."""

    def __init__(self) -> None:
        self.calls: collections.Counter[tuple[int, str]] = collections.Counter()
        self.release = trio.Event()
        self.blocked = 0

    def functions(self) -> dict:
        async def f1(k):
            self.calls[(k, "n1")] += 1
            return {"a": k + 1}

        async def f2(a):
            self.calls[(a - 1, "n2")] += 1
            return {"b": a * 2}

        async def f3(b):
            k = b // 2 - 1
            self.calls[(k, "n3")] += 1
            if k % 2 and not self.release.is_set():
                self.blocked += 1
                await self.release.wait()
            return {"c": b + 3}

        async def f4(c):
            return {"d": c * c}

        async def f5(d):
            return {"e": d - 1}

        return {"f1": f1, "f2": f2, "f3": f3, "f4": f4, "f5": f5}


def runtime_for(storage, work: Work, entry_points=None):
    cfg = RuntimeConfig(executor_config=ExecutorConfig(functions=work.functions(),
                                                       sync_functions_in_thread=False))
    return create_agent_runtime(graph=five_node_graph(), goal=GOAL, storage_path=storage,
                                entry_points=entry_points, config=cfg)


async def test_five_node_execution_writes_state_checkpoints_and_logs(tmp_path):
    work = Work()
    async with runtime_for(tmp_path, work) as rt:
        result = await rt.trigger_and_wait("default", {"k": 2})
    assert result.success and result.output["e"] == ((2 + 1) * 2 + 3) ** 2 - 1
    sdir = tmp_path / "sessions" / result.session_id
    st = json.loads((sdir / "state.json").read_text())
    assert st["status"] == "completed" and st["checkpoint_seq"] is not None
    assert len(list((sdir / "checkpoints").glob("cp_*.json"))) >= 4
    summary = json.loads((sdir / "logs" / "summary.json").read_text())
    assert summary["path"] == ["n1", "n2", "n3", "n4", "n5"]


async def test_200_executions_stop_midway_then_resume_to_same_output(tmp_path):
    specs = [EntryPointSpec(id=f"ep{i}", entry_node="n1", max_concurrent=50) for i in range(3)]
    work = Work()
    ids: dict[int, str] = {}
    async with trio.open_nursery() as nursery:
        rt = runtime_for(tmp_path, work, specs)
        await nursery.start(rt.run)
        for k in range(200):
            ids[k] = await rt.trigger(f"ep{k % 3}", {"k": k})
        while work.blocked < 100:
            await trio.testing.wait_all_tasks_blocked()
        await rt.stop()
    assert len(nursery.child_tasks) == 0  # nothing of the runtime is left
    open_reader(tmp_path)  # a stop this big leaves the final files to the journal's replay

    def status(k):
        return json.loads((tmp_path / "sessions" / ids[k] / "state.json").read_text())["status"]

    statuses = {k: status(k) for k in ids}
    assert set(statuses.values()) <= {"completed", "cancelled"}
    cancelled = [k for k, s in statuses.items() if s == "cancelled"]
    # every blocked (odd) one is cancelled; an even one may have been caught mid-write
    assert set(cancelled) >= {k for k in range(200) if k % 2}

    work2 = Work()
    work2.release.set()
    async with runtime_for(tmp_path, work2, specs) as rt2:
        results = {}

        async def resume(k):
            results[k] = await rt2.resume(ids[k])

        async with trio.open_nursery() as n:
            for k in cancelled:
                n.start_soon(resume, k)
        resumed_calls = dict(work2.calls)
        fresh = await rt2.trigger_and_wait("ep0", {"k": 1})
    open_reader(tmp_path)  # the files a view left to the journal at stop
    for k in cancelled:
        r = results[k]
        assert r.success and r.status == "completed", r
        assert r.output["e"] == ((k + 1) * 2 + 3) ** 2 - 1
        if k % 2:  # stopped in n3: n1 and n2 had completed and never run again
            assert (k, "n1") not in resumed_calls and (k, "n2") not in resumed_calls
        assert status(k) == "completed"  # no stale status after resume
    assert results[1].output == fresh.output


async def test_bad_input_and_unknown_nodes_are_typed_errors(tmp_path):
    from hive_actors.errors import InputDataError, UnknownNodeError

    rt = create_agent_runtime(graph=seq_graph_for_errors(), goal=Goal(id="g"),
                              storage_path=tmp_path)
    async with rt:
        for bad in ("hello", ["a"], {1: "x"}):
            with pytest.raises(InputDataError, match="entry point 'default': input_data must"):
                await rt.trigger("default", bad)
        with pytest.raises(InputDataError, match=r"input_data\['x'\] is a object"):
            await rt.trigger("default", {"x": object()})
        with pytest.raises(UnknownNodeError, match="no node 'ghost' in graph"):
            await rt.inject_input("ghost", "hi")
        assert await rt.inject_input("a", "hi") is False  # a real node, not waiting
        assert not (tmp_path / "sessions").exists() or not any((tmp_path / "sessions").iterdir())


def seq_graph_for_errors():
    from hive_actors.graph.spec import GraphSpec

    return GraphSpec(id="g", entry_node="a", nodes=(NodeSpec(id="a", node_type="function",
                                                             function="builtins:dict"),))


async def test_after_stop_begins_no_execution_starts_a_node_it_had_not_started(tmp_path):
    """Async function nodes, many executions: once stop() is called, no node call begins
    (the executor passes a cancellation point before every node call)."""
    state = {"calls": 0, "late": 0, "stopping": False}
    reached = trio.Event()

    def step(key_in: str, key_out: str):
        async def fn(**kwargs):
            state["calls"] += 1
            if state["stopping"]:
                state["late"] += 1  # began after stop(): its side effects would repeat
            if state["calls"] >= 200:
                reached.set()
            await trio.sleep(0)
            return {key_out: kwargs[key_in] + 1}

        return fn

    functions = {f"f{i}": step(KEYS[i - 1], KEYS[i]) for i in range(1, 6)}
    cfg = RuntimeConfig(executor_config=ExecutorConfig(functions=functions,
                                                       sync_functions_in_thread=False))
    specs = [EntryPointSpec(id="ep", entry_node="n1", max_concurrent=150)]
    rt = create_agent_runtime(graph=five_node_graph(), goal=GOAL, storage_path=tmp_path,
                              entry_points=specs, config=cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(rt.run)
        for k in range(150):
            await rt.trigger("ep", {"k": k})
        await reached.wait()
        state["stopping"] = True
        await rt.stop()
    assert state["calls"] < 150 * 5  # stopped midway
    assert state["late"] == 0
