"""SessionView: the actor that writes the seed's session files from the journal's records.

The journal makes records durable; the view turns them into ``state.json``, checkpoint
files and logs (see docs/storage.md for the layout), in batches, without a sync per file:

1. the journal hands over each committed batch (after it is durable) through its inbox; the
   bytes waiting there are bounded (``max_backlog``): a view that falls that far behind makes
   the journal wait, so the lag stays bounded;
2. at most every ``interval`` (20 ms; at once when someone waits in `settle()`) the view
   takes every batch waiting, keeps only the last write of each whole file, writes
   each whole file to a temp file in ``journal/tmp`` and renames it over its target, appends
   log lines whole (a torn last line left by a crash is cut first); no syncs;
3. when the journal has moved to a new segment, every record of the older ones is applied:
   one ``syncfs`` makes the view durable, ``journal/view.mark`` records the position (written
   atomically), and the older segments are deleted (retirement: one barrier per segment).

Readers therefore see every file whole at any moment, at most one view batch behind the
journal (`lag` measures it). `settle()` waits until everything committed so far is applied.

Recovery (`replay`, before the runtime starts, or by `hive-actors sessions` on a folder whose
runtime died): the records after the mark are applied again. Whole files are idempotent;
appended lines already present in their log are not appended twice.

Failures: a view that cannot write a file logs it, stops applying and retiring (records stay
in the journal and are replayed at the next start) and `settle()` raises its `StorageError`.
Closing: on exit the view applies what is in its inbox, syncs and moves the mark, under a
shield, unless it was told to leave the rest (`leave_rest`, or `stopping(limit)` with more
than ``limit`` ops waiting): then the batches still waiting stay in the journal (durable
there, replayed at the next start or by `open_reader` / `hive-actors sessions`), so a stop
with many executions in flight does not wait for their files.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs
import trio

from hive_actors.errors import CorruptFileError, StorageError
from hive_actors.storage.atomic import (
    atomic_write_bytes,
    make_dirs,
    open_log,
    remove_quietly,
    storage_error,
    temp_path_for,
    write_all,
)
from hive_actors.storage.checkpoint_delta import Materialiser
from hive_actors.storage.commit import FileOp
from hive_actors.storage.fs import FileSystem
from hive_actors.storage.journal_format import list_segments
from hive_actors.storage.durable_log import drain

log = logging.getLogger(__name__)

_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
MARK_NAME = "view.mark"
Position = tuple[int, int]  # (segment number, offset just past a record)


@attrs.define(eq=False)
class ViewBatch:
    """Ops of records the journal made durable, in order, and the position after them."""

    ops: list[FileOp]
    end: Position
    durable_at: float  # time.monotonic() when the journal's barrier returned
    size: int = 0  # bytes of the ops' data


@attrs.define
class ViewStats:
    batches: int = 0
    files_written: int = 0
    retired_segments: int = 0
    lags: list[float] = attrs.Factory(list)  # seconds from durable record to file, per batch


def _not_written(exc: CorruptFileError) -> None:
    log.error("view file not written: %s", exc)


class ViewApplier:
    """Applies ops to the view's files; blocking, one thread at a time."""

    def __init__(self, journal_dir: Path, fs: FileSystem) -> None:
        self.journal_dir = journal_dir
        self.tmp_dir = journal_dir / "tmp"
        self.fs = fs
        self.files_written = 0
        self.materialiser = Materialiser()

    def apply(self, ops: Sequence[FileOp], *, replaying: bool = False) -> None:
        """`prepare` ``ops`` and write them. Raises `StorageError`."""
        self.write_prepared(self.prepare(ops), replaying=replaying)  # no pause: all written

    def prepare(self, ops: Sequence[FileOp]) -> list[FileOp]:
        """``ops`` as whole writes and appends: deltas materialised (checkpoints, patched
        state.json), a whole file written several times kept once. A delta whose base
        cannot be read is logged and its file left out (the session's other files are
        written, and it is reported as missing or damaged when read)."""
        return self.materialiser.prepare(ops, on_error=_not_written)

    def write_prepared(self, ops: Sequence[FileOp], *, replaying: bool = False,
                       pause: Callable[[], bool] | None = None) -> list[FileOp]:
        """Write whole files (by rename) and append lines; return the ops not written
        because ``pause()`` said so (checked before each whole file; then nothing is
        appended either). Raises `StorageError`."""
        appends: dict[Path, list[bytes]] = {}
        seen: list[FileOp] = []
        for i, op in enumerate(ops):
            if op.kind == "append":
                appends.setdefault(op.path, []).append(op.data)
                seen.append(op)
                continue
            if pause is not None and pause():
                return [*seen, *ops[i:]]
            self._write(op.path, op.data)
        for path, chunks in appends.items():
            self._append(path, chunks, replaying)
        return []

    def _write(self, path: Path, data: bytes) -> None:
        fs = self.fs
        tmp = temp_path_for(self.tmp_dir / path.name)
        try:
            try:
                fd = fs.open(tmp, _TEMP_FLAGS, 0o644)
            except FileNotFoundError:
                make_dirs(self.tmp_dir, fs)
                fd = fs.open(tmp, _TEMP_FLAGS, 0o644)
            try:
                write_all(fd, data, fs)
            finally:
                fs.close(fd)
            try:
                fs.replace(tmp, path)
            except FileNotFoundError:
                make_dirs(path.parent, fs)
                fs.replace(tmp, path)
        except OSError as exc:
            remove_quietly(tmp, fs)
            raise storage_error("write view file", path, exc) from exc
        self.files_written += 1

    def _append(self, path: Path, chunks: list[bytes], replaying: bool) -> None:
        fs = self.fs
        try:
            try:
                fd, size, _ = open_log(path, fs)
            except FileNotFoundError:
                make_dirs(path.parent, fs)
                fd, size, _ = open_log(path, fs)
            try:
                if replaying and size:
                    present = set(os.pread(fd, size, 0).splitlines(keepends=True))
                    chunks = [c for c in chunks if c not in present]
                data = b"".join(chunks)
                try:
                    write_all(fd, data, fs)
                except OSError:
                    os.ftruncate(fd, size)
                    raise
            finally:
                fs.close(fd)
        except OSError as exc:
            raise storage_error("append to view file", path, exc) from exc

    def sync(self) -> None:
        """One barrier for everything applied so far (``syncfs`` on the journal's file
        system; where there is none, ``sync()``)."""
        fd = self.fs.open(self.journal_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if getattr(self.fs, "has_syncfs", False):
                self.fs.syncfs(fd)
            else:
                os.sync()
        finally:
            self.fs.close(fd)

    def write_mark(self, pos: Position) -> None:
        """Record durably that the view holds every record before ``pos``."""
        data = json.dumps({"segment": pos[0], "offset": pos[1]}).encode()
        atomic_write_bytes(self.journal_dir / MARK_NAME, data, fs=self.fs)

    def retire_below(self, segment: int, segments: Iterable[tuple[int, Path]]) -> int:
        """Delete the segments numbered below ``segment``; return how many."""
        n = 0
        for num, path in segments:
            if num < segment:
                remove_quietly(path, self.fs)
                n += 1
        return n


def read_mark(journal_dir: Path) -> Position:
    """The view's mark, (0, 0) if there is none. Raises `StorageError` if it is damaged."""
    path = journal_dir / MARK_NAME
    try:
        data = json.loads(path.read_bytes())
        return int(data["segment"]), int(data["offset"])
    except FileNotFoundError:
        return 0, 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err = StorageError(f"{path}: unreadable view mark ({exc})")
        err.path = str(path)
        raise err from None


class SessionView:
    """The view actor. The journal starts it with ``await nursery.start(view.run)``."""

    def __init__(self, applier: ViewApplier, segment: int, *,
                 max_backlog: int = 256 << 20,
                 interval: float = 0.02) -> None:
        self.applier = applier
        self.interval = interval
        self._last_pass = -math.inf
        self._hurry = trio.Event()
        self._send, self._recv = trio.open_memory_channel[ViewBatch](math.inf)
        self._max_backlog = max_backlog
        self._backlog = 0  # bytes of ops waiting in the inbox
        self._closing = False
        self._closed = trio.Event()
        self._leave = False  # apply nothing more: the journal holds the rest
        self._hold = False  # stopping: the writing thread stops at the next file
        # a pass the hold interrupted: its batches and the ops still to write
        self._unwritten: tuple[list[ViewBatch], list[FileOp]] | None = None
        self._stop_limit: int | None = None  # set by `stopping`
        self._pending_ops = 0  # ops submitted, not applied yet
        self._sent = 0
        self._applied = 0
        self._progress = trio.Event()
        self._segment = segment  # segment of the last applied batch
        self._end: Position | None = None
        self.error: StorageError | None = None
        self.stats = ViewStats()

    async def submit(self, batch: ViewBatch) -> None:
        """Hand a durable batch to the view (waits while its backlog is over budget). After
        `leave_rest` the batch is left to the journal."""
        if self._leaving():
            return
        while self._backlog >= self._max_backlog and self.error is None and not self._closing:
            await self._progress.wait()
        self._sent += 1
        self._backlog += batch.size
        self._pending_ops += len(batch.ops)
        self._send.send_nowait(batch)

    async def settle(self) -> None:
        """Return once every batch submitted so far is in the files (or the view was told
        to leave them to the journal). Raises the view's `StorageError` if it has stopped
        applying."""
        target = self._sent
        while self._applied < target and self.error is None and not self._leave:
            self._hurry.set()
            await self._progress.wait()
        if self.error is not None:
            raise self.error

    def leave_rest(self) -> None:
        """Apply nothing more (finish the chunk being written); the journal holds the
        rest, replayed at the next start."""
        self._leave = self._hold = True
        self._hurry.set()

    def stopping(self, limit: int) -> None:
        """The owner is stopping: write nothing more while the executions end; once the
        journal's last batch is in, catch up if at most ``limit`` ops wait (the final
        records included), else leave the rest (see `leave_rest`)."""
        self._stop_limit = limit
        self._hold = True
        self._hurry.set()

    def _held(self) -> bool:  # read by the writing thread between files
        return self._hold

    def _leaving(self) -> bool:
        if not self._leave and self._stop_limit is not None:
            self._leave = self._pending_ops > self._stop_limit
        return self._leave

    def close(self) -> None:
        self._closing = True
        self._hurry.set()
        self._send.close()
        self._closed.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        held: list[ViewBatch] = []
        try:
            async for first in self._recv:
                # gather for up to ``interval`` after the last pass (a state.json rewritten
                # several times meanwhile is written once), unless someone waits in settle()
                with trio.move_on_at(self._last_pass + self.interval):
                    await self._hurry.wait()
                if self._leave or self._stop_limit is not None:
                    # stopping: write nothing while the executions end (no contention with
                    # them); once the final records are in, catch up or leave them
                    held.append(first)
                    break
                self._last_pass = trio.current_time()
                await self._apply([first, *drain(self._recv, 1 << 30)])
        finally:
            # when leaving, the rest stays in the journal, replayed at the next start
            with trio.CancelScope(shield=True):
                if self._stop_limit is not None and not self._leave:
                    await self._closed.wait()  # the journal's last batch has been submitted
                if not self._leaving():
                    if self._unwritten is not None:
                        (batches, left), self._unwritten = self._unwritten, None
                        await self._apply(batches, left)
                    if rest := [*held, *drain(self._recv, 1 << 30)]:
                        await self._apply(rest)
                    if self._end is not None and self.error is None:
                        await trio.to_thread.run_sync(self._checkpoint, self._end, False)
                self._recv.close()

    async def _apply(self, batches: list[ViewBatch], ops: list[FileOp] | None = None) -> None:
        """Write ``batches`` (``ops``: what is left of them to write, prepared). Once
        stopping, the writing thread stops at the next file and the rest is kept in
        ``_unwritten`` (written at close, or left to the journal)."""
        if self.error is None:
            end = batches[-1].end
            new_segment = end[0] != self._segment
            try:
                with trio.CancelScope(shield=True):
                    if ops is None:
                        ops = await trio.to_thread.run_sync(
                            self.applier.prepare, [op for b in batches for op in b.ops])
                    pause = None if self._closing else self._held
                    left = await trio.to_thread.run_sync(functools.partial(
                        self.applier.write_prepared, ops, pause=pause))
                    if left:
                        self._unwritten = (batches, left)
                        return
                    if new_segment:
                        await trio.to_thread.run_sync(self._checkpoint, (end[0], 0), True)
            except StorageError as exc:
                log.error("session view stopped (records stay in the journal): %s", exc)
                self.error = exc
            else:
                now = time.monotonic()
                self.stats.lags.extend(now - b.durable_at for b in batches)
                self._segment = end[0]
                self._end = end
        self.stats.batches += 1
        self.stats.files_written = self.applier.files_written
        self._applied += len(batches)
        self._backlog -= sum(b.size for b in batches)
        self._pending_ops -= sum(len(b.ops) for b in batches)
        self._progress.set()
        self._progress = trio.Event()
        if self._hurry.is_set():
            self._hurry = trio.Event()

    def _checkpoint(self, pos: Position, retire: bool) -> None:
        """Sync the view, move the mark to ``pos`` and (``retire``) delete older segments."""
        a = self.applier
        try:
            a.sync()
            a.write_mark(pos)
        except OSError as exc:
            raise storage_error("sync view of", a.journal_dir, exc) from exc
        if retire:
            self.stats.retired_segments += a.retire_below(pos[0], list_segments(a.journal_dir))
