"""The records of a benchmark run: what to run (`Case`, `Workload`) and what came out.

A case is plain data: which workload, on which system, at which size. The harness looks the
runner up by ``(workload, system)``; nothing else about a case is code.
"""

from __future__ import annotations

from typing import Any

import attrs

from hive_actors.bench.measure import Summary

SYSTEMS = ("hive", "floor", "langgraph")


@attrs.frozen
class Case:
    """One measured configuration.

    ``concurrency``: executions started together (1 = one at a time); ``entry_points``: how
    many entry points (streams) they are spread over; ``executions``: how many run per
    repetition (at least ``concurrency``); ``options``: workload-specific settings (e.g.
    ``{"subscribers": 10, "slow": True}``).
    """

    workload: str
    system: str = attrs.field(default="hive", validator=attrs.validators.in_(SYSTEMS))
    concurrency: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    entry_points: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    executions: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    options: dict[str, Any] = attrs.field(factory=dict)
    # executions run before the clock starts (at most ``total``)
    warmup: int = attrs.field(default=100, validator=attrs.validators.ge(0))

    @property
    def total(self) -> int:
        """Executions per repetition: whole bursts of ``concurrency``."""
        n = max(self.executions, self.concurrency)
        return -(-n // self.concurrency) * self.concurrency

    @property
    def label(self) -> str:
        parts = [self.workload, self.system, f"c={self.concurrency}"]
        if self.entry_points != 1:
            parts.append(f"ep={self.entry_points}")
        parts += [f"{k}={v}" for k, v in sorted(self.options.items())]
        return " ".join(parts)


@attrs.frozen
class Workload:
    """A named set of cases with a one-line description (what it measures)."""

    name: str
    description: str
    cases: tuple[Case, ...]


@attrs.frozen
class CaseResult:
    """A case after its repetitions: each metric's median and spread, plus notes."""

    case: Case
    repetitions: int
    metrics: dict[str, Summary]
    notes: tuple[str, ...] = ()
    error: str | None = None
    # why the case did not run although nothing is wrong (an optional baseline not installed)
    skipped: str | None = None

    def median(self, metric: str) -> float | None:
        s = self.metrics.get(metric)
        return None if s is None else s.median


@attrs.frozen
class TargetCheck:
    """One target of the issue, its measured figure and whether it is met (None: not run)."""

    name: str
    target: str
    measured: float | None
    unit: str
    met: bool | None
    detail: str = ""
    # False: the run was too small for the target to mean anything (``bench --quick``)
    applies: bool = True


@attrs.frozen
class Ratio:
    """hive_actors against a baseline for the same workload and size (>1: we are faster)."""

    workload: str
    concurrency: int
    baseline: str
    hive: float
    other: float
    ratio: float


@attrs.frozen
class BenchReport:
    """Everything a run produced: the environment, per-case results, ratios, targets."""

    meta: dict[str, Any]
    results: tuple[CaseResult, ...]
    ratios: tuple[Ratio, ...] = ()
    targets: tuple[TargetCheck, ...] = ()
