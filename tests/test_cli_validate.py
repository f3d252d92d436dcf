"""The hive-actors command line: validate and info."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hive_actors.cli import main

DOUBLER = Path(__file__).parent / "agents" / "doubler"


def broken_agent(tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({
        "graph": {"entry_node": "a", "nodes": [{"id": "a"}, {"id": "a"}],
                  "edges": [{"id": "e", "source": "a", "target": "nowhere"}]},
        "goal": {"id": "g"},
    }), encoding="utf-8")
    return path


def test_validate_valid_agents_exits_0_with_a_summary(capsys, hive_fixtures_dir):
    code = main(["validate", "-q", str(DOUBLER), str(hive_fixtures_dir / "deep_research_agent.json")])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(out) == 1 and out[0].startswith("2 of 2 valid, 0 invalid, ")


def test_validate_prints_one_line_per_problem_and_exits_1(capsys, tmp_path):
    bad = broken_agent(tmp_path)
    code = main(["validate", str(DOUBLER), str(bad)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines == [
        f"{bad}: graph.nodes[1].id: error: duplicate node id 'a' (first at graph.nodes[0])",
        f"{bad}: graph.edges[0].target: error: edge 'e' target names unknown node 'nowhere'",
        "1 of 2 valid, 1 invalid, 0 warning(s)",
    ]


def test_validate_reports_warnings_unless_quiet(capsys, hive_fixtures_dir):
    path = str(hive_fixtures_dir / "customer-support.json")
    assert main(["validate", path]) == 0
    loud = capsys.readouterr().out.splitlines()
    assert main(["validate", "--quiet", path]) == 0
    quiet = capsys.readouterr().out.splitlines()
    assert any(": warning: " in line for line in loud)
    assert quiet == ["1 of 1 valid, 0 invalid, 4 warning(s)"]


def test_usage_errors_exit_2(capsys):
    assert main(["validate"]) == 2
    assert main(["no-such-command"]) == 2
    assert main([]) == 2
    assert "(see hive-actors --help)" in capsys.readouterr().err


def test_info_shows_nodes_edges_entry_points_and_tools(capsys):
    assert main(["info", str(DOUBLER)]) == 0
    out = capsys.readouterr().out
    for text in ("doubler", "Nodes", "Edges", "Entry points", "Tools", "double-report",
                 "function", "start", "tools.py", "Twice x."):
        assert text in out


def test_info_on_an_invalid_agent_prints_problems_and_exits_1(capsys, tmp_path):
    assert main(["info", str(broken_agent(tmp_path))]) == 1
    assert "duplicate node id 'a'" in capsys.readouterr().err


def test_console_run_over_the_corpus_never_imports_the_llm_or_websocket_stack(hive_fixtures_dir):
    script = (
        "import sys\n"
        "from hive_actors.cli import main\n"
        "code = main(['validate', '-q', *sys.argv[1:]])\n"
        "heavy = [m for m in ('litellm', 'trio_websocket') if m in sys.modules]\n"
        "print('heavy modules:', heavy)\n"
        "sys.exit(code)\n"
    )
    files = sorted(str(p) for p in hive_fixtures_dir.glob("*.json"))
    done = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr  # two fixtures cannot load
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert lines[-1] == "heavy modules: []"
    assert lines[-2].startswith("57 of 59 valid, 2 invalid")
    assert all(": error: " in line for line in lines[:-2])
