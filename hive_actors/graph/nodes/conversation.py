"""Messages of the LLM loop: system prompt, a node's opening (or phase-transition) message,
and recovering outputs a paused node had already set. Pure functions over OpenAI-style dicts.

Each node's first message starts with a header line ``--- PHASE: <name> [<id>] ---`` (or
``--- PHASE TRANSITION: <prev> → <name> [<id>] ---`` in a continuous conversation), so that a
resumed node can find where its own part of a shared conversation begins.
"""

from __future__ import annotations

import json
from typing import Any

from hive_actors.graph.spec import Goal, GraphSpec, NodeSpec

_MAX_VALUE_CHARS = 4000


def system_prompt(graph: GraphSpec, goal: Goal, node: NodeSpec,
                  cache: dict[tuple[str, str], str]) -> str:
    """identity_prompt + goal context + the node's system_prompt, kept in ``cache`` (the
    graph's `GraphLookups.system_prompts`) by (node id, goal id)."""
    key = (node.id, goal.id)
    text = cache.get(key)
    if text is None:
        parts = [graph.identity_prompt or "", goal.to_prompt_context(), node.system_prompt or ""]
        text = cache[key] = "\n\n".join(p.strip() for p in parts if p and p.strip())
    return text


def _header(node: NodeSpec) -> str:
    return f"{node.name or node.id} [{node.id}] ---"


def _value_text(value: Any) -> str:
    kind = type(value)
    if kind is int:  # json.dumps of an int is its str(), without the encoder's setup
        return str(value)
    text = value if kind is str or isinstance(value, str) else json.dumps(
        value, ensure_ascii=False, default=str)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS] + f"... [{len(text) - _MAX_VALUE_CHARS} more characters]"
    return text


def opening_message(node: NodeSpec, inputs: dict[str, Any], previous: NodeSpec | None,
                    continuing: bool) -> str:
    """The user message that starts ``node``: its inputs and what it must produce."""
    if continuing and previous is not None:
        lines = [f"--- PHASE TRANSITION: {previous.name or previous.id} → {_header(node)}",
                 f"Completed: {previous.name or previous.id}."]
    else:
        lines = [f"--- PHASE: {_header(node)}"]
    if node.description:
        lines.append(f"Now: {node.description}")
    present = {k: v for k, v in inputs.items() if v is not None}
    if present:
        lines.append("Inputs:")
        lines += [f"- {k}: {_value_text(v)}" for k, v in present.items()]
    if node.output_keys:
        lines.append(
            f"When done, call set_output(key, value) for each of {list(node.required_output_keys)}"
            + (f" (optional: {list(node.nullable_output_keys)})" if node.nullable_output_keys else "")
            + "."
        )
    if len(lines) == 1:
        lines.append("Begin.")
    return "\n".join(lines)


def nudge(missing: list[str]) -> str:
    return (
        f"[System] Required outputs are not set yet: {missing}. "
        "Call set_output(key, value) for each of them to finish this step."
    )


def phase_start(messages: list[dict[str, Any]], node_id: str) -> int | None:
    """Index of the latest opening message of ``node_id``, or None."""
    tail = f"[{node_id}] ---"
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        content = m.get("content")
        if m.get("role") == "user" and isinstance(content, str) and content.startswith("--- PHASE"):
            if content.split("\n", 1)[0].endswith(tail):
                return i
    return None


def decode_value(value: Any) -> Any:
    """A set_output value: JSON text becomes what it encodes; other values stay as they are."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def recover_outputs(messages: list[dict[str, Any]], start: int, output_keys: tuple[str, ...]) -> dict[str, Any]:
    """Outputs set by successful set_output calls after ``start`` (used when resuming)."""
    pending: dict[str, dict[str, Any]] = {}
    outputs: dict[str, Any] = {}
    for m in messages[start:]:
        if m.get("role") == "assistant":
            for call in m.get("tool_calls") or ():
                fn = call.get("function", {})
                if fn.get("name") == "set_output":
                    try:
                        pending[call["id"]] = json.loads(fn.get("arguments") or "{}")
                    except ValueError:
                        pass
        elif m.get("role") == "tool" and m.get("tool_call_id") in pending:
            if not str(m.get("content", "")).startswith("ERROR"):
                args = pending[m["tool_call_id"]]
                if args.get("key") in output_keys:
                    outputs[args["key"]] = decode_value(args.get("value"))
    return outputs
