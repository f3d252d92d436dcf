"""`hive-actors info --mermaid` and `--svg`: the graph as a Mermaid flowchart and as a picture."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hive_actors.cli import main
from hive_actors.errors import AgentDefinitionError
from hive_actors.graph.layout import graph_edges, layout_graph
from hive_actors.graph.loader import load_agent
from hive_actors.graph.render import to_mermaid
from hive_actors.graph.spec import EdgeCondition, EdgeSpec, GraphSpec, NodeSpec

EXAMPLE = Path(__file__).parents[1] / "examples" / "research_assistant"

# -- a small checker of Mermaid's flowchart syntax (the subset `to_mermaid` may use) ---------

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_LABEL = r'"[^"\n]*"'
_SHAPES = [("(((", ")))"), ("([", "])"), ("[[", "]]"), ("[(", ")]"), ("((", "))"),
           ("{{", "}}"), ("[/", "/]"), ("[", "]"), ("(", ")"), ("{", "}"), (">", "]")]
_SHAPE = "|".join(re.escape(o) + _LABEL + re.escape(c) for o, c in _SHAPES)
_NODE = re.compile(rf"^({_ID})(?:{_SHAPE})$")
_EDGE = re.compile(rf"^({_ID}) (?:-->|-\.->|==>|---)(?:\|{_LABEL}\|)? ({_ID})$")
_RESERVED = {"end", "graph", "flowchart", "subgraph", "style", "class", "classdef", "click",
             "linkstyle", "direction", "default"}


def check_flowchart(text: str) -> tuple[set[str], int]:
    """Raise AssertionError at the first line that is not valid flowchart syntax; return the
    declared node ids and the number of edges."""
    lines = text.splitlines()
    assert re.fullmatch(r"flowchart (TD|TB|BT|LR|RL)", lines[0]), lines[0]
    declared: set[str] = set()
    edges = 0
    for number, raw in enumerate(lines[1:], 2):
        line = raw.strip()
        if not line or line.startswith("%%"):
            continue
        node, edge = _NODE.match(line), _EDGE.match(line)
        assert node or edge, f"line {number}: not a node or an edge: {raw!r}"
        ids = node.groups()[:1] if node else edge.groups()  # type: ignore[union-attr]
        for name in ids:
            assert name.lower() not in _RESERVED, f"line {number}: reserved id {name!r}"
        if node:
            assert ids[0] not in declared, f"line {number}: {ids[0]} declared twice"
            declared.add(ids[0])
        else:
            assert set(ids) <= declared, f"line {number}: edge to an undeclared node"
            edges += 1
    return declared, edges


def test_checker_refuses_what_mermaid_refuses() -> None:
    for bad in ['flowchart TD\n    end["x"]', 'flowchart TD\n    a["say "hi""]',
                'flowchart TD\n    a-b["x"]', 'flowchart TD\n    a["x"]\n    a --> b',
                'graph XY\n    a["x"]']:
        with pytest.raises(AssertionError):
            check_flowchart(bad)


def test_mermaid_of_the_example_names_nodes_edges_and_conditions(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(EXAMPLE), "--mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["flowchart TD", '    intake(["Intake (intake)"])',
                                    '    research["Research (research)"]']
    assert '    research -->|"needs_more == True"| research' in out
    assert '    present[["Present (present)"]]' in out  # terminal
    assert check_flowchart(out) == ({"intake", "research", "format", "present"}, 4)


def test_awkward_ids_and_labels_stay_valid_mermaid() -> None:
    graph = GraphSpec(
        id="g", entry_node="end",
        nodes=(NodeSpec(id="end", name='say "hi" | <b>'), NodeSpec(id="a-b"),
               NodeSpec(id="a_b"), NodeSpec(id="1st", node_type="router", routes={"x|y": "end"})),
        edges=(EdgeSpec(id="e1", source="end", target="a-b", condition=EdgeCondition.CONDITIONAL,
                        condition_expr='x == "|" and y > 2'),
               EdgeSpec(id="e2", source="a-b", target="a_b", condition=EdgeCondition.ON_FAILURE),
               EdgeSpec(id="e3", source="a_b", target="1st")),
    )
    declared, edges = check_flowchart(to_mermaid(graph))
    assert len(declared) == 4 and edges == 4


def test_every_loadable_fixture_export_gives_a_valid_flowchart(hive_fixtures_dir: Path) -> None:
    checked = 0
    for path in sorted(hive_fixtures_dir.glob("*.json")):
        try:
            graph = load_agent(path).graph
        except AgentDefinitionError:
            continue
        declared, edges = check_flowchart(to_mermaid(graph))
        assert len(declared) == len(graph.nodes), path.name
        assert edges == len(graph_edges(graph)), path.name
        checked += 1
    assert checked == 57


def test_svg_draws_the_dashboard_layout(tmp_path: Path) -> None:
    out = tmp_path / "graph.svg"
    assert main(["info", str(EXAMPLE), "--svg", str(out)]) == 0
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    groups = {g.get("data-node-id"): g for g in root.iter(ns + "g")}
    layout = layout_graph(load_agent(EXAMPLE).graph)
    assert set(groups) == {n.id for n in layout.nodes}
    for n in layout.nodes:
        rect = groups[n.id].find(ns + "rect")
        assert rect is not None
        assert float(rect.get("x", "")) == pytest.approx(n.x - n.width / 2, abs=0.1)
        assert float(rect.get("y", "")) == pytest.approx(n.y - n.height / 2, abs=0.1)
    assert {p.get("data-edge-id") for p in root.iter(ns + "polyline")} == {
        "intake-research", "research-again", "research-format", "format-present"}
