"""Python function calls per execution of the `seq` or `par` bench graph (cProfile).

A deterministic cost figure beside the harness's noisy exec/s: the same tree gives the same
count on a loaded machine. Usage: python benchmarks/bench_calls.py seq|par [CONCURRENCY]
"""

from __future__ import annotations

import cProfile
import pstats
import sys

from hive_actors.bench.hive_runs import run_par, run_seq
from hive_actors.bench.model import Case

EXECUTIONS = 400


def calls_per_execution(workload: str, concurrency: int) -> float:
    run = run_par if workload == "par" else run_seq
    run(Case(workload, concurrency=concurrency, executions=50, warmup=0))  # imports, caches
    profile = cProfile.Profile()
    profile.enable()
    run(Case(workload, concurrency=concurrency, executions=EXECUTIONS, warmup=0))
    profile.disable()
    return pstats.Stats(profile).total_calls / EXECUTIONS


if __name__ == "__main__":
    workload = sys.argv[1] if len(sys.argv) > 1 else "seq"
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(f"{workload} c={concurrency}: {calls_per_execution(workload, concurrency):.1f} calls/exec")
