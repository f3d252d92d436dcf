"""The in-memory execution path: executions leave no reference cycles behind, ids stay unique
under load, and handler subscriptions receive everything buffered when they wake."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
import trio
import trio.testing

from hive_actors.bench import graphs
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.llm.scripted import ScriptedLLM
from hive_actors.runtime.agent_runtime import RuntimeConfig, create_agent_runtime
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.runtime.event_bus import EventBus
from hive_actors.events import EventType
from hive_actors.storage import session_store


def runtime(graph: Any, functions: dict[str, Any], llm: Any = None) -> Any:
    config = RuntimeConfig(executor_config=ExecutorConfig(functions=functions,
                                                          sync_functions_in_thread=False))
    return create_agent_runtime(graph=graph, goal=graphs.GOAL, llm=llm, config=config,
                                entry_points=[EntryPointSpec(id="ep", entry_node=graph.entry_node,
                                                             max_concurrent=50)])


async def cyclic_garbage_after(rt: Any, runs: int) -> int:
    """hive_actors objects that only the cyclic GC could free, left by ``runs`` executions
    (run one at a time). Objects of other libraries (threads or loops of earlier tests
    finishing meanwhile) are not counted: they made a plain count flaky."""
    for i in range(3):  # first runs fill caches
        assert (await rt.trigger_and_wait("ep", {"k": i})).success
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in range(runs):
            assert (await rt.trigger_and_wait("ep", {"k": i})).success
        gc.collect()
        return sum(1 for o in gc.garbage if type(o).__module__.startswith("hive_actors"))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


# An execution that left a reference cycle would leave at least one of our objects per
# execution; fewer than one per execution in all means none did.


async def test_function_graph_executions_leave_no_reference_cycles():
    async with runtime(graphs.seq_graph(), graphs.seq_functions()) as rt:
        assert await cyclic_garbage_after(rt, 40) < 40


async def test_fan_out_executions_leave_no_reference_cycles():
    async with runtime(graphs.par_graph(), graphs.par_functions()) as rt:
        assert await cyclic_garbage_after(rt, 40) < 40


async def test_model_driven_executions_leave_no_reference_cycles():
    llm = ScriptedLLM(autopilot=True)
    async with runtime(graphs.llm_seq_graph(), {}, llm=llm) as rt:
        assert await cyclic_garbage_after(rt, 20) < 20


async def test_a_repeated_random_id_is_not_given_to_a_second_live_execution(monkeypatch):
    # the random part repeats: the second execution must still get another id
    suffixes = iter(["aaaaaaaa"] * 3 + ["bbbbbbbb"])
    monkeypatch.setattr(session_store.secrets, "token_hex", lambda n: next(suffixes))
    gate = trio.Event()
    functions = graphs.blocking_seq_functions(gate)
    async with runtime(graphs.seq_graph(), functions) as rt:
        first = await rt.trigger("ep", {"k": 1})
        second = await rt.trigger("ep", {"k": 2})
        gate.set()
        results = [await rt.wait_for_result(first), await rt.wait_for_result(second)]
    assert first != second
    assert [r.success for r in results] == [True, True]
    assert [r.output["e"] for r in results] == [6, 7]


async def test_a_handler_gets_every_buffered_event_when_it_wakes():
    bus = EventBus(default_buffer_size=100)
    seen: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        bus.subscribe(None, lambda e: seen.append(e.seq))
        emitter = bus.emitter("s", "x")
        for _ in range(80):  # more than one scheduler pass's worth, published at once
            emitter.emit_nowait(EventType.NODE_STARTED, "n")
        await trio.testing.wait_all_tasks_blocked()
        bus.stop()
    assert seen == list(range(1, 81))
    assert bus.stats().dropped == 0


def test_a_record_given_its_owner_does_not_look_up_this_process(monkeypatch):
    # before: setdefault evaluated current_owner() (reads /proc) for every record anyway
    owner = session_store.current_owner()

    def refuse() -> None:
        raise AssertionError("current_owner() called although an owner was given")

    monkeypatch.setattr(session_store, "current_owner", refuse)
    assert session_store.SessionRecord.new("s1", agent_name="a", owner=owner).owner == owner


async def test_a_new_session_does_not_scan_for_checkpoints(tmp_path, monkeypatch):
    # before: every new execution listed its (not yet existing) checkpoints folder
    from hive_actors.storage import checkpoint_store

    scans: list[object] = []
    real = checkpoint_store.CheckpointStore._entries  # allow-private: wrapped to count scans

    def counting(self: Any) -> Any:
        scans.append(self)
        return real(self)

    monkeypatch.setattr(checkpoint_store.CheckpointStore, "_entries", counting)
    config = RuntimeConfig(executor_config=ExecutorConfig(functions=graphs.seq_functions(),
                                                          sync_functions_in_thread=False))
    rt = create_agent_runtime(graph=graphs.seq_graph(), goal=graphs.GOAL, config=config,
                              storage_path=tmp_path,
                              entry_points=[EntryPointSpec(id="ep", entry_node="n1")])
    async with rt:
        for i in range(3):
            assert (await rt.trigger_and_wait("ep", {"k": i})).success
    assert scans == []


def _kept_by_us() -> tuple[int, tracemalloc.Snapshot]:
    """(live objects of hive_actors' own types, live memory blocks that hive_actors code
    allocated), after a collect. Other libraries' objects (threads or loops of earlier tests
    still finishing) are not counted: they would make the count flaky."""
    # the ids issued in the current second are kept (to never repeat one): a second's worth
    session_store._issued.clear()
    gc.collect()
    ours = 0
    for o in gc.get_objects():
        module = type(o).__module__
        ours += isinstance(module, str) and module.startswith("hive_actors")
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*/hive_actors/*")])
    return ours, snapshot


@pytest.mark.parametrize("graph, functions, subscribed", [
    (graphs.seq_graph, graphs.seq_functions, False),
    (graphs.par_graph, graphs.par_functions, True),
])
async def test_finished_executions_leave_a_bounded_number_of_objects(graph, functions,
                                                                     subscribed):
    # Counted, not timed: once the retained results and the replay history are full, 2,000
    # more executions (with every event built and delivered, in the subscribed case) leave
    # no object of the runtime's own types and at most 50 memory blocks that our code
    # allocated (traced: this also counts dicts of plain values, which the GC does not track;
    # up to 20 come from which 20 events the history holds at that moment: start events or
    # end events with their data).
    config = RuntimeConfig(executor_config=ExecutorConfig(functions=functions(),
                                                          sync_functions_in_thread=False),
                           result_retention_max=50, event_history_max=20)
    g = graph()
    rt = create_agent_runtime(graph=g, goal=graphs.GOAL, config=config, entry_points=[
        EntryPointSpec(id="ep", entry_node=g.entry_node, max_concurrent=100, max_queued=100)])

    failed: list[str] = []

    async def one(i: int) -> None:
        result = await rt.trigger_and_wait("ep", {"k": i})
        if not result.success:
            failed.append(result.error or "")

    async def batches(count: int) -> None:
        for _ in range(count):
            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(one, i)

    delivered: list[int] = [0]

    def count(_event: object) -> None:
        delivered[0] += 1

    async with rt:
        if subscribed:
            rt.subscribe_to_events(None, count)
        tracemalloc.start()
        try:
            await batches(3)  # fills the retained results, the history and the caches
            await trio.testing.wait_all_tasks_blocked()
            objects_before, before = _kept_by_us()
            await batches(20)
            await trio.testing.wait_all_tasks_blocked()
            objects_after, after = _kept_by_us()
        finally:
            tracemalloc.stop()
    assert failed == []
    assert objects_after - objects_before <= 0, "hive_actors objects kept per execution"
    grown = [d for d in after.compare_to(before, "lineno") if d.count_diff > 0]
    assert sum(d.count_diff for d in grown) <= 50, [str(d) for d in grown[:5]]
    if subscribed:
        assert delivered[0] > 0


def test_session_state_to_dict_matches_the_converter_field_for_field():
    from hive_actors.graph.result import SessionState
    from hive_actors.serde import converter

    state = SessionState(
        session_id="s", memory={"a": [1, {"b": None}], "c": "x"}, execution_path=("n1", "n2"),
        node_visit_counts={"n1": 1, "n2": 2}, next_nodes=("n3", "n4"), paused_at="n2",
        resume_after="n2", waiting_input="n2",
        conversations={"n2": [{"role": "user", "content": "hi"}], "_shared": []},
        steps_executed=3, total_tokens=40, total_retries=1,
    )
    fast = state.to_dict()
    assert fast == converter.unstructure(state)
    assert list(fast) == list(converter.unstructure(state))
    assert SessionState.from_dict(fast) == state
    fast["conversations"]["n2"][0]["content"] = "changed"  # a copy, as the converter's is
    assert state.conversations["n2"][0]["content"] == "hi"


async def test_only_the_execution_a_client_listens_for_waits_for_its_input():
    # the input policy is one per entry point now; it must still ask about the execution
    # that needs input, not any execution of the stream
    from hive_actors.llm.scripted import Reply
    from hive_actors.status import ExecutionStatus

    llm = ScriptedLLM({"ask": [Reply("What next?")] * 2})
    config = RuntimeConfig(client_input_timeout=None)
    rt = create_agent_runtime(graph=graphs.waiting_graph(), goal=graphs.GOAL, llm=llm,
                              config=config, entry_points=[EntryPointSpec(
                                  id="ep", entry_node="ask", max_concurrent=10)])
    async with rt:
        watched = await rt.trigger("ep", {"k": 1})
        rt.subscribe_to_events([EventType.CLIENT_INPUT_REQUESTED], lambda e: None,
                               execution_id=watched)
        other = await rt.trigger("ep", {"k": 2})
        paused = await rt.wait_for_result(other)
        await trio.testing.wait_all_tasks_blocked()
        assert paused.status is ExecutionStatus.PAUSED and paused.paused_at == "ask"
        assert rt.decline_input("ask", watched)  # it was waiting in memory for its client
        assert (await rt.wait_for_result(watched)).status is ExecutionStatus.PAUSED


async def test_a_stream_makes_one_executor_for_all_its_executions():
    # issue 16: an executor (its services, tool registry) is made once per entry point, not
    # per execution (30 were made for 30 executions before)
    from hive_actors.graph.executor import GraphExecutor

    made: list[GraphExecutor] = []

    class Counted(GraphExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    rt = runtime(graphs.seq_graph(), graphs.seq_functions())
    rt.executor_class = Counted
    async with rt:
        results: list[Any] = []

        async def one(i: int) -> None:
            results.append(await rt.trigger_and_wait("ep", {"k": i}))

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(one, i)
    assert len(results) == 30 and all(r.success for r in results)
    assert len({r.session_id for r in results}) == 30
    assert len(made) == 1


async def test_concurrent_runs_of_one_executor_keep_their_state_and_input_apart():
    from hive_actors.graph.executor import GraphExecutor
    from hive_actors.llm.scripted import Reply
    from hive_actors.status import ExecutionStatus

    llm = ScriptedLLM({"ask": [Reply("What next?")]})  # played anew per session
    executor = GraphExecutor(llm=llm, config=ExecutorConfig(input_timeout=None))
    a, b = executor.start(), executor.start()
    results: dict[str, Any] = {}

    async def run(name: str, run: Any) -> None:
        results[name] = await run.execute(graphs.waiting_graph(), graphs.GOAL, {"k": name},
                                          session_id=name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "a", a)
        nursery.start_soon(run, "b", b)
        await trio.testing.wait_all_tasks_blocked()
        assert a.current_node_id == b.current_node_id == "ask"
        assert a.decline_input("ask")  # a stops waiting; b is not told
        await trio.testing.wait_all_tasks_blocked()
        assert "a" in results and "b" not in results and b.current_node_id == "ask"
        assert not await a.inject_input("ask", "late")  # a has ended
        assert b.decline_input("ask")
    from hive_actors.errors import RuntimeStateError

    with pytest.raises(RuntimeStateError, match="has run already"):
        await a.execute(graphs.waiting_graph(), graphs.GOAL, {"k": "again"})
    for name in "ab":
        result = results[name]
        assert result.status is ExecutionStatus.PAUSED and result.session_id == name
        assert result.session_state["memory"]["k"] == name


async def test_a_result_builds_its_session_state_only_when_read(monkeypatch):
    # issue 16: every result built its session_state dict (13 keys, copies of the buffer,
    # path and conversations) though most results are never resumed
    from hive_actors.graph.result import ExecutionResult, SessionState
    from hive_actors.serde import converter, to_data

    built: list[SessionState] = []
    to_dict = SessionState.to_dict

    def counted(self: SessionState) -> dict[str, Any]:
        built.append(self)
        return to_dict(self)

    monkeypatch.setattr(SessionState, "to_dict", counted)
    async with runtime(graphs.seq_graph(), graphs.seq_functions()) as rt:
        results = [await rt.trigger_and_wait("ep", {"k": i}) for i in range(5)]
    assert all(r.success for r in results) and built == []
    state = results[0].session_state
    assert state is not None and state["memory"] == results[0].output
    assert state["execution_path"] == list(results[0].path)
    assert results[0].session_state is state and len(built) == 1  # built once, then kept
    data = to_data(results[1])
    assert data["session_state"] == results[1].session_state
    assert converter.structure(data, ExecutionResult) == results[1]
    results[2].output["extra"] = 1  # the output is the caller's; the state is not changed
    assert "extra" not in (results[2].session_state or {})["memory"]
