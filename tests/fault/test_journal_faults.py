"""The journal engine under faults: disk faults on its segment (through the fs seam), torn
tails of every length, a damaged record in the middle. What a user sees: the executions a
fault hit fail with an error naming the segment, nothing acknowledged before is lost, the
session files show every durable record after recovery, and failed sessions resume."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import trio

from fault.runtime_support import Work, expected_output, make_runtime, use_fs
from fault.support import STATS, check_session_folder
from hive_actors.errors import StorageError
from hive_actors.storage.checkpoint_store import CheckpointStore
from hive_actors.storage.commit import FileOp
from hive_actors.storage.fs import Fault, FaultyFileSystem
from hive_actors.storage.journal import Journal, recover_if_idle
from hive_actors.storage.journal_format import JournalCorruptError, list_segments
from hive_actors.storage.session_store import SessionStore


@pytest.mark.parametrize(("op", "err"), [("write", errno.ENOSPC), ("fdatasync", errno.EIO)])
async def test_segment_fault_fails_the_batch_it_hit_and_the_sessions_resume(
        tmp_path, monkeypatch, op, err):
    fs = FaultyFileSystem()
    use_fs(monkeypatch, fs)
    work = Work()
    work.hold = set(range(4))
    async with make_runtime(tmp_path, work) as rt:
        ids = [await rt.trigger("ep0", {"k": k}) for k in range(4)]
        await work.wait_blocked(4)  # each has a durable n1 checkpoint and is inside n2
        fs.faults.append(Fault(op=op, errno=err, path_contains="journal/seg_"))
        work.release.set()
        results = [await rt.wait_for_result(i) for i in ids]
        later = await rt.trigger_and_wait("ep0", {"k": 9})
    STATS.add("faults_injected")
    assert later.status == "completed" and later.output["d"] == expected_output(9)
    failed = [r for r in results if r.status == "failed"]
    assert failed, "the fault hit a batch"
    for r in failed:  # a clear error: the segment and the OS reason
        assert "journal/seg_" in r.error and f"errno {err}" in r.error, r.error
    for k, r in enumerate(results):
        if r.status == "completed":
            assert r.output["d"] == expected_output(k)
        folder = tmp_path / "sessions" / r.session_id
        check_session_folder(folder)
        assert CheckpointStore(folder).load_all()  # n1's checkpoint was acknowledged: kept
    fs.faults.clear()
    async with make_runtime(tmp_path, work2 := Work()) as rt2:
        for r in failed:
            k = ids.index(r.session_id)
            again = await rt2.resume(r.session_id)
            assert again.status == "completed" and again.output["d"] == expected_output(k)
            assert work2.calls[(k, "n1")] == 0
    STATS.add("sessions_recovered", len(failed))


async def test_unwritable_journal_at_accept_refuses_the_trigger_and_runs_nothing(
        tmp_path, monkeypatch):
    fs = FaultyFileSystem()
    use_fs(monkeypatch, fs)
    work = Work()
    async with make_runtime(tmp_path, work) as rt:
        fs.faults.append(Fault(op="write", errno=errno.ENOSPC, path_contains="journal/seg_"))
        with pytest.raises(StorageError, match="seg_.*errno 28"):
            await rt.trigger("ep0", {"k": 7})
        assert not work.calls
        result = await rt.trigger_and_wait("ep0", {"k": 8})
    assert result.status == "completed" and result.output["d"] == expected_output(8)
    assert [r.session_id for r in SessionStore(tmp_path).list_sessions()] == [result.session_id]


async def _journal_with_records(root: Path, n: int) -> list[bytes]:
    """A journal (left as a crash would leave it: no clean stop of the view) holding ``n``
    records, each writing sessions/s{i}/state.json and appending one details line."""
    journal = Journal(root)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for i in range(n):
            folder = root / "sessions" / f"s{i}"
            await journal.commit([FileOp.write(folder / "state.json", json.dumps({"i": i}).encode()),
                                  FileOp.append(folder / "logs" / "details.jsonl",
                                                json.dumps({"n": i}).encode() + b"\n")])
        nursery.cancel_scope.cancel()
    ((_, seg),) = list_segments(root / "journal")
    return [seg.read_bytes()]


def _crash_copy(root: Path, dest: Path, segment: bytes) -> Path:
    """``dest``: a storage folder holding only the journal (the view lost, as after a crash
    before the view wrote anything), its segment being ``segment``."""
    (dest / "journal").mkdir(parents=True)
    (dest / "journal" / "seg_000000000001.log").write_bytes(segment)
    return dest


async def test_torn_tail_of_every_length_is_cut_and_every_whole_record_is_kept(tmp_path):
    (full,) = await _journal_with_records(tmp_path / "src", 3)
    ends = []
    pos = 0
    while pos < len(full):  # record boundaries, from the frame headers
        pos += 8 + int.from_bytes(full[pos:pos + 4], "little")
        ends.append(pos)
    for cut in range(len(full) + 1):
        root = _crash_copy(tmp_path, tmp_path / f"cut{cut}", full[:cut])
        assert recover_if_idle(root)
        whole = sum(1 for e in ends if e <= cut)
        store = SessionStore(root)
        assert store.session_ids() == [f"s{i}" for i in range(whole)]
        for i in range(whole):
            assert json.loads(store.state_path(f"s{i}").read_bytes()) == {"i": i}
            assert store.read_details(f"s{i}") == [{"n": i}]
        # recovered once: a second recovery changes nothing, lines are not appended twice
        assert recover_if_idle(root)
        for i in range(whole):
            assert store.read_details(f"s{i}") == [{"n": i}]
    STATS.add("torn_tails_checked", len(full) + 1)


async def test_damaged_record_in_the_middle_is_reported_with_segment_and_offset(tmp_path):
    (full,) = await _journal_with_records(tmp_path / "src", 3)
    first = 8 + int.from_bytes(full[0:4], "little")
    damaged = bytearray(full)
    damaged[first + 12] ^= 0xFF  # inside the second record; the third is intact
    root = _crash_copy(tmp_path, tmp_path / "bad", bytes(damaged))
    with pytest.raises(JournalCorruptError, match=f"seg_000000000001.log.*offset {first}"):
        recover_if_idle(root)
    # nothing was skipped silently: the segment is left as it was for a human to look at
    assert (root / "journal" / "seg_000000000001.log").read_bytes() == bytes(damaged)


async def test_second_runtime_on_a_live_storage_folder_is_refused_naming_the_lock(tmp_path):
    async with make_runtime(tmp_path, Work()) as rt:
        other = make_runtime(tmp_path, Work())
        with pytest.raises(StorageError, match="journal.*in use by another running runtime"):
            await other.start()
        assert (await rt.trigger_and_wait("ep0", {"k": 1})).status == "completed"


async def test_fast_stop_leaves_final_records_to_the_journal_and_sessions_replays_them(tmp_path):
    work = Work(hold_all=True)
    rt = make_runtime(tmp_path, work, view_catch_up_on_stop=False)
    async with rt:
        ids = [await rt.trigger("ep0", {"k": k}) for k in range(20)]
        await work.wait_blocked(20)
    # stop() returned once the final records were durable; the CLI's recovery shows them
    assert recover_if_idle(tmp_path)
    store = SessionStore(tmp_path)
    assert {store.read_state(sid).status for sid in ids} == {"cancelled"}
    for sid in ids:
        check_session_folder(tmp_path / "sessions" / sid)
    async with make_runtime(tmp_path, work2 := Work()) as rt2:
        again = await rt2.resume(ids[3])
    assert again.status == "completed" and again.output["d"] == expected_output(3)
    assert work2.calls[(3, "n1")] == 0


async def test_an_append_that_cannot_be_cut_back_is_never_acknowledged(tmp_path):
    """The append's fdatasync fails, then so does the one that cuts the segment back: the
    caller gets a StorageError naming the segment (never a silent success) and the journal
    actor stops with the reason."""
    fs = FaultyFileSystem(Fault(op="fdatasync", times=2, path_contains="journal/seg_"))
    journal = Journal(tmp_path, fs=fs)
    caller_error: list[BaseException] = []

    async def commit_one() -> None:
        try:
            await journal.commit([FileOp.write(tmp_path / "sessions" / "s" / "state.json",
                                               b'{"i": 1}')])
        except StorageError as exc:
            caller_error.append(exc)

    with pytest.raises(BaseException) as stopped:  # the actor stops: it cannot go on safely
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            await commit_one()
    assert "could not cut back" in repr(stopped.value)
    assert len(caller_error) == 1 and "journal/seg_" in str(caller_error[0])
