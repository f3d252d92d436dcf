"""StorageWriter: one actor per runtime that makes files durable with group commit.

Callers send write/append requests to its inbox and wait. The actor takes every request
waiting in the inbox as one batch (up to ``max_batch``) and commits the batch in one worker
thread:

1. stage: each whole-file write goes to its own fresh temp file; each append is written to
   its log (no syncs yet);
2. data barrier: the staged bytes are made durable, by one ``syncfs`` per file system when the
   batch has several files (``sync_mode="auto"``), else by one ``fsync`` per file;
3. renames: each temp file replaces its target, in request order (so of two writes to one path
   in a batch the later wins);
4. directory barrier: one ``fsync`` per distinct directory that got a rename or a new file (or
   one ``syncfs`` per file system again).

Only then are the callers woken, so no write is reported done before it is durable. A batch of
N writes into one directory costs 2 syncs instead of 2N. While one batch commits the next one
gathers in the inbox, which is what makes batches grow under load.

Failures are per request: a request whose own step fails gets a `StorageError` (path and
errno); a failed shared barrier fails exactly the requests it covered. Files saved before are
never touched (a failed write leaves the previous file in place; a failed append is cut back to
its previous length, best effort).

Cancellation: once a request is in the inbox it is finished; its caller waits for it under a
shield. When the actor is cancelled it first commits every request still in its inbox (under a
shield), then closes the inbox. Writes asked of a writer that is not running (not started yet,
or stopped) are done directly, one by one, with the same guarantees.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import attrs
import trio

from hive_actors.errors import RuntimeStateError, StorageError
from hive_actors.storage.atomic import (
    append_bytes,
    append_staged,
    atomic_write_bytes,
    ensure_dir,
    open_for_append,
    remove_quietly,
    storage_error,
    write_all,
    temp_path_for,
)
from hive_actors.storage.fs import REAL_FS, FileSystem

SyncMode = Literal["auto", "fsync", "syncfs"]
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@attrs.define(eq=False)
class _Request:
    op: str  # "write" | "append"
    path: Path
    data: bytes
    durable: bool = True
    done: trio.Event = attrs.Factory(trio.Event)
    error: StorageError | None = None
    ok: bool = False
    # staging state, touched only by the commit thread
    fd: int | None = None
    tmp: Path | None = None
    created: bool = False
    dev: int = 0


@attrs.define
class WriterStats:
    """Counters for tests and benchmarks."""

    batches: int = 0
    requests: int = 0
    largest_batch: int = 0
    direct: int = 0  # requests done without the actor (not running)


class StorageWriter:
    """The durable-write actor. Start it with ``await nursery.start(writer.run)`` or use
    `open_storage_writer`.

    ``inbox_size`` bounds the queue (callers wait when it is full); ``max_batch`` bounds the
    files open at once in a commit.
    """

    def __init__(
        self,
        *,
        fs: FileSystem = REAL_FS,
        sync_mode: SyncMode = "auto",
        max_batch: int = 256,
        inbox_size: int = 1024,
    ) -> None:
        if sync_mode not in ("auto", "fsync", "syncfs"):
            raise ValueError(f"sync_mode must be auto, fsync or syncfs, got {sync_mode!r}")
        self._fs = fs
        self._sync_mode = sync_mode
        self._max_batch = max_batch
        self._send, self._recv = trio.open_memory_channel[_Request](inbox_size)
        self._running = False
        self._started = False
        self._stopped = trio.Event()
        self.stats = WriterStats()

    # ---- caller side -------------------------------------------------------------------

    async def write(self, path: Path, data: bytes) -> None:
        """Replace ``path`` with ``data``; return once it is durable. Raises `StorageError`."""
        await self._submit(_Request("write", Path(path), bytes(data)))

    async def append(self, path: Path, data: bytes, *, durable: bool = True) -> None:
        """Append ``data`` (e.g. one JSONL line) to ``path``.

        ``durable=True``: returns once the bytes are on disk. ``durable=False``: returns once
        written to the OS (they reach the disk with the next barrier or the kernel's flush);
        a crash may lose the tail. Raises `StorageError`.
        """
        await self._submit(_Request("append", Path(path), bytes(data), durable=durable))

    async def _submit(self, req: _Request) -> None:
        if self._running:
            try:
                try:
                    self._send.send_nowait(req)
                except trio.WouldBlock:
                    await self._send.send(req)  # not queued yet: cancellable, nothing written
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                await self._direct(req)
                return
            with trio.CancelScope(shield=True):
                await req.done.wait()
            if req.error is not None:
                raise req.error
        else:
            await self._direct(req)

    async def _direct(self, req: _Request) -> None:
        self.stats.direct += 1
        fs = self._fs
        with trio.CancelScope(shield=True):
            if req.op == "write":
                await trio.to_thread.run_sync(lambda: atomic_write_bytes(req.path, req.data, fs=fs))
            else:
                await trio.to_thread.run_sync(
                    lambda: append_bytes(req.path, req.data, durable=req.durable, fs=fs)
                )

    # ---- actor side ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[StorageWriter] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve requests until `aclose` (after finishing them) or cancellation (after
        committing every queued request). Raises `RuntimeStateError` if run twice."""
        if self._started:
            raise RuntimeStateError("this StorageWriter has already been started")
        self._started = True
        self._running = True
        task_status.started(self)
        try:
            while True:
                try:
                    first = await self._recv.receive()
                except trio.EndOfChannel:
                    break
                await self._commit([first, *self._drain(self._max_batch - 1)])
        finally:
            with trio.CancelScope(shield=True):
                while batch := self._drain(self._max_batch):
                    await self._commit(batch)
            # No await between the last empty drain and the close: nothing is lost.
            self._recv.close()
            self._running = False
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop taking requests, finish the queued ones, and wait for the actor to end."""
        self._send.close()
        if self._started:
            await self._stopped.wait()

    def _drain(self, limit: int) -> list[_Request]:
        batch: list[_Request] = []
        while len(batch) < limit:
            try:
                batch.append(self._recv.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        return batch

    async def _commit(self, batch: list[_Request]) -> None:
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._commit_sync, batch)
        finally:
            for r in batch:
                if not r.ok and r.error is None:
                    r.error = StorageError(f"{r.path}: storage writer failed unexpectedly")
                r.done.set()

    # ---- the commit, in a worker thread ----------------------------------------------------

    def _commit_sync(self, batch: list[_Request]) -> None:
        try:
            for r in batch:
                self._stage(r)
            staged = [r for r in batch if r.error is None]
            use_syncfs = self._use_syncfs(staged)
            self._barrier([r for r in staged if r.durable], use_syncfs, "sync data of")
            for r in staged:
                if r.error is None and r.op == "write":
                    self._rename(r)
            renamed = [r for r in staged if r.error is None and r.durable]
            self._dir_barrier([r for r in renamed if r.op == "write" or r.created], use_syncfs)
            for r in staged:
                r.ok = r.error is None
        finally:
            for r in batch:
                if r.fd is not None:
                    self._fs.close(r.fd)
                    r.fd = None
                if r.tmp is not None and not r.ok:
                    remove_quietly(r.tmp, self._fs)

    def _fail(self, r: _Request, action: str, exc: OSError) -> None:
        r.error = storage_error(action, r.path, exc)

    def _stage(self, r: _Request) -> None:
        fs = self._fs
        try:
            ensure_dir(r.path.parent, fs)
        except OSError as exc:
            return self._fail(r, "create directory for", exc)
        try:
            if r.op == "write":
                r.tmp = temp_path_for(r.path)
                r.fd = fs.open(r.tmp, _TEMP_FLAGS, 0o644)
                write_all(r.fd, r.data, fs)
            else:
                r.fd, size, r.created = open_for_append(r.path, fs)
                append_staged(r.fd, size, r.data, fs)
            r.dev = os.fstat(r.fd).st_dev
        except OSError as exc:
            self._fail(r, "write" if r.op == "write" else "append to", exc)

    def _use_syncfs(self, staged: list[_Request]) -> bool:
        if self._sync_mode == "fsync" or not getattr(self._fs, "has_syncfs", False):
            return False
        return self._sync_mode == "syncfs" or len(staged) >= 3

    def _barrier(self, reqs: list[_Request], use_syncfs: bool, action: str) -> None:
        """Make the staged bytes of ``reqs`` durable; a failure fails the requests it covers."""
        if not use_syncfs:
            for r in reqs:
                try:
                    self._fs.fsync(r.fd)  # type: ignore[arg-type]
                except OSError as exc:
                    self._fail(r, action, exc)
            return
        by_dev: dict[int, list[_Request]] = {}
        for r in reqs:
            by_dev.setdefault(r.dev, []).append(r)
        for group in by_dev.values():
            try:
                self._fs.syncfs(group[0].fd)  # type: ignore[arg-type]
            except OSError as exc:
                for r in group:
                    self._fail(r, action, exc)

    def _rename(self, r: _Request) -> None:
        try:
            self._fs.replace(r.tmp, r.path)  # type: ignore[arg-type]
            r.tmp = None
        except OSError as exc:
            self._fail(r, "rename temp file onto", exc)

    def _dir_barrier(self, reqs: list[_Request], use_syncfs: bool) -> None:
        if use_syncfs:
            self._barrier(reqs, True, "sync directory of")
            return
        by_dir: dict[Path, list[_Request]] = {}
        for r in reqs:
            by_dir.setdefault(r.path.parent, []).append(r)
        for d, group in by_dir.items():
            try:
                self._fs.fsync_dir(d)
            except OSError as exc:
                for r in group:
                    self._fail(r, "sync directory of", exc)


@asynccontextmanager
async def open_storage_writer(
    *, fs: FileSystem = REAL_FS, sync_mode: SyncMode = "auto", max_batch: int = 256
) -> AsyncIterator[StorageWriter]:
    """A running `StorageWriter` for the block; on exit every accepted write is finished."""
    writer = StorageWriter(fs=fs, sync_mode=sync_mode, max_batch=max_batch)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        try:
            yield writer
        finally:
            with trio.CancelScope(shield=True):
                await writer.aclose()
