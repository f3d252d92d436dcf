"""hive_actors runs of the throughput workloads: ``seq``, ``par``, ``durable``, ``events``.

Each runner takes a `Case`, runs one repetition in its own ``trio.run`` (a fresh runtime
each time, warmed up before the clock starts) and returns its metrics as a flat dict.
"""

from __future__ import annotations

import contextlib
import gc
import math
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import trio
import trio.testing

from hive_actors.bench import graphs
from hive_actors.bench.measure import (
    count_syncs,
    dir_bytes,
    io_counters,
    peak_rss_bytes,
    percentile,
    reset_peak_rss,
)
from hive_actors.bench.model import Case
from hive_actors.graph.executor_config import ExecutorConfig
from hive_actors.graph.spec import GraphSpec
from hive_actors.runtime.agent_runtime import AgentRuntime, RuntimeConfig, create_agent_runtime
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.events import AgentEvent
from hive_actors.llm.provider import LLMProvider

MB = 1024 * 1024
WARMUP = 100

Submit = Callable[[int], Awaitable[object]]


async def drive(submit: Submit, case: Case, first: int = 0) -> tuple[float, list[float]]:
    """Run ``case.total`` executions in bursts of ``case.concurrency`` (one at a time when 1).

    Returns the elapsed seconds and each execution's latency (submit to result).
    """
    latencies: list[float] = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        await submit(i)
        latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    for base in range(first, first + case.total, case.concurrency):
        if case.concurrency == 1:
            await one(base)
            continue
        async with trio.open_nursery() as nursery:
            for i in range(base, base + case.concurrency):
                nursery.start_soon(one, i)
    return time.perf_counter() - start, latencies


def throughput_metrics(case: Case, elapsed: float, latencies: list[float],
                       transitions: int) -> dict[str, float]:
    """The common metrics: executions/s, µs per node transition, p50/p99 latency (ms)."""
    rate = case.total / elapsed
    return {
        "throughput": rate,
        "us_per_transition": 1e6 / (rate * transitions),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def entry_points(case: Case, entry_node: str) -> list[EntryPointSpec]:
    per = math.ceil(case.concurrency / case.entry_points)
    return [EntryPointSpec(id=f"ep{j}", entry_node=entry_node, max_concurrent=per,
                           max_queued=max(case.total, 1000))
            for j in range(case.entry_points)]


def make_runtime(case: Case, graph: GraphSpec, functions: Mapping[str, Callable[..., Any]],
                 storage: Path | None = None, llm: LLMProvider | None = None,
                 **config: Any) -> AgentRuntime:
    """A runtime for ``graph`` with ``case.entry_points`` entry points sized for the case;
    ``config`` are further RuntimeConfig fields."""
    cfg = RuntimeConfig(executor_config=ExecutorConfig(functions=functions,
                                                       sync_functions_in_thread=False), **config)
    return create_agent_runtime(graph=graph, goal=graphs.GOAL, storage_path=storage, llm=llm,
                                entry_points=entry_points(case, graph.entry_node), config=cfg)


def submitter(rt: AgentRuntime, case: Case, failures: list[str]) -> Submit:
    eps = case.entry_points

    async def submit(i: int) -> None:
        result = await rt.trigger_and_wait(f"ep{i % eps}", {"k": i})
        if not result.success:
            failures.append(result.error or result.status)

    return submit


async def _timed_runtime(case: Case, rt: AgentRuntime, transitions: int,
                         before: Callable[[], None] | None = None) -> dict[str, float]:
    failures: list[str] = []
    submit = submitter(rt, case, failures)
    async with rt:
        await drive(submit, _warmup(case))
        gc.collect()
        if before is not None:
            before()
        reset_peak_rss()
        elapsed, latencies = await drive(submit, case, first=WARMUP)
        await rt.flush_view()  # untimed: the files counted include the view's (journal)
    metrics = throughput_metrics(case, elapsed, latencies, transitions)
    metrics["peak_rss_mb"] = peak_rss_bytes() / MB
    metrics["failed"] = float(len(failures))
    return metrics


def _warmup(case: Case) -> Case:
    """A short run before the clock starts (imports, caches, first allocations)."""
    n = max(1, min(case.warmup, case.total))
    return Case(case.workload, concurrency=min(case.concurrency, n), executions=n)


def run_seq(case: Case) -> dict[str, float]:
    """`seq`: 5 function nodes, events on, no storage."""
    rt = make_runtime(case, graphs.seq_graph(), graphs.seq_functions())
    return trio.run(_timed_runtime, case, rt, graphs.SEQ_TRANSITIONS)


def run_par(case: Case) -> dict[str, float]:
    """`par`: fan-out to five branches and a join, events on, no storage."""
    rt = make_runtime(case, graphs.par_graph(), graphs.par_functions())
    return trio.run(_timed_runtime, case, rt, graphs.PAR_TRANSITIONS)


def run_durable(case: Case, storage_root: str | None = None) -> dict[str, float]:
    """`durable`: `seq` with checkpoints and session files written through the runtime's
    storage engine (the journal by default).

    Adds bytes (file bytes left on disk, bytes handed to write calls, bytes sent to the
    block device), durability barriers (fsync + fdatasync + syncfs + directory fsync) per
    execution and, for the journal, files its view wrote per execution and the view's lag
    (durable record to file, p50/p99 in ms).
    """
    base = Path(tempfile.mkdtemp(prefix="hive-bench-", dir=storage_root))
    try:
        rt = make_runtime(case, graphs.seq_graph(), graphs.seq_functions(), storage=base)
        marks: dict[str, Any] = {}
        with count_syncs() as syncs:

            def before() -> None:  # after the warm-up: count only the timed executions
                marks["io"] = io_counters()
                marks["files"] = dir_bytes(base)
                syncs.reset()

            metrics = trio.run(_timed_runtime, case, rt, graphs.SEQ_TRANSITIONS, before)
            counted = dict(syncs.counts)
        io_after = io_counters()
        files_after = dir_bytes(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    n = case.total
    io_before = marks.get("io", {})
    metrics["file_bytes_per_exec"] = (files_after[0] - marks["files"][0]) / n
    metrics["files_per_exec"] = (files_after[1] - marks["files"][1]) / n
    for key in ("wchar", "write_bytes"):
        if key in io_after and key in io_before:
            metrics[f"{key}_per_exec"] = (io_after[key] - io_before[key]) / n
    metrics["syncs_per_exec"] = sum(counted.values()) / n
    for key in ("fsync", "fdatasync", "syncfs", "fsync_dir"):
        metrics[f"{key}_per_exec"] = counted[key] / n
    engine = rt.storage_engine
    view = getattr(engine, "view", None)
    if view is not None:
        lags = sorted(view.stats.lags)
        metrics["view_files_per_exec"] = view.stats.files_written / (n + case.warmup)
        if lags:
            metrics["view_lag_p50_ms"] = lags[len(lags) // 2] * 1000.0
            metrics["view_lag_p99_ms"] = lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000.0
    return metrics


def run_events(case: Case) -> dict[str, float]:
    """`events`: `seq` with ``subscribers`` counting handlers, plus (``slow``) one
    subscription that never reads. Adds events delivered per second and drops."""
    subscribers = int(case.options.get("subscribers", 1))
    slow = bool(case.options.get("slow", False))
    rt = make_runtime(case, graphs.seq_graph(), graphs.seq_functions())
    return trio.run(_events_main, case, rt, subscribers, slow)


async def _events_main(case: Case, rt: AgentRuntime, subscribers: int,
                       slow: bool) -> dict[str, float]:
    failures: list[str] = []
    delivered = [0]

    def count(_event: AgentEvent) -> None:
        delivered[0] += 1

    submit = submitter(rt, case, failures)
    async with rt:
        for _ in range(subscribers):
            rt.subscribe_to_events(None, count)
        bus = rt.event_bus
        # the slow subscriber: subscribed to everything, never reads
        never_read = bus.open_subscription(None) if slow else contextlib.nullcontext()
        async with never_read:
            await drive(submit, _warmup(case))
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            delivered[0] = 0
            before = bus.stats()
            start = time.perf_counter()
            elapsed, latencies = await drive(submit, case, first=WARMUP)
            await trio.testing.wait_all_tasks_blocked()  # every handler has caught up
            delivery_elapsed = time.perf_counter() - start
            stats = bus.stats()
    metrics = throughput_metrics(case, elapsed, latencies, graphs.SEQ_TRANSITIONS)
    metrics["events_per_exec"] = (stats.published - before.published) / case.total
    metrics["delivered_per_s"] = delivered[0] / max(delivery_elapsed, 1e-9)
    metrics["dropped"] = float(stats.dropped - before.dropped)
    metrics["failed"] = float(len(failures))
    return metrics
