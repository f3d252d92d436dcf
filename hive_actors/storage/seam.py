"""The storage seam: what the runtime asks of a storage engine.

Writes go through a `DurableLog` (commit a group of file changes; durable on return). Reads
(a session's state and checkpoints, the list of sessions, sessions a dead owner left
running) go through `SessionStore` and `CheckpointStore` over the seed's files, after
``settle()`` has made the files show every committed group.

Two engines implement `DurableLog`:

- `Journal` (journal.py, the default): one append-only log per runtime, group-committed with
  one write and one fdatasync per batch; the session files are its view (view.py).
- `StorageWriter` (writer.py): every file written and synced in place, group-committed
  (``RuntimeConfig(storage_engine="files")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from hive_actors.storage.commit import FileOp

__all__ = ["DurableLog"]


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
