"""Crash matrix: SIGKILL ``hive-actors run`` at every node boundary and in the middle of every
node of a five-node agent; ``hive-actors resume`` must finish the session with the output of
an uninterrupted run, never re-running a node whose completion was durable.

Fast set (``make test``): one kill per point. Full set (``make test-fault``): 20 per point.
"""

from __future__ import annotations

import pytest
import trio

from fault.crash_harness import POINTS, STEPS, Outcome, kill_at, run_uninterrupted

RUNS_PER_POINT = 20


@pytest.fixture(scope="module")
def expected_output(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return trio.run(run_uninterrupted, tmp_path_factory.mktemp("baseline"))


def check(outcome: Outcome, expected: dict) -> None:
    where, step = outcome.point
    k = STEPS.index(step)
    before, through = STEPS[:k], STEPS[: k + 1]
    done = outcome.completed_before  # execution path of the latest durable checkpoint
    if where in ("enter", "mid"):
        # the call log at the kill: the step's side effect happened unless killed at entry
        assert outcome.calls_before == list(before if where == "enter" else through)
        assert done == before
    else:
        # released, then killed somewhere in the boundary after the step (or, at the
        # latest, once the following step had started): the log is a prefix of the steps
        calls = outcome.calls_before
        assert calls == list(STEPS[:len(calls)]) and len(calls) > k
        assert done == STEPS[:len(done)] and k <= len(done) <= len(calls)
    if outcome.status_after_kill != "completed":
        assert outcome.status_after_kill == "running"
        assert outcome.resume_rc == 0, outcome.resume_stderr
    final = outcome.final_state
    assert final["status"] == "completed"
    assert final["output"] == expected
    # completed nodes never run again; the rest run exactly once more, in order
    remaining = [s for s in STEPS if s not in done]
    if outcome.status_after_kill == "completed":
        remaining = []
    assert outcome.calls_after == remaining
    everything = outcome.calls_before + outcome.calls_after
    for s in done:
        assert everything.count(s) == 1


def _ids(point: tuple[str, str]) -> str:
    return f"{point[0]}-{point[1]}"


@pytest.mark.fast_sample
@pytest.mark.parametrize("point", POINTS, ids=_ids)
async def test_kill_once_at_point_then_resume_matches_uninterrupted_run(tmp_path, point,
                                                                       expected_output):
    check(await kill_at(tmp_path, point), expected_output)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS, ids=_ids)
async def test_kill_twenty_times_at_point_then_resume_matches_uninterrupted_run(
        tmp_path, point, expected_output):
    outcomes: list[Outcome] = []
    limiter = trio.CapacityLimiter(2)  # two children at a time: the machine has 2 cores

    async def one(i: int) -> None:
        async with limiter:
            outcomes.append(await kill_at(tmp_path / f"run{i:02d}", point))

    async with trio.open_nursery() as nursery:
        for i in range(RUNS_PER_POINT):
            nursery.start_soon(one, i)
    assert len(outcomes) == RUNS_PER_POINT
    for outcome in outcomes:
        check(outcome, expected_output)
