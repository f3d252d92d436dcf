"""StorageWriter: group commit, durable on return, per-request failures, clean stop."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from hive_actors.errors import StorageError
from hive_actors.storage.fs import REAL_FS, Fault, FaultyFileSystem
from hive_actors.storage.session_store import read_jsonl
from hive_actors.storage.writer import StorageWriter, open_storage_writer

needs_syncfs = pytest.mark.skipif(not REAL_FS.has_syncfs, reason="no syncfs(2) here")


def temps(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


class GatedFS(FaultyFileSystem):
    """Holds the first commit's first open() until the test releases it, so that every
    concurrent request is queued behind it: batches become deterministic."""

    def __init__(self, *faults: Fault) -> None:
        super().__init__(*faults)
        self.gate = threading.Event()

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        self.gate.wait()
        return super().open(path, flags, mode)


async def write_all_concurrently(writer: StorageWriter, fs: GatedFS, items: dict[Path, bytes]):
    """Start every write, wait until all are queued, open the gate; map path -> error|None."""
    outcome: dict[Path, StorageError | None] = {}

    async def one(path: Path, data: bytes) -> None:
        try:
            await writer.write(path, data)
            outcome[path] = None
        except StorageError as exc:
            outcome[path] = exc

    async with trio.open_nursery() as nursery:
        for path, data in items.items():
            nursery.start_soon(one, path, data)
        await trio.testing.wait_all_tasks_blocked()
        fs.gate.set()
    return outcome


@pytest.mark.parametrize("mode", ["fsync", pytest.param("syncfs", marks=needs_syncfs)])
async def test_concurrent_writes_share_syncs(tmp_path: Path, mode: str) -> None:
    n = 50
    fs = GatedFS()
    items = {tmp_path / "s" / f"f{i}.json": b"%d" % i * 500 for i in range(n)}
    async with open_storage_writer(fs=fs, sync_mode=mode) as writer:  # type: ignore[arg-type]
        outcome = await write_all_concurrently(writer, fs, items)
    assert all(err is None for err in outcome.values())
    assert writer.stats.batches <= 2 and writer.stats.largest_batch >= n - 1
    # one-by-one would need 2n syncs (file + directory for each)
    if mode == "fsync":
        assert fs.calls["fsync"] == n and fs.calls["fsync_dir"] <= 4
    else:
        assert fs.syncs <= 6
    for path, data in items.items():
        assert path.read_bytes() == data
    assert temps(tmp_path) == []


@pytest.mark.parametrize("mode", ["fsync", pytest.param("syncfs", marks=needs_syncfs)])
async def test_write_returns_only_after_rename_and_directory_barrier(tmp_path: Path, mode: str) -> None:
    fs = FaultyFileSystem()
    seen: list[list[tuple[str, str]]] = []

    async def one(i: int) -> None:
        path = tmp_path / f"f{i}.json"
        await writer.write(path, b"data")
        log = list(fs.log)
        renamed_at = log.index(("replace", str(path)))
        data_barrier = {"fsync", "syncfs"}
        assert any(op in data_barrier for op, _ in log[:renamed_at])
        assert any(op in {"fsync_dir", "syncfs"} for op, _ in log[renamed_at + 1 :])
        seen.append(log)

    async with open_storage_writer(fs=fs, sync_mode=mode) as writer:  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(one, i)
    assert len(seen) == 10


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
async def test_failing_write_in_batch_fails_alone(tmp_path: Path, code: int) -> None:
    bad = tmp_path / "c.json"
    bad.write_bytes(b"saved before")
    fs = GatedFS(Fault("write", errno=code, path_contains="c.json"))
    items = {tmp_path / f"{name}.json": name.encode() * 100 for name in "abcde"}
    async with open_storage_writer(fs=fs, sync_mode="fsync") as writer:
        outcome = await write_all_concurrently(writer, fs, items)
    err = outcome.pop(bad)
    assert isinstance(err, StorageError) and err.errno == code and str(bad) in str(err)
    assert all(e is None for e in outcome.values())
    assert bad.read_bytes() == b"saved before"
    for path in outcome:
        assert path.read_bytes() == path.stem.encode() * 100
    assert temps(tmp_path) == []


async def test_failed_fsync_fails_only_that_file(tmp_path: Path) -> None:
    fs = GatedFS(Fault("fsync", errno=errno.EIO, path_contains="b.json"))
    items = {tmp_path / f"{name}.json": b"new" for name in "abc"}
    for p in items:
        p.write_bytes(b"old")
    async with open_storage_writer(fs=fs, sync_mode="fsync") as writer:
        outcome = await write_all_concurrently(writer, fs, items)
    assert outcome[tmp_path / "b.json"].errno == errno.EIO  # type: ignore[union-attr]
    assert (tmp_path / "b.json").read_bytes() == b"old"
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "c.json").read_bytes() == b"new"
    assert temps(tmp_path) == []


@needs_syncfs
async def test_failed_shared_barrier_fails_its_whole_group_and_keeps_old_files(tmp_path: Path) -> None:
    fs = GatedFS(Fault("syncfs", errno=errno.EIO, times=2))  # fails the 1 or 2 batches
    items = {tmp_path / f"{name}.json": b"new" for name in "abcd"}
    for p in items:
        p.write_bytes(b"old")
    async with open_storage_writer(fs=fs, sync_mode="syncfs") as writer:
        outcome = await write_all_concurrently(writer, fs, items)
    assert all(e is not None and e.errno == errno.EIO for e in outcome.values())
    for p in items:
        assert p.read_bytes() == b"old"
    assert temps(tmp_path) == []


async def test_stopping_the_owner_finishes_every_accepted_write(tmp_path: Path) -> None:
    fs = GatedFS()
    writer = StorageWriter(fs=fs)
    returned: list[int] = []

    async def one(i: int) -> None:
        await writer.write(tmp_path / f"f{i}.json", b"%d" % i * 1000)
        returned.append(i)

    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for i in range(20):
            nursery.start_soon(one, i)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # the owner stops while 20 writes are in flight
        fs.gate.set()
    assert sorted(returned) == list(range(20))
    for i in range(20):
        assert (tmp_path / f"f{i}.json").read_bytes() == b"%d" % i * 1000
    assert temps(tmp_path) == []


async def test_writes_after_close_are_done_directly(tmp_path: Path) -> None:
    async with open_storage_writer() as writer:
        await writer.write(tmp_path / "a", b"1")
    await writer.write(tmp_path / "b", b"2")
    assert (tmp_path / "b").read_bytes() == b"2"
    assert writer.stats.direct == 1


async def test_later_write_to_same_path_wins(tmp_path: Path) -> None:
    fs = GatedFS()
    target = tmp_path / "state.json"
    async with open_storage_writer(fs=fs) as writer:
        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(writer.write, target, b"v%d" % i)
                await trio.testing.wait_all_tasks_blocked()
            fs.gate.set()
    assert target.read_bytes() == b"v4"


async def test_appends_keep_order_and_failed_append_leaves_earlier_lines(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "details.jsonl"
    fs = FaultyFileSystem(Fault("write", nth=3, errno=errno.ENOSPC, path_contains="details"))
    async with open_storage_writer(fs=fs) as writer:
        await writer.append(log, b'{"n": 1}\n')
        await writer.append(log, b'{"n": 2}\n', durable=False)
        with pytest.raises(StorageError, match="append") as info:
            await writer.append(log, b'{"n": 3}\n')
        assert info.value.errno == errno.ENOSPC
        await writer.append(log, b'{"n": 4}\n')
    assert read_jsonl(log) == [{"n": 1}, {"n": 2}, {"n": 4}]


async def test_running_twice_is_refused() -> None:
    from hive_actors.errors import RuntimeStateError

    async with open_storage_writer() as writer:
        with pytest.raises(RuntimeStateError):
            await writer.run()
