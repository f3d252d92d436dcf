"""SIGKILL inside an event_loop node (issue 18): after each model turn is recorded and after
each tool result is recorded. The resume asks the model exactly the turns that were not
recorded (the same conversations an uninterrupted run sent), every tool whose result was
recorded ran once, a tool killed in flight runs again and its log line says ``rerun``, and
the output equals an uninterrupted run's.

``make test`` runs the acceptance point (killed after the second tool result); the full set
(``make test-fault``) every point."""

from __future__ import annotations

import pytest

from fault.step_harness import POINTS, StepOutcome, kill_at_step, uninterrupted

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
