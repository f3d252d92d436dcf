"""What OpenTelemetry tracing costs per execution (not a test).

Runs executions of two graphs straight on a GraphExecutor, in one process, modes interleaved:
  seq   5 function nodes (the `seq` bench workload's shape): 1 execution + 5 node spans
  llm   1 event_loop node on ScriptedLLM: 2 model calls, 1 tool call: 1 + 1 + 2 + 1 spans
Modes: off (no Tracing: the default), on (SDK TracerProvider with a BatchSpanProcessor into an
exporter that drops the spans, MeterProvider with an in-memory reader). Prints the median CPU
microseconds per execution (process time, less disturbed by other load than wall time).
Run it under an older checkout (PYTHONPATH=that tree, --modes off) for a before/after of "off".

    .venv/bin/python benchmarks/bench_tracing.py [--executions 2000] [--rounds 7] [--modes off,on]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import trio

if not any(Path(p, "hive_actors").is_dir() for p in sys.path[1:] if p):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hive_actors.graph.executor import ExecutorConfig, GraphExecutor  # noqa: E402
from hive_actors.graph.spec import EdgeSpec, Goal, GraphSpec, NodeSpec  # noqa: E402
from hive_actors.llm.scripted import Reply, ScriptedLLM, call  # noqa: E402
from hive_actors.tools.registry import tool  # noqa: E402

GOAL = Goal("bench")


def seq_graph() -> GraphSpec:
    ids = [f"s{i}" for i in range(5)]
    nodes = tuple(NodeSpec(i, name=i, node_type="function", function="step") for i in ids)
    edges = tuple(EdgeSpec(f"{a}->{b}", a, b) for a, b in zip(ids, ids[1:]))
    return GraphSpec(id="seq", entry_node=ids[0], nodes=nodes, edges=edges)


def llm_graph() -> GraphSpec:
    node = NodeSpec("n", name="n", node_type="event_loop", output_keys=("x",), tools=("echo",))
    return GraphSpec(id="llm", entry_node="n", nodes=(node,))


@tool
async def echo(text: str) -> str:
    """Echo."""
    return text


def step(**_: Any) -> dict[str, Any]:
    return {}


def tracing_on() -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from hive_actors.tracing import Tracing

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    return Tracing(tracer_provider=tracer_provider,
                   meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))


def executor_for(workload: str, tracing: Any) -> tuple[GraphExecutor, GraphSpec]:
    extra = {"tracing": tracing} if tracing is not None else {}
    if workload == "seq":
        config = ExecutorConfig(functions={"step": step}, sync_functions_in_thread=False, **extra)
        return GraphExecutor(config=config), seq_graph()
    script = {"n": [Reply("", [call("echo", text="hi")]), Reply("", [call("set_output", key="x", value="1")])]}
    return GraphExecutor(llm=_Replaying(script), tools=[echo], config=ExecutorConfig(**extra)), llm_graph()


class _Replaying(ScriptedLLM):
    """A ScriptedLLM that plays its script again for every execution."""

    def __init__(self, script: dict[str, list[Reply]]) -> None:
        super().__init__(script, keep_requests=1)
        self._fresh = script

    def _next(self, request: Any) -> Reply:
        if request.node_id == "n" and len(request.messages) == 1:
            self._played.clear()
        return super()._next(request)


async def cpu_per_execution(workload: str, tracing: Any, executions: int) -> float:
    executor, graph = executor_for(workload, tracing)
    for _ in range(50):  # warm-up: caches, imports
        result = await executor.execute(graph, GOAL, {})
        assert result.success and len(result.path) == len(graph.nodes), result
    start = time.process_time()
    for _ in range(executions):
        await executor.execute(graph, GOAL, {})
    return (time.process_time() - start) / executions * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--modes", default="off,on")
    parser.add_argument("--workloads", default="seq,llm")
    args = parser.parse_args()
    modes = args.modes.split(",")
    samples: dict[tuple[str, str], list[float]] = {}
    tracings = {"off": None, **({"on": tracing_on()} if "on" in modes else {})}
    for _ in range(args.rounds):
        for workload in args.workloads.split(","):
            for mode in modes:
                us = trio.run(cpu_per_execution, workload, tracings[mode], args.executions)
                samples.setdefault((workload, mode), []).append(us)
    for (workload, mode), values in samples.items():
        print(f"{workload:4} {mode:4} median {statistics.median(values):8.1f} µs CPU/execution "
              f"(min {min(values):.1f}, max {max(values):.1f}, {len(values)} rounds)")


if __name__ == "__main__":
    main()
