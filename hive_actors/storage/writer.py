"""StorageWriter: one actor per runtime that makes files durable with group commit.

Callers send write/append requests to its inbox and wait. The actor takes every request
waiting in the inbox as one batch (up to ``max_batch``) and commits the batch in one worker
thread:

1. stage: missing folders are created (not synced one by one: see step 4); each whole-file
   write goes to its own fresh temp file; each append is written to its log (no syncs yet);
2. data barrier: the staged bytes are made durable, by one ``syncfs`` per file system when the
   batch has several requests (``sync_mode="auto"``), else by one ``fsync`` per file;
3. renames: each temp file replaces its target, in request order (so of two writes to one path
   in a batch the later wins);
4. directory barrier: one ``fsync`` per distinct directory that got a rename, a new file or a
   new subfolder (or one ``syncfs`` per file system again).

Only then are the callers woken, so no write is reported done before it is durable, and no
file is reported done before every folder on its path is. A batch of N writes into one
directory costs 2 syncs instead of 2N. While one batch commits the next one gathers in the
inbox, which is what makes batches grow under load. `commit` submits several requests at once
(e.g. a checkpoint and the state.json that points at it) so that they share one batch.

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

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from hive_actors.errors import RuntimeStateError, StorageError
from hive_actors.storage.atomic import append_bytes, atomic_write_bytes
from hive_actors.storage.commit import BatchCommitter, FileOp, Request, SyncMode, skipped_error
from hive_actors.storage.fs import REAL_FS, FileSystem

from hive_actors.storage.checkpoint_delta import materialise_ops
from hive_actors.storage.durable_log import BatchStats, DurableLog, SingleFileOps, serve_batches

__all__ = ["FileOp", "StorageWriter", "SyncMode", "WriterStats", "commit_files",
           "open_storage_writer"]


@attrs.define
class WriterStats(BatchStats):
    """Counters for tests and benchmarks."""
    direct: int = 0  # requests done without the actor (not running)


class StorageWriter(SingleFileOps):
    """The durable-write actor. Start it with ``await nursery.start(writer.run)`` or use
    `open_storage_writer`.

    ``inbox_size`` bounds the queue (callers wait when it is full); ``max_batch`` bounds the
    requests of one commit (in syncfs mode one file is open at a time per file system; in
    fsync mode, used for small batches, one per request). ``staging_dir``: where temp files
    are created (see commit.py; e.g. ``{storage}/.staging``); None = next to each target.
    """

    def __init__(
        self,
        *,
        fs: FileSystem = REAL_FS,
        sync_mode: SyncMode = "auto",
        max_batch: int = 4096,
        inbox_size: int = 8192,
        staging_dir: Path | None = None,
    ) -> None:
        if sync_mode not in ("auto", "fsync", "syncfs"):
            raise ValueError(f"sync_mode must be auto, fsync or syncfs, got {sync_mode!r}")
        self._fs = fs
        self._committer = BatchCommitter(fs, sync_mode,
                                         Path(staging_dir) if staging_dir is not None else None)
        self._max_batch = max_batch
        self._send, self._recv = trio.open_memory_channel[Request](inbox_size)
        self._running = False
        self._started = False
        self._stopped = trio.Event()
        self.stats = WriterStats()

    @property
    def running(self) -> bool:
        """True while requests go through the actor (in FIFO order); else they are direct."""
        return self._running

    # ---- caller side -------------------------------------------------------------------

    async def commit(self, ops: Sequence[FileOp]) -> None:
        """Apply ``ops`` in order as one group: they enter the inbox together, so they share
        one batch (one set of barriers) unless the inbox is full. Returns once every op is
        done (durable, for durable ops).

        The first op is the group's anchor: a later whole-file write is not applied if the
        anchor has failed (e.g. no state.json pointing at a checkpoint that was not saved);
        appends are applied either way.
        Raises the first `StorageError`, after every op has finished.
        """
        if not ops:
            return
        if any(op.kind == "delta" for op in ops):  # normally not given: accepts_deltas
            ops = materialise_ops(ops)
        first = Request.of(ops[0])
        reqs = [first, *(Request.of(op, first) for op in ops[1:])]
        if self._running:
            await self._submit(reqs)
        else:
            await self._direct(reqs)
        for r in reqs:
            if r.error is not None:
                raise r.error

    async def settle(self) -> None:
        """Nothing to wait for: files are in place once their commit returns."""

    def stopping(self) -> None:
        """Nothing to do: every file is written by its commit."""

    async def _submit(self, reqs: list[Request]) -> None:
        queued = 0
        try:
            for r in reqs:
                try:
                    self._send.send_nowait(r)
                except trio.WouldBlock:
                    await self._send.send(r)  # not queued yet: cancellable, nothing written
                queued += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # the writer stopped meanwhile: the rest is done directly below
        finally:
            # what is queued is finished whatever happens to the caller; the inbox is FIFO
            # and batches finish in order, so the last queued request is done last
            if queued:
                with trio.CancelScope(shield=True):
                    await reqs[queued - 1].done.wait()
        if queued < len(reqs):
            await self._direct(reqs[queued:])

    async def _direct(self, reqs: list[Request]) -> None:
        self.stats.direct += len(reqs)
        await _apply_directly(reqs, self._fs)

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
            await serve_batches(self._recv, self._max_batch, self._commit)
        finally:
            self._running = False
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop taking requests, finish the queued ones, and wait for the actor to end."""
        self._send.close()
        if self._started:
            await self._stopped.wait()

    async def _commit(self, batch: list[Request]) -> None:
        self.stats.record_batch(len(batch))
        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._committer.commit, batch)
        finally:
            for r in batch:
                if not r.ok and r.error is None:
                    r.error = StorageError(f"{r.path}: storage writer failed unexpectedly")
                r.done.set()


async def _apply_directly(reqs: list[Request], fs: FileSystem) -> None:
    """Apply ``reqs`` one after the other in a worker thread, each with its own syncs."""

    def apply() -> None:
        for r in reqs:
            if r.op == "write" and r.after is not None and r.after.error is not None:
                r.error = skipped_error(r)
                continue
            try:
                if r.op == "write":
                    atomic_write_bytes(r.path, r.data, fs=fs)
                else:
                    append_bytes(r.path, r.data, durable=r.durable, fs=fs)
                r.ok = True
            except StorageError as exc:
                r.error = exc

    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(apply)


async def commit_files(ops: Sequence[FileOp], writer: DurableLog | None = None, *,
                       fs: FileSystem = REAL_FS) -> None:
    """`StorageWriter.commit` through ``writer``, or (None) directly on ``fs``: one op after
    the other in a worker thread, same guarantees and anchor rule. Raises the first
    `StorageError`."""
    if writer is not None:
        await writer.commit(ops)
        return
    if not ops:
        return
    if any(op.kind == "delta" for op in ops):  # a journal that stopped meanwhile
        ops = materialise_ops(ops)
    first = Request.of(ops[0])
    reqs = [first, *(Request.of(op, first) for op in ops[1:])]
    await _apply_directly(reqs, fs)
    for r in reqs:
        if r.error is not None:
            raise r.error


@asynccontextmanager
async def open_storage_writer(
    *, fs: FileSystem = REAL_FS, sync_mode: SyncMode = "auto", max_batch: int = 4096
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
