"""StorageWriter.commit (several files in one group commit) and folders made durable by the
batch's directory barrier instead of one sync per mkdir."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from hive_actors.errors import StorageError
from hive_actors.storage.checkpoint_store import CheckpointStore
from hive_actors.storage.fs import REAL_FS, Fault, FaultyFileSystem
from hive_actors.storage.session_store import SessionRecord, SessionStore, read_jsonl
from hive_actors.storage.writer import FileOp, StorageWriter, commit_files, open_storage_writer

needs_syncfs = pytest.mark.skipif(not REAL_FS.has_syncfs, reason="no syncfs(2) here")


class GatedFS(FaultyFileSystem):
    """Holds the first open() until released, so that concurrent requests queue up."""

    def __init__(self, *faults: Fault) -> None:
        super().__init__(*faults)
        self.gate = threading.Event()

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        self.gate.wait()
        return super().open(path, flags, mode)


def temps(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


async def test_a_group_shares_one_batch_and_one_set_of_syncs(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    s = tmp_path / "s"
    ops = [FileOp.write(s / "checkpoints" / "cp1.json", b"cp"),
           FileOp.append(s / "logs" / "details.jsonl", b'{"n": 1}\n'),
           FileOp.write(s / "state.json", b"state")]
    async with open_storage_writer(fs=fs) as writer:
        await writer.commit(ops)
    assert writer.stats.batches == 1 and writer.stats.largest_batch == 3
    assert fs.calls["syncfs"] + fs.calls["fsync"] <= 2 and fs.calls["fsync_dir"] == 0
    assert (s / "state.json").read_bytes() == b"state"
    assert (s / "checkpoints" / "cp1.json").read_bytes() == b"cp"
    assert read_jsonl(s / "logs" / "details.jsonl") == [{"n": 1}]
    assert temps(tmp_path) == []


async def test_new_folders_are_synced_once_each_with_the_batch_not_per_mkdir(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    files = [tmp_path / "sessions" / f"s{i}" / sub / "f.json"
             for i in range(3) for sub in ("checkpoints", "logs")]
    async with open_storage_writer(fs=fs, sync_mode="fsync") as writer:
        await writer.commit([FileOp.write(p, b"x") for p in files])
    # every folder's entry made durable in its parent, each parent once, after the mkdirs
    synced = [p for op, p in fs.log if op == "fsync_dir"]
    assert len(synced) == len(set(synced))
    parents = {str(tmp_path), str(tmp_path / "sessions")} | {
        str(tmp_path / "sessions" / f"s{i}") for i in range(3)} | {
        str(p.parent) for p in files}
    assert set(synced) == parents
    last_mkdir = max(i for i, (op, _) in enumerate(fs.log) if op == "mkdir")
    first_dir_sync = min(i for i, (op, _) in enumerate(fs.log) if op == "fsync_dir")
    assert first_dir_sync > last_mkdir


async def test_a_folder_whose_sync_failed_is_synced_before_the_next_file_below_it(tmp_path: Path) -> None:
    session = tmp_path / "sessions" / "s1"

    class FailSessionsSync(FaultyFileSystem):
        failed = False

        def fsync_dir(self, path: Path) -> None:
            if path == tmp_path / "sessions" and not self.failed:
                self.failed = True
                raise OSError(errno.EIO, "injected", str(path))
            super().fsync_dir(path)

    fs = FailSessionsSync()
    async with open_storage_writer(fs=fs, sync_mode="fsync") as writer:
        # s1's entry in sessions/ may not be durable: the write is not reported done
        with pytest.raises(StorageError, match="sync directory"):
            await writer.write(session / "state.json", b"1")
        before = len(fs.log)
        await writer.write(session / "state.json", b"2")
    later = [p for op, p in fs.log[before:] if op == "fsync_dir"]
    assert str(tmp_path / "sessions") in later  # s1's entry synced again before success
    assert (session / "state.json").read_bytes() == b"2"


async def test_failed_anchor_skips_later_whole_file_writes_but_not_appends(tmp_path: Path) -> None:
    fs = FaultyFileSystem(Fault("write", errno=errno.ENOSPC, path_contains="cp1"))
    state = tmp_path / "state.json"
    state.write_bytes(b"old")
    log = tmp_path / "logs" / "details.jsonl"
    async with open_storage_writer(fs=fs) as writer:
        with pytest.raises(StorageError) as info:
            await writer.commit([FileOp.write(tmp_path / "checkpoints" / "cp1.json", b"cp"),
                                 FileOp.append(log, b'{"n": 1}\n'),
                                 FileOp.write(state, b"points at cp1")])
    assert info.value.errno == errno.ENOSPC and "cp1" in str(info.value)
    assert state.read_bytes() == b"old"
    assert read_jsonl(log) == [{"n": 1}]
    assert not (tmp_path / "checkpoints" / "cp1.json").exists()
    assert temps(tmp_path) == []


async def test_direct_commit_applies_the_same_anchor_rule(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    blocker = tmp_path / "a" / "cp.json"
    blocker.mkdir()  # a folder where the anchor file should go: its rename fails
    with pytest.raises(StorageError):
        await commit_files([FileOp.write(blocker, b"cp"), FileOp.write(tmp_path / "s.json", b"s")])
    assert not (tmp_path / "s.json").exists()
    await commit_files([FileOp.write(tmp_path / "s.json", b"s")])
    assert (tmp_path / "s.json").read_bytes() == b"s"


@pytest.mark.parametrize("mode", ["fsync", pytest.param("syncfs", marks=needs_syncfs)])
async def test_concurrent_groups_of_many_sessions_share_batches(tmp_path: Path, mode: str) -> None:
    fs = GatedFS()
    store_root = tmp_path / "store"
    n = 40
    async with open_storage_writer(fs=fs, sync_mode=mode) as writer:  # type: ignore[arg-type]
        store = SessionStore(store_root, writer)

        async def one(i: int) -> None:
            rec = SessionRecord.new(f"s{i}", status="cancelled")
            await store.commit(rec.session_id, [store.state_op(rec),
                                                store.summary_op(rec.session_id, {"i": i})])

        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
            fs.gate.set()
    assert writer.stats.batches <= 2
    if mode == "syncfs":
        assert fs.syncs <= 4 + 2  # two barriers per batch (+ slack for a second batch)
    for i in range(n):
        assert store.read_state(f"s{i}").status == "cancelled"
        assert store.read_summary(f"s{i}") == {"i": i}
    assert temps(store_root) == []


async def test_checkpoint_companions_share_its_commit_and_follow_its_fate(tmp_path: Path) -> None:
    session = tmp_path / "s"
    fs = FaultyFileSystem()
    async with open_storage_writer(fs=fs) as writer:
        store = CheckpointStore(session, writer, companions=lambda cp: [
            FileOp.write(session / "state.json", b"seq %d" % cp.seq)])
        from hive_actors.graph.result import SessionState

        cp = await store.save("node_complete", "n1", SessionState())
        assert (session / "state.json").read_bytes() == b"seq %d" % cp.seq
        assert writer.stats.batches == 1
        fs.faults.append(Fault("replace", errno=errno.EIO, path_contains="checkpoints"))
        with pytest.raises(StorageError, match="checkpoints"):
            await store.save("node_complete", "n2", SessionState())
    assert (session / "state.json").read_bytes() == b"seq %d" % cp.seq


async def test_staged_temp_files_live_in_the_staging_folder_and_faults_still_match_targets(
        tmp_path: Path) -> None:
    staging = tmp_path / ".staging"
    staging.mkdir()
    stale = staging / ".state.json.0123456789ab.tmp"
    stale.write_bytes(b"left by a crash")
    os.utime(stale, (1, 1))
    fresh = staging / ".state.json.ba9876543210.tmp"
    fresh.write_bytes(b"another live process")
    fs = FaultyFileSystem(Fault("write", errno=errno.ENOSPC, path_contains="s2/state.json"))
    targets = [tmp_path / "sessions" / f"s{i}" / "state.json" for i in range(3)]
    writer = StorageWriter(fs=fs, staging_dir=staging)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        results = []
        for p in targets:
            try:
                await writer.write(p, b"new")
                results.append(None)
            except StorageError as exc:
                results.append(exc)
        await writer.aclose()
    opened = [p for op, p in fs.log if op == "open"]
    assert opened and all(Path(p).parent == staging for p in opened)
    assert results[0] is None and results[1] is None
    assert results[2] is not None and results[2].errno == errno.ENOSPC
    assert [p.exists() for p in targets] == [True, True, False]
    assert sorted(staging.iterdir()) == [fresh]  # stale one swept, failed temp removed
