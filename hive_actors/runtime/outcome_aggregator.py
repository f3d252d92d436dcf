"""OutcomeAggregator: progress toward the goal's success criteria, across streams and executions.

Each finished execution reports one outcome. Every success criterion of the goal judges it:
1. an explicit verdict in ``criteria={criterion_id: bool}`` (a judge node, a test) wins;
2. else, when the criterion names a ``metric`` found in ``metrics`` (or in ``output``) and its
   ``target`` reads as a threshold ("90%", ">=8/10", "> 3", "true"), the value is compared;
3. else the execution's own success counts.
A criterion's progress is the fraction of judged outcomes that met it; it is met when that
fraction reaches its required rate (a "N%" target, else 0.8). Overall progress is the weighted
mean of criteria (1 for a met one, its progress otherwise); a goal without criteria counts the
plain success rate. Only bounded recent records are kept; counters cover everything.

Events (``seq == 0``, they are not part of an execution's own sequence): ``GOAL_PROGRESS``
after each outcome (stream of that outcome, no execution id) and ``CONSTRAINT_VIOLATION``.
"""

from __future__ import annotations

import collections
import datetime as _dt
import re
from typing import Any, Protocol

import attrs

from hive_actors.graph.spec import Goal, SuccessCriterion
from hive_actors.events import AgentEvent, EventType, utcnow
from hive_actors.serde import to_data

DEFAULT_REQUIRED_RATE = 0.8
_EVIDENCE_KEPT = 5
_THRESHOLD = re.compile(
    r"^\s*(?P<op>>=|<=|==|=|>|<)?\s*(?P<num>\d+(?:\.\d+)?)\s*"
    r"(?:(?P<pct>%)|/\s*(?P<den>\d+(?:\.\d+)?))?\s*$"
)


class _Publisher(Protocol):
    def publish_nowait(self, event: AgentEvent) -> int: ...


@attrs.frozen
class Outcome:
    stream_id: str
    execution_id: str
    success: bool
    output: dict[str, Any] = attrs.field(factory=dict)
    criteria: dict[str, bool] = attrs.field(factory=dict)  # verdict per criterion id
    error: str | None = None
    timestamp: _dt.datetime = attrs.field(factory=utcnow)


@attrs.frozen
class Decision:
    stream_id: str
    execution_id: str
    intent: str
    chosen: str = ""
    reasoning: str = ""
    node_id: str | None = None
    timestamp: _dt.datetime = attrs.field(factory=utcnow)


@attrs.frozen
class ConstraintViolation:
    constraint_id: str
    description: str
    details: str
    hard: bool
    stream_id: str = ""
    execution_id: str = ""
    timestamp: _dt.datetime = attrs.field(factory=utcnow)


@attrs.define
class _CriterionTally:
    judged: int = 0
    met: int = 0
    evidence: collections.deque[str] = attrs.field(
        factory=lambda: collections.deque(maxlen=_EVIDENCE_KEPT)
    )


def _threshold(target: Any) -> tuple[str, float, float | None] | None:
    """(operator, threshold, scale) from a target; scale divides raw metric values > 1
    ("90%" -> 100, "8/10" -> 10). None when the target is not a threshold."""
    if isinstance(target, bool):
        return ("==", float(target), None)
    if isinstance(target, (int, float)):
        return (">=", float(target), None)
    if not isinstance(target, str):
        return None
    if target.strip().lower() in ("true", "yes"):
        return ("==", 1.0, None)
    m = _THRESHOLD.match(target)
    if m is None:
        return None
    num, op = float(m["num"]), m["op"] or ">="
    if m["pct"]:
        return (op, num / 100, 100.0)
    if m["den"]:
        return (op, num / float(m["den"]), float(m["den"]))
    return (op, num, None)


def required_rate(criterion: SuccessCriterion) -> float:
    """The fraction of judged outcomes that must meet ``criterion`` for it to be met."""
    t = _threshold(criterion.target)
    if isinstance(criterion.target, str) and t is not None and t[2] == 100.0:
        return t[1]
    return DEFAULT_REQUIRED_RATE


def _compare(value: Any, t: tuple[str, float, float | None]) -> bool | None:
    op, threshold, scale = t
    if isinstance(value, bool) or value is None:
        value = float(bool(value))
    if not isinstance(value, (int, float)):
        return None
    v = value / scale if scale and value > 1 else float(value)
    return {">=": v >= threshold, ">": v > threshold, "<=": v <= threshold,
            "<": v < threshold, "==": v == threshold, "=": v == threshold}[op]


class OutcomeAggregator:
    """Aggregates outcomes, decisions and constraint violations for one goal."""

    def __init__(self, goal: Goal, bus: _Publisher | None = None, *, max_recent: int = 100) -> None:
        self.goal = goal
        self.bus = bus
        self._tallies = {c.id: _CriterionTally() for c in goal.success_criteria}
        self._constraints = {c.id: c for c in goal.constraints}
        self.recent_outcomes: collections.deque[Outcome] = collections.deque(maxlen=max_recent)
        self.recent_decisions: collections.deque[Decision] = collections.deque(maxlen=max_recent)
        self.violations: collections.deque[ConstraintViolation] = collections.deque(
            maxlen=max_recent
        )
        self.counts = collections.Counter[str]()
        self.streams: set[str] = set()

    def record_decision(self, stream_id: str, execution_id: str, intent: str, chosen: str = "",
                        *, reasoning: str = "", node_id: str | None = None) -> Decision:
        """Remember a decision (bounded recent list, counted in ``metrics``)."""
        decision = Decision(stream_id, execution_id, intent, chosen, reasoning, node_id)
        self.recent_decisions.append(decision)
        self.counts["decisions"] += 1
        self.streams.add(stream_id)
        return decision

    def record_outcome(self, stream_id: str, execution_id: str, success: bool,
                       output: dict[str, Any] | None = None, *,
                       criteria: dict[str, bool] | None = None,
                       metrics: dict[str, Any] | None = None, error: str | None = None) -> Outcome:
        """Record how an execution ended, judge it against every criterion (module doc) and
        publish GOAL_PROGRESS. Verdicts for criterion ids the goal lacks are kept, not judged."""
        output = dict(output or {})
        values = {**output, **(metrics or {})}
        verdicts = dict(criteria or {})
        for c in self.goal.success_criteria:
            if c.id not in verdicts:
                verdicts[c.id] = self._judge(c, success, values)
            tally = self._tallies[c.id]
            tally.judged += 1
            tally.met += bool(verdicts[c.id])
            tally.evidence.append(
                f"{stream_id}/{execution_id}: {'met' if verdicts[c.id] else 'not met'}"
            )
        outcome = Outcome(stream_id, execution_id, success, output, verdicts, error)
        self.recent_outcomes.append(outcome)
        self.counts["outcomes"] += 1
        self.counts["successes" if success else "failures"] += 1
        self.streams.add(stream_id)
        if self.bus is not None:
            progress = self.get_goal_progress()
            self.bus.publish_nowait(AgentEvent(
                type=EventType.GOAL_PROGRESS, stream_id=stream_id,
                data={"progress": progress["overall_progress"],
                      "criteria_status": progress["criteria_status"],
                      "recommendation": progress["recommendation"],
                      "execution_id": execution_id},
            ))
        return outcome

    def record_constraint_violation(self, constraint_id: str, details: str = "", *,
                                    stream_id: str = "", execution_id: str = "",
                                    description: str | None = None) -> ConstraintViolation:
        """Record a violation and publish CONSTRAINT_VIOLATION. A constraint the goal does not
        declare is recorded as hard (unknown constraints are not assumed harmless)."""
        declared = self._constraints.get(constraint_id)
        violation = ConstraintViolation(
            constraint_id=constraint_id,
            description=description or (declared.description if declared else ""),
            details=details, hard=declared is None or declared.constraint_type == "hard",
            stream_id=stream_id, execution_id=execution_id,
        )
        self.violations.append(violation)
        self.counts["violations"] += 1
        self.counts["hard_violations"] += violation.hard
        if self.bus is not None:
            self.bus.publish_nowait(AgentEvent(
                type=EventType.CONSTRAINT_VIOLATION, stream_id=stream_id,
                execution_id=execution_id,
                data={"constraint_id": constraint_id, "description": violation.description,
                      "details": details, "hard": violation.hard},
            ))
        return violation

    @staticmethod
    def _judge(c: SuccessCriterion, success: bool, values: dict[str, Any]) -> bool:
        t = _threshold(c.target)
        if c.metric and c.metric in values and t is not None:
            verdict = _compare(values[c.metric], t)
            if verdict is not None:
                return verdict
        return success

    def criterion_status(self, criterion: SuccessCriterion) -> dict[str, Any]:
        tally = self._tallies[criterion.id]
        progress = tally.met / tally.judged if tally.judged else 0.0
        return {
            "description": criterion.description,
            "met": tally.judged > 0 and progress >= required_rate(criterion),
            "progress": progress,
            "judged": tally.judged,
            "evidence": list(tally.evidence),
        }

    def get_goal_progress(self) -> dict[str, Any]:
        """JSON-able summary: overall_progress (0..1), criteria_status, constraint_violations,
        metrics, recommendation ("complete" | "adjust" | "continue"), recent_outcomes."""
        statuses = {c.id: self.criterion_status(c) for c in self.goal.success_criteria}
        successes, failures = self.counts["successes"], self.counts["failures"]
        success_rate = successes / max(1, successes + failures)
        weights = {c.id: max(0.0, c.weight) for c in self.goal.success_criteria}
        total_weight = sum(weights.values())
        if total_weight > 0:
            overall = sum(
                w * (1.0 if statuses[cid]["met"] else statuses[cid]["progress"])
                for cid, w in weights.items()
            ) / total_weight
        else:
            overall = success_rate
        return {
            "goal_id": self.goal.id,
            "overall_progress": overall,
            "criteria_status": statuses,
            "constraint_violations": [to_data(v) for v in self.violations],
            "metrics": {
                "outcomes": self.counts["outcomes"], "successes": successes,
                "failures": failures, "success_rate": success_rate,
                "decisions": self.counts["decisions"],
                "violations": self.counts["violations"], "streams": len(self.streams),
            },
            "recommendation": self._recommend(overall),
            "recent_outcomes": [to_data(o) for o in self.recent_outcomes],
        }

    def _recommend(self, overall: float) -> str:
        if self.counts["hard_violations"]:
            return "adjust"
        if self.counts["outcomes"] and overall >= 0.95:
            return "complete"
        if overall < 0.3 and self.counts["outcomes"] > 10:
            return "adjust"
        return "continue"
