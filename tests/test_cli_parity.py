"""The command line a Hive user expects: run's -i/-f/-o/-q/-v, info --json, sessions show,
resume --checkpoint (a fork), list, an example in every --help, and one-line usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hive_actors.cli import COMMANDS, main
from hive_actors.storage.session_store import SessionStore

EXAMPLE = Path(__file__).parents[1] / "examples" / "research_assistant"


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hive_actors.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    folder = tmp_path / "research_assistant"
    shutil.copytree(EXAMPLE, folder)
    return folder


# Each command with a wrong argument: exit 2, one line on stderr, no traceback.
WRONG = {
    "validate": [],
    "info": ["no/such/agent"],
    "serve": [str(EXAMPLE), "--port", "70000"],
    "run": [str(EXAMPLE), "--input", "{nope"],
    "run-output": [str(EXAMPLE), "-o", "no/such/folder/result.json"],
    "resume": [str(EXAMPLE), "session_x", "--checkpoint", "first"],
    "sessions": [str(EXAMPLE), "bogus", "words"],
    "list": ["no/such/root"],
    "bench": ["--workloads", "nope"],
    "worker": [str(EXAMPLE), "--store", "postgresql:///x", "--lease-seconds", "0"],
    "submit": [str(EXAMPLE), "--store", "postgresql:///x", "--input", "{nope"],
    "submit-store": [str(EXAMPLE), "--store", "mysql://x"],
}


def test_every_command_is_covered_by_the_wrong_argument_test():
    assert {name.split("-")[0] for name in WRONG} == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(WRONG))
def test_a_wrong_argument_is_one_line_and_exit_code_2(command, capsys):
    assert main([command.split("-")[0], *WRONG[command]]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "error" in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_ends_with_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example:\n  hive-actors " in out or "example:\n  printf" in out


def test_info_json_is_the_agent_in_hive_export_shape(capsys):
    assert main(["info", str(EXAMPLE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["agent"]["name"] == "Research Assistant"
    assert [n["id"] for n in data["graph"]["nodes"]] == ["intake", "research", "format", "present"]


def test_run_reads_input_file_writes_output_and_quiet_prints_one_line(example, tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"topic_request": "trio"}))
    result_file = tmp_path / "result.json"
    proc = cli("run", str(example), "--scripted", "--storage", str(tmp_path / "s"),
               "-f", str(tmp_path / "in.json"), "-o", str(result_file), "-q",
               stdin="structured concurrency in trio\n")
    assert proc.returncode == 0, proc.stderr
    session_id, status = proc.stdout.split()
    assert status == "completed"
    result = json.loads(result_file.read_text())
    assert result["session_id"] == session_id and result["status"] == "completed"
    assert result["output"]["topic_request"] == "trio"


def test_sessions_show_then_resume_from_an_earlier_checkpoint_forks(example, tmp_path):
    storage = tmp_path / "s"
    first = cli("run", str(example), "--scripted", "--storage", str(storage))  # EOF: pauses
    assert first.returncode == 0 and "paused at node 'intake'" in first.stdout
    store = SessionStore(storage)
    [paused] = store.list_sessions()
    shown = cli("sessions", str(example), "show", paused.session_id, "--storage", str(storage))
    assert shown.returncode == 0, shown.stderr
    assert "status      paused" in shown.stdout and "state.json" in shown.stdout
    assert "checkpoints (" in shown.stdout
    fork = cli("resume", str(example), paused.session_id, "--checkpoint", "1", "--scripted",
               "--storage", str(storage), stdin="structured concurrency in trio\n")
    assert fork.returncode == 0, fork.stderr
    sessions = {r.session_id: r for r in store.list_sessions()}
    assert len(sessions) == 2 and sessions[paused.session_id].status == "paused"
    [forked] = [r for r in sessions.values() if r.session_id != paused.session_id]
    assert forked.status == "completed" and forked.forked_from == paused.session_id
    missing = cli("resume", str(example), paused.session_id, "--checkpoint", "99", "--scripted",
                  "--storage", str(storage))
    assert missing.returncode == 2 and "has no intact checkpoint 99" in missing.stderr


def test_list_counts_each_agents_sessions_by_status(example, tmp_path, capsys):
    root = tmp_path / "agents"
    cli("run", str(example), "--scripted", "--storage", str(root / "research_assistant"))
    assert main(["list", str(root)]) == 0
    out = capsys.readouterr().out
    assert "research_assistant" in out and "1 paused" in out
