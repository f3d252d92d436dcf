"""Micro-benchmark of edge-condition evaluation: ns per ordinary evaluation.

Each case is a condition of the kind real agents use, evaluated on the names an edge sees
(``edge_names``); the figure is the median of 7 timed runs. Run:
``.venv/bin/python benchmarks/bench_expressions.py [evaluations]``.
"""

from __future__ import annotations

import statistics
import sys
import time

from hive_actors.graph.expressions import compile_expression, edge_names

CASES = [
    "score > 0.5",
    "output.get('approved') == True",
    "result in ('done', 'skip')",
    "len(items) < 10 and status.lower() == 'ready'",
    "not output.get('needs_review', False) and retries <= 3",
]

BUFFER = {"score": 0.7, "items": list(range(5)), "status": "Ready", "retries": 1}
OUTPUT = {"approved": True, "result": "done", "needs_review": False}


def per_evaluation_ns(text: str, evaluations: int) -> float:
    expr = compile_expression(text)
    names = edge_names(OUTPUT, BUFFER)
    runs = []
    for _ in range(7):
        start = time.perf_counter_ns()
        for _ in range(evaluations):
            expr.evaluate(names)
        runs.append((time.perf_counter_ns() - start) / evaluations)
    return statistics.median(runs)


def main() -> None:
    evaluations = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for text in CASES:
        print(f"{per_evaluation_ns(text, evaluations):8.0f} ns  {text}")


if __name__ == "__main__":
    main()
