"""A graph as text pictures: a Mermaid flowchart and a standalone SVG (``hive-actors info``).

The SVG draws the same :mod:`~hive_actors.graph.layout` the dashboard draws. Pure functions.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

from hive_actors.graph.layout import (GraphLayout, graph_edges, layout_graph, node_roles,
                                     subtitle)
from hive_actors.graph.spec import GraphSpec

# Words Mermaid's flowchart grammar reserves (an id like ``end`` breaks the chart).
_RESERVED = {"end", "graph", "flowchart", "subgraph", "direction", "click", "style", "class",
             "classdef", "linkstyle", "call", "href", "default", "interpolate"}


def mermaid_id(node_id: str, taken: set[str]) -> str:
    """A Mermaid-safe id for ``node_id`` (letters, digits, ``_``), unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", node_id) or "node"
    if base[0].isdigit() or base.lower() in _RESERVED:
        base = "n_" + base
    candidate, i = base, 2
    while candidate in taken:
        candidate, i = f"{base}_{i}", i + 1
    taken.add(candidate)
    return candidate


def mermaid_text(text: str) -> str:
    """``text`` for a quoted Mermaid label: quotes, brackets, pipes and newlines as entities."""
    text = text.replace("#", "#35;").replace('"', "#quot;").replace("|", "#124;")
    text = text.replace("<", "#lt;").replace(">", "#gt;")
    return " ".join(text.split())


# shape (open, close) by role: entry stadium, terminal subroutine, pause hexagon, router rhombus
_SHAPES = {"entry": ("([", "])"), "terminal": ("[[", "]]"), "pause": ("{{", "}}"),
           "router": ("{", "}"), "": ("[", "]")}


def to_mermaid(graph: GraphSpec) -> str:
    """A ``flowchart TD`` of the graph: one line per node and per edge (conditions as labels)."""
    taken: set[str] = set()
    ids = {n.id: mermaid_id(n.id, taken) for n in graph.nodes}
    lines = ["flowchart TD"]
    for n in graph.nodes:
        roles = node_roles(graph, n)
        role = next((r for r in ("entry", "terminal", "pause") if r in roles),
                    "router" if n.node_type == "router" else "")
        opening, closing = _SHAPES[role]
        label = n.name or n.id
        if label != n.id:
            label = f"{label} ({n.id})"
        lines.append(f'    {ids[n.id]}{opening}"{mermaid_text(label)}"{closing}')
    for _edge_id, source, target, label, condition in graph_edges(graph):
        arrow = "-.->" if condition == "on_failure" else "-->"
        text = f'|"{mermaid_text(label)}"|' if label else ""
        lines.append(f"    {ids[source]} {arrow}{text} {ids[target]}")
    return "\n".join(lines) + "\n"


_COLOURS = {"entry": "#2f6fd0", "terminal": "#2f8f4e", "pause": "#a66a00"}


def to_svg(graph: GraphSpec, layout: GraphLayout | None = None) -> str:
    """A standalone SVG document of the graph, laid out by :func:`layout_graph`."""
    layout = layout or layout_graph(graph)
    w, h = layout.width, layout.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.1f} {h:.1f}" font-family="sans-serif" font-size="13">',
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
        "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#667\"/></marker></defs>",
        f'<rect width="{w:.1f}" height="{h:.1f}" fill="#ffffff"/>',
    ]
    for e in layout.edges:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in e.points)
        dash = ' stroke-dasharray="5 4"' if e.condition in ("on_failure", "conditional") else ""
        out.append(f'<polyline data-edge-id={quoteattr(e.id)} points="{points}" fill="none" '
                   f'stroke="#667" stroke-width="1.5"{dash} marker-end="url(#arrow)"/>')
        if e.label:
            out.append(f'<text x="{e.label_x:.1f}" y="{e.label_y:.1f}" font-size="11" '
                       f'fill="#445">{escape(e.label)}</text>')
    for n in layout.nodes:
        colour = next((_COLOURS[r] for r in n.roles if r in _COLOURS), "#8a93a6")
        x, y = n.x - n.width / 2, n.y - n.height / 2
        width = 3 if "entry" in n.roles or "terminal" in n.roles else 1.5
        out.append(f'<g data-node-id={quoteattr(n.id)}>'
                   f'<rect x="{x:.1f}" y="{y:.1f}" width="{n.width:.1f}" height="{n.height:.1f}" '
                   f'rx="8" fill="#f7f8fb" stroke="{colour}" stroke-width="{width}"/>'
                   f'<text x="{n.x:.1f}" y="{n.y - 3:.1f}" text-anchor="middle" '
                   f'font-weight="600">{escape(n.label)}</text>'
                   f'<text x="{n.x:.1f}" y="{n.y + 13:.1f}" text-anchor="middle" font-size="10" '
                   f'fill="#667">{escape(subtitle(n.node_type, n.roles))}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
