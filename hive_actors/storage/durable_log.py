"""The write side of the storage seam (seam.py): `DurableLog`, and the batching helpers the
engines share. Below the session and checkpoint modules, which hand their writes to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import attrs
import trio

from hive_actors.storage.commit import FileOp

__all__ = ["BatchStats", "DurableLog", "SingleFileOps", "drain", "serve_batches"]

T = TypeVar("T")


@attrs.define
class BatchStats:
    """The counters every engine's actor keeps (for tests and benchmarks)."""

    batches: int = 0
    requests: int = 0
    largest_batch: int = 0

    def record_batch(self, size: int) -> None:
        """One batch of ``size`` groups committed."""
        self.batches += 1
        self.requests += size
        self.largest_batch = max(self.largest_batch, size)


class DurableLog(Protocol):
    """A storage engine's write side."""

    @property
    def running(self) -> bool:
        """True while groups go through the engine's actor (in order)."""
        ...

    async def commit(self, ops: Sequence[FileOp]) -> None:
        """Make ``ops`` durable as one group; raise `StorageError` naming the file if not."""
        ...

    async def write(self, path: Path, data: bytes) -> None: ...

    async def append(self, path: Path, data: bytes, *, durable: bool = True) -> None: ...

    async def settle(self) -> None:
        """Return once readers of the session files see every group committed so far."""
        ...

    def stopping(self) -> None:
        """The owner is stopping (groups still come: the final records of cancelled
        executions)."""
        ...


class SingleFileOps:
    """``write`` and ``append`` of one file, as a group of one op, for engines that have
    ``commit``. ``accepts_deltas``: the engine takes ``delta`` ops (checkpoint_delta.py);
    callers give any other engine whole-file writes."""

    accepts_deltas = False

    async def commit(self, ops: Sequence[FileOp]) -> None:
        raise NotImplementedError

    async def write(self, path: Path, data: bytes) -> None:
        """Replace ``path`` with ``data``; return once it is durable. Raises `StorageError`."""
        await self.commit((FileOp.write(path, data),))

    async def append(self, path: Path, data: bytes, *, durable: bool = True) -> None:
        """Append ``data`` (e.g. one JSONL line) to ``path``.

        ``durable=True``: returns once the bytes are on disk. ``durable=False``: the files
        engine returns once written to the OS (a crash may lose the tail); the journal makes
        it durable with its batch either way. Raises `StorageError`.
        """
        await self.commit((FileOp.append(path, data, durable=durable),))


def drain(recv: trio.MemoryReceiveChannel[T], limit: int) -> list[T]:
    """Up to ``limit`` items waiting in ``recv``, without waiting (an actor's next batch)."""
    batch: list[T] = []
    while len(batch) < limit:
        try:
            batch.append(recv.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            break
    return batch


async def serve_batches(recv: trio.MemoryReceiveChannel[T], limit: int,
                        commit: Callable[[list[T]], Awaitable[None]]) -> None:
    """An actor's loop: commit every batch (up to ``limit`` items) waiting in ``recv`` until
    it ends; on the way out (end or cancellation) commit what is still queued under a shield,
    then close ``recv``. No await between the last empty drain and the close: nothing lost."""
    try:
        while True:
            try:
                first = await recv.receive()
            except trio.EndOfChannel:
                break
            await commit([first, *drain(recv, limit - 1)])
    finally:
        with trio.CancelScope(shield=True):
            while batch := drain(recv, limit):
                await commit(batch)
        recv.close()
