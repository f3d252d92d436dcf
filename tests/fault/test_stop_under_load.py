"""stop() under load: every execution in flight (running or queued, over four entry points)
ends ``cancelled`` and resumable; no task of the runtime is left and no file is written once
stop() has returned."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from fault.runtime_support import (
    Work, all_tasks, expected_output, make_runtime, snapshot, use_fs,
)
from fault.support import STATS, check_session_folder
from hive_actors.storage.engines import open_reader
from hive_actors.storage.fs import FaultyFileSystem


async def stop_then_resume(tmp_path, monkeypatch, n: int) -> None:
    fs = FaultyFileSystem()  # no faults: it only records every storage operation
    use_fs(monkeypatch, fs)
    work = Work(hold_all=True)
    before = all_tasks()
    # n // 8 running per entry point: about half run (and block in n2), the rest queue
    rt = make_runtime(tmp_path, work, entry_points=4, max_concurrent=n // 8)
    await rt.start()
    ids = {}
    async with trio.open_nursery() as nursery:
        async def trigger(k: int) -> None:
            ids[k] = await rt.trigger(f"ep{k % 4}", {"k": k})

        for k in range(n):
            nursery.start_soon(trigger, k)
    running = 4 * (n // 8)
    await work.wait_blocked(running)
    stats = rt.get_stats()["streams"]
    assert sum(s["running"] for s in stats.values()) == running
    assert sum(s["queued"] for s in stats.values()) == n - running

    await rt.stop()
    assert all_tasks() == before  # no task of the runtime (nor start()'s host) outlives stop()
    ops, files = len(fs.log), snapshot(tmp_path)
    # let every task run until it blocks: a task of the runtime still alive would show here
    await trio.testing.wait_all_tasks_blocked()
    assert all_tasks() == before
    assert len(fs.log) == ops and snapshot(tmp_path) == files  # nothing written after stop()
    STATS.add("executions_stopped", n)

    sessions = tmp_path / "sessions"
    reader = open_reader(tmp_path)  # the files the view left to the journal at stop
    for k, sid in ids.items():
        assert reader.read_state(sid).status == "cancelled", k
        state = json.loads((sessions / sid / "state.json").read_bytes())
        assert state["status"] == "cancelled", (k, state["status"])
        check_session_folder(sessions / sid)
    started = {k for k in ids if work.calls[(k, "n1")]}
    assert len(started) == running

    # every one of them resumes, in a new runtime, to the output of an uninterrupted run
    work2 = Work()
    results = {}
    async with make_runtime(tmp_path, work2, entry_points=4, max_concurrent=n // 4) as rt2:
        async with trio.open_nursery() as nursery:
            async def resume(k: int) -> None:
                results[k] = await rt2.resume(ids[k])

            for k in ids:
                nursery.start_soon(resume, k)
    for k, result in results.items():
        assert result.status == "completed", (k, result.error)
        assert result.output["d"] == expected_output(k)
        # n1 had completed (durably) in the ones that ran: it never runs again
        assert work.calls[(k, "n1")] + work2.calls[(k, "n1")] == 1
        assert work2.calls[(k, "n2")] == 1
    STATS.add("sessions_recovered", len(results))
    assert len(results) == n


@pytest.mark.fast_sample
async def test_stop_with_100_in_flight_cancels_all_and_all_resume(tmp_path, monkeypatch):
    await stop_then_resume(tmp_path, monkeypatch, 100)


@pytest.mark.slow
async def test_stop_with_1000_in_flight_over_4_entry_points_cancels_all_and_all_resume(
        tmp_path, monkeypatch):
    await stop_then_resume(tmp_path, monkeypatch, 1000)


async def test_stop_never_starts_a_queued_execution(tmp_path):
    """A queued execution must not start (and run node side effects) while stop() unwinds."""
    work = Work(hold_all=True)
    rt = make_runtime(tmp_path, work, entry_points=1, max_concurrent=1)
    await rt.start()
    first = await rt.trigger("ep0", {"k": 1})
    queued = await rt.trigger("ep0", {"k": 2})
    await work.wait_blocked(1)
    await rt.stop()
    assert work.calls[(2, "n1")] == 0  # it never ran
    for sid in (first, queued):
        state = json.loads((tmp_path / "sessions" / sid / "state.json").read_bytes())
        assert state["status"] == "cancelled"
