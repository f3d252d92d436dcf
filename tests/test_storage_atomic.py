"""atomic_write_bytes / write_atomic: old or new file, never partial; no temp files left."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest
import trio

from hive_actors.errors import StorageError
from hive_actors.storage.atomic import append_bytes, atomic_write_bytes, write_atomic
from hive_actors.storage.fs import Fault, FaultyFileSystem


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


def test_write_replaces_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert leftovers(target.parent) == []


def test_write_syncs_file_before_rename_and_directory_after(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"x", fs=fs)
    ops = [op for op, _ in fs.log]
    assert ops.index("fsync") < ops.index("replace") < len(ops) - 1
    assert fs.log[-1] == ("fsync_dir", str(tmp_path))


@pytest.mark.parametrize("op", ["open", "write", "fsync", "replace"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_failure_at_any_step_keeps_old_file_and_names_path(tmp_path: Path, op: str, code: int) -> None:
    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"old")
    fs = FaultyFileSystem(Fault(op, errno=code))
    with pytest.raises(StorageError) as info:
        atomic_write_bytes(target, b"new" * 1000, fs=fs)
    assert info.value.errno == code
    assert info.value.path == str(target)
    assert str(target) in str(info.value)
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_directory_sync_failure_is_reported(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    fs = FaultyFileSystem(Fault("fsync_dir", errno=errno.EIO, path_contains=str(tmp_path)))
    with pytest.raises(StorageError, match="sync directory"):
        atomic_write_bytes(target, b"new", fs=fs)
    assert leftovers(tmp_path) == []


class BlockingFS(FaultyFileSystem):
    """Blocks the first data write until released, telling trio when it got there."""

    def __init__(self, reached: trio.Event) -> None:
        super().__init__()
        self.reached = reached
        self.release = threading.Event()

    def write(self, fd: int, data: bytes) -> int:
        if not self.release.is_set():
            trio.from_thread.run_sync(self.reached.set)
            self.release.wait()
        return super().write(fd, data)


async def test_cancelled_write_finishes_whole(tmp_path: Path) -> None:
    target = tmp_path / "cp.json"
    await write_atomic(target, b"old")
    reached = trio.Event()
    fs = BlockingFS(reached)
    new = b"n" * 100_000
    returned = []

    async def writer() -> None:
        await write_atomic(target, new, fs=fs)
        returned.append(True)

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await reached.wait()
            scope.cancel()  # cancel while the bytes are half way
            fs.release.set()
    assert scope.cancel_called and returned == [True]
    assert target.read_bytes() == new
    assert leftovers(tmp_path) == []


def test_failed_append_keeps_earlier_lines(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "details.jsonl"
    append_bytes(log, b'{"a": 1}\n')
    fs = FaultyFileSystem(Fault("write", errno=errno.ENOSPC))
    with pytest.raises(StorageError, match="append"):
        append_bytes(log, b'{"b": 2}\n', fs=fs)
    assert log.read_bytes() == b'{"a": 1}\n'
