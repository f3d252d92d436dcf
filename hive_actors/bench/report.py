"""Output of a benchmark run: JSON (through the one converter), rich tables, a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from hive_actors.bench.model import BenchReport
from hive_actors.serde import to_data

if TYPE_CHECKING:  # rich is imported when a report is printed, not with the package
    from rich.console import Console, RenderableType

# metric -> (column title, format)
COLUMNS = {
    "throughput": ("exec/s", "{:,.0f}"),
    "us_per_transition": ("µs/step", "{:,.1f}"),
    "p50_ms": ("p50 ms", "{:,.1f}"),
    "p99_ms": ("p99 ms", "{:,.1f}"),
    "peak_rss_mb": ("peak RSS MiB", "{:,.0f}"),
}
EXTRA = {
    "durable": ("file_bytes_per_exec", "write_bytes_per_exec", "syncs_per_exec",
                "view_files_per_exec", "view_lag_p50_ms", "view_lag_p99_ms"),
    "events": ("delivered_per_s", "dropped"),
    "stop": ("stop_ms", "cancelled_fraction", "resumed_fraction"),
    "paused": ("rss_mb", "kb_per_session", "ramp_s", "stop_ms"),
    "model-latency": ("efficiency",),
}


def write_json(report: BenchReport, path: str | Path) -> Path:
    """Write the report as indented JSON (parent folders created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_data(report), indent=1, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    return out


def _fmt(value: float | None, pattern: str = "{:,.3g}") -> str:
    return "-" if value is None else pattern.format(value)


def tables(report: BenchReport) -> list[RenderableType]:
    """Rich renderables: a header, one results table, ratios and targets."""
    from rich.table import Table
    from rich.text import Text

    meta = report.meta
    m, v = meta.get("machine", {}), meta.get("versions", {})
    header = Text(
        f"{meta.get('date')}  {m.get('cpu')} ({m.get('cores')} cores)  python {v.get('python')}"
        f"  trio {v.get('trio')}  langgraph {v.get('langgraph') or 'n/a'}\n"
        f"command: {meta.get('command')}  (median of up to {meta.get('repetitions')} runs; "
        f"± = (max-min)/median)")
    results = Table("case", *(title for title, _ in COLUMNS.values()), "±", "other",
                    title="Results")
    for r in report.results:
        if r.error or r.skipped:
            why = f"[red]{r.error}[/red]" if r.error else f"skipped: {r.skipped}"
            results.add_row(r.case.label, *["-"] * len(COLUMNS), "-", why)
            continue
        cells = [_fmt(r.median(k), fmt) for k, (_, fmt) in COLUMNS.items()]
        key = "throughput" if "throughput" in r.metrics else next(iter(r.metrics), None)
        spread = f"{r.metrics[key].spread_pct:.0f}%" if key else "-"
        other = "  ".join(f"{k}={_fmt(r.median(k))}" for k in EXTRA.get(r.case.workload, ())
                          if k in r.metrics)
        if r.notes:
            other += "  (" + "; ".join(r.notes) + ")"
        results.add_row(r.case.label, *cells, spread, other)
    ratios = Table("workload", "concurrency", "baseline", "hive exec/s", "baseline exec/s",
                   "ratio", title="hive_actors / baseline")
    for q in report.ratios:
        ratios.add_row(q.workload, str(q.concurrency), q.baseline, f"{q.hive:,.0f}",
                       f"{q.other:,.0f}", f"{q.ratio:.2f}x")
    targets = Table("target", "wanted", "measured", "met", "detail", title="Targets")
    for t in report.targets:
        met = ({True: "[green]yes[/green]", False: "[red]no[/red]", None: "not run"}[t.met]
               if t.applies else "n/a at quick sizes")
        targets.add_row(t.name, t.target, _fmt(t.measured, "{:,.3g}") + f" {t.unit}", met,
                        t.detail)
    return [header, results, ratios, targets]


def write_text(report: BenchReport, path: str | Path) -> Path:
    """The printed tables as plain text (what the README's Performance section shows)."""
    from rich.console import Console

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        print_report(report, Console(file=f, width=160, no_color=True, highlight=False))
    return out


def print_report(report: BenchReport, console: Console | None = None) -> None:
    from rich.console import Console

    console = console or Console(width=160)
    for part in tables(report):
        console.print(part)


def plot(report: BenchReport, path: str | Path) -> Path:
    """A PNG of throughput and p50 latency against concurrency for seq/par/durable per
    system. Raises ImportError without matplotlib (extra ``plot``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(12, 4.5))
    series: dict[str, list[tuple[int, float, float]]] = {}
    for r in report.results:
        c = r.case
        if r.error or c.entry_points != 1 or c.workload not in ("seq", "par", "durable"):
            continue
        t, p = r.median("throughput"), r.median("p50_ms")
        if t is not None and p is not None:
            series.setdefault(f"{c.workload} {c.system}", []).append((c.concurrency, t, p))
    for name, points in sorted(series.items()):
        points.sort()
        xs = [x for x, _, _ in points]
        ax_t.plot(xs, [t for _, t, _ in points], marker="o", label=name)
        ax_l.plot(xs, [p for _, _, p in points], marker="o", label=name)
    for ax, label in ((ax_t, "executions/s"), (ax_l, "p50 latency (ms)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent executions")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle(f"hive_actors benchmarks, {report.meta.get('date')}")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
