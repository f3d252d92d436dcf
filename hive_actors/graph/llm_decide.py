"""``llm_decide`` edges: ask the model, once per decision, whether to follow each one."""

from __future__ import annotations

import json
import re
from typing import Any

from hive_actors.graph.spec import EdgeCondition, Goal, GraphIndex
from hive_actors.llm.provider import LLMProvider, LLMRequest, TextDelta

_SYSTEM = 'You are a routing agent. Reply with JSON only: {"proceed": true} or {"proceed": false}.'
_OBJECT = re.compile(r"\{[^{}]*\}")


async def decide_edges(llm: LLMProvider | None, index: GraphIndex, goal: Goal, source: str,
                       output: dict[str, Any]) -> dict[str, bool] | None:
    """Edge id -> proceed, for the llm_decide edges leaving ``source`` (looked up in the
    graph's ``index``), asking ``llm`` about ``goal``; None without a model (those edges then
    behave as on_success). A reply that is not the expected JSON, or a failing call, counts
    as proceed (the source succeeded)."""
    if llm is None:
        return None
    node = index.nodes.get(source)
    verdicts: dict[str, bool] = {}
    for edge in index.outgoing.get(source, ()):
        if edge.condition != EdgeCondition.LLM_DECIDE:
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
        text: list[str] = []
        try:
            async for chunk in llm.stream(request):
                if isinstance(chunk, TextDelta):
                    text.append(chunk.text)
            m = _OBJECT.search("".join(text))
            verdicts[edge.id] = bool(json.loads(m.group(0)).get("proceed", True)) if m else True
        except Exception:  # a failing call must not fail a node that succeeded
            verdicts[edge.id] = True
    return verdicts
