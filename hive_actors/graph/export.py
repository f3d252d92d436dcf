"""Our ``agent.json``: an AgentDefinition written in Hive's current export shape.

The top-level keys are Hive's (``agent``, ``graph``, ``goal``, ``required_tools``,
``metadata``); every field hive_actors keeps is written, and keys read into ``extra`` go back
beside the fields they came with, so Hive can read the file and :func:`load_agent` of it gives
an equal definition.
"""

from __future__ import annotations

from typing import Any

from hive_actors.graph.spec import GraphSpec
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.serde import to_data


def default_entry_point(graph: GraphSpec) -> EntryPointSpec:
    """The entry point a graph without any gets: ``default``, manual, at the entry node."""
    return EntryPointSpec(id="default", entry_node=graph.entry_node, name="default")


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    """A record's data with its ``extra`` keys put back beside its fields (as Hive wrote
    them); an extra key that collides with a field name is dropped."""
    extra = data.pop("extra", None) or {}
    return {**data, **{k: v for k, v in extra.items() if k not in data}}


def definition_to_json(definition: Any) -> dict[str, Any]:
    """An AgentDefinition as our ``agent.json``: the top-level keys of Hive's current export
    (``agent``, ``graph``, ``goal``, ``required_tools``, ``metadata``) holding every field we
    keep, plus any unknown top-level keys read in. Loading the result gives an equal
    definition."""
    graph = definition.graph
    g = to_data(graph)
    # retries + 1: agent.json keeps Hive's total-attempts meaning (see hive_format.py)
    g["nodes"] = [_flat({**to_data(n), "max_retries": n.max_retries + 1}) for n in graph.nodes]
    g["edges"] = [_flat(to_data(e)) for e in graph.edges]
    mapped = {k: EntryPointSpec(id=k, entry_node=v, name=k) for k, v in graph.entry_points.items()}
    if graph.entry_points or definition.entry_points != (default_entry_point(graph),):
        extra_eps = [to_data(ep) for ep in definition.entry_points if mapped.get(ep.id) != ep]
        if extra_eps:
            g["async_entry_points"] = extra_eps
    goal = to_data(definition.goal)
    for key in ("success_criteria", "constraints"):
        goal[key] = [_flat(item) for item in goal[key]]
    out = {
        "agent": dict(definition.agent_info),
        "graph": _flat(g),
        "goal": _flat(goal),
        "required_tools": list(definition.required_tools),
        "metadata": dict(definition.metadata),
    }
    return {**out, **{k: v for k, v in definition.extra.items() if k not in out}}
