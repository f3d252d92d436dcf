"""Accepted means durable: an execution id returned by trigger() survives a SIGKILL of the
process right after it returned: the session exists, says ``running``, and a new process
resumes it to the output of an uninterrupted run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio

from fault.crash_harness import AGENT, list_sessions
from fault.support import STATS, check_session_folder

CHILDREN = Path(__file__).parent / "children"


def expected(k: int) -> str:
    a = k + 1
    return f"{a}:{(a * 3 - 2) ** 2}"


async def accept_then_die(tmp_path: Path, count: int, stop_after: int) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    storage, ids_file = tmp_path / "store", tmp_path / "ids.jsonl"
    proc = await trio.run_process(
        [sys.executable, str(CHILDREN / "accept_then_die.py"), str(AGENT), str(storage),
         str(ids_file), str(count), str(stop_after)],
        check=False, capture_stdout=True, capture_stderr=True)
    assert proc.returncode == -9, proc.stderr.decode()  # it died by SIGKILL, as planned
    STATS.add("kills")
    accepted = [json.loads(line) for line in ids_file.read_text().splitlines()]
    assert len(accepted) >= stop_after
    rows = await list_sessions(storage)
    sessions = storage / "sessions"
    for item in accepted:
        assert rows[item["id"]] in ("running", "completed")
        state = json.loads((sessions / item["id"] / "state.json").read_bytes())
        assert state["status"] in ("running", "completed")
        assert state["input_data"] == {"x": item["k"]}
    for folder in sessions.iterdir():
        check_session_folder(folder)

    done = await trio.run_process(
        [sys.executable, str(CHILDREN / "recover_all.py"), str(AGENT), str(storage)],
        check=False, capture_stdout=True, capture_stderr=True)
    assert done.returncode == 0, done.stderr.decode()
    recovered = json.loads(done.stdout)
    for item in accepted:
        state = json.loads((sessions / item["id"] / "state.json").read_bytes())
        assert state["status"] == "completed", item
        assert state["output"]["result"] == expected(item["k"])
    for sid, result in recovered.items():
        assert result["status"] == "completed", (sid, result)
    STATS.add("sessions_recovered", len(recovered))
    for folder in sessions.iterdir():
        check_session_folder(folder)


@pytest.mark.fast_sample
async def test_trigger_that_returned_survives_sigkill_right_after(tmp_path):
    await accept_then_die(tmp_path, count=4, stop_after=1)


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [1, 2, 5, 10, 19])
async def test_triggers_that_returned_survive_sigkill_among_twenty(tmp_path, stop_after):
    for round_ in range(4):
        await accept_then_die(tmp_path / f"r{round_}", count=20, stop_after=stop_after)
