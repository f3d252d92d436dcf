"""Tools and functions of the research assistant example (offline: a tiny fact table)."""

from __future__ import annotations

from hive_actors.tools.registry import tool

_FACTS = {
    "trio": [
        "Trio is a Python library for async concurrency and I/O.",
        "Trio introduced nurseries for structured concurrency.",
        "Cancellation in Trio is scoped: a cancel scope cancels everything inside it.",
    ],
}


@tool
def lookup_facts(query: str) -> list[str]:
    """Facts known about a topic.

    Args:
        query: the topic to look up
    """
    words = query.lower().split()
    for key, facts in _FACTS.items():
        if key in words or key in query.lower():
            return facts
    return [f"No offline facts about {query!r}."]


def format_report(topic: str, findings: list[str] | str) -> dict[str, str]:
    """The findings as a markdown report (a function node: returns its output keys)."""
    items = findings if isinstance(findings, list) else [str(findings)]
    lines = [f"# Research brief: {topic}", ""] + [f"- {fact}" for fact in items]
    return {"report": "\n".join(lines)}
