"""SIGKILL inside the journal engine: in the middle of a group commit's write, before its
fdatasync returns, inside the view update (also half-way through a checkpoint it
materialises from a delta record) and inside segment retirement, at every such call
of one five-node run. After each kill ``hive-actors sessions`` lists the session with its true
status and complete files, and ``hive-actors resume`` ends it with the output of an
uninterrupted run without re-running a node whose checkpoint was durable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio

from fault.crash_harness import (AGENT, INPUT, STEPS, Control, cli, env_for, list_sessions,
                                 run_uninterrupted)
from fault.support import STATS, check_session_folder
from hive_actors.storage.checkpoint_store import CheckpointStore

CHILD = Path(__file__).parent / "children" / "kill_in_storage.py"
OPS = ("segment_write", "fdatasync", "view_replace", "materialise_write", "retire_unlink")
MAX_NTH = 40  # more calls than one run makes of any of them


@pytest.fixture(scope="module")
def expected_output(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return trio.run(run_uninterrupted, tmp_path_factory.mktemp("baseline"))


async def _kill_and_resume(tmp: Path, op: str, nth: int, expected: dict) -> bool:
    """One round; False when the run made fewer than ``nth`` calls of ``op``."""
    ctl = Control(tmp / "ctl")
    storage = tmp / "store"
    try:
        run = await trio.run_process(
            [sys.executable, str(CHILD), str(AGENT), str(storage), op, str(nth)],
            env=env_for(ctl), check=False, capture_stdout=True, capture_stderr=True)
        if run.returncode == 0:
            return False
        assert run.returncode == -9, run.stderr.decode()
        STATS.add("kills")
        calls_before = ctl.calls()
        listed = await list_sessions(storage)
        if not listed:  # killed before the acceptance record was durable: nothing accepted
            assert calls_before == []
            return True
        ((sid, status),) = listed.items()
        session = storage / "sessions" / sid
        check_session_folder(session, "after_kill")
        state = json.loads((session / "state.json").read_bytes())
        assert state["status"] == status and status in ("running", "completed")
        latest = CheckpointStore(session).latest()
        done = list(latest.state.execution_path) if latest is not None else []
        assert calls_before[:len(done)] == done
        if status == "running":
            resumed = await trio.run_process(cli("resume", str(AGENT), sid, "--storage",
                                                 str(storage)),
                                             env=env_for(ctl), check=False,
                                             capture_stdout=True, capture_stderr=True)
            assert resumed.returncode == 0, resumed.stderr.decode()
            calls_after = ctl.calls()[len(calls_before):]
            assert calls_after == [s for s in STEPS if s not in done]
        final = json.loads((session / "state.json").read_bytes())
        assert final["status"] == "completed" and final["output"] == expected
        everything = ctl.calls()
        assert all(everything.count(s) == 1 for s in done)
        check_session_folder(session, "after_resume")
        STATS.add("sessions_recovered")
        return True
    finally:
        await ctl.aclose()


async def _every_call(tmp: Path, op: str, expected: dict, nths: range) -> int:
    killed = 0
    for nth in nths:
        if not await _kill_and_resume(tmp / f"{op}{nth:02d}", op, nth, expected):
            break
        killed += 1
    return killed


@pytest.mark.fast_sample
@pytest.mark.parametrize("op", OPS)
async def test_kill_at_the_first_calls_inside_the_journal_then_resume(tmp_path, op,
                                                                     expected_output):
    assert await _every_call(tmp_path, op, expected_output, range(1, 3)) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
async def test_kill_at_every_call_inside_the_journal_then_resume(tmp_path, op, expected_output):
    killed = await _every_call(tmp_path, op, expected_output, range(1, MAX_NTH + 1))
    assert 1 <= killed < MAX_NTH  # the run ended before MAX_NTH: every call was tried
