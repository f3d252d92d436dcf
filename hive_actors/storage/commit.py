"""One group commit of the `StorageWriter`, run in a worker thread (see writer.py for the steps).

`FileOp` is what callers ask for; `Request` is one op in flight. `BatchCommitter` commits
batches one after the other and remembers the folders it created whose entries in their parent
are not yet durable (``unsynced``): a request below such a folder is reported done only after a
barrier that covers the folder's parent too, so folders need no sync of their own when created.

Staging folder: with ``staging`` set, the temp file of a whole-file write is created there (when
it is on the target's file system) and renamed into the target's folder; a rename within one
file system is just as atomic. Creating files in one folder is several times cheaper on ext4
than creating each next to its target in a different session folder (inode allocation follows
the parent folder). Stale temp files there (a crash) are removed when first used.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Literal

import attrs
import trio

from hive_actors.errors import StorageError
from hive_actors.storage.atomic import (
    TEMP_SUFFIX,
    append_staged,
    make_dirs,
    open_log,
    remove_quietly,
    storage_error,
    temp_path_for,
    write_all,
)
from hive_actors.storage.fs import FileSystem

SyncMode = Literal["auto", "fsync", "syncfs"]
_PATH = type(Path())
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@attrs.frozen
class FileOp:
    """One file change: replace a whole file (``write``) or append to a log (``append``;
    ``durable=False`` appends reach the disk with the next barrier or the kernel's flush).
    ``delta``: a checkpoint file given as a change to an earlier one (checkpoint_delta.py),
    handed only to engines that accept deltas; `materialise_ops` turns it into a write."""

    kind: Literal["write", "append", "delta"]
    path: Path
    data: bytes
    durable: bool = True

    @classmethod
    def write(cls, path: Path, data: bytes) -> FileOp:
        # the hot path hands a Path and bytes: no re-parse, no copy
        return cls("write", path if type(path) is _PATH else Path(path),
                   data if type(data) is bytes else bytes(data))

    @classmethod
    def delta(cls, path: Path, data: bytes) -> FileOp:
        return cls("delta", path, data)

    @classmethod
    def append(cls, path: Path, data: bytes, *, durable: bool = True) -> FileOp:
        return cls("append", path if type(path) is _PATH else Path(path),
                   data if type(data) is bytes else bytes(data), durable)


@attrs.define(eq=False)
class Request:
    op: str  # "write" | "append"
    path: Path
    data: bytes
    durable: bool = True
    # the anchor of its group: if it has failed, this request (a whole-file write) is not
    # applied; appends do not depend on it
    after: Request | None = None
    done: trio.Event = attrs.Factory(trio.Event)
    error: StorageError | None = None
    ok: bool = False
    # staging state, touched only by the commit thread
    fd: int | None = None
    tmp: Path | None = None
    created: bool = False
    dev: int = 0
    dirs: tuple[Path, ...] = ()  # unsynced folders on its path when it was staged

    @classmethod
    def of(cls, op: FileOp, after: Request | None = None) -> Request:
        return cls(op.kind, op.path, op.data, op.durable, after)


def skipped_error(r: Request) -> StorageError:
    """The error of a request not applied because its anchor (``after``) failed."""
    assert r.after is not None
    err = StorageError(f"{r.path}: not written because the write of {r.after.path} failed")
    err.path = str(r.path)
    err.errno = getattr(r.after.error, "errno", None)
    return err


class BatchCommitter:
    """Commits batches of `Request`s in order; not thread-safe (one commit at a time)."""

    def __init__(self, fs: FileSystem, sync_mode: SyncMode, staging: Path | None = None) -> None:
        self.fs = fs
        self.sync_mode = sync_mode
        self.staging = staging
        self._staging_dev: int | None = None
        # folders this committer created whose entry in their parent is not known durable;
        # invariant: a folder is removed only once no folder above it is still listed
        self.unsynced: dict[Path, None] = {}

    def commit(self, batch: list[Request]) -> None:
        """Stage, data barrier, renames, directory barrier; sets ``ok`` or ``error`` of each."""
        use_syncfs = self._use_syncfs(batch)
        keepers: dict[int, int] = {}  # device -> an open fd on it, for syncfs
        try:
            for r in batch:
                self._stage(r, use_syncfs, keepers)
            staged = [r for r in batch if r.error is None]
            self._data_barrier([r for r in staged if r.durable], use_syncfs, keepers)
            for r in staged:
                if r.error is None and r.op == "write":
                    self._rename(r)
            renamed = [r for r in staged if r.error is None and r.durable]
            self._dir_barrier(renamed, use_syncfs, keepers)
            for r in staged:
                r.ok = r.error is None
        finally:
            fs = self.fs
            for fd in keepers.values():
                fs.close(fd)
            for r in batch:
                if r.fd is not None:
                    fs.close(r.fd)
                    r.fd = None
                if r.tmp is not None and not r.ok:
                    remove_quietly(r.tmp, fs)

    def _use_syncfs(self, batch: list[Request]) -> bool:
        if self.sync_mode == "fsync" or not getattr(self.fs, "has_syncfs", False):
            return False
        return self.sync_mode == "syncfs" or len(batch) >= 3

    # ---- stage ---------------------------------------------------------------------------

    def _parent_dev(self, r: Request) -> int:
        """Device of ``r``'s folder, creating missing folders (listed as unsynced)."""
        parent = r.path.parent
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            for d in make_dirs(parent, self.fs):
                self.unsynced[d] = None
            st = os.stat(parent)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(20, "not a directory", str(parent))
        if self.unsynced:
            dirs = []
            while parent in self.unsynced:
                dirs.append(parent)
                parent = parent.parent
            r.dirs = tuple(dirs)
        return st.st_dev

    def _stage(self, r: Request, use_syncfs: bool, keepers: dict[int, int]) -> None:
        if r.op == "write" and r.after is not None and r.after.error is not None:
            r.error = skipped_error(r)
            return
        fs = self.fs
        try:
            r.dev = self._parent_dev(r)
        except OSError as exc:
            r.error = storage_error("create directory for", r.path, exc)
            return
        try:
            if r.op == "write":
                staged_in = self._staging_for(r.dev)
                r.tmp = (temp_path_for(r.path) if staged_in is None
                         else temp_path_for(staged_in / r.path.name))
                r.fd = fs.open(r.tmp, _TEMP_FLAGS, 0o644)
                if staged_in is not None:
                    fs.note_target(r.fd, r.path)
                write_all(r.fd, r.data, fs)
            else:
                r.fd, size, r.created = open_log(r.path, fs)
                append_staged(r.fd, size, r.data, fs)
        except OSError as exc:
            r.error = storage_error("write" if r.op == "write" else "append to", r.path, exc)
            return
        if use_syncfs:  # one open fd per device is enough for the barriers
            if r.dev in keepers:
                fs.close(r.fd)
            else:
                keepers[r.dev] = r.fd
            r.fd = None

    def _staging_for(self, dev: int) -> Path | None:
        """The staging folder if it is usable for a target on ``dev``."""
        if self.staging is None:
            return None
        if self._staging_dev is None:
            try:
                make_dirs(self.staging, self.fs)  # its entry need not be durable
                self._staging_dev = os.stat(self.staging).st_dev
                _sweep_stale(self.staging, self.fs)
            except OSError:
                self.staging = None  # temp files go next to their targets instead
                return None
        return self.staging if dev == self._staging_dev else None

    # ---- barriers and renames --------------------------------------------------------------

    def _data_barrier(self, reqs: list[Request], use_syncfs: bool, keepers: dict[int, int]) -> None:
        """Make the staged bytes of ``reqs`` durable; a failure fails the requests it covers."""
        if use_syncfs:
            self._syncfs(reqs, keepers, "sync data of")
            return
        for r in reqs:
            assert r.fd is not None  # staged, and not handed to the syncfs keepers
            try:
                self.fs.fsync(r.fd)
            except OSError as exc:
                r.error = storage_error("sync data of", r.path, exc)

    def _syncfs(self, reqs: list[Request], keepers: dict[int, int], action: str) -> list[Request]:
        """One syncfs per device of ``reqs``; returns the requests whose device synced."""
        by_dev: dict[int, list[Request]] = {}
        for r in reqs:
            by_dev.setdefault(r.dev, []).append(r)
        synced: list[Request] = []
        for dev, group in by_dev.items():
            try:
                self.fs.syncfs(keepers[dev])
            except OSError as exc:
                for r in group:
                    r.error = storage_error(action, r.path, exc)
            else:
                synced.extend(group)
        return synced

    def _rename(self, r: Request) -> None:
        if r.after is not None and r.after.error is not None:
            r.error = skipped_error(r)
            return
        assert r.tmp is not None  # only staged temp files are renamed
        try:
            self.fs.replace(r.tmp, r.path)
            r.tmp = None
        except OSError as exc:
            r.error = storage_error("rename temp file onto", r.path, exc)

    def _dir_barrier(self, renamed: list[Request], use_syncfs: bool, keepers: dict[int, int]) -> None:
        """Make the renames, new files and new folders of the batch durable."""
        # folders whose entries must be synced: each renamed/new file's folder, and the parent
        # of every unsynced folder on its path
        by_dir: dict[Path, list[Request]] = {}
        for r in renamed:
            if use_syncfs:
                continue
            if r.op == "write" or r.created:
                by_dir.setdefault(r.path.parent, []).append(r)
            for d in r.dirs:
                by_dir.setdefault(d.parent, []).append(r)
        if use_syncfs:
            covered: set[Path] = set()
            for r in self._syncfs(renamed, keepers, "sync directory of"):
                covered.update(r.dirs)
            self._forget_synced(covered)
        # folders created for requests that failed or synced nothing: sync them on their own
        for d in self.unsynced:
            by_dir.setdefault(d.parent, [])
        if not by_dir:
            return
        synced: set[Path] = set()
        for d, group in by_dir.items():
            try:
                self.fs.fsync_dir(d)
            except OSError as exc:
                for r in group:
                    r.error = storage_error("sync directory of", r.path, exc)
            else:
                synced.add(d)
        self._forget_synced({d for d in self.unsynced if d.parent in synced})

    def _forget_synced(self, dirs: set[Path]) -> None:
        """Drop ``dirs`` from ``unsynced``, top folders first, keeping the invariant that no
        folder leaves the list while a folder above it stays."""
        for d in sorted(dirs, key=lambda p: len(p.parts)):
            if d.parent not in self.unsynced:
                self.unsynced.pop(d, None)


STALE_SECONDS = 3600.0  # no batch keeps a temp file nearly that long


def _sweep_stale(folder: Path, fs: FileSystem) -> None:
    """Remove temp files older than `STALE_SECONDS` from ``folder`` (left by a crash; other
    live processes sharing the folder only have fresh ones)."""
    limit = time.time() - STALE_SECONDS
    with os.scandir(folder) as entries:
        for e in entries:
            if e.name.endswith(TEMP_SUFFIX) and e.is_file() and e.stat().st_mtime < limit:
                remove_quietly(Path(e.path), fs)
