"""hive_actors runs of the lifecycle workloads: ``stop`` and ``paused``.

``stop``: ``concurrency`` executions of `seq` (with storage) blocked in their third node; the
time for ``runtime.stop()``; then every session's ``state.json`` must say ``cancelled`` and a
sample of them must resume to completion in a new runtime.
``paused``: ``concurrency`` executions waiting for client input in a client-facing
``event_loop`` node (a live client is subscribed, so they wait in memory); the RSS they take.
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
import time
from pathlib import Path

import trio

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import MB, make_runtime
from hive_actors.bench.measure import rss_bytes
from hive_actors.bench.model import Case
from hive_actors.llm.scripted import Reply, ScriptedLLM
from hive_actors.events import AgentEvent, EventType
from hive_actors.errors import HiveActorsError
from hive_actors.status import ExecutionStatus
from hive_actors.storage.engines import open_reader
from hive_actors.storage.seam import SessionReader


def run_stop(case: Case, storage_root: str | None = None) -> dict[str, float]:
    """Metrics: stop_ms, cancelled_fraction, resumed_fraction (of ``resume_sample``)."""
    base = Path(tempfile.mkdtemp(prefix="hive-bench-stop-", dir=storage_root))
    try:
        return trio.run(_stop_main, case, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _stop_main(case: Case, base: Path) -> dict[str, float]:
    n = case.concurrency
    gate = trio.Event()
    entered = [0]
    all_in = trio.Event()
    fns = graphs.blocking_seq_functions(gate)
    blocking = fns["s3"]

    async def s3(**inputs: int) -> dict[str, int]:
        entered[0] += 1
        if entered[0] == n:
            all_in.set()
        return await blocking(**inputs)

    fns["s3"] = s3
    rt = make_runtime(case, graphs.seq_graph(), fns, storage=base)
    await rt.start()
    ids = []
    for i in range(n):
        ids.append(await rt.trigger(f"ep{i % case.entry_points}", {"k": i}))
    with trio.fail_after(600):
        await all_in.wait()
    t0 = time.perf_counter()
    await rt.stop()
    stop_ms = (time.perf_counter() - t0) * 1000
    reader = open_reader(base)  # replays what the view left to the journal at stop
    statuses = [_status(reader, sid) for sid in ids]
    cancelled = sum(s is ExecutionStatus.CANCELLED for s in statuses)
    sample = ids[: int(case.options.get("resume_sample", 20))]
    resumed = await _resume_sample(case, base, sample)
    return {"stop_ms": stop_ms, "cancelled_fraction": cancelled / n,
            "resumed_fraction": resumed / max(len(sample), 1)}


def _status(reader: SessionReader, session_id: str) -> ExecutionStatus | None:
    """The status the session's record holds; None when it is missing or unreadable."""
    try:
        return reader.read_state(session_id).status
    except HiveActorsError:
        return None


async def _resume_sample(case: Case, base: Path, sample: list[str]) -> int:
    """Resume ``sample`` in a new runtime on the same storage; how many complete correctly."""
    rt = make_runtime(case, graphs.seq_graph(), graphs.seq_functions(), storage=base)
    ok = 0
    async with rt:
        for sid in sample:
            result = await rt.resume(sid)
            # a resumed execution ends with e = k + 5 and n3..n5 run once more, n1/n2 never
            if result.success and result.output.get("e") == result.output.get("k", 0) + 5:
                ok += 1
    return ok


def run_paused(case: Case) -> dict[str, float]:
    """Metrics: rss_mb (whole process, all waiting), rss_delta_mb, kb_per_session, ramp_s."""
    return trio.run(_paused_main, case)


async def _paused_main(case: Case) -> dict[str, float]:
    n = case.concurrency
    llm = ScriptedLLM({"ask": [Reply("What should I do next?")] * n})
    rt = make_runtime(case, graphs.waiting_graph(), {}, llm=llm, client_input_timeout=None)
    waiting = [0]
    everyone = trio.Event()

    def requested(_event: AgentEvent) -> None:
        waiting[0] += 1
        if waiting[0] == n:
            everyone.set()

    gc.collect()
    rss0 = rss_bytes()
    async with rt:
        # the live client: big enough a buffer that no request is dropped
        rt.subscribe_to_events([EventType.CLIENT_INPUT_REQUESTED], requested, buffer_size=n + 16)
        t0 = time.perf_counter()
        for i in range(n):
            await rt.trigger(f"ep{i % case.entry_points}", {"k": i})
        with trio.fail_after(600):
            await everyone.wait()
        ramp = time.perf_counter() - t0
        gc.collect()
        rss = rss_bytes()
        t1 = time.perf_counter()
        await rt.stop()
        stop_ms = (time.perf_counter() - t1) * 1000
    return {"rss_mb": rss / MB, "rss_delta_mb": (rss - rss0) / MB,
            "kb_per_session": (rss - rss0) / n / 1024, "ramp_s": ramp, "stop_ms": stop_ms}
