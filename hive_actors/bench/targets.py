"""Ratios to the baselines and the issue's targets, computed from case results."""

from __future__ import annotations

from collections.abc import Sequence

from hive_actors.bench.model import CaseResult, Ratio, TargetCheck


def _find(results: Sequence[CaseResult], workload: str, system: str = "hive",
          concurrency: int | None = None, entry_points: int = 1,
          **options: object) -> CaseResult | None:
    """The result of that case (largest concurrency when ``concurrency`` is None)."""
    hits = [r for r in results
            if r.case.workload == workload and r.case.system == system and not r.error
            and r.case.entry_points == entry_points and r.metrics
            and (concurrency is None or r.case.concurrency == concurrency)
            and all(r.case.options.get(k) == v for k, v in options.items())]
    return max(hits, key=lambda r: r.case.concurrency, default=None)


def ratios(results: Sequence[CaseResult]) -> tuple[Ratio, ...]:
    """hive throughput / baseline throughput for every workload and concurrency both ran."""
    out: list[Ratio] = []
    for r in results:
        c = r.case
        if c.system != "hive" or c.entry_points != 1 or c.workload not in ("seq", "par", "durable"):
            continue
        for baseline in ("floor", "langgraph") if c.workload != "durable" else ("langgraph",):
            other = _find(results, c.workload, baseline, c.concurrency)
            ours, theirs = r.median("throughput"), other and other.median("throughput")
            if other is None or not ours or not theirs:
                continue
            out.append(Ratio(c.workload, c.concurrency, baseline, ours, theirs, ours / theirs))
    return tuple(out)


def check_targets(results: Sequence[CaseResult]) -> tuple[TargetCheck, ...]:
    """The issue's targets, each with its measured figure (None when its case did not run)."""
    checks: list[TargetCheck] = []
    floor = _find(results, "seq", "floor")
    seq = _find(results, "seq", concurrency=floor.case.concurrency if floor else None)
    lg = _find(results, "seq", "langgraph")
    at = f" at {seq.case.concurrency} concurrent" if seq else ""
    checks.append(_ratio_check("seq vs bare-trio floor", 0.35, seq, floor, at))
    checks.append(_ratio_check("seq vs floor, one at a time", 0.35, _find(results, "seq",
                               concurrency=1), _find(results, "seq", "floor", 1), " at 1"))
    par, par_floor = _find(results, "par"), _find(results, "par", "floor")
    checks.append(_ratio_check("par vs bare-trio floor", 0.5, par, par_floor,
                               f" at {par.case.concurrency} concurrent" if par else ""))
    checks.append(_ratio_check("10 subscribers vs none", 0.6,
                               _find(results, "events", subscribers=10, slow=False),
                               _find(results, "events", subscribers=0, slow=False),
                               " (events, 1000 concurrent)"))
    model = _find(results, "model-latency", model="scripted")
    eff = model.median("efficiency") if model else None
    checks.append(TargetCheck("model-latency vs ideal", ">= 85%",
                              None if eff is None else eff * 100, "%",
                              None if eff is None else eff >= 0.85,
                              f"scripted 50 ms model, {model.case.concurrency} concurrent"
                              if model else ""))
    checks.append(_ratio_check("seq vs LangGraph", 20.0, seq, lg, at))
    durable = _find(results, "durable")
    if durable:
        rate = durable.median("throughput") or 0.0
        where = f"at {durable.case.concurrency} concurrent"
        checks.append(TargetCheck("durable throughput", ">= 1500/s", rate, "/s", rate >= 1500,
                                  where))
        seq_same = _find(results, "seq", concurrency=durable.case.concurrency)
        if seq_same:
            x = rate / (seq_same.median("throughput") or 1.0)
            checks.append(TargetCheck("durable vs seq (stretch)", ">= 0.5x", x, "x", x >= 0.5,
                                      where))
    else:
        checks.append(TargetCheck("durable throughput", ">= 1500/s", None, "/s", None))
    stop = _find(results, "stop")
    if stop is None:
        checks.append(TargetCheck("stop() with blocked executions", "< 100 ms", None, "ms", None))
    else:
        ms = stop.median("stop_ms")
        all_resumable = stop.median("cancelled_fraction") == 1.0 and stop.median("resumed_fraction") == 1.0
        checks.append(TargetCheck(
            "stop() with blocked executions", "< 100 ms", ms, "ms",
            None if ms is None else (ms < 100 and all_resumable),
            f"{stop.case.concurrency} executions; all cancelled and resumable: {all_resumable}"))
    paused = _find(results, "paused")
    stop_ms = paused.median("stop_ms") if paused else None
    checks.append(TargetCheck("stop() of paused sessions, no storage", "< 500 ms", stop_ms, "ms",
                              None if stop_ms is None else stop_ms < 500,
                              f"{paused.case.concurrency} sessions" if paused else ""))
    mb = paused.median("rss_mb") if paused else None
    checks.append(TargetCheck("paused sessions RSS", "< 1024 MiB", mb, "MiB",
                              None if mb is None else mb < 1024,
                              f"{paused.case.concurrency} sessions, "
                              f"{paused.median('kb_per_session'):.1f} KiB each" if paused else ""))
    checks.append(_slow_subscriber(results))
    return tuple(checks)


def _slow_subscriber(results: Sequence[CaseResult]) -> TargetCheck:
    worst: tuple[float, int] | None = None
    for r in results:
        c = r.case
        if c.workload != "events" or c.options.get("slow") or r.error or not r.metrics:
            continue
        subs = int(c.options.get("subscribers", 0))
        other = _find(results, "events", concurrency=c.concurrency, subscribers=subs, slow=True)
        slowed, base = (other.median("throughput"), r.median("throughput")) if other else (None, None)
        if slowed is None or base is None:
            continue
        change = abs(1 - slowed / base) * 100
        if worst is None or change > worst[0]:
            worst = (change, subs)
    if worst is None:
        return TargetCheck("never-reading subscriber", "< 5% change", None, "%", None)
    return TargetCheck("never-reading subscriber", "< 5% change", worst[0], "%", worst[0] < 5,
                       f"worst case with {worst[1]} other subscriber(s)")


def _ratio_check(name: str, wanted: float, ours: CaseResult | None, base: CaseResult | None,
                 at: str) -> TargetCheck:
    """Our throughput over a baseline's at the same concurrency, against ``wanted``."""
    if not (ours and base and ours.case.concurrency == base.case.concurrency):
        return TargetCheck(name, f">= {wanted:g}x", None, "x", None)
    a, b = ours.median("throughput"), base.median("throughput")
    if a is None or b is None:
        return TargetCheck(name, f">= {wanted:g}x", None, "x", None)
    x = a / b
    return TargetCheck(name, f">= {wanted:g}x", x, "x", x >= wanted,
                       f"{a:,.0f}/s vs {b:,.0f}/s{at}")
