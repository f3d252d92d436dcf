"""The cost of the step journal (issue 18): `model-latency` with storage (the journal engine),
with and without the step journal, in one run.

Usage: python benchmarks/bench_steps.py [--reps 3] [--concurrency 1000] [--delay 0.05]
(at least 40 executions). Each execution runs five event_loop nodes, one model turn each (ScriptedLLM, `delay` seconds
per call). Per setting, medians of the reps (the two settings alternate): executions/s,
durability barriers and bytes handed to write calls per execution, and the step journal's
own bytes per model turn (logs/steps.jsonl). The difference per model turn: bytes written and
wall time (elapsed with minus without, over the turns). Not a test: numbers depend on the
disk and its load; compare within one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import _timed_runtime, make_runtime
from hive_actors.bench.measure import count_syncs, io_counters
from hive_actors.bench.model import Case
from hive_actors.llm.scripted import ScriptedLLM

TURNS_PER_EXECUTION = 5


def one(journal: bool, concurrency: int, delay: float) -> dict[str, float]:
    case = Case("model-latency", concurrency=concurrency, executions=max(concurrency, 40),
                warmup=min(20, concurrency * 5))
    base = Path(tempfile.mkdtemp(prefix="hive-steps-"))
    try:
        rt = make_runtime(case, graphs.llm_seq_graph(), {}, storage=base,
                          llm=ScriptedLLM(autopilot=True, delay=delay), step_journal=journal)
        marks: dict[str, Any] = {}
        with count_syncs() as syncs:
            def before() -> None:
                syncs.reset()
                marks["io"] = io_counters()
                marks["t0"] = time.perf_counter()

            m = trio.run(_timed_runtime, case, rt, graphs.SEQ_TRANSITIONS, before)
            m["elapsed_s"] = time.perf_counter() - marks["t0"]
            n = case.total
            m["barriers_per_exec"] = syncs.total / n
        io = io_counters()
        if "wchar" in io and "wchar" in marks["io"]:
            m["wchar_per_exec"] = (io["wchar"] - marks["io"]["wchar"]) / n
        steps = list((base / "sessions").glob("*/logs/steps.jsonl"))
        turns = (n + case.warmup) * TURNS_PER_EXECUTION
        m["step_bytes_per_turn"] = sum(p.stat().st_size for p in steps) / turns
        assert m["failed"] == 0, m
        return m
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(args.reps):
        for journal in (False, True):
            runs[journal].append(one(journal, args.concurrency, args.delay))
    med = {j: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for j, rs in runs.items()}
    keys = ("throughput", "elapsed_s", "barriers_per_exec", "wchar_per_exec",
            "step_bytes_per_turn")
    print(f"model-latency, concurrency {args.concurrency}, {args.reps} reps (medians), "
          f"delay {args.delay}s, journal engine")
    print("step journal | " + " | ".join(keys))
    for j in (False, True):
        print(f"{'on' if j else 'off':>12} | "
              + " | ".join(f"{med[j].get(k, float('nan')):.4g}" for k in keys))
    turns = max(args.concurrency, 40) * TURNS_PER_EXECUTION
    extra_bytes = (med[True]["wchar_per_exec"] - med[False]["wchar_per_exec"]) / TURNS_PER_EXECUTION
    extra_ms = (med[True]["elapsed_s"] - med[False]["elapsed_s"]) / turns * 1e3
    print(f"per model turn: +{extra_bytes:.0f} bytes written, {extra_ms:+.4f} ms of wall time "
          f"({turns} turns); throughput ratio on/off "
          f"{med[True]['throughput'] / med[False]['throughput']:.3f}")


if __name__ == "__main__":
    main()
