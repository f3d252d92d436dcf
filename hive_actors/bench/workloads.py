"""The workloads, as data: the standard set (``make bench``) and how to shrink or pick it.

Each `Workload` lists its `Case`s; the harness finds the runner by ``(workload, system)``.
"""

from __future__ import annotations

import attrs

from hive_actors.bench.model import Case, Workload

CONCURRENCY = (10, 100, 1000)
ENTRY_POINTS = (1, 4, 16)


def _seq_cases() -> tuple[Case, ...]:
    cases = [Case("seq", concurrency=1, executions=1000)]
    cases += [Case("seq", concurrency=c, entry_points=ep, executions=max(2000, c))
              for c in CONCURRENCY for ep in ENTRY_POINTS]
    # the top of the scaling table (benchmarks/README.md): c = 1, 10, 100, 1,000, 10,000
    cases.append(Case("seq", concurrency=10_000, executions=10_000))
    cases += [Case("seq", "floor", concurrency=c, executions=5000) for c in (1, 1000)]
    cases += [Case("seq", "langgraph", concurrency=1, executions=300, warmup=20),
              Case("seq", "langgraph", concurrency=1000, executions=1000, warmup=20)]
    return tuple(cases)


STANDARD: tuple[Workload, ...] = (
    Workload("seq", "5-node linear graph, zero-cost steps, events on, no storage",
             _seq_cases()),
    Workload("par", "fan-out to 5 branches and a join", (
        Case("par", concurrency=1, executions=500),
        Case("par", concurrency=1000, executions=1000),
        Case("par", "floor", concurrency=1, executions=2000),
        Case("par", "floor", concurrency=1000, executions=2000),
        Case("par", "langgraph", concurrency=1, executions=200, warmup=20),
        Case("par", "langgraph", concurrency=1000, executions=1000, warmup=20),
    )),
    Workload("durable", "seq with checkpoints and session files (group commit)", (
        Case("durable", concurrency=1, executions=30, warmup=5),
        Case("durable", concurrency=1000, executions=1000, warmup=20),
        Case("durable", "langgraph", concurrency=1, executions=30, warmup=5),
        Case("durable", "langgraph", concurrency=1000, executions=1000, warmup=20),
    )),
    Workload("events", "seq at 1000 concurrent with 0/1/10/100 counting subscribers, "
                       "with and without one subscriber that never reads", (
        Case("events", concurrency=1000, executions=2000,
             options={"subscribers": 0, "slow": False}),
        *(Case("events", concurrency=1000, executions=2000,
               options={"subscribers": s, "slow": slow})
          for s in (1, 10, 100) for slow in (False, True)),
    )),
    Workload("stop", "stop() with executions blocked inside a node; all cancelled, resumable",
             (Case("stop", concurrency=1000, options={"resume_sample": 20}),)),
    Workload("paused", "sessions waiting in memory for client input", (
        Case("paused", concurrency=10_000),
    )),
    Workload("model-latency", "seq of event_loop nodes; every model call takes 50 ms", (
        Case("model-latency", concurrency=1, executions=4, options={"model": "scripted"}),
        Case("model-latency", concurrency=1000, executions=1000, options={"model": "scripted"}),
        Case("model-latency", concurrency=100, executions=200, options={"model": "openai"}),
        Case("model-latency", concurrency=10, executions=20, options={"model": "litellm"}),
    )),
)

NAMES = tuple(w.name for w in STANDARD)


def quick(workloads: tuple[Workload, ...]) -> tuple[Workload, ...]:
    """The same cases at tiny sizes (tests, smoke runs): concurrency <= 20, few executions."""
    def shrink(c: Case) -> Case:
        conc = min(c.concurrency, 20 if c.workload != "paused" else 50)
        return attrs.evolve(c, concurrency=conc, executions=min(c.executions, 2 * conc),
                            entry_points=min(c.entry_points, conc))

    def unique(cases: tuple[Case, ...]) -> tuple[Case, ...]:
        return tuple({c.label: c for c in map(shrink, cases)}.values())

    return tuple(attrs.evolve(w, cases=unique(w.cases)) for w in workloads)


def select(workloads: tuple[Workload, ...], *, names: tuple[str, ...] = (),
           systems: tuple[str, ...] = (), concurrency: tuple[int, ...] = (),
           entry_points: tuple[int, ...] = ()) -> tuple[Workload, ...]:
    """Keep the named workloads (all when empty) and the cases matching every filter.
    Raises ValueError naming an unknown workload."""
    unknown = [n for n in names if n not in {w.name for w in workloads}]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")

    def keep(c: Case) -> bool:
        return ((not systems or c.system in systems)
                and (not concurrency or c.concurrency in concurrency or c.concurrency == 1)
                and (not entry_points or c.entry_points in entry_points))

    chosen = [w for w in workloads if not names or w.name in names]
    return tuple(attrs.evolve(w, cases=tuple(c for c in w.cases if keep(c))) for w in chosen)
