"""OutcomeAggregator: per-criterion judgement, overall progress, violations and events."""

from __future__ import annotations

import json

import pytest

from hive_actors.graph.spec import Constraint, Goal, SuccessCriterion
from hive_actors.runtime.event_bus import EventBus, EventType
from hive_actors.runtime.outcome_aggregator import OutcomeAggregator, required_rate


def goal(*criteria: SuccessCriterion, constraints: tuple[Constraint, ...] = ()) -> Goal:
    return Goal(id="g", success_criteria=criteria, constraints=constraints)


def test_no_data_gives_a_complete_empty_summary():
    progress = OutcomeAggregator(goal(SuccessCriterion(id="c1"))).get_goal_progress()
    assert progress["overall_progress"] == 0.0
    assert progress["criteria_status"]["c1"]["met"] is False
    assert progress["constraint_violations"] == []
    assert progress["recommendation"] == "continue"
    json.dumps(progress)  # JSON-able as is


def test_success_rate_criterion_follows_execution_success_across_streams():
    agg = OutcomeAggregator(goal(SuccessCriterion(id="works", target="75%")))
    for i, ok in enumerate([True, True, True, False]):
        agg.record_outcome("api" if i % 2 else "webhook", f"e{i}", ok)
    status = agg.get_goal_progress()["criteria_status"]["works"]
    assert (status["progress"], status["judged"], status["met"]) == (0.75, 4, True)
    assert agg.get_goal_progress()["metrics"]["streams"] == 2
    assert len(status["evidence"]) == 4


def test_metric_threshold_judges_each_outcome_from_its_metrics_or_output():
    agg = OutcomeAggregator(goal(
        SuccessCriterion(id="relevance", metric="score", target=">=8/10"),
        SuccessCriterion(id="coverage", metric="coverage", target="90%"),
    ))
    agg.record_outcome("s", "e1", True, {"coverage": 0.95}, metrics={"score": 9})
    agg.record_outcome("s", "e2", True, {"coverage": 50}, metrics={"score": 0.7})
    status = agg.get_goal_progress()["criteria_status"]
    assert status["relevance"]["progress"] == 0.5
    assert status["coverage"]["progress"] == 0.5


def test_explicit_verdicts_win_over_success():
    agg = OutcomeAggregator(goal(SuccessCriterion(id="tone")))
    outcome = agg.record_outcome("s", "e1", True, criteria={"tone": False})
    assert outcome.criteria == {"tone": False}
    assert agg.get_goal_progress()["criteria_status"]["tone"]["progress"] == 0.0


def test_overall_is_weighted_and_a_met_criterion_counts_fully():
    agg = OutcomeAggregator(goal(
        SuccessCriterion(id="a", weight=3.0),
        SuccessCriterion(id="b", weight=1.0),
    ))
    for i in range(5):
        agg.record_outcome("s", f"e{i}", True, criteria={"b": i < 2})
    progress = agg.get_goal_progress()
    assert progress["criteria_status"]["a"]["met"] is True
    assert progress["overall_progress"] == pytest.approx((3 * 1.0 + 1 * 0.4) / 4)


def test_goal_without_criteria_reports_the_success_rate_and_completes():
    agg = OutcomeAggregator(goal())
    agg.record_outcome("s", "e1", True)
    progress = agg.get_goal_progress()
    assert progress["overall_progress"] == 1.0
    assert progress["recommendation"] == "complete"


def test_hard_violation_recommends_adjusting_and_soft_does_not():
    agg = OutcomeAggregator(goal(constraints=(
        Constraint(id="budget", description="stay under budget", constraint_type="hard"),
        Constraint(id="style", constraint_type="soft"),
    )))
    agg.record_outcome("s", "e1", True)
    agg.record_constraint_violation("style", "too long")
    assert agg.get_goal_progress()["recommendation"] == "complete"
    v = agg.record_constraint_violation("budget", "spent 12 USD", stream_id="s", execution_id="e1")
    assert (v.description, v.hard) == ("stay under budget", True)
    progress = agg.get_goal_progress()
    assert progress["recommendation"] == "adjust"
    assert [x["constraint_id"] for x in progress["constraint_violations"]] == ["style", "budget"]


def test_many_failures_recommend_adjusting():
    agg = OutcomeAggregator(goal(SuccessCriterion(id="c")))
    for i in range(11):
        agg.record_outcome("s", f"e{i}", False, error="boom")
    assert agg.get_goal_progress()["recommendation"] == "adjust"


def test_recent_records_are_bounded_but_counters_are_not():
    agg = OutcomeAggregator(goal(), max_recent=3)
    for i in range(10):
        agg.record_outcome("s", f"e{i}", True)
        agg.record_decision("s", f"e{i}", "pick a tool", "search")
    progress = agg.get_goal_progress()
    assert [o["execution_id"] for o in progress["recent_outcomes"]] == ["e7", "e8", "e9"]
    assert progress["metrics"]["outcomes"] == 10
    assert progress["metrics"]["decisions"] == 10
    assert len(agg.recent_decisions) == 3


async def test_outcomes_and_violations_are_published_on_the_bus():
    bus = EventBus()
    agg = OutcomeAggregator(goal(SuccessCriterion(id="c")), bus=bus)
    agg.record_outcome("api", "e1", True)
    agg.record_constraint_violation("unknown-rule", "did X", stream_id="api", execution_id="e1")
    events = [e for _, e in bus.history()]
    assert [e.type for e in events] == [EventType.GOAL_PROGRESS, EventType.CONSTRAINT_VIOLATION]
    assert events[0].stream_id == "api" and events[0].data["progress"] == 1.0
    assert events[0].data["criteria_status"]["c"]["met"] is True
    assert events[1].data == {"constraint_id": "unknown-rule", "description": "",
                              "details": "did X", "hard": True}


@pytest.mark.parametrize(
    ("target", "rate"), [("95%", 0.95), ("100%", 1.0), (">=8/10", 0.8), ("", 0.8), (None, 0.8)]
)
def test_required_rate_reads_percent_targets(target, rate):
    assert required_rate(SuccessCriterion(id="c", target=target)) == pytest.approx(rate)
