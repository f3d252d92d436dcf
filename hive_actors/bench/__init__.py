"""The benchmark harness behind ``hive-actors bench`` and ``make bench``.

It lives inside the package so the installed CLI runs exactly this code; ``benchmarks/``
holds thin entry scripts and the results. Workloads are data (`workloads.STANDARD`), each
case runs several times in this process, and the report carries medians, spread, ratios to
the bare-trio floor and LangGraph, and the issue's targets.
"""

from hive_actors.bench.harness import BenchOptions, run_benchmarks, run_case
from hive_actors.bench.model import BenchReport, Case, CaseResult, Workload
from hive_actors.bench.workloads import STANDARD, quick, select

__all__ = ["STANDARD", "BenchOptions", "BenchReport", "Case", "CaseResult", "Workload",
           "quick", "run_benchmarks", "run_case", "select"]
