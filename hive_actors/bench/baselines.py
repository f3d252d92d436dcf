"""Baselines run by the same harness in the same process: a bare-trio floor and LangGraph.

The floor does what an execution of `seq` (or `par`) must do at the very least: call the same
step functions, update one dict per step and pass one trio checkpoint per step (the yield point
that lets other executions run), with no runtime at all. LangGraph (optional extra ``hive-actors[compare]``) runs the same graphs with
``ainvoke`` in its own ``asyncio.run``; ``durable`` uses ``AsyncSqliteSaver`` with
``durability="sync"``.
"""

from __future__ import annotations

import asyncio
import gc
import operator
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import trio

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import WARMUP, _warmup, drive, throughput_metrics
from hive_actors.bench.measure import percentile
from hive_actors.bench.model import Case

# ---- bare-trio floor ------------------------------------------------------------------------


async def floor_seq_execution(k: int) -> dict[str, Any]:
    state: dict[str, Any] = {"k": k}
    for i, fn in enumerate(graphs.SEQ_STEPS, start=1):
        state.update(await fn(**{graphs.SEQ_KEYS[i - 1]: state[graphs.SEQ_KEYS[i - 1]]}))
        await trio.lowlevel.checkpoint()
    return state


_BRANCH_FNS = graphs.par_functions()


async def floor_par_execution(k: int) -> dict[str, Any]:
    state: dict[str, Any] = {"k": k}
    state.update(await graphs.par_start(k))
    results: list[dict[str, Any]] = []

    async def run_branch(name: str) -> None:
        results.append(await _BRANCH_FNS[name](state["a"]))

    async with trio.open_nursery() as nursery:
        for b in graphs.BRANCHES:
            nursery.start_soon(run_branch, b)
    for r in results:
        state.update(r)
    state.update(await graphs.par_join(**{b: state[b] for b in graphs.BRANCHES}))
    return state


def run_floor(case: Case) -> dict[str, float]:
    """The floor of `seq` or `par`: the steps alone, one trio task per execution."""
    if case.workload == "par":
        execution, transitions = floor_par_execution, graphs.PAR_TRANSITIONS
    else:
        execution, transitions = floor_seq_execution, graphs.SEQ_TRANSITIONS

    async def main() -> dict[str, float]:
        await drive(execution, _warmup(case))
        gc.collect()
        elapsed, latencies = await drive(execution, case, first=WARMUP)
        return throughput_metrics(case, elapsed, latencies, transitions)

    return trio.run(main)


# ---- LangGraph --------------------------------------------------------------------------------


def langgraph_available() -> str | None:
    """LangGraph's version, or None when the ``compare`` extra is not installed."""
    try:
        from importlib.metadata import version

        import langgraph.graph  # noqa: F401

        return version("langgraph")
    except Exception:  # noqa: BLE001 - any import problem means "not available"
        return None


class SeqState(TypedDict, total=False):
    k: int
    a: int
    b: int
    c: int
    d: int
    e: int


def _keep_last(_old: Any, new: Any) -> Any:
    return new


class ParState(TypedDict, total=False):
    k: int
    a: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    e: int
    # five branches write in one step; LangGraph needs a reducer only for shared keys
    trace: Annotated[list[object], operator.add]


def _lg_seq_builder() -> Any:
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(SeqState)
    for i, fn in enumerate(graphs.SEQ_STEPS, start=1):
        src = graphs.SEQ_KEYS[i - 1]

        async def node(state: SeqState, fn: graphs.StepFn = fn, src: str = src) -> dict[str, int]:
            return await fn(**{src: state[src]})  # type: ignore[literal-required]  # src is one of SEQ_KEYS

        builder.add_node(f"n{i}", node)
    builder.add_edge(START, "n1")
    for i in range(1, 5):
        builder.add_edge(f"n{i}", f"n{i + 1}")
    builder.add_edge("n5", END)
    return builder


def _lg_par_builder() -> Any:
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(ParState)

    async def start(state: ParState) -> dict[str, int]:
        return await graphs.par_start(state["k"])

    async def join(state: ParState) -> dict[str, int]:
        return await graphs.par_join(**{b: state[b] for b in graphs.BRANCHES})  # type: ignore[literal-required]  # b in BRANCHES

    builder.add_node("start", start)
    for b in graphs.BRANCHES:
        async def branch_node(state: ParState, b: str = b) -> dict[str, int]:
            return await _BRANCH_FNS[b](state["a"])

        builder.add_node(b, branch_node)
        builder.add_edge("start", b)
    builder.add_node("join", join)
    builder.add_edge(list(graphs.BRANCHES), "join")
    builder.add_edge(START, "start")
    builder.add_edge("join", END)
    return builder


async def _lg_drive(invoke: Any, case: Case, first: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        await invoke(i)
        latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    for base in range(first, first + case.total, case.concurrency):
        if case.concurrency == 1:
            await one(base)
        else:
            await asyncio.gather(*(one(i) for i in range(base, base + case.concurrency)))
    return time.perf_counter() - start, latencies


def run_langgraph(case: Case, storage_root: str | None = None) -> dict[str, float]:
    """`seq`, `par` or `durable` on LangGraph, in a fresh ``asyncio.run``.

    Raises RuntimeError when LangGraph is not installed.
    """
    if langgraph_available() is None:
        raise RuntimeError("LangGraph is not installed (pip install 'hive-actors[compare]')")
    par = case.workload == "par"
    builder = _lg_par_builder() if par else _lg_seq_builder()
    transitions = graphs.PAR_TRANSITIONS if par else graphs.SEQ_TRANSITIONS
    base = Path(tempfile.mkdtemp(prefix="hive-bench-lg-", dir=storage_root))

    async def main() -> dict[str, float]:
        if case.workload == "durable":
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            async with AsyncSqliteSaver.from_conn_string(str(base / "checkpoints.sqlite")) as saver:
                app = builder.compile(checkpointer=saver)

                async def invoke(i: int) -> Any:
                    return await app.ainvoke({"k": i}, {"configurable": {"thread_id": f"t{i}"}},
                                             durability="sync")

                return await _measure(invoke)
        app = builder.compile()
        return await _measure(lambda i: app.ainvoke({"k": i}))

    async def _measure(invoke: Any) -> dict[str, float]:
        await _lg_drive(invoke, _warmup(case), 0)
        gc.collect()
        elapsed, latencies = await _lg_drive(invoke, case, WARMUP)
        metrics = throughput_metrics(case, elapsed, latencies, transitions)
        metrics["p50_ms"] = percentile(latencies, 50) * 1000
        return metrics

    try:
        return asyncio.run(main())
    finally:
        shutil.rmtree(base, ignore_errors=True)
