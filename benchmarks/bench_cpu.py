"""CPU µs per `seq` or `par` execution, one at a time, in one runtime: `time.process_time` over
7 rounds of 3,000 executions (min and median of the rounds). Steadier than exec/s on a shared
machine, so it shows a few per cent between two trees run back to back.
Usage: python benchmarks/bench_cpu.py seq|par
"""

from __future__ import annotations

import sys
import time

import trio

from hive_actors.bench import graphs
from hive_actors.bench.hive_runs import make_runtime
from hive_actors.bench.model import Case

ROUNDS = 7
PER_ROUND = 3000


def cpu_us_per_execution(workload: str) -> list[float]:
    if workload == "par":
        graph, functions = graphs.par_graph(), graphs.par_functions()
    else:
        graph, functions = graphs.seq_graph(), graphs.seq_functions()
    rt = make_runtime(Case(workload, concurrency=1, executions=PER_ROUND, warmup=0),
                      graph, functions)

    async def rounds() -> list[float]:
        out: list[float] = []
        async with rt:
            ep = rt.get_entry_points()[0].id
            for i in range(50):  # imports, caches
                await rt.trigger_and_wait(ep, {"k": i})
            for _ in range(ROUNDS):
                start = time.process_time()
                for i in range(PER_ROUND):
                    await rt.trigger_and_wait(ep, {"k": i})
                out.append((time.process_time() - start) / PER_ROUND * 1e6)
        return out

    return trio.run(rounds)


if __name__ == "__main__":
    workload = sys.argv[1] if len(sys.argv) > 1 else "seq"
    samples = sorted(cpu_us_per_execution(workload))
    print(f"{workload}: min {samples[0]:.1f} µs, median {samples[len(samples) // 2]:.1f} µs "
          "CPU per execution")
