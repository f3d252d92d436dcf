"""The harness: runs every case of the chosen workloads several times in this process and
summarises each metric (median, min, max, spread), then compares against the baselines and
the issue's targets.

Each repetition is its own ``trio.run`` (or ``asyncio.run`` for LangGraph) on a fresh
runtime, so repetitions do not share state; all run in one process, one after the other.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import attrs

from hive_actors.bench.baselines import langgraph_available, run_floor, run_langgraph
from hive_actors.bench.hive_runs import run_durable, run_events, run_par, run_seq
from hive_actors.bench.lifecycle_runs import run_paused, run_stop
from hive_actors.bench.measure import Summary
from hive_actors.bench.model import BenchReport, Case, CaseResult, Workload
from hive_actors.bench.model_runs import run_model_latency
from hive_actors.bench.targets import check_targets, ratios

Runner = Callable[[Case], dict[str, float]]
Progress = Callable[[str], None]


@attrs.frozen
class BenchOptions:
    """How to run: repetitions per case, a per-case time budget (seconds; once spent, no
    further repetitions start, and the result says so), where temporary storage goes."""

    repetitions: int = 5
    case_budget_seconds: float = 60.0
    storage_root: str | None = None
    command: str = ""
    quick: bool = False  # tiny sizes: the targets are reported as not applying


def runner_for(case: Case, options: BenchOptions) -> Runner | None:
    """The function that runs one repetition of ``case``; None when nothing runs it."""
    root = options.storage_root
    if case.system == "floor":
        return run_floor if case.workload in ("seq", "par") else None
    if case.system == "langgraph":
        if case.workload not in ("seq", "par", "durable"):
            return None
        return lambda c: run_langgraph(c, root)
    return {
        "seq": run_seq,
        "par": run_par,
        "durable": lambda c: run_durable(c, root),
        "events": run_events,
        "stop": lambda c: run_stop(c, root),
        "paused": run_paused,
        "model-latency": run_model_latency,
    }.get(case.workload)


def run_case(case: Case, options: BenchOptions) -> CaseResult:
    """Repeat ``case`` (at least once, at most ``options.repetitions`` times, within the
    time budget) and summarise its metrics. A failing case gives a result with ``error``."""
    runner = runner_for(case, options)
    if runner is None:
        return CaseResult(case, 0, {}, error=f"no runner for {case.workload} on {case.system}")
    if case.system == "langgraph" and langgraph_available() is None:
        return CaseResult(case, 0, {}, skipped="LangGraph not installed (pip install "
                                               "'hive-actors[compare]')")
    samples: list[dict[str, float]] = []
    notes: list[str] = []
    started = time.perf_counter()
    for rep in range(options.repetitions):
        gc.collect()
        try:
            samples.append(runner(case))
        except Exception as exc:  # noqa: BLE001 - one broken case must not end the run
            return CaseResult(case, len(samples), _summaries(samples),
                              error=f"repetition {rep + 1}: {type(exc).__name__}: {exc}")
        spent = time.perf_counter() - started
        if spent > options.case_budget_seconds and rep + 1 < options.repetitions:
            notes.append(f"time budget {options.case_budget_seconds:.0f} s spent after "
                         f"{rep + 1} of {options.repetitions} repetitions")
            break
    failed = sum(s.get("failed", 0.0) for s in samples)
    if failed:
        notes.append(f"{failed:.0f} executions did not succeed")
    return CaseResult(case, len(samples), _summaries(samples), tuple(notes))


def _summaries(samples: list[dict[str, float]]) -> dict[str, Summary]:
    keys = dict.fromkeys(k for s in samples for k in s)
    return {k: Summary.of([s[k] for s in samples if k in s]) for k in keys}


def run_benchmarks(workloads: tuple[Workload, ...], options: BenchOptions,
                   progress: Progress | None = None) -> BenchReport:
    """Run every case of ``workloads`` in order; returns the full report."""
    results: list[CaseResult] = []
    t0 = time.perf_counter()
    for w in workloads:
        for case in w.cases:
            t = time.perf_counter()
            result = run_case(case, options)
            results.append(result)
            if progress is not None:
                progress(_progress_line(result, time.perf_counter() - t))
    meta = environment(options)
    meta["duration_s"] = round(time.perf_counter() - t0, 1)
    meta["workloads"] = {w.name: w.description for w in workloads}
    targets = check_targets(results)
    if options.quick:
        targets = tuple(attrs.evolve(t, met=None, applies=False) for t in targets)
    return BenchReport(meta, tuple(results), ratios(results), targets)


def _progress_line(r: CaseResult, seconds: float) -> str:
    head = r.case.label
    if r.skipped:
        return f"{head}: skipped: {r.skipped}"
    if r.error:
        return f"{head}: ERROR {r.error}"
    shown = [f"{k}={r.metrics[k].median:,.4g}" for k in ("throughput", "p50_ms", "stop_ms",
                                                        "rss_mb") if k in r.metrics]
    return f"{head}: {' '.join(shown)} ({r.repetitions} reps, {seconds:.1f} s)"


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment(options: BenchOptions) -> dict[str, Any]:
    """Machine, versions, date and command of this run."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": options.command or " ".join(sys.argv),
        "machine": {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
                    "load_avg_1m_at_end": load},
        "versions": {"python": platform.python_version(),
                     **{n: _version(n) for n in ("hive-actors", "trio", "langgraph",
                                                 "langgraph-checkpoint-sqlite", "litellm")}},
        "repetitions": options.repetitions,
        "case_budget_seconds": options.case_budget_seconds,
    }
