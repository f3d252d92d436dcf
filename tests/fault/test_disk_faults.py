"""Disk faults injected through the files engine's fs seam (`FaultyFileSystem`): the
affected execution ends with a clear error, the others go on, nothing saved before is
damaged, and once the disk is healthy again the affected session resumes."""

from __future__ import annotations

import errno
import functools
import json

import pytest

from fault.runtime_support import Work, expected_output, make_runtime, snapshot
from fault.support import STATS, check_session_folder
from hive_actors.errors import StorageError
from hive_actors.runtime import agent_runtime
from hive_actors.storage.checkpoint_store import CheckpointStore
from hive_actors.storage.fs import Fault, FaultyFileSystem
from hive_actors.storage.writer import StorageWriter

# (operation, errno, part of the path) faults in a checkpoint write of one session
CHECKPOINT_FAULTS = [
    ("write", errno.ENOSPC),
    ("fsync", errno.EIO),
    ("replace", errno.EIO),
    ("fsync_dir", errno.EIO),
]


def use_fs(monkeypatch, fs: FaultyFileSystem) -> None:
    # one fsync per file (not one syncfs per batch), so a fault hits one request only
    monkeypatch.setattr(agent_runtime, "StorageWriter",
                        functools.partial(StorageWriter, fs=fs, sync_mode="fsync"))


@pytest.mark.parametrize(("op", "err"), CHECKPOINT_FAULTS, ids=[f[0] for f in CHECKPOINT_FAULTS])
async def test_checkpoint_fault_fails_only_that_execution_and_damages_nothing(
        tmp_path, monkeypatch, op, err):
    fs = FaultyFileSystem()
    use_fs(monkeypatch, fs)
    work = Work()
    work.hold = {0, 1, 2}
    async with make_runtime(tmp_path, work, storage_engine="files") as rt:
        ids = [await rt.trigger("ep0", {"k": k}) for k in range(3)]
        await work.wait_blocked(3)  # each has a durable n1 checkpoint and is inside n2
        victim = tmp_path / "sessions" / ids[1]
        saved = snapshot(victim / "checkpoints")
        assert len(saved) == 1
        fs.faults.append(Fault(op=op, errno=err, path_contains=f"{ids[1]}/checkpoints",
                               times=1000))
        work.release.set()
        results = [await rt.wait_for_result(i) for i in ids]
    STATS.add("faults_injected")
    bad = results[1]
    assert bad.status == "failed"
    # a clear error: what failed, where, and the OS reason
    assert "StorageError" in bad.error and "checkpoints" in bad.error
    assert f"errno {err}" in bad.error, bad.error
    for k in (0, 2):
        assert results[k].status == "completed"
        assert results[k].output["d"] == expected_output(k)
    # nothing saved before the fault is damaged; no temp file of the failed write is left
    after = check_session_folder(victim)
    assert after["temp"] == []
    current = snapshot(victim / "checkpoints")
    assert all(current[name] == digest for name, digest in saved.items())
    state = json.loads((victim / "state.json").read_bytes())
    assert state["status"] == "failed" and state["error"] == bad.error

    # the disk is healthy again: the session resumes where it stood, n1 does not run again
    fs.faults.clear()
    async with make_runtime(tmp_path, work2 := Work(), storage_engine="files") as rt2:
        again = await rt2.resume(ids[1])
    assert again.status == "completed" and again.output["d"] == expected_output(1)
    assert work2.calls[(1, "n1")] == 0 and work.calls[(1, "n1")] == 1
    STATS.add("sessions_recovered")


async def test_unwritable_state_at_accept_refuses_the_trigger_and_runs_nothing(
        tmp_path, monkeypatch):
    fs = FaultyFileSystem(Fault(op="write", errno=errno.ENOSPC, path_contains="state.json"))
    use_fs(monkeypatch, fs)
    work = Work()
    async with make_runtime(tmp_path, work, storage_engine="files") as rt:
        with pytest.raises(StorageError, match="state.json.*errno 28"):
            await rt.trigger("ep0", {"k": 7})
        assert not work.calls  # not accepted: nothing ran
        # the next trigger (disk healthy again) is accepted and runs
        result = await rt.trigger_and_wait("ep0", {"k": 8})
    STATS.add("faults_injected")
    assert result.status == "completed" and result.output["d"] == expected_output(8)
    sessions = list((tmp_path / "sessions").iterdir())
    assert [p.name for p in sessions if (p / "state.json").exists()] == [result.session_id]
    for p in sessions:
        check_session_folder(p)


async def test_failing_details_log_append_fails_that_execution_clearly(tmp_path, monkeypatch):
    fs = FaultyFileSystem()
    use_fs(monkeypatch, fs)
    work = Work()
    work.hold = {0, 1}
    async with make_runtime(tmp_path, work, storage_engine="files") as rt:
        ids = [await rt.trigger("ep0", {"k": k}) for k in range(2)]
        await work.wait_blocked(2)
        fs.faults.append(Fault(op="write", errno=errno.EIO,
                               path_contains=f"{ids[0]}/logs/details.jsonl", times=1000))
        work.release.set()
        results = [await rt.wait_for_result(i) for i in ids]
    STATS.add("faults_injected")
    assert results[0].status == "failed" and "details.jsonl" in results[0].error
    assert results[1].status == "completed"
    for sid in ids:
        check_session_folder(tmp_path / "sessions" / sid)
    details = (tmp_path / "sessions" / ids[0] / "logs" / "details.jsonl").read_bytes()
    assert details.count(b"\n") == 1 and details.endswith(b"\n")  # n1's line, whole


async def test_failed_syncfs_barrier_fails_the_writes_it_covered_then_the_runtime_goes_on(
        tmp_path, monkeypatch):
    """With group commit one syncfs covers a whole batch: its failure fails the executions
    whose writes were in that batch (here all six, released together), never silently;
    the runtime goes on, and each failed session resumes from its intact checkpoint."""
    fs = FaultyFileSystem()
    monkeypatch.setattr(agent_runtime, "StorageWriter",
                        functools.partial(StorageWriter, fs=fs, sync_mode="syncfs"))
    work = Work()
    work.hold = set(range(6))
    async with make_runtime(tmp_path, work, storage_engine="files") as rt:
        ids = [await rt.trigger("ep0", {"k": k}) for k in range(6)]
        await work.wait_blocked(6)
        fs.faults.append(Fault(op="syncfs", errno=errno.EIO))
        work.release.set()
        results = [await rt.wait_for_result(i) for i in ids]
        later = await rt.trigger_and_wait("ep0", {"k": 9})
        assert later.status == "completed" and later.output["d"] == expected_output(9)
        failed = [r for r in results if r.status == "failed"]
        assert failed and all("errno 5" in r.error for r in failed)
        for k, r in enumerate(results):
            if r.status == "completed":
                assert r.output["d"] == expected_output(k)
            check_session_folder(tmp_path / "sessions" / r.session_id)
            assert CheckpointStore(tmp_path / "sessions" / r.session_id).load_all()
        for r in failed:
            again = await rt.resume(r.session_id)
            assert again.status == "completed"
            assert again.output["d"] == expected_output(ids.index(r.session_id))
    STATS.add("faults_injected")
    STATS.add("sessions_recovered", len(failed))
