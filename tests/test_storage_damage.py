"""Damaged storage costs only the damaged session: listing shows it, every other session and
the commands keep working, resume refuses a damaged latest checkpoint unless told what to do,
and nothing follows a symlink out of the storage folder."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hive_actors.errors import CorruptFileError
from hive_actors.runner.commands import resume_command, run_command, sessions_command
from hive_actors.storage.runtime_log import RuntimeLog
from hive_actors.storage.session_store import SessionStore
from test_runner_cli import AGENT_PY  # the same three function nodes n1 -> n2 -> n3

# Calls are logged to $DAMAGE_LOG; n3 fails while $DAMAGE_FAIL names an existing file.
STEPS_PY = '''
import os

def _log(name):
    with open(os.environ["DAMAGE_LOG"], "a") as f:
        f.write(name + "\\n")

def one(x):
    _log("n1")
    return {"a": x + 1}

def two(a):
    _log("n2")
    return {"b": a * 10}

def three(b):
    _log("n3")
    if os.path.exists(os.environ["DAMAGE_FAIL"]):
        raise RuntimeError("n3 fails on purpose")
    return {"c": b + 5}
'''


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, devnull_stdin: None) -> Path:
    folder = tmp_path / "damage_agent"
    folder.mkdir()
    (folder / "agent.py").write_text(textwrap.dedent(AGENT_PY))
    (folder / "steps.py").write_text(textwrap.dedent(STEPS_PY))
    monkeypatch.setenv("DAMAGE_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("DAMAGE_FAIL", str(tmp_path / "fail"))
    return folder


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.log").read_text().split()


def failed_session(agent: Path, tmp_path: Path, storage: Path) -> str:
    """A session that completed n1 and n2, then failed in n3 (resumable)."""
    (tmp_path / "fail").touch()
    assert run_command(str(agent), '{"x": 1}', storage=str(storage)) == 1
    (tmp_path / "fail").unlink()
    [sid] = SessionStore(storage).session_ids()
    return sid


def checkpoint_files(storage: Path, sid: str) -> list[Path]:
    return sorted((storage / "sessions" / sid / "checkpoints").glob("*.json"))


def test_deeply_nested_state_shows_as_damaged_and_the_rest_keeps_working(
        agent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "store"
    assert run_command(str(agent), '{"x": 1}', storage=str(storage)) == 0
    bad = storage / "sessions" / "session_bad" / "state.json"
    bad.parent.mkdir()
    bad.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    capsys.readouterr()
    assert sessions_command(str(agent), storage=str(storage)) == 0
    listing = capsys.readouterr().out
    assert "completed" in listing
    assert "session_bad" in listing and "damaged" in listing and "nested" in listing
    assert run_command(str(agent), '{"x": 2}', storage=str(storage)) == 0  # start-up scans it
    with pytest.raises(CorruptFileError, match="state.json"):
        SessionStore(storage).read_state("session_bad")


def test_state_of_the_wrong_shape_is_a_corrupt_file_error(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    for i, text in enumerate(['{"schema_version": 1, "session_id": [[[]]]}', "[]", "1e999",
                              '{"schema_version": 1}', "\xff\xfe"]):
        path = tmp_path / "sessions" / f"session_{i}" / "state.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(text.encode("latin-1"))
        with pytest.raises(CorruptFileError, match=str(path)):
            store.read_state(f"session_{i}")
    records, damaged = store.scan()
    assert records == [] and len(damaged) == 5


def test_sessions_folder_that_is_a_file_is_a_clear_error(
        agent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "store"
    storage.mkdir()
    (storage / "sessions").write_text("not a folder")
    assert sessions_command(str(agent), storage=str(storage)) == 1
    assert "sessions" in capsys.readouterr().err
    assert run_command(str(agent), '{"x": 1}', storage=str(storage)) == 1  # no traceback


def test_resume_refuses_a_damaged_latest_checkpoint_and_names_the_choices(
        agent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "store"
    sid = failed_session(agent, tmp_path, storage)
    latest = checkpoint_files(storage, sid)[-1]
    latest.write_text("{ damaged")
    capsys.readouterr()
    assert resume_command(str(agent), sid, storage=str(storage)) == 1
    err = capsys.readouterr().err
    assert latest.name in err and "--checkpoint" in err and "--fallback" in err
    assert calls(tmp_path) == ["n1", "n2", "n3"]  # nothing ran again

    assert resume_command(str(agent), sid, storage=str(storage), fallback=True) == 0
    out = capsys.readouterr().out
    assert "--fallback" in out and "n2" in out and "run again" in out
    assert calls(tmp_path) == ["n1", "n2", "n3", "n2", "n3"]


def test_resume_with_every_checkpoint_damaged_refuses_to_start_over_silently(
        agent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "store"
    sid = failed_session(agent, tmp_path, storage)
    for path in checkpoint_files(storage, sid):
        path.write_text("[]")
    assert resume_command(str(agent), sid, storage=str(storage)) == 1
    assert "start the session over" in capsys.readouterr().err
    assert calls(tmp_path) == ["n1", "n2", "n3"]


def test_resume_from_an_explicit_checkpoint(
        agent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "store"
    sid = failed_session(agent, tmp_path, storage)
    first = json.loads(checkpoint_files(storage, sid)[0].read_text())["seq"]
    assert resume_command(str(agent), sid, storage=str(storage), checkpoint=first) == 0
    assert "run again" in capsys.readouterr().out
    assert calls(tmp_path)[3:] == ["n2", "n3"]


def test_checkpoints_folder_symlinked_out_of_storage_is_refused(
        agent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "store"
    sid = failed_session(agent, tmp_path, storage)
    outside = tmp_path / "outside"
    checkpoints = storage / "sessions" / sid / "checkpoints"
    checkpoints.rename(outside)
    checkpoints.symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.iterdir())
    capsys.readouterr()
    assert resume_command(str(agent), sid, storage=str(storage), fallback=True) == 1
    assert "symlink" in capsys.readouterr().err
    assert sorted(p.name for p in outside.iterdir()) == before
    assert calls(tmp_path) == ["n1", "n2", "n3"]


def test_session_folder_or_state_symlinked_out_of_storage_is_damaged(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "state.json").write_text("{}")
    sessions = tmp_path / "store" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "session_a").symlink_to(outside, target_is_directory=True)
    (sessions / "session_b").mkdir()
    (sessions / "session_b" / "state.json").symlink_to(outside / "state.json")
    store = SessionStore(tmp_path / "store")
    for sid in ("session_a", "session_b"):
        with pytest.raises(CorruptFileError, match="symlink leading out"):
            store.read_state(sid)
    assert [d.session_id for d in store.scan()[1]] == ["session_a", "session_b"]


def test_damaged_checkpoints_are_reported_by_start_up_recovery_and_sessions(
        agent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    storage = tmp_path / "store"
    sid = failed_session(agent, tmp_path, storage)
    state_path = storage / "sessions" / sid / "state.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "status": "running", "owner": None}))  # interrupted
    first = checkpoint_files(storage, sid)[0]
    first.write_text("{ damaged")
    capsys.readouterr()

    assert sessions_command(str(agent), storage=str(storage)) == 0
    err = capsys.readouterr().err
    assert str(first) in err and "damaged checkpoint" in err

    caplog.set_level("WARNING")
    assert run_command(str(agent), '{"x": 2}', storage=str(storage)) == 0  # start-up recovery
    assert any(str(first) in r.getMessage() and "damaged checkpoint" in r.getMessage()
               for r in caplog.records)
    [line] = [line for line in RuntimeLog(storage).read() if line["event"] == "damaged_checkpoints"]
    assert line["files"] == [str(first)]
