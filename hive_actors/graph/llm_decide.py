"""``llm_decide`` edges: ask the model, once per decision, whether to follow each one."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from hive_actors.graph.spec import EdgeCondition, Goal, GraphIndex
from hive_actors.graph.steps import decision_key
from hive_actors.llm.provider import LLMProvider, LLMRequest, TextDelta, TurnEnd, model_of

if TYPE_CHECKING:
    from hive_actors.graph.steps import StepLog
    from hive_actors.tracing import Tracing

_SYSTEM = 'You are a routing agent. Reply with JSON only: {"proceed": true} or {"proceed": false}.'
_OBJECT = re.compile(r"\{[^{}]*\}")


async def decide_edges(llm: LLMProvider | None, index: GraphIndex, goal: Goal, source: str,
                       output: dict[str, Any], tracing: Tracing | None = None,
                       steps: StepLog | None = None, visit: int = 0) -> dict[str, bool] | None:
    """Edge id -> proceed, for the llm_decide edges leaving ``source`` (looked up in the
    graph's ``index``), asking ``llm`` about ``goal``; None without a model (those edges then
    behave as on_success). A reply that is not the expected JSON, or a failing call, counts
    as proceed (the source succeeded). Each call is a ``chat`` span when ``tracing``.
    With a step journal (``steps``; ``visit``: the source's visit count) each verdict is
    recorded, and a recorded one is used instead of asking again (resume, replay)."""
    if llm is None:
        return None
    node = index.nodes.get(source)
    verdicts: dict[str, bool] = {}
    for edge in index.outgoing.get(source, ()):
        if edge.condition != EdgeCondition.LLM_DECIDE:
            continue
        key = decision_key(source, visit, edge.id)
        recorded = steps.lookup(key) if steps is not None else None
        if recorded is not None:
            verdicts[edge.id] = bool(recorded.get("proceed", True))
            continue
        target = index.nodes.get(edge.target)
        prompt = (
            f"Goal: {goal.name or goal.id}: {goal.description}\n"
            f"Step just finished: {node.name or source if node else source}\n"
            f"Its output: {json.dumps(output, default=str)[:2000]}\n"
            f"Candidate next step: {(target.name if target else '') or edge.target}\n"
            f"When to take it: {edge.description or 'no description'}\n"
            "Should execution proceed to the candidate step?"
        )
        request = LLMRequest(
            messages=({"role": "user", "content": prompt},), system=_SYSTEM,
            node_id=f"{source}->{edge.target}",
        )
        try:
            if tracing is None:
                reply = await _ask(llm, request)
            else:
                with tracing.chat(model_of(llm, request), _SYSTEM, request.messages) as call:
                    reply = await _ask(llm, request, call)
            m = _OBJECT.search(reply)
            verdicts[edge.id] = bool(json.loads(m.group(0)).get("proceed", True)) if m else True
        except Exception:  # a failing call must not fail a node that succeeded
            verdicts[edge.id] = True
        if steps is not None:
            await steps.record(key, {"kind": "decision", "proceed": verdicts[edge.id]})
    return verdicts


async def _ask(llm: LLMProvider, request: LLMRequest, call: Any = None) -> str:
    """The text of one model reply; ``call`` (a tracing ChatCall) is told how the turn ended."""
    text: list[str] = []
    async for chunk in llm.stream(request):
        if isinstance(chunk, TextDelta):
            text.append(chunk.text)
        elif isinstance(chunk, TurnEnd) and call is not None:
            call.end(chunk.stop_reason, chunk.usage, "".join(text))
    return "".join(text)
