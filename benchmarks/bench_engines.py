"""The `durable` workload on both storage engines, in one run: journal vs files.

Usage: python benchmarks/bench_engines.py [--reps 3] [--concurrency 1,1000]
Per engine and concurrency: executions/s (median of the reps), durability barriers, files
created (whole-file writes: each is a new file renamed into place), bytes handed to write
calls per execution, and for the journal the view's lag (durable record to file, p50/p99).
Not a test: numbers depend on the disk and its load; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import trio

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import _timed_runtime, make_runtime
from hive_actors.bench.measure import count_syncs, io_counters
from hive_actors.bench.model import Case
from hive_actors.storage import atomic, view


def _count_creates() -> dict[str, int]:
    """Count whole files created by either engine (temp file then rename)."""
    counts = {"creates": 0}
    for module, name in ((atomic, "temp_path_for"), (view, "temp_path_for")):
        inner = getattr(module, name)

        def counted(path: Path, _inner: Any = inner) -> Path:
            counts["creates"] += 1
            return _inner(path)

        setattr(module, name, counted)
    from hive_actors.storage import commit
    inner_c = commit.temp_path_for

    def counted_c(path: Path) -> Path:
        counts["creates"] += 1
        return inner_c(path)

    commit.temp_path_for = counted_c  # type: ignore[assignment]
    return counts


CREATES = _count_creates()


def one(engine: str, concurrency: int) -> dict[str, float]:
    case = Case("durable", concurrency=concurrency, executions=max(30, concurrency),
                warmup=5 if concurrency == 1 else 20)
    base = Path(tempfile.mkdtemp(prefix="hive-engines-"))
    try:
        rt = make_runtime(case, graphs.seq_graph(), graphs.seq_functions(), storage=base,
                          storage_engine=engine)
        marks: dict[str, Any] = {}
        with count_syncs() as syncs:
            def before() -> None:
                syncs.reset()
                marks["io"] = io_counters()
                marks["creates"] = CREATES["creates"]

            m = trio.run(_timed_runtime, case, rt, graphs.SEQ_TRANSITIONS, before)
            n = case.total
            m["barriers_per_exec"] = syncs.total / n
        m["creates_per_exec"] = (CREATES["creates"] - marks["creates"]) / n
        io = io_counters()
        if "wchar" in io and "wchar" in marks["io"]:
            m["wchar_per_exec"] = (io["wchar"] - marks["io"]["wchar"]) / n
        v = getattr(rt.storage_engine, "view", None)
        if v is not None and v.stats.lags:
            lags = sorted(v.stats.lags)
            m["lag_p50_ms"] = lags[len(lags) // 2] * 1e3
            m["lag_p99_ms"] = lags[int(len(lags) * 0.99)] * 1e3
        return m
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--concurrency", default="1,1000")
    args = ap.parse_args()
    keys = ("throughput", "barriers_per_exec", "creates_per_exec", "wchar_per_exec",
            "lag_p50_ms", "lag_p99_ms")
    for c in (int(x) for x in args.concurrency.split(",")):
        for engine in ("files", "journal"):
            runs = [one(engine, c) for _ in range(args.reps)]
            med = {k: statistics.median(r[k] for r in runs) for k in keys if k in runs[0]}
            print(f"c={c:<5} {engine:<8} " + "  ".join(f"{k}={v:,.2f}" for k, v in med.items()),
                  flush=True)


if __name__ == "__main__":
    main()
