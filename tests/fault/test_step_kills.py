"""SIGKILL inside an event_loop node (issue 18): after each model turn is recorded and after
each tool result is recorded. The resume asks the model exactly the turns that were not
recorded (the same conversations an uninterrupted run sent), every tool whose result was
recorded ran once, a tool killed in flight runs again and its log line says ``rerun``, the
output equals an uninterrupted run's, and ``hive-actors replay`` of the resumed session
finds its trace identical without asking the model.

``make test`` runs the acceptance point (killed after the second tool result); the full set
(``make test-fault``) every point."""

from __future__ import annotations

import pytest

from fault.step_harness import (POINTS, StepOutcome, WriteKill, kill_at_step, kill_in_write,
                                uninterrupted)

BUMPS = ["bump1", "bump2", "bump3"]


def check(outcome: StepOutcome, point: tuple[str, int], expected: dict, asked: list) -> None:
    where, n = point
    final = outcome.final_state
    assert final["status"] == "completed", final.get("error")
    assert final["output"] == expected
    if where == "result":  # tool result n recorded; turn n+1 was asked, never answered
        assert outcome.calls_before == BUMPS[:n]
        assert outcome.asked_before == asked[:n + 1]
        assert outcome.asked_after == asked[n:]  # from turn n+1 on, nothing earlier
        assert outcome.calls_after == BUMPS[n:]
    else:  # turn n recorded, tool n entered and killed before its side effect
        assert outcome.calls_before == BUMPS[:n - 1]
        assert outcome.asked_before == asked[:n]
        assert outcome.asked_after == asked[n:]  # turn n is not asked again
        assert outcome.calls_after == BUMPS[n - 1:]
        reruns = [r for r in outcome.tool_log if r.get("rerun")]
        assert [(r["tool_name"], r["tool_use_id"]) for r in reruns] == [("bump", f"call_{n}")]
    assert outcome.calls_before + outcome.calls_after == BUMPS  # each tool's effect once
    assert outcome.replay.startswith("0 ") and "replay identical" in outcome.replay


def _ids(point: tuple[str, int]) -> str:
    return f"{point[0]}-{point[1]}"


async def test_kill_after_second_tool_result_resumes_from_turn_three(tmp_path, nursery):
    expected, asked = await uninterrupted(tmp_path / "baseline", nursery)
    point = ("result", 2)
    check(await kill_at_step(tmp_path / "kill", point, nursery), point, expected, asked)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS, ids=_ids)
async def test_kill_at_each_step_of_the_node_then_resume(tmp_path, nursery, point):
    expected, asked = await uninterrupted(tmp_path / "baseline", nursery)
    check(await kill_at_step(tmp_path / "kill", point, nursery), point, expected, asked)


def check_write_kill(kill: WriteKill, expected: dict, asked: list) -> None:
    if kill.final_state["status"] == "not accepted":
        return
    assert kill.final_state["status"] == "completed", kill.final_state.get("error")
    assert kill.final_state["output"] == expected
    k = kill.recorded_turns
    if kill.asked_after:  # the resume asked exactly the turns not durable at the kill
        assert kill.asked_after == asked[k:]
    for n, call_id in enumerate(("call_1", "call_2", "call_3"), 1):
        count = kill.calls.count(f"bump{n}")
        if call_id in kill.recorded_results:
            assert count == 1  # a recorded result is never produced again
        else:
            assert 1 <= count <= 2  # in flight at the kill: at-least-once
    assert sorted(set(kill.calls)) == BUMPS


async def _kills_in_writes(tmp_path, nursery, op: str, nths: range) -> int:
    expected, asked = await uninterrupted(tmp_path / "baseline", nursery)
    killed = 0
    for nth in nths:
        kill = await kill_in_write(tmp_path / f"{op}{nth:02d}", op, nth, nursery)
        if kill is None:
            break
        check_write_kill(kill, expected, asked)
        killed += 1
    return killed


@pytest.mark.fast_sample
async def test_kill_inside_a_step_record_write_then_resume(tmp_path, nursery):
    assert await _kills_in_writes(tmp_path, nursery, "segment_write", range(3, 5)) == 2


@pytest.mark.slow
@pytest.mark.parametrize("op", ("segment_write", "fdatasync"))
async def test_kill_inside_every_durable_write_of_the_node_then_resume(tmp_path, nursery, op):
    killed = await _kills_in_writes(tmp_path, nursery, op, range(1, 41))
    assert 5 <= killed < 40  # the run ended before the 40th call: every call was tried
