"""The benchmark harness: every workload runs at tiny sizes and reports the expected fields.

No timing assertions: only that each case ran, its executions succeeded and the report
carries what the issue asks for (medians, spread, environment, ratios, targets).
"""

from __future__ import annotations

import json

import pytest

from hive_actors.bench import BenchOptions, Case, Workload, run_benchmarks, run_case
from hive_actors.bench.baselines import langgraph_available
from hive_actors.bench.model_runs import fake_server_script
from hive_actors.bench.report import write_json
from hive_actors.bench.workloads import STANDARD, quick, select
from hive_actors.cli import main

OPTIONS = BenchOptions(repetitions=1)


def ran(case: Case, *metrics: str) -> dict[str, float]:
    result = run_case(case, OPTIONS)
    assert result.error is None, result.error
    assert result.repetitions == 1
    for name in metrics:
        assert name in result.metrics, f"{case.label}: no {name} in {sorted(result.metrics)}"
    assert result.median("failed") in (None, 0.0)
    return {k: s.median for k, s in result.metrics.items()}


@pytest.mark.parametrize("workload", ["seq", "par"])
def test_throughput_workloads_report_rate_latency_and_memory(workload):
    got = ran(Case(workload, concurrency=4, entry_points=2, executions=8),
              "throughput", "us_per_transition", "p50_ms", "p99_ms", "peak_rss_mb")
    assert got["throughput"] > 0 and got["p99_ms"] >= got["p50_ms"]


def test_floor_runs_seq_and_par():
    for workload in ("seq", "par"):
        ran(Case(workload, "floor", concurrency=3, executions=6), "throughput", "p50_ms")


def test_durable_counts_bytes_and_syncs_per_execution(tmp_path):
    result = run_case(Case("durable", concurrency=3, executions=3),
                      BenchOptions(repetitions=1, storage_root=str(tmp_path)))
    assert result.error is None, result.error
    assert result.median("file_bytes_per_exec") > 0
    assert result.median("syncs_per_exec") > 0
    assert list(tmp_path.iterdir()) == []  # its temporary storage is removed


def test_events_counts_deliveries_with_and_without_a_never_reading_subscriber():
    for slow in (False, True):
        got = ran(Case("events", concurrency=3, executions=3,
                       options={"subscribers": 2, "slow": slow}),
                  "delivered_per_s", "events_per_exec", "dropped")
        assert got["events_per_exec"] > 5


def test_stop_cancels_every_blocked_execution_and_they_resume(tmp_path):
    got = ran(Case("stop", concurrency=5, options={"resume_sample": 2}), "stop_ms")
    assert got["cancelled_fraction"] == 1.0
    assert got["resumed_fraction"] == 1.0


def test_paused_measures_memory_of_sessions_waiting_for_input():
    got = ran(Case("paused", concurrency=10), "rss_mb", "kb_per_session", "ramp_s")
    assert got["rss_mb"] > 0


def test_model_latency_with_scripted_model_reports_efficiency():
    got = ran(Case("model-latency", concurrency=3, executions=3,
                   options={"model": "scripted", "delay": 0.001}), "efficiency")
    assert got["efficiency"] > 0


@pytest.mark.skipif(fake_server_script() is None, reason="needs tests/fake_openai.py")
def test_model_latency_through_the_fake_openai_server():
    ran(Case("model-latency", concurrency=2, executions=2,
             options={"model": "openai", "delay": 0.001}), "efficiency")


@pytest.mark.skipif(langgraph_available() is None, reason="LangGraph (extra 'compare') missing")
def test_langgraph_runs_the_same_graphs(tmp_path):
    for workload in ("seq", "par", "durable"):
        result = run_case(Case(workload, "langgraph", concurrency=2, executions=2),
                          BenchOptions(repetitions=1, storage_root=str(tmp_path)))
        assert result.error is None, result.error
        assert result.median("throughput") > 0


def test_report_json_has_environment_medians_ratios_and_targets(tmp_path):
    workloads = (Workload("seq", "tiny", (Case("seq", concurrency=2, executions=4),
                                          Case("seq", "floor", concurrency=2, executions=4))),)
    report = run_benchmarks(workloads, BenchOptions(repetitions=2, command="test"))
    data = json.loads(write_json(report, tmp_path / "r.json").read_text())
    meta = data["meta"]
    assert meta["command"] == "test" and meta["date"] and meta["machine"]["cores"]
    assert meta["versions"]["python"] and meta["repetitions"] == 2
    (first, _floor) = data["results"]
    assert first["case"]["workload"] == "seq" and first["repetitions"] == 2
    assert set(first["metrics"]["throughput"]) == {"median", "min", "max", "spread_pct", "samples"}
    assert len(first["metrics"]["throughput"]["samples"]) == 2
    assert {r["baseline"] for r in data["ratios"]} == {"floor"}
    names = {t["name"] for t in data["targets"]}
    assert {"seq vs bare-trio floor", "durable throughput", "stop() with blocked executions",
            "paused sessions RSS", "never-reading subscriber"} <= names


def test_standard_set_names_every_workload_and_quick_shrinks_it():
    assert [w.name for w in STANDARD] == ["seq", "par", "durable", "events", "stop", "paused",
                                          "model-latency"]
    small = quick(STANDARD)
    assert all(c.concurrency <= 50 for w in small for c in w.cases)
    picked = select(STANDARD, names=("seq",), systems=("hive",), concurrency=(100,),
                    entry_points=(4,))
    assert [c.label for c in picked[0].cases] == ["seq hive c=100 ep=4"]
    with pytest.raises(ValueError, match="unknown workload"):
        select(STANDARD, names=("nope",))


def test_cli_bench_writes_the_json_report(tmp_path, capsys):
    out = tmp_path / "latest.json"
    code = main(["bench", "--quick", "--workloads", "seq", "--systems", "hive",
                 "--concurrency", "10", "--entry-points", "1", "--reps", "1", "--out", str(out)])
    assert code == 0
    assert "Targets" in capsys.readouterr().out
    labels = [r["case"]["workload"] for r in json.loads(out.read_text())["results"]]
    assert labels == ["seq", "seq"]


def test_quick_bench_exits_0_without_optional_baselines_and_says_targets_do_not_apply(capsys):
    code = main(["bench", "--quick", "--workloads", "seq", "--concurrency", "1"])
    out = capsys.readouterr().out
    assert code == 0
    if langgraph_available() is None:
        assert "seq langgraph c=1: skipped: LangGraph not installed" in out
        assert "skipped 1 case(s): LangGraph not installed" in out
    assert "n/a at quick sizes" in out and "(1 reps," in out
