"""Where to draw a graph's nodes and edges: a layered (Sugiyama) layout computed by grandalf.

One layout feeds both pictures of a graph: the dashboard draws it in the browser
(``get_graph`` on the event feed) and ``hive-actors info --svg`` writes it to a file.
Pure and synchronous: a GraphSpec in, a GraphLayout record out (top to bottom, in pixels).
"""

from __future__ import annotations

from typing import Any

import attrs
from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout
from grandalf.routing import route_with_lines

from hive_actors.graph.spec import EdgeCondition, EdgeSpec, GraphSpec, NodeSpec

NODE_HEIGHT = 46.0
MARGIN = 24.0
COMPONENT_GAP = 48.0
# A rough width per label character (the page and the SVG use a ~13 px sans-serif font).
CHAR_WIDTH = 7.6


@attrs.frozen
class NodeBox:
    """One node: its centre (x, y), size, label and roles (entry, terminal, pause, ...)."""

    id: str
    label: str
    node_type: str
    x: float
    y: float
    width: float
    height: float
    roles: tuple[str, ...] = ()


@attrs.frozen
class EdgeLine:
    """One edge: the polyline from its source box to its target box and its label.

    Router routes have no edge id in the graph; they get ``route:<node>:<label>``.
    """

    id: str
    source: str
    target: str
    label: str
    condition: str
    points: tuple[tuple[float, float], ...]
    # where the label starts (left end of its baseline)
    label_x: float = 0.0
    label_y: float = 0.0


@attrs.frozen
class GraphLayout:
    width: float
    height: float
    nodes: tuple[NodeBox, ...]
    edges: tuple[EdgeLine, ...]


def edge_label(edge: EdgeSpec) -> str:
    """What an edge is labelled with: its condition (on_success, the default, says nothing)."""
    if edge.condition is EdgeCondition.CONDITIONAL:
        return edge.condition_expr or "conditional"
    if edge.condition is EdgeCondition.ON_SUCCESS:
        return ""
    if edge.condition is EdgeCondition.LLM_DECIDE:
        return "llm decides"
    return str(edge.condition.value).replace("_", " ")


def node_roles(graph: GraphSpec, node: NodeSpec) -> tuple[str, ...]:
    roles = []
    if node.id == graph.entry_node or node.id in graph.entry_points.values():
        roles.append("entry")
    if node.id in graph.terminal_nodes:
        roles.append("terminal")
    if node.id in graph.pause_nodes:
        roles.append("pause")
    if node.client_facing:
        roles.append("client")
    return tuple(roles)


def graph_edges(graph: GraphSpec) -> list[tuple[str, str, str, str, str]]:
    """Every drawn edge as (id, source, target, label, condition), router routes included;
    edges to unknown nodes are left out."""
    known = {n.id for n in graph.nodes}
    out = [(e.id, e.source, e.target, edge_label(e), e.condition.value) for e in graph.edges]
    for n in graph.nodes:
        for label, target in n.routes.items():
            out.append((f"route:{n.id}:{label}", n.id, target, label, "router"))
    return [e for e in out if e[1] in known and e[2] in known]


def subtitle(node_type: str, roles: tuple[str, ...]) -> str:
    """The small second line of a node box: its type and roles."""
    return " · ".join([node_type, *roles])


class _Path:
    """The grandalf edge view: the routed points."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []
        self.head_angle = 0.0

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = points


class _Box:
    """The grandalf vertex view: size in, centre (``xy``) out."""

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy: tuple[float, float] = (0.0, 0.0)


def layout_graph(graph: GraphSpec) -> GraphLayout:
    """Lay out ``graph`` top to bottom; disconnected parts side by side."""
    vertices: dict[str, Any] = {}
    for n in graph.nodes:
        v = Vertex(n.id)
        label, sub = n.name or n.id, subtitle(n.node_type, node_roles(graph, n))
        width = max(96.0, CHAR_WIDTH * len(label) + 28.0, 6.0 * len(sub) + 20.0)
        v.view = _Box(round(width, 1), NODE_HEIGHT)
        vertices[n.id] = v
    drawn = graph_edges(graph)
    edges: dict[str, Any] = {}
    for edge_id, source, target, _label, _cond in drawn:
        if source == target:
            continue  # self-loops are drawn beside their node, not laid out
        e = Edge(vertices[source], vertices[target])
        e.view = _Path()
        edges[edge_id] = e
    g = Graph(list(vertices.values()), list(edges.values()))
    left = MARGIN
    height = 0.0
    for component in g.C:
        left, bottom = _place(component, graph, vertices, left)
        height = max(height, bottom)
    boxes = tuple(
        NodeBox(n.id, n.name or n.id, n.node_type, round(vertices[n.id].view.xy[0], 1),
                round(vertices[n.id].view.xy[1], 1), vertices[n.id].view.w,
                vertices[n.id].view.h, node_roles(graph, n))
        for n in graph.nodes
    )
    lines = []
    for edge_id, source, target, label, cond in drawn:
        if source == target:
            points = _self_loop(vertices[source].view)
        else:
            points = tuple((round(x, 1), round(y, 1)) for x, y in edges[edge_id].view.points)
        lx, ly = _label_anchor(points)
        lines.append(EdgeLine(edge_id, source, target, label, cond, points, lx, ly))
    right = max([left - COMPONENT_GAP, MARGIN]
                + [e.label_x + CHAR_WIDTH * len(e.label) for e in lines]
                + [x for e in lines for x, _ in e.points])
    return GraphLayout(width=round(right + MARGIN, 1), height=round(height + MARGIN, 1),
                       nodes=boxes, edges=tuple(lines))


def _label_anchor(points: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """Just right of the middle of a polyline (of its middle segment)."""
    i = max(0, (len(points) - 1) // 2)
    (x0, y0), (x1, y1) = points[i], points[min(i + 1, len(points) - 1)]
    return round(max(x0, x1) + 6.0, 1), round((y0 + y1) / 2 + 4.0, 1)


def _place(component: Any, graph: GraphSpec, vertices: dict[str, Any],
           left: float) -> tuple[float, float]:
    """Lay out one connected part with its left edge at ``left``; returns (next left, bottom)."""
    sug = SugiyamaLayout(component)
    sug.xspace, sug.yspace = 36, 56
    sug.route_edge = route_with_lines
    members = list(component.sV)
    entry = vertices.get(graph.entry_node)
    roots = [entry] if entry in members else None
    sug.init_all(roots=roots)
    sug.draw()
    xs = [v.view.xy[0] - v.view.w / 2 for v in members]
    ys = [v.view.xy[1] - v.view.h / 2 for v in members]
    dx, dy = left - min(xs), MARGIN - min(ys)
    for v in members:
        v.view.xy = (v.view.xy[0] + dx, v.view.xy[1] + dy)
    for e in component.sE:
        e.view.setpath([(x + dx, y + dy) for x, y in e.view.points])
    right = max(v.view.xy[0] + v.view.w / 2 for v in members)
    bottom = max(v.view.xy[1] + v.view.h / 2 for v in members)
    return right + COMPONENT_GAP, bottom


def _self_loop(box: _Box) -> tuple[tuple[float, float], ...]:
    """A loop out of the right side of a box and back into it."""
    x, y = box.xy
    r = x + box.w / 2
    return ((r, y - 8), (r + 26, y - 16), (r + 26, y + 16), (r, y + 8))
