"""Journal: one actor per runtime that makes every durable point a record in one append-only log.

Callers hand it commit groups (the `FileOp`s of one moment of a session: a checkpoint, its
details line, the state.json pointing at it) and wait. Each group is one framed record
(journal_format.py). The actor takes every group waiting in its inbox as one batch (up to
``max_batch``) and, in one worker thread:

1. writes the batch's records to the current segment with one ``write``;
2. makes them durable with one ``fdatasync`` of that segment;
3. wakes the callers, then hands the batch to the `SessionView`, which writes the seed's
   session files from it (view.py).

So a durable point costs no file creation, rename or folder sync of its own: N concurrent
commits share one write and one barrier, and nothing is reported before its record is on
disk. Once a segment passes ``segment_bytes`` the next batch goes to a new one (one folder
sync); the view retires old segments once it holds and has synced their records.

Failures: a failed write or barrier fails every group of the batch with a `StorageError`
naming the segment; the segment is cut back to its length before the batch, so nothing is
half-recorded and nothing acknowledged before is touched. If it cannot be cut back the actor
raises (the runtime fails) rather than append after a hole.

Start-up (`run`, before it reports started): the journal folder is locked (one live owner),
the torn tail of the last segment is cut, the records the view had not applied are replayed
into it and synced, and a new segment is started (see `recover`). Readers of a folder whose
runtime died call `recover_if_idle` first (the CLI does).

Cancellation: a group in the inbox is finished; its caller waits under a shield. When the
actor is cancelled it commits every group still in its inbox as one batch (so `stop()` writes
the final records of all in-flight executions in one group commit), then the view applies
them and syncs if at most ``view_catch_up_limit`` ops are due (512: a stop with a few
executions leaves complete files); with more (or ``view_catch_up_on_stop=False``) the view
stops at once and the next start, `open_reader` or `hive-actors sessions` replays them. Groups asked of a journal that is not running are written directly as files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import trio

from hive_actors.errors import RuntimeStateError, StorageError
from hive_actors.storage.atomic import ensure_dir, storage_error, write_all
from hive_actors.storage.commit import FileOp
from hive_actors.storage.fs import REAL_FS, FileSystem
from hive_actors.storage.journal_format import (
    JournalCorruptError,
    encode_ops,
    iter_ops,
    list_segments,
    scan_segment,
    segment_name,
)
from hive_actors.storage.durable_log import BatchStats, SingleFileOps, serve_batches
from hive_actors.storage.view import SessionView, ViewApplier, ViewBatch, read_mark
from hive_actors.storage.writer import commit_files

__all__ = ["Journal", "JournalStats", "recover", "recover_if_idle"]

log = logging.getLogger(__name__)

_SEG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


@attrs.define
class JournalStats(BatchStats):
    """Counters for tests and benchmarks."""
    bytes: int = 0
    segments: int = 0


@attrs.define(eq=False)
class _Group:
    ops: list[FileOp]
    frame: bytes
    done: trio.Event = attrs.Factory(trio.Event)
    error: StorageError | None = None


def journal_dir(storage_path: Path) -> Path:
    return Path(storage_path) / "journal"


def _lock(folder: Path) -> int | None:
    """An fd holding the journal's lock, or None if a live runtime holds it."""
    fd = os.open(folder / "LOCK", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def recover(storage_path: Path, fs: FileSystem = REAL_FS) -> int:
    """Bring the view up to date with the journal; return the number of the next segment.

    Call with the journal's lock held. Cuts the torn tail of the last segment, applies every
    record after the view's mark, syncs, moves the mark and deletes the applied segments.
    Raises `JournalCorruptError` for damage in the middle (segment and offset), `StorageError`.
    """
    folder = journal_dir(storage_path)
    mark_seg, mark_off = read_mark(folder)
    segments = list_segments(folder)
    applier = ViewApplier(folder, fs)
    applied = False
    for i, (num, path) in enumerate(segments):
        if num < mark_seg:
            continue
        data = path.read_bytes()
        scan = scan_segment(path, data, mark_off if num == mark_seg else 0)
        if scan.torn_at is not None:
            if i != len(segments) - 1:
                raise JournalCorruptError(path, scan.torn_at, "bad record before the last segment")
            _cut(path, scan.torn_at, fs)
        ops = [op for _, group in iter_ops(path, scan, Path(storage_path)) for op in group]
        if ops:
            applier.apply(ops, replaying=True)
            applied = True
    nxt = max([mark_seg, 1, *(num + 1 for num, _ in segments)])
    if applied or segments:
        applier.sync()
        applier.write_mark((nxt, 0))
        applier.retire_below(nxt, segments)
    return nxt


def _cut(path: Path, size: int, fs: FileSystem) -> None:
    fd = fs.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        fs.fsync(fd)
    finally:
        fs.close(fd)


def recover_if_idle(storage_path: Path, fs: FileSystem = REAL_FS) -> bool:
    """`recover` unless a live runtime owns the journal (it keeps its view current itself).
    Returns True if it recovered. Raises as `recover`."""
    folder = journal_dir(storage_path)
    if not folder.is_dir():
        return False
    fd = _lock(folder)
    if fd is None:
        return False
    try:
        recover(storage_path, fs)
    finally:
        os.close(fd)
    return True


class Journal(SingleFileOps):
    """The journal actor. Start it with ``await nursery.start(journal.run)``; it has the
    caller side of `StorageWriter` (``commit``, ``write``, ``append``, ``running``) plus
    ``settle()`` (wait until the view shows everything committed so far). Checkpoints
    come as deltas (``accepts_deltas``); the view writes their whole files."""

    accepts_deltas = True

    def __init__(self, storage_path: Path, *, fs: FileSystem = REAL_FS,
                 segment_bytes: int = 64 << 20, max_batch: int = 4096,
                 inbox_size: int = 8192, view_backlog: int = 256 << 20,
                 view_catch_up_on_stop: bool = True, view_catch_up_limit: int = 512) -> None:
        self.storage_path = Path(storage_path)
        self.dir = journal_dir(self.storage_path)
        self._fs = fs
        self._segment_bytes = segment_bytes
        self._max_batch = max_batch
        self._view_backlog = view_backlog
        self._view_catch_up = view_catch_up_on_stop
        self._view_catch_up_limit = view_catch_up_limit
        self._send, self._recv = trio.open_memory_channel[_Group](inbox_size)
        self._running = False
        self._started = False
        self._stopped = trio.Event()
        self._fd: int | None = None
        self._seg = 0
        self._seg_path = self.dir
        self._size = 0
        self.view: SessionView | None = None
        self.stats = JournalStats()

    @property
    def running(self) -> bool:
        return self._running

    # ---- caller side -------------------------------------------------------------------

    async def commit(self, ops: Sequence[FileOp]) -> None:
        """Record ``ops`` as one group: all of them or none become durable. Returns once the
        record is durable (the view shows it within its lag). Raises `StorageError`."""
        if not ops:
            return
        if not self._running:
            await commit_files(ops, fs=self._fs)
            return
        group = _Group(list(ops), encode_ops(ops, self.storage_path))
        try:
            try:
                self._send.send_nowait(group)
            except trio.WouldBlock:
                await self._send.send(group)  # not queued yet: cancellable, nothing written
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            await commit_files(ops, fs=self._fs)  # the journal stopped meanwhile
            return
        with trio.CancelScope(shield=True):
            await group.done.wait()
        if group.error is not None:
            raise group.error

    async def settle(self) -> None:
        """Return once the view's files show every group committed so far. Raises the
        view's `StorageError` if it has stopped applying."""
        if self.view is not None and self._running:
            await self.view.settle()

    # ---- actor side ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Journal] = trio.TASK_STATUS_IGNORED) -> None:
        """Recover, then serve groups until `aclose` or cancellation (after committing every
        queued group). Raises `RuntimeStateError` if run twice, `StorageError` if recovery
        fails (`JournalCorruptError` for a damaged record in the middle)."""
        if self._started:
            raise RuntimeStateError("this Journal has already been started")
        self._started = True
        lock_fd = None
        try:
            with trio.CancelScope(shield=True):
                lock_fd = await trio.to_thread.run_sync(self._open)
            view = self.view = SessionView(ViewApplier(self.dir, self._fs), self._seg,
                                           max_backlog=self._view_backlog)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_view, view)
                self._running = True
                task_status.started(self)
                try:
                    await serve_batches(self._recv, self._max_batch, self._commit)
                finally:
                    self._running = False
                    view.close()
        finally:
            self._running = False
            if self._fd is not None:
                self._fs.close(self._fd)
                self._fd = None
            if lock_fd is not None:
                os.close(lock_fd)
            self._stopped.set()

    async def _run_view(self, view: SessionView) -> None:
        # ends when the journal closes its inbox, after the journal's last batch
        with trio.CancelScope(shield=True):
            await view.run()

    def stopping(self) -> None:
        """Its owner is stopping: the view writes the files still due only if they are at
        most ``view_catch_up_limit`` ops (never with ``view_catch_up_on_stop=False``);
        otherwise they are left to the next start's replay (the journal still takes and
        commits every group)."""
        if self.view is not None:
            self.view.stopping(self._view_catch_up_limit if self._view_catch_up else -1)

    async def aclose(self) -> None:
        """Stop taking groups, finish the queued ones, and wait for the actor to end."""
        self._send.close()
        if self._started:
            await self._stopped.wait()

    async def _commit(self, batch: list[_Group]) -> None:
        st = self.stats
        st.record_batch(len(batch))
        data = b"".join(g.frame for g in batch)
        error: StorageError | None = None
        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._append, data)
        except StorageError as exc:
            error = exc
        except BaseException:
            # e.g. the failed append could not be cut back: the batch is not recorded, so
            # its callers must not be told it is durable
            error = StorageError(f"{self._seg_path}: the journal failed while recording "
                                 "this change; it was not saved")
            error.path = str(self._seg_path)
            raise
        finally:
            for g in batch:
                g.error = error
                g.done.set()
        if error is None:
            st.bytes += len(data)
            assert self.view is not None
            with trio.CancelScope(shield=True):
                await self.view.submit(ViewBatch([op for g in batch for op in g.ops],
                                                 (self._seg, self._size), time.monotonic(),
                                                 len(data)))

    # ---- worker-thread side ------------------------------------------------------------

    def _open(self) -> int:
        """Lock, recover and open a new segment; return the lock's fd."""
        try:
            ensure_dir(self.dir, self._fs)
        except OSError as exc:
            raise storage_error("create", self.dir, exc) from exc
        lock_fd = _lock(self.dir)
        if lock_fd is None:
            err = StorageError(f"{self.dir}: in use by another running runtime (its LOCK is held)")
            err.path = str(self.dir / "LOCK")
            raise err
        try:
            self._new_segment(recover(self.storage_path, self._fs))
        except BaseException:
            os.close(lock_fd)
            raise
        return lock_fd

    def _new_segment(self, num: int) -> None:
        path = self.dir / segment_name(num)
        fs = self._fs
        try:
            fd = fs.open(path, _SEG_FLAGS, 0o644)
            fs.fsync_dir(self.dir)
        except OSError as exc:
            raise storage_error("create journal segment", path, exc) from exc
        if self._fd is not None:
            fs.close(self._fd)
        self._fd, self._seg, self._seg_path, self._size = fd, num, path, os.fstat(fd).st_size
        self.stats.segments += 1

    def _append(self, data: bytes) -> None:
        """One write and one fdatasync; on failure cut the segment back and raise."""
        fs = self._fs
        assert self._fd is not None
        try:
            write_all(self._fd, data, fs)
            fs.fdatasync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self._size)
                fs.fdatasync(self._fd)
            except OSError as cut:
                raise RuntimeStateError(
                    f"{self._seg_path}: could not cut back a failed append "
                    f"(errno {cut.errno}); the journal stops") from exc
            raise storage_error("append to journal segment", self._seg_path, exc) from exc
        self._size += len(data)
        if self._size >= self._segment_bytes:
            try:
                self._new_segment(self._seg + 1)
            except StorageError as exc:  # the batch is durable; keep the full segment
                log.warning("journal stays on %s: %s", self._seg_path, exc)
